//go:build !linux

package sandbox

import (
	"errors"
	"syscall"
)

// Attempt is one way to start the worker (see the Linux version).
type Attempt struct {
	Attr     *syscall.SysProcAttr
	Features string
}

// Attempts: no confinement exists on this system.
func Attempts(Options) []Attempt {
	return []Attempt{{Attr: &syscall.SysProcAttr{}, Features: "none (not Linux)"}}
}

// Applied says what Apply did.
type Applied struct {
	AddressSpace uint64
	Seccomp      bool
	OwnIdentity  bool
}

// ErrUnsupported: runtime workers are confined on Linux only.
var ErrUnsupported = errors.New("the runtime worker sandbox needs Linux")

// Apply refuses: a worker never runs unconfined.
func Apply(Options) (Applied, error) { return Applied{}, ErrUnsupported }

// Probe reports nothing available.
func Probe() Report {
	no := Feature{Detail: "not Linux"}
	return Report{NetworkNamespace: no, UserNamespace: no, OwnIdentity: no, Seccomp: no, Landlock: no}
}
