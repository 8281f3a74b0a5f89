package services

import (
	"errors"
	"strings"
	"testing"

	"github.com/rampart-ml/rampart/internal/store"
)

var nameTests = []struct {
	name string
	ok   bool
}{
	{"a", true}, {"0", true}, {"ocr", true}, {"ocr-2", true}, {"a-b-c", true},
	{strings.Repeat("a", 63), true},
	{"", false}, {strings.Repeat("a", 64), false}, {"-a", false}, {"a-", false}, {"A", false},
	{"a_b", false}, {"a.b", false}, {"a b", false}, {"ä", false}, {"a/b", false}, {"..", false},
	{"a\n", false}, {"a\x00", false},
}

func TestValidateName(t *testing.T) {
	t.Parallel()
	for _, tc := range nameTests {
		err := ValidateName(tc.name)
		if (err == nil) != tc.ok || (err != nil && !errors.Is(err, ErrInvalid)) {
			t.Errorf("ValidateName(%q) = %v, want ok %v", tc.name, err, tc.ok)
		}
	}
}

// FuzzValidateName: names come from URLs and request bodies. Whatever is
// accepted is a DNS label: safe in a URL path, a metrics label and a host
// name.
func FuzzValidateName(f *testing.F) {
	for _, tc := range nameTests {
		f.Add(tc.name)
	}
	f.Fuzz(func(t *testing.T, name string) {
		if ValidateName(name) != nil {
			return
		}
		if len(name) < 1 || len(name) > 63 || name[0] == '-' || name[len(name)-1] == '-' {
			t.Fatalf("accepted %q", name)
		}
		for _, c := range []byte(name) {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				t.Fatalf("accepted %q with byte %q", name, c)
			}
		}
	})
}

func TestValidateSpec(t *testing.T) {
	t.Parallel()
	with := func(f func(*store.ServiceSpec)) store.ServiceSpec {
		s := DefaultSpec()
		f(&s)
		return s
	}
	for _, tc := range []struct {
		name string
		spec store.ServiceSpec
		bad  []string // fields named in the error
	}{
		{"defaults", DefaultSpec(), nil},
		{"zero replicas", with(func(s *store.ServiceSpec) { s.Replicas = 0 }), nil},
		{"upper bounds", store.ServiceSpec{Replicas: MaxReplicas, MemoryBytes: MaxMemoryBytes, Threads: MaxThreads,
			MaxConcurrent: MaxMaxConcurrent, TimeoutMS: MaxTimeoutMS}, nil},
		{"lower bounds", store.ServiceSpec{MemoryBytes: MinMemoryBytes, Threads: 1, MaxConcurrent: 1, TimeoutMS: 1}, nil},
		{"too many replicas", with(func(s *store.ServiceSpec) { s.Replicas = MaxReplicas + 1 }), []string{"replicas"}},
		{"everything wrong", store.ServiceSpec{Replicas: -1, MemoryBytes: MaxMemoryBytes + 1, Threads: MaxThreads + 1,
			MaxConcurrent: 0, TimeoutMS: -5},
			[]string{"replicas", "memory_bytes", "threads", "max_concurrent", "timeout_ms"}},
	} {
		err := ValidateSpec(tc.spec)
		if (err == nil) != (tc.bad == nil) || (err != nil && !errors.Is(err, ErrInvalid)) {
			t.Errorf("%s: ValidateSpec = %v, want errors about %v", tc.name, err, tc.bad)
			continue
		}
		for _, field := range tc.bad {
			if !strings.Contains(err.Error(), field) {
				t.Errorf("%s: error %q does not name %s", tc.name, err, field)
			}
		}
	}
}
