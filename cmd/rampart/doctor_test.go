package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rampart-ml/rampart/internal/datadir"
	"github.com/rampart-ml/rampart/internal/doctor"
	"github.com/rampart-ml/rampart/internal/store"
	"github.com/rampart-ml/rampart/internal/store/sqlite"
)

// TestDoctor runs `rampart doctor` on a default data directory, next to the
// running server and after it stopped (both PASS), then on the same
// directory deliberately weakened (FAIL, exit 1, naming each weakness).
func TestDoctor(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "data")
	// WARNs a default single-host install legitimately has: the generated
	// admin password file, an admin without TOTP, and whatever sandbox
	// layer this host lacks (not root, no user namespaces).
	allowedWarn := func(id string) bool {
		return id == "admin.initial-password" || id == "accounts.admin-totp" || strings.HasPrefix(id, "sandbox.")
	}
	doctorJSON := func(t *testing.T, args ...string) (int, []doctor.Result) {
		t.Helper()
		code, stdout, stderr := runRampart(t, nil, append([]string{"doctor", "--output", "json", "--data-dir", dir}, args...)...)
		var rs []doctor.Result
		if err := json.Unmarshal([]byte(stdout), &rs); err != nil {
			t.Fatalf("doctor output is not JSON: %v\nstdout: %s\nstderr: %s", err, stdout, stderr)
		}
		return code, rs
	}
	wantDefault := func(t *testing.T, code int, rs []doctor.Result) {
		t.Helper()
		if code != 0 {
			t.Errorf("exit %d on a default install, want 0: %+v", code, rs)
		}
		for _, r := range rs {
			if r.Status == doctor.Fail || (r.Status == doctor.Warn && !allowedWarn(r.ID)) {
				t.Errorf("default install: %s %s: %s", r.Status, r.ID, r.Message)
			}
			if r.Status == doctor.Warn {
				t.Logf("allowed WARN %s: %s", r.ID, r.Message)
			}
		}
	}

	// Next to the running server: the database is read without the lock,
	// and the server's TLS is checked through /healthz.
	p := startServer(t, dir)
	code, rs := doctorJSON(t, "--server", p.url)
	wantDefault(t, code, rs)
	ids := make([]string, 0, len(rs))
	for _, r := range rs {
		ids = append(ids, r.ID)
	}
	for _, id := range []string{"perm", "tls.server-cert.expiry", "audit.chain", "registry.unsigned-admission", "server.tls-version"} {
		if !slices.Contains(ids, id) {
			t.Errorf("no %s check among %v", id, ids)
		}
	}
	p.stopOK()
	code, rs = doctorJSON(t)
	wantDefault(t, code, rs)

	// Weaken it: a readable master key, a domain admitting unsigned models,
	// an audit record edited by someone who dropped the trigger.
	if err := os.Chmod(filepath.Join(dir, datadir.KeysDir, datadir.MasterKeyFile), 0o644); err != nil { // #nosec G302 -- the weakening under test
		t.Fatal(err)
	}
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(dir, datadir.DatabaseFile))
	if err != nil {
		t.Fatal(err)
	}
	err = st.InTx(ctx, func(tx store.Tx) error {
		admin, err := tx.Accounts().AccountByName(ctx, "admin")
		if err != nil {
			return err
		}
		if err := tx.Domains().CreateDomain(ctx, store.Domain{Name: "com.lax", CreatedBy: admin.ID, CreatedAt: time.Now()}); err != nil {
			return err
		}
		return tx.Models().SetUnsignedAllowed(ctx, "com.lax", true, admin.ID, time.Now())
	})
	if cerr := st.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", filepath.Join(dir, datadir.DatabaseFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`DROP TRIGGER audit_records_no_update`,
		`UPDATE audit_records SET target_id = 'com.evil' WHERE seq = 2`,
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	code, rs = doctorJSON(t)
	if code != 1 {
		t.Errorf("exit %d on a weakened install, want 1", code)
	}
	failed := map[string]string{}
	for _, r := range rs {
		if r.Status == doctor.Fail {
			failed[r.ID] = r.Message
		}
	}
	for id, want := range map[string]string{
		"perm.keys/master.key":        "mode 0644",
		"registry.unsigned-admission": "com.lax",
		"audit.chain":                 "record 2",
	} {
		if msg, ok := failed[id]; !ok || !strings.Contains(msg, want) {
			t.Errorf("FAIL %s = %q, want one mentioning %q (all FAILs: %v)", id, msg, want, failed)
		}
	}

	// The text form says the same, with the fixes.
	code, stdout, _ := runRampart(t, nil, "doctor", "--data-dir", dir)
	if code != 1 || !strings.Contains(stdout, "FAIL perm.keys/master.key") || !strings.Contains(stdout, "fix: chmod 600 ") {
		t.Errorf("text: exit %d:\n%s", code, stdout)
	}
}

func TestDoctorUsage(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		args []string
		want int
	}{
		{"nothing to check", nil, exitUsage},
		{"bad output", []string{"--data-dir", "x", "--output", "xml"}, exitUsage},
		{"extra argument", []string{"--data-dir", "x", "y"}, exitUsage},
		{"missing data dir", []string{"--data-dir", filepath.Join(t.TempDir(), "none")}, 1},
		{"help", []string{"--help"}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			env := func(string) (string, bool) { return "", false }
			var out, errOut strings.Builder
			if got := realMain(context.Background(), append([]string{"doctor"}, tt.args...), &out, &errOut, env); got != tt.want {
				t.Errorf("exit %d, want %d\nstdout: %s\nstderr: %s", got, tt.want, out.String(), errOut.String())
			}
		})
	}
}
