//go:build linux

package gateway_test

import (
	"os"
	"testing"

	"github.com/rampart-ml/rampart/internal/runtime/engine"
	"github.com/rampart-ml/rampart/internal/runtime/worker"
)

// TestMain makes this test binary able to serve as a model worker, exactly
// as cmd/rampart's main does: the supervisor of the in-process server
// re-executes it, and a worker never gets past worker.Main. (Linux only,
// like the end-to-end tests: workers start only there.)
func TestMain(m *testing.M) {
	worker.RegisterEngine(engine.New)
	worker.Main()
	os.Exit(m.Run())
}
