package sqlite

import (
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/rampart-ml/rampart/internal/store"
	"github.com/rampart-ml/rampart/internal/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		return openTemp(t)
	})
}

// openTemp opens a fresh store in a temporary directory and closes it when
// the test ends.
func openTemp(t *testing.T) *Store {
	t.Helper()
	return openAt(t, filepath.Join(t.TempDir(), "rampart.db"))
}

func openAt(t *testing.T, path string) *Store {
	t.Helper()
	s, err := Open(context.Background(), path)
	if err != nil {
		t.Fatalf("Open(%q): %v", path, err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestFileMode(t *testing.T) {
	t.Parallel()
	s := openTemp(t)
	// Write something so the WAL file exists too.
	if err := s.InTx(context.Background(), func(tx store.Tx) error {
		return tx.Accounts().CreateAccount(context.Background(), store.Account{
			ID: "a", Name: "a", PasswordHash: "h", CreatedAt: time.Now(),
		})
	}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{s.path, s.path + "-wal", s.path + "-shm"} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != 0o600 {
			t.Errorf("%s mode = %v, want 0600", filepath.Base(p), got)
		}
	}
}

func TestPragmas(t *testing.T) {
	t.Parallel()
	s := openTemp(t)
	ctx := context.Background()
	// Pin one connection: foreign_keys and friends are per-connection.
	conn, err := s.db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for _, tt := range []struct{ pragma, want string }{
		{"journal_mode", "wal"},
		{"foreign_keys", "1"},
		{"busy_timeout", "5000"},
		{"synchronous", "1"}, // NORMAL
	} {
		var got string
		if err := conn.QueryRowContext(ctx, "PRAGMA "+tt.pragma).Scan(&got); err != nil {
			t.Fatalf("PRAGMA %s: %v", tt.pragma, err)
		}
		if got != tt.want {
			t.Errorf("PRAGMA %s = %q, want %q", tt.pragma, got, tt.want)
		}
	}
}

// TestTransactionsAreImmediate checks InTx holds the write lock from BEGIN,
// even before fn writes anything.
func TestTransactionsAreImmediate(t *testing.T) {
	t.Parallel()
	s := openTemp(t)
	other, err := sql.Open(driverName, "file:"+s.path+"?_pragma=busy_timeout(0)")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	err = s.InTx(context.Background(), func(store.Tx) error {
		_, err := other.Exec("BEGIN IMMEDIATE")
		if err == nil {
			_, _ = other.Exec("ROLLBACK")
		}
		return err
	})
	if err == nil {
		t.Error("another connection took the write lock during InTx; want SQLITE_BUSY")
	}
}

func TestReopenKeepsDataAndMigrations(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "rampart.db")
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	want := store.Account{ID: "id-alice", Name: "alice", PasswordHash: "h", CreatedAt: time.Now()}
	if err := s.InTx(ctx, func(tx store.Tx) error { return tx.Accounts().CreateAccount(ctx, want) }); err != nil {
		t.Fatal(err)
	}
	before := appliedAt(t, s.db)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = openAt(t, path)
	if err := s.InTx(ctx, func(tx store.Tx) error {
		got, err := tx.Accounts().AccountByName(ctx, "alice")
		if err == nil && got.ID != want.ID {
			t.Errorf("after reopen, ID = %q, want %q", got.ID, want.ID)
		}
		return err
	}); err != nil {
		t.Fatalf("after reopen: %v", err)
	}
	if after := appliedAt(t, s.db); after != before {
		t.Errorf("schema_migrations changed on reopen:\nbefore %s\nafter  %s", before, after)
	}
	if err := s.Ping(ctx); err != nil {
		t.Errorf("Ping after reopen: %v", err)
	}
}

// appliedAt describes the rows of schema_migrations, to detect re-runs.
func appliedAt(t *testing.T, db *sql.DB) string {
	t.Helper()
	rows, err := db.Query(`SELECT version, applied_at FROM schema_migrations ORDER BY version`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var b strings.Builder
	for rows.Next() {
		var v int
		var at string
		if err := rows.Scan(&v, &at); err != nil {
			t.Fatal(err)
		}
		b.WriteString(at + " ")
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if b.Len() == 0 {
		t.Fatal("schema_migrations is empty")
	}
	return b.String()
}

func TestCorruptFile(t *testing.T) {
	t.Parallel()
	random := make([]byte, 8192)
	_, _ = rand.Read(random)
	for _, tt := range []struct {
		name    string
		content []byte
	}{
		{"text", []byte(strings.Repeat("this is not a database\n", 100))},
		{"random", random},
		{"truncated header", []byte("SQLite format 3\x00garbage")},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "rampart.db")
			if err := os.WriteFile(path, tt.content, 0o600); err != nil {
				t.Fatal(err)
			}
			s, err := Open(context.Background(), path)
			if err == nil {
				_ = s.Close()
				t.Fatal("Open succeeded on a corrupt file")
			}
			if !errors.Is(err, store.ErrCorrupt) {
				t.Errorf("Open error = %v, want ErrCorrupt", err)
			}
			if !strings.Contains(err.Error(), path) {
				t.Errorf("Open error %q does not name the file", err)
			}
		})
	}
}

func TestSchemaTooNew(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "rampart.db")
	s, err := Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.db.Exec(`INSERT INTO schema_migrations (version, applied_at) VALUES (9999, 'x')`); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(context.Background(), path)
	if err == nil {
		_ = s.Close()
		t.Fatal("Open succeeded on a database from a newer schema")
	}
	if !errors.Is(err, store.ErrSchemaTooNew) {
		t.Errorf("Open error = %v, want ErrSchemaTooNew", err)
	}
	for _, want := range []string{"9999", "upgrade rampart"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Open error %q does not mention %q", err, want)
		}
	}
}

func TestPingNotMigrated(t *testing.T) {
	t.Parallel()
	s := openTemp(t)
	if _, err := s.db.Exec(`DELETE FROM schema_migrations`); err != nil {
		t.Fatal(err)
	}
	if err := s.Ping(context.Background()); err == nil {
		t.Error("Ping succeeded on an unmigrated database")
	}
}

// TestMigrationsAllOrNothing feeds the runner a set whose second migration
// fails and checks that nothing of the first one remains.
func TestMigrationsAllOrNothing(t *testing.T) {
	t.Parallel()
	db, err := openDB(filepath.Join(t.TempDir(), "rampart.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	broken := fstest.MapFS{
		"0001_first.sql":  {Data: []byte("CREATE TABLE first (x INTEGER) STRICT;")},
		"0002_broken.sql": {Data: []byte("CREATE TABLE second (x INTEGER) STRICT;\nTHIS IS NOT SQL;")},
	}
	if _, err := migrate(context.Background(), db, broken); err == nil {
		t.Fatal("migrate succeeded with a broken migration")
	} else if !strings.Contains(err.Error(), "0002_broken.sql") {
		t.Errorf("migrate error %q does not name the failing migration", err)
	}
	for _, table := range []string{"first", "second"} {
		if tableExists(t, db, table) {
			t.Errorf("table %q exists after a failed migration set", table)
		}
	}
	// schema_migrations is created in the same transaction, so it is gone
	// too; if a backend ever creates it separately it must still be empty.
	if tableExists(t, db, "schema_migrations") {
		var n int
		if err := db.QueryRow(`SELECT COUNT(*) FROM schema_migrations`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Errorf("schema_migrations has %d rows after a failed migration set, want 0", n)
		}
	}
}

func tableExists(t *testing.T, db *sql.DB, name string) bool {
	t.Helper()
	var n int
	if err := db.QueryRow(`SELECT COUNT(*) FROM sqlite_schema WHERE type = 'table' AND name = ?`, name).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n > 0
}

func TestBadMigrationNames(t *testing.T) {
	t.Parallel()
	for name, fsys := range map[string]fstest.MapFS{
		"no version":        {"init.sql": {Data: []byte("SELECT 1;")}},
		"version zero":      {"0000_init.sql": {Data: []byte("SELECT 1;")}},
		"duplicate version": {"0001_a.sql": {Data: []byte("SELECT 1;")}, "0001_b.sql": {Data: []byte("SELECT 1;")}},
		"wrong extension":   {"0001_init.txt": {Data: []byte("SELECT 1;")}},
	} {
		if _, err := loadMigrations(fsys); err == nil {
			t.Errorf("%s: loadMigrations succeeded, want an error", name)
		}
	}
}

func TestEmbeddedMigrationsLoad(t *testing.T) {
	t.Parallel()
	ms, err := loadMigrations(defaultMigrations())
	if err != nil {
		t.Fatal(err)
	}
	for i, m := range ms {
		if m.version != i+1 {
			t.Errorf("migration %s has version %d, want %d: versions must have no gaps", m.name, m.version, i+1)
		}
	}
}

func TestUnusablePath(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	// A path under a regular file: fails even for root, unlike chmod.
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{
		filepath.Join(file, "rampart.db"),
		filepath.Join(dir, "missing", "rampart.db"),
		"",
	} {
		s, err := Open(context.Background(), path)
		if err == nil {
			_ = s.Close()
			t.Errorf("Open(%q) succeeded, want an error", path)
			continue
		}
		if !strings.Contains(err.Error(), path) {
			t.Errorf("Open(%q) error %q does not name the path", path, err)
		}
	}
}

// TestAwkwardPath checks characters that mean something in a URI reach the
// file system unchanged.
func TestAwkwardPath(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "a b?c=d#e%20f.db")
	openAt(t, path)
	if _, err := os.Stat(path); err != nil {
		t.Errorf("database not at %q: %v", path, err)
	}
	entries, err := os.ReadDir(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), filepath.Base(path)) {
			t.Errorf("unexpected file %q next to the database", e.Name())
		}
	}
}
