package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rampart-ml/rampart/internal/datadir"
)

// The real binary rotates a stopped server's master key, refuses while it
// runs, and the server starts again afterwards with an intact audit log.
func TestKeysRotateMaster(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "data")
	keyFile := filepath.Join(dir, datadir.KeysDir, datadir.MasterKeyFile)
	srv := startServer(t, dir)
	before, err := os.ReadFile(keyFile) // #nosec G304 -- the test's data directory
	if err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name     string
		args     []string
		wantCode int
		wantErr  string
	}{
		{"server running", []string{"keys", "rotate-master", "--data-dir", dir}, 1, "while the server is stopped"},
		{"no data dir", []string{"keys", "rotate-master"}, exitUsage, "--data-dir is required"},
		{"extra argument", []string{"keys", "rotate-master", "--data-dir", dir, "x"}, exitUsage, "unexpected argument"},
	} {
		code, _, stderr := runRampart(t, []string{"RAMPART_DATA_DIR="}, tc.args...)
		if code != tc.wantCode || !strings.Contains(stderr, tc.wantErr) {
			t.Errorf("%s: exit %d, stderr %q; want %d and %q", tc.name, code, stderr, tc.wantCode, tc.wantErr)
		}
	}
	srv.stopOK()

	code, stdout, stderr := runRampart(t, nil, "keys", "rotate-master", "--data-dir", dir)
	if code != 0 || !strings.Contains(stdout, "The new master key is installed") {
		t.Fatalf("rotate-master: exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
	}
	after, err := os.ReadFile(keyFile) // #nosec G304 -- the test's data directory
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(before, after) || len(after) != 32 {
		t.Error("the master key file was not replaced by a new key")
	}
	if code, stdout, stderr := runRampart(t, nil, "audit", "verify", "--data-dir", dir); code != 0 {
		t.Errorf("audit verify after the rotation: exit %d\n%s%s", code, stdout, stderr)
	}
	startServer(t, dir).stopOK()
}
