package sandbox

import (
	"os"
	"testing"
)

// TestPolicyAssembles catches a misspelt or unknown system call name,
// which the library refuses only when it assembles the filter.
func TestPolicyAssembles(t *testing.T) {
	t.Parallel()
	p := Policy(os.Getpid())
	if _, err := p.Assemble(); err != nil {
		t.Fatal(err)
	}
}

func TestOptionsValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		o    Options
		ok   bool
	}{
		{"zero", Options{}, true},
		{"negative uid", Options{UID: -1}, false},
		{"negative memory", Options{MemoryBytes: -1}, false},
		{"too few files", Options{MaxFiles: 3}, false},
	}
	for _, tc := range tests {
		if err := tc.o.Validate(); (err == nil) != tc.ok {
			t.Errorf("%s: Validate = %v", tc.name, err)
		}
	}
}

func TestProbe(t *testing.T) {
	t.Parallel()
	r := Probe()
	t.Log(r)
	if r.Root != (os.Geteuid() == 0) {
		t.Errorf("Root = %v", r.Root)
	}
}
