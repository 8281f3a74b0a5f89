package app

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rampart-ml/rampart/internal/datadir"
)

// The operator's master key (--master-key-file) is used instead of one in
// the data directory, must be private, and must not contradict the key a
// data directory was sealed with.
func TestMasterKeyFile(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	secretsDir := t.TempDir()
	keyFile := filepath.Join(secretsDir, "master.key")
	if err := os.WriteFile(keyFile, bytes.Repeat([]byte{7}, 32), 0o600); err != nil {
		t.Fatal(err)
	}

	cfg := testConfig(t)
	cfg.MasterKeyFile = keyFile
	a, err := New(ctx, cfg, log, WithoutRuntime())
	if err != nil {
		t.Fatal(err)
	}
	_ = a.Close()
	if _, err := os.Stat(filepath.Join(cfg.DataDir, datadir.KeysDir, datadir.MasterKeyFile)); err == nil {
		t.Error("the data directory got a master key of its own")
	}
	// The same data dir starts again with the same key (its sealed
	// signing keys open).
	a, err = New(ctx, cfg, log, WithoutRuntime())
	if err != nil {
		t.Fatalf("restart with the same key: %v", err)
	}
	_ = a.Close()

	// A readable key file is refused.
	loose := filepath.Join(secretsDir, "loose.key")
	if err := os.WriteFile(loose, bytes.Repeat([]byte{7}, 32), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg2 := testConfig(t)
	cfg2.MasterKeyFile = loose
	if _, err := New(ctx, cfg2, log, WithoutRuntime()); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("a 0644 master key file: %v, want refused", err)
	}

	// A data directory made with its own key refuses a different one.
	cfg3 := testConfig(t)
	a, err = New(ctx, cfg3, log, WithoutRuntime())
	if err != nil {
		t.Fatal(err)
	}
	_ = a.Close()
	cfg3.MasterKeyFile = keyFile
	if _, err := New(ctx, cfg3, log, WithoutRuntime()); err == nil || !strings.Contains(err.Error(), "different master key") {
		t.Errorf("a different master key: %v, want refused", err)
	}
}
