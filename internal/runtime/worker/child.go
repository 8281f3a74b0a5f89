package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"sync/atomic"

	"github.com/rampart-ml/rampart/internal/runtime/ipc"
	"github.com/rampart-ml/rampart/internal/runtime/sandbox"
	"github.com/rampart-ml/rampart/internal/tensor"
)

// supported is set by Main: only a binary that calls Main first thing can
// be re-executed as a worker.
var supported atomic.Bool

// ErrUnsupported: this binary does not call Main, so it cannot be a worker.
var ErrUnsupported = errors.New("this binary cannot run model workers (it does not call worker.Main)")

// Supported reports whether Main was called in this process.
func Supported() bool { return supported.Load() }

// Main runs the worker and exits if this process was started as one
// (argv[1] is "worker"); otherwise it records that this binary can be one
// and returns. Call it first thing in main, after RegisterEngine (and in
// TestMain of tests that start workers).
func Main() {
	if len(os.Args) != 3 || os.Args[1] != subcommand {
		supported.Store(true)
		return
	}
	if err := run(os.Args[2]); err != nil {
		// The supervisor logs the worker's stderr; no tensor data here.
		fmt.Fprintln(os.Stderr, "rampart worker:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

func run(arg string) error {
	var cfg config
	if err := json.Unmarshal([]byte(arg), &cfg); err != nil {
		return fmt.Errorf("parse worker config: %w", err)
	}
	// The executable was only needed to exec this process.
	_ = os.NewFile(fdExe, "exe").Close()
	sock := os.NewFile(fdSocket, "socket")
	nc, err := net.FileConn(sock)
	_ = sock.Close()
	if err != nil {
		return fmt.Errorf("worker socket: %w", err)
	}
	conn := ipc.NewConn(nc, cfg.MaxFrameBytes)
	defer conn.Close()
	fail := func(code ipc.Code, err error) error {
		_ = conn.Write(ipc.EncodeError(0, code, err.Error()))
		return err
	}
	if !isFileName(cfg.ModelFile) {
		return fail(ipc.CodeUnavailable, fmt.Errorf("model file %q is not a plain file name", cfg.ModelFile))
	}
	// Confine this process before it reads a byte of the model.
	if _, err := sandbox.Apply(cfg.Sandbox); err != nil {
		return fail(ipc.CodeUnavailable, fmt.Errorf("sandbox: %w", err))
	}
	open := registeredEngine()
	if open == nil {
		return fail(ipc.CodeUnavailable, errors.New("no engine registered in this binary"))
	}
	opts := EngineOptions{Threads: max(cfg.Threads, 1)}
	if cfg.HasLibrary {
		opts.LibraryPath = "/proc/self/fd/" + strconv.Itoa(fdLibrary)
	}
	engine, err := open("/proc/self/fd/"+strconv.Itoa(fdModelDir)+"/"+cfg.ModelFile, opts)
	if err != nil {
		return fail(ipc.CodeUnavailable, fmt.Errorf("open model: %w", err))
	}
	// The engine is not closed: the process exits when Serve returns, and a
	// call that ignored its cancellation may still be inside the engine.
	hello, err := ipc.EncodeHello(engine.Metadata(), conn.MaxFrame())
	if err != nil {
		return fail(ipc.CodeUnavailable, fmt.Errorf("model metadata: %w", err))
	}
	if err := conn.Write(hello); err != nil {
		return err
	}
	return ipc.Serve(conn, func(ctx context.Context, in []tensor.Tensor, out []string) ([]tensor.Tensor, error) {
		return engine.Run(ctx, in, out)
	}, max(cfg.MaxConcurrent, 1))
}
