package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/rampart-ml/rampart/internal/store"
)

// sqliteTx is the store.Tx handed to InTx callbacks.
type sqliteTx struct {
	tx *sql.Tx
}

var _ store.Tx = (*sqliteTx)(nil)

func (t *sqliteTx) Accounts() store.Accounts       { return accounts{tx: t.tx} }
func (t *sqliteTx) SigningKeys() store.SigningKeys { return signingKeys{tx: t.tx} }

// accounts implements store.Accounts on the accounts table.
type accounts struct {
	tx *sql.Tx
}

var _ store.Accounts = accounts{}

func (r accounts) CreateAccount(ctx context.Context, a store.Account) error {
	_, err := r.tx.ExecContext(ctx, `INSERT INTO accounts
		(id, name, password_hash, admin, must_change_password, created_at)
		VALUES (?, ?, ?, ?, ?, ?)`,
		a.ID, a.Name, a.PasswordHash, a.Admin, a.MustChangePassword, a.CreatedAt.UTC().Format(timeLayout))
	if isUniqueViolation(err) {
		return fmt.Errorf("create account %s: id or name taken: %w", a.ID, store.ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("create account %s: %w", a.ID, classify(err))
	}
	return nil
}

// AccountByName leaves name out of its errors: people type passwords into
// the name field, and errors end up in logs.
func (r accounts) AccountByName(ctx context.Context, name string) (store.Account, error) {
	var (
		a       store.Account
		created string
	)
	err := r.tx.QueryRowContext(ctx, `SELECT id, name, password_hash, admin, must_change_password, created_at
		FROM accounts WHERE name = ?`, name).
		Scan(&a.ID, &a.Name, &a.PasswordHash, &a.Admin, &a.MustChangePassword, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return store.Account{}, fmt.Errorf("account by name: %w", store.ErrNotFound)
	}
	if err != nil {
		return store.Account{}, fmt.Errorf("account by name: %w", classify(err))
	}
	if a.CreatedAt, err = time.Parse(time.RFC3339Nano, created); err != nil {
		return store.Account{}, fmt.Errorf("account %s: created_at: %w", a.ID, err)
	}
	return a, nil
}

func (r accounts) SetPasswordHash(ctx context.Context, id, hash string) error {
	res, err := r.tx.ExecContext(ctx, `UPDATE accounts SET password_hash = ? WHERE id = ?`, hash, id)
	if err != nil {
		return fmt.Errorf("set password hash of account %s: %w", id, classify(err))
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("set password hash of account %s: %w", id, err)
	}
	if n == 0 {
		return fmt.Errorf("set password hash of account %s: %w", id, store.ErrNotFound)
	}
	return nil
}

func (r accounts) CountAccounts(ctx context.Context) (int, error) {
	var n int
	if err := r.tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM accounts`).Scan(&n); err != nil {
		return 0, fmt.Errorf("count accounts: %w", classify(err))
	}
	return n, nil
}

func (r accounts) LoginState(ctx context.Context, id string) (store.LoginState, error) {
	var (
		s                   store.LoginState
		found               bool
		lockedUntil, lastAt sql.NullString
		failures, lockouts  sql.NullInt64
		permanent           sql.NullBool
	)
	err := r.tx.QueryRowContext(ctx, `SELECT 1, l.failures, l.lockouts, l.locked_until, l.permanent, l.last_failure
		FROM accounts a LEFT JOIN login_state l ON l.account_id = a.id WHERE a.id = ?`, id).
		Scan(&found, &failures, &lockouts, &lockedUntil, &permanent, &lastAt)
	if errors.Is(err, sql.ErrNoRows) {
		return s, fmt.Errorf("login state of account %s: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return s, fmt.Errorf("login state of account %s: %w", id, classify(err))
	}
	s.Failures, s.Lockouts, s.Permanent = int(failures.Int64), int(lockouts.Int64), permanent.Bool
	if s.LockedUntil, err = parseNullTime(lockedUntil); err == nil {
		s.LastFailure, err = parseNullTime(lastAt)
	}
	if err != nil {
		return store.LoginState{}, fmt.Errorf("login state of account %s: %w", id, err)
	}
	return s, nil
}

func (r accounts) SetLoginState(ctx context.Context, id string, s store.LoginState) error {
	_, err := r.tx.ExecContext(ctx, `INSERT INTO login_state
		(account_id, failures, lockouts, locked_until, permanent, last_failure) VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (account_id) DO UPDATE SET failures = excluded.failures, lockouts = excluded.lockouts,
		locked_until = excluded.locked_until, permanent = excluded.permanent, last_failure = excluded.last_failure`,
		id, s.Failures, s.Lockouts, nullTime(s.LockedUntil), s.Permanent, nullTime(s.LastFailure))
	if err != nil && isForeignKeyViolation(err) {
		return fmt.Errorf("set login state of account %s: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("set login state of account %s: %w", id, classify(err))
	}
	return nil
}

func nullTime(t time.Time) sql.NullString {
	if t.IsZero() {
		return sql.NullString{}
	}
	return sql.NullString{String: t.UTC().Format(timeLayout), Valid: true}
}

func parseNullTime(s sql.NullString) (time.Time, error) {
	if !s.Valid {
		return time.Time{}, nil
	}
	return time.Parse(time.RFC3339Nano, s.String)
}
