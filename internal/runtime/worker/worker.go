// Package worker runs one model in a sandboxed child process: Start (the
// supervisor side) re-executes this binary as `rampart worker`, hands it
// the model directory, the runtime library and one end of a socketpair as
// inherited descriptors, and returns a Process whose Client speaks the ipc
// protocol; Main (the worker side, called first in main) confines itself
// with package sandbox, opens the model with the registered engine, and
// serves requests until the socket closes.
//
// The worker inherits nothing else: no environment, no other descriptors,
// no network, no path to the data directory (it opens its files through
// /proc/self/fd/N, so it needs no permission on their ancestors), and it
// dies with the supervisor.
package worker

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"

	"github.com/rampart-ml/rampart/internal/runtime/ipc"
	"github.com/rampart-ml/rampart/internal/runtime/sandbox"
	"github.com/rampart-ml/rampart/internal/tensor"
)

// Engine is a loaded model. Run may be called concurrently (at most
// Spec.MaxConcurrent at once); it should return when ctx ends if it can.
// An error wrapped in an *ipc.StatusError with ipc.CodeInvalidArgument
// tells the client the request did not fit the model.
type Engine interface {
	Metadata() ipc.Metadata
	Run(ctx context.Context, inputs []tensor.Tensor, outputs []string) ([]tensor.Tensor, error)
	Close() error
}

// EngineOptions are what the engine needs besides the model.
type EngineOptions struct {
	// LibraryPath is the runtime's shared library ("/proc/self/fd/N"), ""
	// when Spec.LibraryPath was empty.
	LibraryPath string
	// Threads is the intra-op thread count for one session.
	Threads int
}

// EngineFactory opens the model at modelPath.
type EngineFactory func(modelPath string, opts EngineOptions) (Engine, error)

var (
	factoryMu sync.Mutex
	factory   EngineFactory
)

// RegisterEngine sets the engine workers of this binary use. Call it
// before Main (in main, or an init function).
func RegisterEngine(f EngineFactory) {
	factoryMu.Lock()
	defer factoryMu.Unlock()
	factory = f
}

func registeredEngine() EngineFactory {
	factoryMu.Lock()
	defer factoryMu.Unlock()
	return factory
}

// Spec says what to run and how.
type Spec struct {
	// ModelDir is a directory the supervisor prepared (the worker's
	// identity needs search permission on it and read permission on the
	// model file, nothing on its ancestors); ModelFile is a file name in it.
	ModelDir, ModelFile string
	// LibraryPath is the runtime's shared library (ORT), optional.
	LibraryPath string
	// Threads per session (default 1) and requests run at once (default 1).
	Threads, MaxConcurrent int
	// MemoryBytes bounds the worker's memory (see sandbox.Options); 0
	// leaves it unbounded.
	MemoryBytes int64
	// MaxFrameBytes bounds one request or reply; 0 means
	// ipc.DefaultMaxFrameBytes.
	MaxFrameBytes int
	// Sandbox weakens or tunes the sandbox; its MemoryBytes is taken from
	// the field above.
	Sandbox sandbox.Options
}

// Validate reports every problem at once.
func (s Spec) Validate() error {
	var errs []error
	if s.ModelDir == "" {
		errs = append(errs, errors.New("worker spec: model directory is empty"))
	}
	if !isFileName(s.ModelFile) {
		errs = append(errs, fmt.Errorf("worker spec: model file %q must be a plain file name", s.ModelFile))
	}
	if s.Threads < 0 || s.Threads > 1024 {
		errs = append(errs, fmt.Errorf("worker spec: threads %d out of range 0..1024", s.Threads))
	}
	if s.MaxConcurrent < 0 || s.MaxConcurrent > 1024 {
		errs = append(errs, fmt.Errorf("worker spec: max concurrent %d out of range 0..1024", s.MaxConcurrent))
	}
	if s.MemoryBytes < 0 {
		errs = append(errs, errors.New("worker spec: memory bytes must not be negative"))
	}
	if s.MaxFrameBytes < 0 {
		errs = append(errs, errors.New("worker spec: max frame bytes must not be negative"))
	}
	if err := s.Sandbox.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func isFileName(s string) bool {
	return s != "" && s != "." && s != ".." && filepath.IsLocal(s) && !strings.ContainsRune(s, '/')
}

// config is what the supervisor passes the worker (as JSON in argv: it
// holds no secret).
type config struct {
	ModelFile     string          `json:"model_file"`
	HasLibrary    bool            `json:"has_library,omitempty"`
	Threads       int             `json:"threads"`
	MaxConcurrent int             `json:"max_concurrent"`
	MaxFrameBytes int             `json:"max_frame_bytes"`
	Sandbox       sandbox.Options `json:"sandbox"`
}

// The worker's inherited descriptors.
const (
	fdSocket   = 3
	fdModelDir = 4
	fdExe      = 5
	fdLibrary  = 6
)

// subcommand is argv[1] of a worker.
const subcommand = "worker"
