package worker

import (
	"os/exec"
	"syscall"

	"github.com/rampart-ml/rampart/internal/runtime/ipc"
)

// Process is a running worker.
type Process struct {
	cmd      *exec.Cmd
	client   *ipc.Client
	features string

	waitErr error
	exited  chan struct{}
}

// Client is the connection to the worker.
func (p *Process) Client() *ipc.Client { return p.client }

// Pid is the worker's process id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Sandbox says which namespace and identity layers the worker started
// with (seccomp and limits are applied by the worker itself, which fails
// rather than run without them).
func (p *Process) Sandbox() string { return p.features }

// Exited is closed when the worker process has exited.
func (p *Process) Exited() <-chan struct{} { return p.exited }

// Wait waits for the worker to exit and returns how it ended (nil after a
// clean exit on socket EOF or shutdown).
func (p *Process) Wait() error {
	<-p.exited
	return p.waitErr
}

// Kill kills the worker and anything in its process group at once; calls
// in flight get ipc.ErrWorkerDied.
func (p *Process) Kill() {
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	_ = p.cmd.Process.Kill()
}

// Close asks the worker to exit by closing the connection (it finishes
// nothing) and waits for it.
func (p *Process) Close() error {
	_ = p.client.Close()
	return p.Wait()
}
