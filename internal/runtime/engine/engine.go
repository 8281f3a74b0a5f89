// Package engine is the model worker's ONNX Runtime engine: it adapts
// internal/runtime/onnx to worker.Engine. It runs only inside the
// sandboxed worker process, never in the server.
package engine

import (
	"context"
	"errors"
	"fmt"

	"github.com/rampart-ml/rampart/internal/runtime/ipc"
	"github.com/rampart-ml/rampart/internal/runtime/onnx"
	"github.com/rampart-ml/rampart/internal/runtime/worker"
	"github.com/rampart-ml/rampart/internal/tensor"
)

// New opens the model at modelPath with the ONNX Runtime library the
// worker was handed. It is a worker.EngineFactory.
func New(modelPath string, o worker.EngineOptions) (worker.Engine, error) {
	if o.LibraryPath == "" {
		return nil, errors.New("no ONNX Runtime library was handed to the worker")
	}
	if err := onnx.Init(o.LibraryPath); err != nil {
		return nil, err
	}
	s, err := onnx.Open(modelPath, onnx.Options{IntraOpThreads: max(o.Threads, 1)})
	if err != nil {
		return nil, fmt.Errorf("open model: %w", err)
	}
	return &ortEngine{s: s, meta: ipc.Metadata{Inputs: specs(s.Inputs()), Outputs: specs(s.Outputs())}}, nil
}

type ortEngine struct {
	s    *onnx.Session
	meta ipc.Metadata
}

func specs(ios []onnx.IO) []ipc.TensorSpec {
	out := make([]ipc.TensorSpec, 0, len(ios))
	for _, io := range ios {
		out = append(out, ipc.TensorSpec{Name: io.Name, Datatype: io.Datatype, Shape: io.Shape})
	}
	return out
}

func (e *ortEngine) Metadata() ipc.Metadata { return e.meta }

// Run runs the model; inputs that do not fit it are refused as
// CodeInvalidArgument, so the caller gets a 400, not a 500.
func (e *ortEngine) Run(ctx context.Context, inputs []tensor.Tensor, outputs []string) ([]tensor.Tensor, error) {
	out, err := e.s.RunContext(ctx, inputs, outputs)
	if err == nil {
		return out, nil
	}
	for _, bad := range []error{onnx.ErrInput, onnx.ErrOutput, onnx.ErrUnsupported, tensor.ErrShape, tensor.ErrDataSize, tensor.ErrDatatype} {
		if errors.Is(err, bad) {
			return nil, &ipc.StatusError{Code: ipc.CodeInvalidArgument, Err: err}
		}
	}
	return nil, err
}

func (e *ortEngine) Close() error { return e.s.Close() }
