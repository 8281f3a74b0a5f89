package config

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
)

// Inference configures the inference gateway and the runtime workers (see
// docs/SERVICES.md).
type Inference struct {
	// MaxRequestBytes bounds one inference request body (JSON or binary).
	MaxRequestBytes int64
	// MaxElements bounds the elements of all input tensors of one request.
	MaxElements int64
	// PrincipalRate and PrincipalBurst: the token bucket of each caller
	// (requests per second, and how many at once), over all services.
	PrincipalRate  float64
	PrincipalBurst int
	// ServiceRate and ServiceBurst: the token bucket of each model service,
	// over all callers.
	ServiceRate  float64
	ServiceBurst int
	// RuntimeLibrary is the ONNX Runtime shared library the workers load;
	// empty means the one scripts/fetch-onnxruntime.sh installs.
	RuntimeLibrary string
	// WorkerUser is "UID:GID" the workers run as when the server runs as
	// root, so that they cannot read the data directory.
	WorkerUser string
}

// DefaultInference returns the inference defaults.
func DefaultInference() Inference {
	return Inference{
		MaxRequestBytes: 64 << 20,
		MaxElements:     1 << 26,
		PrincipalRate:   1000,
		PrincipalBurst:  2000,
		ServiceRate:     20000,
		ServiceBurst:    40000,
		WorkerUser:      "65534:65534",
	}
}

func (in Inference) validate() []error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if in.MaxRequestBytes < 1<<10 || in.MaxRequestBytes > 4<<30 {
		add("inference-max-request-bytes: %d is outside 1KiB..4GiB", in.MaxRequestBytes)
	}
	if in.MaxElements < 1 || in.MaxElements > 1<<32 {
		add("inference-max-elements: %d is outside 1..%d", in.MaxElements, int64(1)<<32)
	}
	for flag, r := range map[string]float64{"inference-principal-rate": in.PrincipalRate, "inference-service-rate": in.ServiceRate} {
		if r < 0.001 || r > 1e7 {
			add("%s: %v requests/s is outside 0.001..10000000", flag, r)
		}
	}
	for flag, b := range map[string]int{"inference-principal-burst": in.PrincipalBurst, "inference-service-burst": in.ServiceBurst} {
		if b < 1 || b > 1e7 {
			add("%s: %d is outside 1..10000000", flag, b)
		}
	}
	if in.RuntimeLibrary != "" && !filepath.IsAbs(in.RuntimeLibrary) {
		add("onnxruntime-lib: %q must be an absolute path", in.RuntimeLibrary)
	}
	if _, _, err := ParseWorkerUser(in.WorkerUser); err != nil {
		add("worker-user: %v", err)
	}
	return errs
}

// ParseWorkerUser parses "UID:GID"; root (0) is refused for either.
func ParseWorkerUser(s string) (uid, gid uint32, err error) {
	u, g, ok := strings.Cut(s, ":")
	if !ok {
		return 0, 0, fmt.Errorf("%q must be UID:GID, e.g. 65534:65534", s)
	}
	uid64, err1 := strconv.ParseUint(u, 10, 32)
	gid64, err2 := strconv.ParseUint(g, 10, 32)
	if err1 != nil || err2 != nil {
		return 0, 0, fmt.Errorf("%q must be two numbers UID:GID", s)
	}
	if uid64 == 0 || gid64 == 0 {
		return 0, 0, fmt.Errorf("%q: workers never run as root (uid or gid 0)", s)
	}
	return uint32(uid64), uint32(gid64), nil
}

// inferenceOptions bind the Inference settings.
func inferenceOptions(c *Config, str func(*string) func(string) error) []option {
	in := &c.Inference
	float := func(p *float64) *value {
		return &value{set: func(s string) error {
			f, err := strconv.ParseFloat(s, 64)
			if err != nil {
				return fmt.Errorf("%q is not a number", s)
			}
			*p = f
			return nil
		}, show: func() string { return strconv.FormatFloat(*p, 'g', -1, 64) }}
	}
	integer := func(p *int) *value {
		return &value{set: func(s string) error {
			n, err := strconv.Atoi(s)
			if err != nil {
				return fmt.Errorf("%q is not a whole number", s)
			}
			*p = n
			return nil
		}, show: func() string { return strconv.Itoa(*p) }}
	}
	return []option{
		{name: "inference-max-request-bytes", usage: "largest inference request body (e.g. 64MiB)", value: &value{set: func(s string) error {
			n, err := parseBytes(s)
			in.MaxRequestBytes = n
			return err
		}, show: func() string { return formatBytes(in.MaxRequestBytes) }}},
		{name: "inference-max-elements", usage: "most tensor elements in one inference request", value: &value{set: func(s string) error {
			n, err := strconv.ParseInt(s, 10, 64)
			if err != nil {
				return fmt.Errorf("%q is not a whole number", s)
			}
			in.MaxElements = n
			return nil
		}, show: func() string { return strconv.FormatInt(in.MaxElements, 10) }}},
		{name: "inference-principal-rate", usage: "inference requests per second each caller may make (token bucket)", value: float(&in.PrincipalRate)},
		{name: "inference-principal-burst", usage: "inference requests a caller may make at once", value: integer(&in.PrincipalBurst)},
		{name: "inference-service-rate", usage: "inference requests per second each model service accepts (token bucket)", value: float(&in.ServiceRate)},
		{name: "inference-service-burst", usage: "inference requests a model service accepts at once", value: integer(&in.ServiceBurst)},
		{name: "onnxruntime-lib", usage: "ONNX Runtime shared library for the workers (default: the one make installs)", value: &value{set: str(&in.RuntimeLibrary)}},
		{name: "worker-user", usage: "UID:GID the runtime workers run as when the server runs as root", value: &value{set: str(&in.WorkerUser), show: func() string { return in.WorkerUser }}},
	}
}
