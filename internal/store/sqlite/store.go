package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/rampart-ml/rampart/internal/store"
)

// driverName is the database/sql name modernc.org/sqlite registers.
const driverName = "sqlite"

// maxOpenConns caps the pool. SQLite admits one writer at a time and every
// InTx is a write transaction (BEGIN IMMEDIATE), so more connections would
// only wait in SQLite's busy handler instead of in the pool, where waiting
// honours the context. A few, rather than one, let Ping and reads proceed
// under WAL while a write is in progress.
const maxOpenConns = 4

// timeLayout is RFC 3339 in UTC with a fixed nine-digit fraction, so stored
// times sort as text in time order (time.RFC3339Nano trims trailing zeros).
const timeLayout = "2006-01-02T15:04:05.000000000Z07:00"

// Store is a store.Store backed by one SQLite file.
type Store struct {
	db      *sql.DB
	path    string
	version int // schema version Open migrated to; Ping checks it
	closed  atomic.Bool
	stmts   *stmtCache
}

var _ store.Store = (*Store)(nil)

// Open opens the SQLite database at path, creating it with mode 0600 if it
// does not exist, and applies any pending migrations. It returns an error
// wrapping store.ErrCorrupt if the file is damaged or not a database, and
// store.ErrSchemaTooNew if a newer Rampart has migrated it.
func Open(ctx context.Context, path string) (*Store, error) {
	db, err := openDB(path)
	if err != nil {
		return nil, err
	}
	version, err := migrate(ctx, db, defaultMigrations())
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("open database %s: %w", path, classify(err))
	}
	stmts, err := newStmtCache(ctx, db, hotStatements...)
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	return &Store{db: db, path: path, version: version, stmts: stmts}, nil
}

// openDB creates the file if needed and returns a configured, unmigrated pool.
// Nothing connects yet: errors in the file itself surface on first use.
func openDB(path string) (*sql.DB, error) {
	if path == "" {
		return nil, errors.New("open database: empty path")
	}
	// Create the file ourselves so it never exists, even briefly, with the
	// umask's looser mode. SQLite gives its -wal and -shm files the same mode.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600) // #nosec G304 -- operator-configured path (flag or data dir), never request input
	switch {
	case errors.Is(err, fs.ErrExist):
	case err != nil:
		return nil, fmt.Errorf("create database file: %w", err) // *PathError names the path
	default:
		if err := f.Close(); err != nil {
			return nil, fmt.Errorf("create database file: %w", err)
		}
	}
	name, err := dsn(path)
	if err != nil {
		return nil, err
	}
	db, err := sql.Open(driverName, name)
	if err != nil {
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	db.SetMaxOpenConns(maxOpenConns)
	db.SetMaxIdleConns(maxOpenConns)
	return db, nil
}

// dsn builds a file: URI for path, so that any character in the path ('?',
// '#', '%') reaches SQLite intact, with the settings every connection needs.
func dsn(path string) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", fmt.Errorf("open database %s: %w", path, err)
	}
	p := filepath.ToSlash(abs)
	if !strings.HasPrefix(p, "/") {
		p = "/" + p // Windows: file:///C:/...
	}
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(5000)") // wait for another writer rather than fail with SQLITE_BUSY
	q.Add("_pragma", "foreign_keys(1)")    // off by default in SQLite
	q.Add("_pragma", "journal_mode(WAL)")  // readers do not block the writer
	// With WAL, NORMAL cannot corrupt the file; power loss may drop the last
	// commits. Far fewer fsyncs than FULL.
	q.Add("_pragma", "synchronous(NORMAL)")
	// Deleted rows are overwritten with zeros, so an erased user's name
	// does not linger in free pages of the file (docs/PRIVACY.md).
	q.Add("_pragma", "secure_delete(1)")
	// BEGIN IMMEDIATE takes the write lock up front: a deferred transaction
	// that reads and then writes can fail with SQLITE_BUSY mid-way, where
	// busy_timeout cannot help.
	q.Set("_txlock", "immediate")
	u := url.URL{Scheme: "file", Path: p, RawQuery: q.Encode()}
	return u.String(), nil
}

// InTx implements store.Store.
func (s *Store) InTx(ctx context.Context, fn func(tx store.Tx) error) error {
	if s.closed.Load() {
		return fmt.Errorf("begin transaction: %w", store.ErrClosed)
	}
	sqlTx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return s.errorf("begin transaction", err)
	}
	committed := false
	// Deferred so it also runs when fn panics; the panic then carries on.
	defer func() {
		if !committed {
			_ = sqlTx.Rollback()
		}
	}()
	if err := fn(&sqliteTx{tx: sqlTx, stmts: s.stmts}); err != nil {
		return err
	}
	if err := sqlTx.Commit(); err != nil {
		return s.errorf("commit", err)
	}
	committed = true
	return nil
}

// Ping implements store.Store: nil only if the database answers and is at
// the schema version this binary expects.
func (s *Store) Ping(ctx context.Context) error {
	if s.closed.Load() {
		return fmt.Errorf("ping: %w", store.ErrClosed)
	}
	var version int
	err := s.db.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&version)
	if err != nil {
		return s.errorf("ping", err)
	}
	if version != s.version {
		return fmt.Errorf("ping: database %s is at schema version %d, want %d", s.path, version, s.version)
	}
	return nil
}

// Close implements store.Store.
func (s *Store) Close() error {
	if s.closed.Swap(true) {
		return fmt.Errorf("close: %w", store.ErrClosed)
	}
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("close database %s: %w", s.path, err)
	}
	return nil
}

// errorf wraps err from a store-level operation, reporting ErrClosed if the
// store was closed while the operation ran.
func (s *Store) errorf(op string, err error) error {
	if s.closed.Load() {
		return fmt.Errorf("%s: %w (%w)", op, store.ErrClosed, err)
	}
	return fmt.Errorf("%s %s: %w", op, s.path, classify(err))
}

// classify adds store.ErrCorrupt to err if SQLite reports a damaged file or
// one that is not a database.
func classify(err error) error {
	if code, ok := sqliteCode(err); ok {
		switch code & 0xff { // primary result code; extended codes are on
		case sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB:
			return fmt.Errorf("%w: %w", store.ErrCorrupt, err)
		}
	}
	return err
}

// isUniqueViolation reports whether err is a UNIQUE or PRIMARY KEY violation.
func isUniqueViolation(err error) bool {
	code, ok := sqliteCode(err)
	return ok && (code == sqlite3.SQLITE_CONSTRAINT_UNIQUE || code == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY)
}

func isForeignKeyViolation(err error) bool {
	code, ok := sqliteCode(err)
	return ok && code == sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY
}

func sqliteCode(err error) (int, bool) {
	var e *sqlite.Error
	if errors.As(err, &e) {
		return e.Code(), true
	}
	return 0, false
}
