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

func (t *sqliteTx) Accounts() store.Accounts { return accounts{tx: t.tx} }

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
