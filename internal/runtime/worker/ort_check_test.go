//go:build ortcheck && linux

// This check loads a real model with ONNX Runtime inside the sandbox, so a
// seccomp allow-list or address-space limit that breaks ORT shows up
// before the real engine (package runtime/onnx) is wired in. It needs cgo
// and the ORT library: go test -tags ortcheck ./internal/runtime/worker
package worker_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/rampart-ml/rampart/internal/onnxmeta/testmodels"
	"github.com/rampart-ml/rampart/internal/runtime/ipc"
	"github.com/rampart-ml/rampart/internal/runtime/worker"
	"github.com/rampart-ml/rampart/internal/tensor"
)

func init() { openORT = openFP32Model }

// fp32Model runs models whose inputs and outputs are all FP32.
type fp32Model struct {
	s    *ort.DynamicAdvancedSession
	meta ipc.Metadata
}

func openFP32Model(path string, o worker.EngineOptions) (worker.Engine, error) {
	ort.SetSharedLibraryPath(o.LibraryPath)
	if err := ort.InitializeEnvironment(); err != nil {
		return nil, fmt.Errorf("initialise ORT: %w", err)
	}
	ins, outs, err := ort.GetInputOutputInfo(path)
	if err != nil {
		return nil, fmt.Errorf("model inputs and outputs: %w", err)
	}
	e := &fp32Model{}
	var inNames, outNames []string
	for _, i := range ins {
		inNames = append(inNames, i.Name)
		e.meta.Inputs = append(e.meta.Inputs, ipc.TensorSpec{Name: i.Name, Datatype: tensor.FP32, Shape: i.Dimensions})
	}
	for _, i := range outs {
		outNames = append(outNames, i.Name)
		e.meta.Outputs = append(e.meta.Outputs, ipc.TensorSpec{Name: i.Name, Datatype: tensor.FP32, Shape: i.Dimensions})
	}
	opts, err := ort.NewSessionOptions()
	if err != nil {
		return nil, err
	}
	defer opts.Destroy()
	if err := opts.SetIntraOpNumThreads(o.Threads); err != nil {
		return nil, err
	}
	if e.s, err = ort.NewDynamicAdvancedSession(path, inNames, outNames, opts); err != nil {
		return nil, fmt.Errorf("ORT session: %w", err)
	}
	return e, nil
}

func (e *fp32Model) Metadata() ipc.Metadata { return e.meta }
func (e *fp32Model) Close() error           { return e.s.Destroy() }

func (e *fp32Model) Run(_ context.Context, in []tensor.Tensor, _ []string) ([]tensor.Tensor, error) {
	vals := make([]ort.Value, len(in))
	for i, t := range in {
		f := make([]float32, len(t.Data)/4)
		for j := range f {
			f[j] = math.Float32frombits(binary.LittleEndian.Uint32(t.Data[4*j:]))
		}
		v, err := ort.NewTensor(ort.NewShape(t.Shape...), f)
		if err != nil {
			return nil, err
		}
		defer v.Destroy()
		vals[i] = v
	}
	outs := make([]ort.Value, len(e.meta.Outputs))
	if err := e.s.Run(vals, outs); err != nil {
		return nil, err
	}
	res := make([]tensor.Tensor, 0, len(outs))
	for i, o := range outs {
		defer o.Destroy()
		ft, ok := o.(*ort.Tensor[float32])
		if !ok {
			return nil, fmt.Errorf("output %d is not FP32", i)
		}
		var b []byte
		for _, v := range ft.GetData() {
			b = binary.LittleEndian.AppendUint32(b, math.Float32bits(v))
		}
		res = append(res, tensor.Tensor{Name: e.meta.Outputs[i].Name, Datatype: tensor.FP32, Shape: ft.GetShape(), Data: b})
	}
	return res, nil
}

func TestORTRunsInSandbox(t *testing.T) {
	lib := os.Getenv("RAMPART_ONNXRUNTIME_LIB")
	if lib == "" {
		dir, err := testmodels.Dir()
		if err != nil {
			t.Fatal(err)
		}
		lib = filepath.Join(filepath.Dir(dir), "onnxruntime", "1.24.1", "libonnxruntime.so.1")
	}
	// The supervisor's job: a model directory the worker's identity may
	// enter and read.
	dir := filepath.Join(t.TempDir(), "model")
	if err := os.Mkdir(dir, 0o755); err != nil { // #nosec G301 -- the worker must enter it
		t.Fatal(err)
	}
	b, err := os.ReadFile(testmodels.Path(t, testmodels.OCRClassifier))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "model.onnx"), b, 0o644); err != nil { // #nosec G306 -- the worker must read it
		t.Fatal(err)
	}
	var stderr strings.Builder
	p, err := worker.Start(context.Background(), worker.Spec{
		ModelDir: dir, ModelFile: "model.onnx", LibraryPath: lib, Threads: 2, MaxConcurrent: 2, MemoryBytes: 512 << 20,
	}, &stderr)
	if err != nil {
		t.Fatalf("start: %v (stderr: %s)", err, stderr.String())
	}
	defer func() { _ = p.Close() }()
	in := tensor.Tensor{Name: "x", Datatype: tensor.FP32, Shape: []int64{1, 3, 48, 192}, Data: make([]byte, 4*3*48*192)}
	for range 3 {
		out, err := p.Client().Infer(context.Background(), []tensor.Tensor{in}, nil)
		if err != nil {
			t.Fatalf("infer: %v (stderr: %s)", err, stderr.String())
		}
		if len(out) != 1 || len(out[0].Data) != 8 {
			t.Fatalf("outputs = %v", out)
		}
	}
	status, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.Pid()))
	for _, l := range strings.Split(string(status), "\n") {
		if strings.HasPrefix(l, "VmPeak") || strings.HasPrefix(l, "VmHWM") || strings.HasPrefix(l, "Seccomp:") || strings.HasPrefix(l, "Threads") {
			t.Log(l)
		}
	}
}
