package identity

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rampart-ml/rampart/internal/audit"
	"github.com/rampart-ml/rampart/internal/identity/identitytest"
	"github.com/rampart-ml/rampart/internal/identity/password"
	"github.com/rampart-ml/rampart/internal/store"
	"github.com/rampart-ml/rampart/internal/store/sqlite"
)

var cheap = password.Params{MemoryKiB: 64, Time: 1, Threads: 1}

func newStore(t *testing.T) store.Store {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func admin(t *testing.T, st store.Store) store.Account {
	t.Helper()
	var a store.Account
	err := st.InTx(context.Background(), func(tx store.Tx) error {
		var err error
		a, err = tx.Accounts().AccountByName(context.Background(), AdminName)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestGeneratedAdminPassword(t *testing.T) {
	t.Parallel()
	st := newStore(t)
	var logs bytes.Buffer
	file := filepath.Join(t.TempDir(), "initial-admin-password")
	rec := identitytest.NewRecorder(t, st, nil)
	b := Bootstrap{PasswordFile: file, Params: cheap, Logger: slog.New(slog.NewJSONHandler(&logs, nil)), Recorder: rec}
	if err := EnsureAdmin(context.Background(), st, b); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	pw := strings.TrimSpace(string(raw))
	if len(pw) < 20 {
		t.Errorf("generated password has only %d characters", len(pw))
	}
	if fi, _ := os.Stat(file); fi.Mode().Perm() != 0o600 {
		t.Errorf("password file mode %v", fi.Mode().Perm())
	}
	a := admin(t, st)
	if ok, err := password.Verify(pw, a.PasswordHash); !ok || err != nil {
		t.Errorf("stored hash does not verify the file's password: %v", err)
	}
	if !strings.HasPrefix(a.PasswordHash, "$argon2id$") || !a.Admin || !a.MustChangePassword {
		t.Errorf("account %+v", a)
	}
	if strings.Contains(logs.String(), pw) || !strings.Contains(logs.String(), file) {
		t.Errorf("log must name the file and not the password:\n%s", logs.String())
	}
	recs := identitytest.Records(t, st)
	if len(recs) != 1 || recs[0].Action != "account.create" || recs[0].Actor != "bootstrap" || recs[0].ActorKind != audit.ActorSystem ||
		recs[0].TargetKind != "account" || recs[0].Reason != "admin" {
		t.Fatalf("records %+v, want the admin's creation by the bootstrap", recs)
	}
	if id, err := identitytest.Resolve(t, st, rec, recs[0].TargetID); err != nil || id != a.ID {
		t.Errorf("target resolves to %q, %v; want the admin's id", id, err)
	}
	identitytest.CheckPrivate(t, recs, pw) // "admin" is the role in the reason, not a name

	// A second start changes nothing.
	if err := EnsureAdmin(context.Background(), st, b); err != nil {
		t.Fatal(err)
	}
	if raw2, _ := os.ReadFile(file); !bytes.Equal(raw, raw2) || admin(t, st).PasswordHash != a.PasswordHash {
		t.Error("second start replaced the admin password")
	}
	if n := len(identitytest.Records(t, st)); n != 1 {
		t.Errorf("%d records after the second start, want 1", n)
	}
}

func TestChosenAdminPassword(t *testing.T) {
	t.Parallel()
	st := newStore(t)
	file := filepath.Join(t.TempDir(), "initial-admin-password")
	b := Bootstrap{Password: "correct horse battery staple", PasswordFile: file, Params: cheap, Logger: slog.New(slog.DiscardHandler),
		Recorder: identitytest.NewRecorder(t, st, nil)}
	if err := EnsureAdmin(context.Background(), st, b); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(file); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("password file written although the operator chose the password: %v", err)
	}
	if ok, _ := password.Verify("correct horse battery staple", admin(t, st).PasswordHash); !ok {
		t.Error("chosen password does not verify")
	}
	if admin(t, st).MustChangePassword {
		t.Error("operator-chosen password marked for change")
	}
}

func TestWeakAdminPasswordRefused(t *testing.T) {
	t.Parallel()
	st := newStore(t)
	for _, pw := range []string{"short", "admin", "adminadminadminadmin"} {
		err := EnsureAdmin(context.Background(), st, Bootstrap{Password: pw, PasswordFile: filepath.Join(t.TempDir(), "f"), Params: cheap,
			Logger: slog.New(slog.DiscardHandler), Recorder: identitytest.NewRecorder(t, st, nil)})
		var pe *password.PolicyError
		if !errors.As(err, &pe) || strings.Contains(err.Error(), pw) {
			t.Errorf("EnsureAdmin(%q) = %v; want a PolicyError without the password", pw, err)
		}
	}
	err := st.InTx(context.Background(), func(tx store.Tx) error {
		n, err := tx.Accounts().CountAccounts(context.Background())
		if n != 0 {
			t.Errorf("%d accounts created by refused bootstraps", n)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// If the password file cannot be written, the account must not exist either.
func TestBootstrapIsAtomic(t *testing.T) {
	t.Parallel()
	st := newStore(t)
	rec := identitytest.NewRecorder(t, st, nil)
	unwritable := filepath.Join(t.TempDir(), "no", "such", "dir", "initial-admin-password")
	err := EnsureAdmin(context.Background(), st, Bootstrap{PasswordFile: unwritable, Params: cheap, Logger: slog.New(slog.DiscardHandler), Recorder: rec})
	if err == nil {
		t.Fatal("bootstrap succeeded without its password file")
	}
	err = st.InTx(context.Background(), func(tx store.Tx) error {
		_, err := tx.Accounts().AccountByName(context.Background(), AdminName)
		return err
	})
	if !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("admin account exists after failed bootstrap: %v", err)
	}

	// A stale file from a crashed start is replaced, not trusted.
	file := filepath.Join(t.TempDir(), "initial-admin-password")
	os.WriteFile(file, []byte("stale password nobody can use\n"), 0o600)
	if err := EnsureAdmin(context.Background(), st, Bootstrap{PasswordFile: file, Params: cheap, Logger: slog.New(slog.DiscardHandler), Recorder: rec}); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(file)
	if ok, _ := password.Verify(strings.TrimSpace(string(raw)), admin(t, st).PasswordHash); !ok {
		t.Error("password file does not match the account after replacing a stale file")
	}
}

// No admin account without its record: when the audit log refuses it,
// neither the account nor the password file is left behind; without a
// recorder the bootstrap refuses to run.
func TestBootstrapFailsClosed(t *testing.T) {
	t.Parallel()
	st := identitytest.NewFailingStore(newStore(t))
	st.SetFailing(true)
	file := filepath.Join(t.TempDir(), "initial-admin-password")
	b := Bootstrap{PasswordFile: file, Params: cheap, Logger: slog.New(slog.DiscardHandler), Recorder: identitytest.NewRecorder(t, st, nil)}
	if err := EnsureAdmin(context.Background(), st, b); !errors.Is(err, audit.ErrWrite) {
		t.Fatalf("EnsureAdmin = %v, want audit.ErrWrite", err)
	}
	if _, err := os.Stat(file); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("password file left behind: %v", err)
	}
	err := st.InTx(context.Background(), func(tx store.Tx) error {
		_, err := tx.Accounts().AccountByName(context.Background(), AdminName)
		return err
	})
	if !errors.Is(err, store.ErrNotFound) {
		t.Errorf("admin account exists without its record: %v", err)
	}
	b.Recorder = nil
	if err := EnsureAdmin(context.Background(), st, b); err == nil {
		t.Error("EnsureAdmin ran without a recorder")
	}
}
