// Package sandbox confines a runtime worker process: the supervisor side
// (Attempts) chooses the namespaces, identity and parent-death signal the
// child starts with; the worker side (Apply) then lowers its resource
// limits and installs a seccomp allow-list before it opens any model, and
// Probe says which of these this host supports (for `rampart doctor` and
// the startup log).
//
// The package decides and applies restrictions; it never starts processes
// and never relaxes a restriction it was asked for without returning an
// error or saying so in the Report.
package sandbox

import (
	"errors"
	"fmt"
)

// NobodyID is the uid and gid workers run as when the supervisor is root:
// an unprivileged identity that cannot read the data directory (0700,
// owned by the server's user).
const NobodyID = 65534

// Options configure the sandbox. The zero value of each field is the
// secure default; Disable* fields weaken it and must be logged loudly by
// whoever sets them.
type Options struct {
	// UID and GID the worker runs as when the supervisor is root
	// (0 means NobodyID). Ignored when not root.
	UID int `json:"uid,omitempty"`
	GID int `json:"gid,omitempty"`
	// MemoryBytes is the memory the model may use; RLIMIT_AS is set to it
	// plus AddressSpaceHeadroom (ORT and the Go runtime reserve address
	// space they never touch). 0: no address-space limit.
	MemoryBytes int64 `json:"memory_bytes,omitempty"`
	// AddressSpaceHeadroom; 0 means DefaultAddressSpaceHeadroom.
	AddressSpaceHeadroom int64 `json:"address_space_headroom,omitempty"`
	// MaxFiles is RLIMIT_NOFILE; 0 means DefaultMaxFiles.
	MaxFiles uint64 `json:"max_files,omitempty"`
	// MaxThreads is RLIMIT_NPROC, applied when the worker has an identity
	// of its own (the limit counts all processes of a uid); 0 means
	// DefaultMaxThreads.
	MaxThreads uint64 `json:"max_threads,omitempty"`
	// DisableSeccomp and DisableNetworkNamespace turn those layers off
	// (debugging only).
	DisableSeccomp          bool `json:"disable_seccomp,omitempty"`
	DisableNetworkNamespace bool `json:"disable_network_namespace,omitempty"`
}

// HeadroomFor is the address-space headroom for a worker running threads
// OS threads in its engine (intra-op threads plus concurrent calls). Each
// thread reserves a stack and a glibc malloc arena (64 MiB) it barely
// touches. Measured with ORT 1.24.1 and the 579 KB OCR classifier: VmPeak
// 1.6 GiB at 1 intra-op thread and 2 calls, 2.3 GiB at 8 and 8 (RSS 40–50
// MB), so 2 GiB plus 96 MiB a thread.
func HeadroomFor(threads int) int64 {
	return DefaultAddressSpaceHeadroom + int64(max(threads, 0))*96<<20
}

// Defaults.
const (
	// DefaultAddressSpaceHeadroom covers the Go runtime's and ORT's
	// address-space reservations with few threads (see HeadroomFor).
	DefaultAddressSpaceHeadroom = 2 << 30
	DefaultMaxFiles             = 64
	DefaultMaxThreads           = 256
)

// Validate reports every problem at once.
func (o Options) Validate() error {
	var errs []error
	if o.UID < 0 || o.GID < 0 {
		errs = append(errs, fmt.Errorf("sandbox uid/gid %d/%d is negative", o.UID, o.GID))
	}
	if o.MemoryBytes < 0 || o.AddressSpaceHeadroom < 0 {
		errs = append(errs, errors.New("sandbox memory limits must not be negative"))
	}
	if o.MaxFiles != 0 && o.MaxFiles < 8 {
		errs = append(errs, fmt.Errorf("sandbox max files %d is too small for a worker (at least 8)", o.MaxFiles))
	}
	return errors.Join(errs...)
}

func (o Options) ids() (uid, gid int) {
	uid, gid = o.UID, o.GID
	if uid == 0 {
		uid = NobodyID
	}
	if gid == 0 {
		gid = NobodyID
	}
	return uid, gid
}

// Feature is one confinement layer on this host.
type Feature struct {
	Available bool   `json:"available"`
	Detail    string `json:"detail"` // why not, or which variant
}

// Report says which layers this host supports.
type Report struct {
	Root             bool    `json:"root"`
	NetworkNamespace Feature `json:"network_namespace"`
	UserNamespace    Feature `json:"user_namespace"`
	OwnIdentity      Feature `json:"own_identity"`
	Seccomp          Feature `json:"seccomp"`
	Landlock         Feature `json:"landlock"`
}

// String is one line for the startup log.
func (r Report) String() string {
	f := func(x Feature) string {
		if x.Available {
			return "yes"
		}
		return "no (" + x.Detail + ")"
	}
	return fmt.Sprintf("network namespace: %s; user namespace: %s; own identity: %s; seccomp: %s; landlock: %s",
		f(r.NetworkNamespace), f(r.UserNamespace), f(r.OwnIdentity), f(r.Seccomp), f(r.Landlock))
}
