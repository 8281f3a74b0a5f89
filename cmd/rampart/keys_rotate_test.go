package main

import (
	"bytes"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/rampart-ml/rampart/internal/datadir"
	"github.com/rampart-ml/rampart/internal/onnxmeta/testmodels"
)

// freeAddr returns a loopback address nobody listens on, so a restarted
// server keeps its URL (and token issuer).
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

// The real binary rotates a stopped server's master key and refuses while
// it runs; afterwards the server starts, the old login still works, an
// onboarded model downloads with the same bytes and the audit log
// verifies.
func TestKeysRotateMaster(t *testing.T) {
	t.Parallel()
	onnx, err := os.ReadFile(testmodels.Path(t, testmodels.OCRClassifier))
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "data")
	keyFile := filepath.Join(dir, datadir.KeysDir, datadir.MasterKeyFile)
	env := []string{"RAMPART_ADMIN_PASSWORD=" + newPassword}
	addr := freeAddr(t)
	srv := startServerEnv(t, env, dir, "--listen", addr)
	creds := credsPath(t)
	rampart := func(t *testing.T, args ...string) string {
		t.Helper()
		code, stdout, stderr := runRampart(t, nil, append(args, "--credentials", creds)...)
		if code != 0 {
			t.Fatalf("rampart %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, stdout, stderr)
		}
		return stdout
	}
	if code, stdout, stderr := runWithStdin(t, newPassword+"\n", nil, "login", "--username", "admin", "--password-stdin",
		"--server", srv.url, "--ca-file", srv.caFile(), "--credentials", creds); code != 0 {
		t.Fatalf("login: exit %d\n%s%s", code, stdout, stderr)
	}
	rampart(t, "domains", "create", "com.acme")
	priv, pub := writeKeyPair(t, "sec1")
	rampart(t, "model", "keys", "add", "--domain", "com.acme", "--key", pub)
	model := filepath.Join(t.TempDir(), "ocr")
	if err := os.Mkdir(model, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(model, "model.onnx"), onnx, 0o600); err != nil {
		t.Fatal(err)
	}
	if code, stdout, stderr := runRampart(t, nil, "model", "sign", "--key", priv, model); code != 0 {
		t.Fatalf("model sign: exit %d\n%s%s", code, stdout, stderr)
	}
	original := readDir(t, model)
	rampart(t, "model", "onboard", "com.acme.ocr", "1.0", model)
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

	srv = startServerEnv(t, env, dir, "--listen", addr)
	defer srv.stopOK()
	rampart(t, "whoami") // the token from before the rotation
	out := filepath.Join(t.TempDir(), "downloaded")
	rampart(t, "model", "download", "com.acme.ocr@1.0", "-o", out)
	if diff := cmp.Diff(original, readDir(t, out)); diff != "" {
		t.Errorf("downloaded after the rotation (-onboarded +downloaded):\n%s", diff)
	}
}
