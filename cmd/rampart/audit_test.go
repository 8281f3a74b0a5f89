package main

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rampart-ml/rampart/internal/audit"
	"github.com/rampart-ml/rampart/internal/datadir"
	"github.com/rampart-ml/rampart/internal/secrets"
	"github.com/rampart-ml/rampart/internal/store"
	"github.com/rampart-ml/rampart/internal/store/sqlite"
)

// auditDataDir lays out a data directory as the server does (locked,
// keys/ with the master key and the audit signing key, rampart.db) and
// writes records+unsigned audit records into it, with a checkpoint after
// every 100. It returns the open store and directory, as a running server
// holds them.
func auditDataDir(t *testing.T, records, unsigned int) (string, *sqlite.Store, *datadir.Dir) {
	t.Helper()
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "data")
	d, err := datadir.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })
	keys, err := d.MkdirPrivate(datadir.KeysDir)
	if err != nil {
		t.Fatal(err)
	}
	master, err := secrets.LoadOrCreateKey(filepath.Join(keys, datadir.MasterKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	sealer, err := secrets.New(master)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := audit.LoadOrCreateSigner(keys, sealer)
	if err != nil {
		t.Fatal(err)
	}
	st, err := sqlite.Open(ctx, d.Path(datadir.DatabaseFile))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	secret, err := audit.NewPseudonymSecret()
	if err != nil {
		t.Fatal(err)
	}
	actor := audit.Pseudonym(secret, "id-alice")
	for i := 0; i < records+unsigned; i += 50 {
		err := st.InTx(ctx, func(tx store.Tx) error {
			for j := i; j < min(i+50, records+unsigned); j++ {
				_, err := audit.Append(ctx, tx, audit.Event{
					Time: time.Now(), Actor: actor, ActorKind: audit.ActorUser, Action: "domain.create",
					TargetKind: "domain", TargetID: fmt.Sprintf("com.acme.d%d", j), Outcome: audit.OutcomeSuccess,
				})
				if err != nil {
					return err
				}
				if (j+1)%100 == 0 && j < records {
					if _, err := audit.Checkpoint(ctx, tx, signer, audit.KindPeriodic, time.Now()); err != nil {
						return err
					}
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return dir, st, d
}

func TestAuditVerify(t *testing.T) {
	t.Parallel()
	dir, st, d := auditDataDir(t, 300, 10)
	verify := func() (int, string, string) {
		t.Helper()
		return runRampart(t, nil, "audit", "verify", "--data-dir", dir)
	}
	unsigned := []string{
		"audit log intact: 310 records (1 to 310), 3 checkpoints, the last at record 300\n",
		"10 records after the last checkpoint are chained but not yet signed\n",
		"public key SHA256:",
	}
	wantOKWith := func(want []string, code int, stdout, stderr string) {
		t.Helper()
		if code != 0 {
			t.Fatalf("audit verify: exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
		}
		for _, w := range want {
			if !strings.Contains(stdout, w) {
				t.Errorf("stdout %q lacks %q", stdout, w)
			}
		}
		t.Logf("audit verify:\n%s", stdout)
	}
	wantOK := func(code int, stdout, stderr string) { t.Helper(); wantOKWith(unsigned, code, stdout, stderr) }

	// While the "server" holds the lock and the database.
	wantOK(verify())
	// With it stopped.
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	wantOK(verify())

	// The key files do not upset the server's data-dir checks: it starts,
	// and signs the head as it stops (a shutdown checkpoint).
	startServer(t, dir).stopOK()
	code, stdout, stderr := verify()
	wantOKWith([]string{"audit log intact: 314 records (1 to 314), 4 checkpoints, the last at record 314\n", "public key SHA256:"},
		code, stdout, stderr)
	if strings.Contains(stdout, "not yet signed") {
		t.Errorf("records unsigned after a shutdown checkpoint:\n%s", stdout)
	}

	// A record edited in the file, by someone who dropped the triggers.
	db, err := sql.Open("sqlite", filepath.Join(dir, datadir.DatabaseFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`DROP TRIGGER audit_records_no_update`,
		`UPDATE audit_records SET target_id = 'com.acme.other' WHERE seq = 123`,
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr = verify()
	t.Logf("audit verify after an edit: exit %d: %s", code, stderr)
	if code != 1 || !strings.Contains(stderr, "record 123: hash mismatch (edited or reordered)") {
		t.Errorf("after an edit: exit %d, stderr %q; want 1 naming record 123", code, stderr)
	}
	if strings.Contains(stdout, "intact") {
		t.Errorf("after an edit, stdout says %q", stdout)
	}
}

func TestAuditVerifyErrors(t *testing.T) {
	t.Parallel()
	empty := t.TempDir()
	keysOnly := filepath.Join(t.TempDir(), "data")
	if err := os.MkdirAll(filepath.Join(keysOnly, datadir.KeysDir), 0o700); err != nil {
		t.Fatal(err)
	}
	sealer, err := secrets.New(make([]byte, secrets.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := audit.LoadOrCreateSigner(filepath.Join(keysOnly, datadir.KeysDir), sealer); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		args     []string
		env      map[string]string
		wantCode int
		wantErr  string
	}{
		{"no subcommand", []string{"audit"}, nil, exitUsage, "missing subcommand"},
		{"unknown subcommand", []string{"audit", "erase"}, nil, exitUsage, `unknown subcommand "erase"`},
		{"no data dir", []string{"audit", "verify"}, nil, exitUsage, "--data-dir is required"},
		{"extra argument", []string{"audit", "verify", "--data-dir", empty, "x"}, nil, exitUsage, "unexpected argument"},
		{"no public key", []string{"audit", "verify", "--data-dir", empty}, nil, 1, "no audit public key at"},
		{"no database", []string{"audit", "verify"}, map[string]string{"RAMPART_DATA_DIR": keysOnly}, 1, "rampart.db: no such file"},
		{"bad public key file", []string{"audit", "verify", "--data-dir", keysOnly, "--public-key",
			filepath.Join(keysOnly, datadir.KeysDir, audit.SigningKeyFile)}, nil, 1, "no \"PUBLIC KEY\" PEM block"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var stdout, stderr bytes.Buffer
			env := func(k string) (string, bool) { v, ok := tt.env[k]; return v, ok }
			code := realMain(context.Background(), tt.args, &stdout, &stderr, env)
			if code != tt.wantCode || !strings.Contains(stderr.String(), tt.wantErr) {
				t.Errorf("exit %d, stderr %q; want %d and %q", code, stderr.String(), tt.wantCode, tt.wantErr)
			}
		})
	}
	// Help goes to stdout and succeeds.
	var stdout bytes.Buffer
	if code := realMain(context.Background(), []string{"audit", "verify", "-h"}, &stdout, &stdout, nil); code != 0 ||
		!strings.Contains(stdout.String(), "Exit status: 0 intact") {
		t.Errorf("help: exit %d, %q", code, stdout.String())
	}
}
