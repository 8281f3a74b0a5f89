package testmodels

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fatalTB records Fatalf instead of ending the test, to check Path's failure.
type fatalTB struct {
	testing.TB
	msg string
}

type fatal struct{}

func (f *fatalTB) Helper() {}

func (f *fatalTB) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	panic(fatal{})
}

// path calls Path and returns its result or its failure message.
func path(tb testing.TB, name string) (p, failure string) {
	f := &fatalTB{TB: tb}
	defer func() {
		if r := recover(); r != nil {
			if _, ok := r.(fatal); !ok {
				panic(r)
			}
			failure = f.msg
		}
	}()
	return Path(f, name), ""
}

func TestPath(t *testing.T) {
	cache := t.TempDir()
	t.Setenv("RAMPART_CACHE", cache)

	if _, failure := path(t, SileroVADv5); !strings.Contains(failure, "make test-deps") {
		t.Errorf("missing model: failure %q does not say to run make test-deps", failure)
	}
	if _, failure := path(t, "nope.onnx"); !strings.Contains(failure, "unknown test model") {
		t.Errorf("unknown model: failure %q", failure)
	}

	want := filepath.Join(cache, "models", "@ricky0123", "vad-web@0.0.31", SileroVADv5)
	if err := os.MkdirAll(filepath.Dir(want), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(want, []byte("model"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got, failure := path(t, SileroVADv5); got != want || failure != "" {
		t.Errorf("Path = %q (failure %q), want %q", got, failure, want)
	}
}

func TestRandomForest(t *testing.T) {
	t.Parallel()
	p := RandomForest(t)
	if filepath.Base(p) != "sklearn_randomforest.onnx" {
		t.Errorf("RandomForest = %q", p)
	}
}
