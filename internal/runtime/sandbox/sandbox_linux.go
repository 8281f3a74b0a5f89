package sandbox

import (
	"fmt"
	"os"
	"strings"
	"syscall"

	seccomp "github.com/elastic/go-seccomp-bpf"
	"golang.org/x/sys/unix"
)

// Attempt is one way to start the worker: its SysProcAttr, and the
// layers it gives, for the log.
type Attempt struct {
	Attr     *syscall.SysProcAttr
	Features string
}

// Attempts lists the ways to start a worker, strongest first; the caller
// starts the process with each until one succeeds (a kernel may refuse
// user namespaces only when asked). Every attempt kills the worker when
// the supervisor dies and puts it in its own process group.
func Attempts(o Options) []Attempt {
	base := func() *syscall.SysProcAttr {
		// Go sets Pdeathsig after changing credentials (which would
		// clear it) and kills the child if the parent already died.
		return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	}
	var out []Attempt
	if os.Geteuid() == 0 {
		uid, gid := o.ids()
		a := base()
		a.Credential = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}} // #nosec G115 -- validated non-negative
		features := fmt.Sprintf("uid %d gid %d", uid, gid)
		if !o.DisableNetworkNamespace {
			a.Cloneflags = syscall.CLONE_NEWNET
			features += ", network namespace"
		}
		return append(out, Attempt{Attr: a, Features: features})
	}
	if !o.DisableNetworkNamespace {
		// Map only our own ids, so the worker keeps its identity (and no
		// capability outside the namespace).
		uid, gid := os.Getuid(), os.Getgid()
		a := base()
		a.Cloneflags = syscall.CLONE_NEWUSER | syscall.CLONE_NEWNET
		a.UidMappings = []syscall.SysProcIDMap{{ContainerID: uid, HostID: uid, Size: 1}}
		a.GidMappings = []syscall.SysProcIDMap{{ContainerID: gid, HostID: gid, Size: 1}}
		out = append(out, Attempt{Attr: a, Features: "user and network namespaces"})
	}
	return append(out, Attempt{Attr: base(), Features: "no namespaces (not root, user namespaces refused)"})
}

// Applied says what Apply did.
type Applied struct {
	AddressSpace uint64 // 0: unlimited
	Seccomp      bool
	OwnIdentity  bool
}

// Apply confines the calling process (the worker, early in its main,
// before it opens the model or loads a library): resource limits, then
// no_new_privs and the seccomp allow-list on all threads. It fails rather
// than run with less than asked.
func Apply(o Options) (Applied, error) {
	var ap Applied
	if err := o.Validate(); err != nil {
		return ap, err
	}
	set := func(name string, res int, v uint64) error {
		if err := unix.Setrlimit(res, &unix.Rlimit{Cur: v, Max: v}); err != nil {
			return fmt.Errorf("set %s to %d: %w", name, v, err)
		}
		return nil
	}
	if err := set("RLIMIT_CORE", unix.RLIMIT_CORE, 0); err != nil {
		return ap, err
	}
	files := o.MaxFiles
	if files == 0 {
		files = DefaultMaxFiles
	}
	if err := set("RLIMIT_NOFILE", unix.RLIMIT_NOFILE, files); err != nil {
		return ap, err
	}
	if o.MemoryBytes > 0 {
		head := o.AddressSpaceHeadroom
		if head == 0 {
			head = DefaultAddressSpaceHeadroom
		}
		ap.AddressSpace = uint64(o.MemoryBytes) + uint64(head) // #nosec G115 -- validated non-negative
		if err := set("RLIMIT_AS", unix.RLIMIT_AS, ap.AddressSpace); err != nil {
			return ap, err
		}
	}
	// RLIMIT_NPROC counts every process of the real uid, so it only makes
	// sense for an identity of the workers' own.
	if uid, _ := o.ids(); os.Getuid() == uid {
		ap.OwnIdentity = true
		threads := o.MaxThreads
		if threads == 0 {
			threads = DefaultMaxThreads
		}
		if err := set("RLIMIT_NPROC", unix.RLIMIT_NPROC, threads); err != nil {
			return ap, err
		}
	}
	if o.DisableSeccomp {
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			return ap, fmt.Errorf("set no_new_privs: %w", err)
		}
		return ap, nil
	}
	filter := seccomp.Filter{NoNewPrivs: true, Flag: seccomp.FilterFlagTSync, Policy: Policy(os.Getpid())}
	if err := seccomp.LoadFilter(filter); err != nil {
		return ap, fmt.Errorf("install seccomp filter: %w", err)
	}
	ap.Seccomp = true
	return ap, nil
}

// Probe says which layers this host supports, and why not.
func Probe() Report {
	r := Report{Root: os.Geteuid() == 0}
	if r.Root {
		r.NetworkNamespace = Feature{Available: true, Detail: "CLONE_NEWNET"}
		r.OwnIdentity = Feature{Available: true, Detail: fmt.Sprintf("uid/gid %d by default", NobodyID)}
		r.UserNamespace = Feature{Detail: "not needed as root"}
	} else {
		r.OwnIdentity = Feature{Detail: "not root: workers run as the server's user"}
		if why := userNamespacesRefused(); why != "" {
			r.UserNamespace = Feature{Detail: why}
			r.NetworkNamespace = Feature{Detail: "needs root or a user namespace"}
		} else {
			r.UserNamespace = Feature{Available: true, Detail: "CLONE_NEWUSER"}
			r.NetworkNamespace = Feature{Available: true, Detail: "CLONE_NEWUSER|CLONE_NEWNET"}
		}
	}
	if seccomp.Supported() {
		r.Seccomp = Feature{Available: true, Detail: "filter mode"}
	} else {
		r.Seccomp = Feature{Detail: "the kernel has no seccomp filter mode"}
	}
	abi, _, errno := unix.Syscall(unix.SYS_LANDLOCK_CREATE_RULESET, 0, 0, unix.LANDLOCK_CREATE_RULESET_VERSION)
	if errno != 0 {
		r.Landlock = Feature{Detail: "not in this kernel: " + errno.Error()}
	} else {
		// Not applied: landlock_restrict_self confines only the calling
		// thread, and Go can apply a call to all threads only without cgo
		// (syscall.AllThreadsSyscall), which the ORT worker needs. The
		// worker's files come as descriptors and seccomp keeps it
		// read-only meanwhile.
		r.Landlock = Feature{Detail: fmt.Sprintf("ABI %d available, not used (per-thread in a cgo process)", abi)}
	}
	return r
}

// userNamespacesRefused returns why unprivileged user namespaces are off,
// or "".
func userNamespacesRefused() string {
	for _, f := range []struct{ path, off string }{
		{"/proc/sys/kernel/unprivileged_userns_clone", "0"},
		{"/proc/sys/user/max_user_namespaces", "0"},
		{"/proc/sys/kernel/apparmor_restrict_unprivileged_userns", "1"},
	} {
		b, err := os.ReadFile(f.path)
		if err != nil {
			continue // the knob does not exist here
		}
		if strings.TrimSpace(string(b)) == f.off {
			return fmt.Sprintf("%s is %s", f.path, f.off)
		}
	}
	return ""
}
