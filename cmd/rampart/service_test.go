package main

// End-to-end test of rampart service: the built binary against a real
// server started with apptest.

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/rampart-ml/rampart/internal/app"
	"github.com/rampart-ml/rampart/internal/store"
)

// TestServiceCommands walks one service through its life; each step
// depends on the ones before.
func TestServiceCommands(t *testing.T) {
	t.Parallel()
	// The version below has no blobs: the API alone is under test.
	s := startIdentityServerWith(t, []app.Option{app.WithoutRuntime()})
	creds := credsPath(t)
	s.passwordLogin(t, creds)
	rampart := func(t *testing.T, code int, args ...string) (stdout, stderr string) {
		t.Helper()
		got, stdout, stderr := runRampart(t, nil, append(args, "--credentials", creds)...)
		wantNoCrash(t, stderr)
		if got != code {
			t.Fatalf("rampart %s: exit %d, want %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), got, code, stdout, stderr)
		}
		return stdout, stderr
	}
	rampart(t, 0, "domains", "create", "com.acme")
	s.InTx(t, func(ctx context.Context, tx store.Tx) error {
		if err := tx.Models().CreateModel(ctx, store.Model{ID: "com.acme.m", Domain: "com.acme"}); err != nil {
			return err
		}
		return tx.Models().CreateModelVersion(ctx, store.ModelVersion{ModelID: "com.acme.m", Version: "1.0",
			State: store.VersionActive, ModelFile: "model.onnx", SubjectDigest: strings.Repeat("ab", 32)})
	})

	// The command line is checked before the server is asked.
	rampart(t, 2, "service", "create", "ocr", "--model", "com.acme.m", "--version", "1.0")
	rampart(t, 2, "service", "create", "--domain", "com.acme", "--model", "com.acme.m", "--version", "1.0")
	rampart(t, 2, "service", "create", "ocr", "--domain", "com.acme", "--model", "com.acme.m", "--version", "1.0", "--threads", "two")
	rampart(t, 2, "service", "scale", "ocr")

	stdout, _ := rampart(t, 0, "service", "create", "ocr", "--domain", "com.acme", "--model", "com.acme.m", "--version", "1.0",
		"--threads", "2", "--timeout-ms", "5000")
	wantContains(t, "service create", stdout, "Created service ocr", "threads:        2", "timeout_ms:     5000", "replicas:       1", "created (desired stopped)")
	_, stderr := rampart(t, 1, "service", "create", "ocr", "--domain", "com.acme", "--model", "com.acme.m", "--version", "1.0")
	wantContains(t, "service create (again)", stderr, "(service_exists)")
	_, stderr = rampart(t, 1, "service", "create", "Bad", "--domain", "com.acme", "--model", "com.acme.m", "--version", "1.0")
	wantContains(t, "service create (bad name)", stderr, "(invalid_name)")

	stdout, _ = rampart(t, 0, "service", "list")
	wantContains(t, "service list", stdout, "NAME", "ocr", "com.acme.m", "created")
	stdout, _ = rampart(t, 0, "service", "start", "ocr")
	wantContains(t, "service start", stdout, "Started service ocr", "starting (desired running)")
	_, stderr = rampart(t, 1, "service", "delete", "ocr")
	wantContains(t, "service delete (running)", stderr, "(service_running)")
	stdout, _ = rampart(t, 0, "service", "scale", "ocr", "--replicas", "3")
	wantContains(t, "service scale", stdout, "Scaled service ocr", "replicas:       3")
	stdout, _ = rampart(t, 0, "service", "show", "ocr", "--json")
	var v serviceView
	if err := json.Unmarshal([]byte(stdout), &v); err != nil || v.Replicas != 3 || v.Limits.Threads != 2 || v.State != "starting" {
		t.Errorf("service show --json = %+v, %v", v, err)
	}
	stdout, _ = rampart(t, 0, "service", "stop", "ocr")
	wantContains(t, "service stop", stdout, "Stopped service ocr", "stopping (desired stopped)")
	// The supervisor's part: the last worker has gone.
	s.InTx(t, func(ctx context.Context, tx store.Tx) error {
		return tx.Services().SetServiceState(ctx, "ocr", "stopped", "", v.UpdatedAt)
	})
	stdout, _ = rampart(t, 0, "service", "delete", "ocr")
	wantContains(t, "service delete", stdout, "Deleted service ocr")
	_, stderr = rampart(t, 1, "service", "show", "ocr")
	wantContains(t, "service show (deleted)", stderr, "(not_found)")
	stdout, _ = rampart(t, 0, "service", "list")
	wantContains(t, "service list (empty)", stdout, "No services.")
}
