package doctor

import "github.com/rampart-ml/rampart/internal/runtime/sandbox"

// Sandbox turns the host's sandbox probe into one result per layer the
// model workers rely on: a missing layer is a WARN with the reason, since
// workers still start with what is left.
func Sandbox(r sandbox.Report) []Result {
	layers := []struct {
		id, fix string
		f       sandbox.Feature
	}{
		{"sandbox.network-namespace", "run rampart serve as root, or enable unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=1), so workers get no network", r.NetworkNamespace},
		{"sandbox.seccomp", "use a kernel with seccomp filter mode (CONFIG_SECCOMP_FILTER), so workers cannot make arbitrary system calls", r.Seccomp},
		{"sandbox.own-identity", "run rampart serve as root so workers drop to their own uid/gid, apart from the server's files", r.OwnIdentity},
	}
	rs := make([]Result, 0, len(layers))
	for _, l := range layers {
		if l.f.Available {
			rs = append(rs, pass(l.id, "available (%s)", l.f.Detail))
		} else {
			rs = append(rs, warn(l.id, l.fix, "not available: %s", l.f.Detail))
		}
	}
	return rs
}
