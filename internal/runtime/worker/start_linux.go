package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/rampart-ml/rampart/internal/runtime/ipc"
	"github.com/rampart-ml/rampart/internal/runtime/sandbox"
)

// Start starts a worker for spec and waits (until ctx ends) for its hello,
// so the model is open when it returns. stderr receives the worker's
// diagnostics (nil: discarded).
func Start(ctx context.Context, spec Spec, stderr io.Writer) (*Process, error) {
	if !supported.Load() {
		return nil, ErrUnsupported
	}
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find this executable: %w", err)
	}
	// The worker's identity may have no permission on these paths'
	// ancestors: it gets them as descriptors.
	exeFile, err := os.Open(exe) // #nosec G304 -- this binary
	if err != nil {
		return nil, fmt.Errorf("open this executable: %w", err)
	}
	defer exeFile.Close()
	dir, err := os.OpenFile(spec.ModelDir, os.O_RDONLY|syscall.O_DIRECTORY, 0)
	if err != nil {
		return nil, fmt.Errorf("open model directory: %w", err)
	}
	defer dir.Close()
	files := []*os.File{nil, dir, exeFile} // fdSocket, fdModelDir, fdExe
	if spec.LibraryPath != "" {
		lib, err := os.Open(spec.LibraryPath)
		if err != nil {
			return nil, fmt.Errorf("open runtime library: %w", err)
		}
		defer lib.Close()
		files = append(files, lib) // fdLibrary
	}
	cfg := config{
		ModelFile: spec.ModelFile, HasLibrary: spec.LibraryPath != "",
		Threads: max(spec.Threads, 1), MaxConcurrent: max(spec.MaxConcurrent, 1),
		MaxFrameBytes: spec.MaxFrameBytes, Sandbox: spec.Sandbox,
	}
	cfg.Sandbox.MemoryBytes = spec.MemoryBytes
	if cfg.Sandbox.AddressSpaceHeadroom == 0 {
		cfg.Sandbox.AddressSpaceHeadroom = sandbox.HeadroomFor(cfg.Threads + cfg.MaxConcurrent)
	}
	arg, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}

	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("worker socketpair: %w", err)
	}
	mine, theirs := os.NewFile(uintptr(fds[0]), "worker"), os.NewFile(uintptr(fds[1]), "worker-child")
	defer theirs.Close()
	nc, err := net.FileConn(mine)
	_ = mine.Close()
	if err != nil {
		_ = theirs.Close()
		return nil, fmt.Errorf("worker socket: %w", err)
	}
	files[0] = theirs

	var cmd *exec.Cmd
	var features string
	attempts := sandbox.Attempts(spec.Sandbox)
	for i, a := range attempts {
		cmd = &exec.Cmd{
			// Exec through the inherited descriptor: no path search.
			Path:        "/proc/self/fd/" + strconv.Itoa(fdExe),
			Args:        []string{"rampart-worker", subcommand, string(arg)},
			Env:         []string{},
			ExtraFiles:  files,
			Stderr:      stderr,
			SysProcAttr: a.Attr,
		}
		err = cmd.Start()
		if err == nil {
			features = a.Features
			break
		}
		// A kernel that refuses user namespaces says so at clone time.
		if i < len(attempts)-1 && (errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EINVAL) || errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EACCES)) {
			continue
		}
		_ = nc.Close()
		return nil, fmt.Errorf("start worker: %w", err)
	}
	p := &Process{cmd: cmd, features: features, exited: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.exited)
	}()
	client, err := ipc.NewClient(ctx, ipc.NewConn(nc, spec.MaxFrameBytes))
	if err != nil {
		_ = nc.Close()
		p.Kill()
		<-p.exited
		return nil, fmt.Errorf("start worker for %s: %w", spec.ModelFile, err)
	}
	p.client = client
	return p, nil
}
