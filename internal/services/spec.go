package services

import (
	"errors"
	"fmt"
	"regexp"

	"github.com/rampart-ml/rampart/internal/store"
)

// validName is a DNS label: what a service is called in /v2/models/{name},
// in metrics labels and in host names of later runtimes. Lower case only,
// so names that differ only in case cannot exist side by side.
var validName = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// ErrInvalid: a name or a limit is out of bounds.
var ErrInvalid = errors.New("invalid")

// ValidateName returns nil if name may name a service.
func ValidateName(name string) error {
	if !validName.MatchString(name) {
		return fmt.Errorf("%w: a service name is 1 to 63 of a-z, 0-9 and '-', starting and ending with a letter or digit", ErrInvalid)
	}
	return nil
}

// Bounds and defaults of a service's spec. The defaults are small on
// purpose: a service gets more only when someone asks for it. The upper
// bounds keep one request from claiming a whole host.
const (
	DefaultReplicas = 1
	MaxReplicas     = 64

	DefaultMemoryBytes int64 = 1 << 30  // 1 GiB per replica
	MinMemoryBytes     int64 = 64 << 20 // below this ONNX Runtime itself does not fit
	MaxMemoryBytes     int64 = 64 << 30

	DefaultThreads = 1
	MaxThreads     = 64

	DefaultMaxConcurrent = 4
	MaxMaxConcurrent     = 1024

	DefaultTimeoutMS int64 = 30_000
	MaxTimeoutMS     int64 = 600_000 // 10 minutes
)

// DefaultSpec is the spec of a service created without limits.
func DefaultSpec() store.ServiceSpec {
	return store.ServiceSpec{
		Replicas: DefaultReplicas, MemoryBytes: DefaultMemoryBytes, Threads: DefaultThreads,
		MaxConcurrent: DefaultMaxConcurrent, TimeoutMS: DefaultTimeoutMS,
	}
}

// ValidateSpec reports every value of s that is out of bounds at once.
func ValidateSpec(s store.ServiceSpec) error {
	var errs []error
	check := func(ok bool, format string, args ...any) {
		if !ok {
			errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrInvalid}, args...)...))
		}
	}
	check(s.Replicas >= 0 && s.Replicas <= MaxReplicas, "replicas must be 0 to %d", MaxReplicas)
	check(s.MemoryBytes >= MinMemoryBytes && s.MemoryBytes <= MaxMemoryBytes,
		"limits.memory_bytes must be %d (64 MiB) to %d (64 GiB)", MinMemoryBytes, MaxMemoryBytes)
	check(s.Threads >= 1 && s.Threads <= MaxThreads, "limits.threads must be 1 to %d", MaxThreads)
	check(s.MaxConcurrent >= 1 && s.MaxConcurrent <= MaxMaxConcurrent, "limits.max_concurrent must be 1 to %d", MaxMaxConcurrent)
	check(s.TimeoutMS >= 1 && s.TimeoutMS <= MaxTimeoutMS, "timeout_ms must be 1 to %d", MaxTimeoutMS)
	return errors.Join(errs...)
}
