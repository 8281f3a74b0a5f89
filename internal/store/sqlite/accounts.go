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
	tx    *sql.Tx
	stmts *stmtCache
}

var _ store.Tx = (*sqliteTx)(nil)

func (t *sqliteTx) Accounts() store.Accounts               { return accounts{tx: t.tx} }
func (t *sqliteTx) SigningKeys() store.SigningKeys         { return signingKeys{tx: t.tx} }
func (t *sqliteTx) ServiceAccounts() store.ServiceAccounts { return serviceAccounts{tx: t.tx} }
func (t *sqliteTx) Sessions() store.Sessions               { return sessions{tx: t.tx} }
func (t *sqliteTx) Domains() store.Domains                 { return domains{tx: t.tx} }
func (t *sqliteTx) Grants() store.Grants                   { return grants{tx: t.tx} }
func (t *sqliteTx) Audit() store.Audit                     { return audit{tx: t.tx, stmts: t.stmts} }
func (t *sqliteTx) Models() store.Models                   { return models{tx: t.tx} }
func (t *sqliteTx) SignerKeys() store.SignerKeys           { return signerKeys{tx: t.tx} }
func (t *sqliteTx) Services() store.Services               { return services{tx: t.tx} }

// accounts implements store.Accounts on the accounts table.
type accounts struct {
	tx *sql.Tx
}

var _ store.Accounts = accounts{}

// accountColumns are the columns scanAccount reads, in its order.
const accountColumns = `id, name, email, password_hash, admin, auditor, must_change_password,
	disabled, anonymized, totp_secret, totp_last_step, created_at`

// scanAccount reads one row of accountColumns.
func scanAccount(row rowScanner) (store.Account, error) {
	var (
		a       store.Account
		created string
	)
	err := row.Scan(&a.ID, &a.Name, &a.Email, &a.PasswordHash, &a.Admin, &a.Auditor, &a.MustChangePassword,
		&a.Disabled, &a.Anonymized, &a.TOTPSecret, &a.TOTPLastStep, &created)
	if err != nil {
		return store.Account{}, err
	}
	if len(a.TOTPSecret) == 0 {
		a.TOTPSecret = nil // NULL, or an empty blob written by hand
	}
	if a.CreatedAt, err = time.Parse(time.RFC3339Nano, created); err != nil {
		return store.Account{}, fmt.Errorf("account %s: created_at: %w", a.ID, err)
	}
	return a, nil
}

// nullBlob stores an empty b as NULL, so nil and empty read back alike (nil).
func nullBlob(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}

func (r accounts) CreateAccount(ctx context.Context, a store.Account) error {
	_, err := r.tx.ExecContext(ctx, `INSERT INTO accounts
		(id, name, email, password_hash, admin, auditor, must_change_password,
		 disabled, anonymized, totp_secret, totp_last_step, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		a.ID, a.Name, a.Email, a.PasswordHash, a.Admin, a.Auditor, a.MustChangePassword,
		a.Disabled, a.Anonymized, nullBlob(a.TOTPSecret), a.TOTPLastStep, formatTime(a.CreatedAt))
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
	a, err := scanAccount(r.tx.QueryRowContext(ctx, `SELECT `+accountColumns+` FROM accounts WHERE name = ?`, name))
	if errors.Is(err, sql.ErrNoRows) {
		return store.Account{}, fmt.Errorf("account by name: %w", store.ErrNotFound)
	}
	if err != nil {
		return store.Account{}, fmt.Errorf("account by name: %w", classify(err))
	}
	return a, nil
}

func (r accounts) AccountByID(ctx context.Context, id string) (store.Account, error) {
	a, err := scanAccount(r.tx.QueryRowContext(ctx, `SELECT `+accountColumns+` FROM accounts WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return store.Account{}, fmt.Errorf("account %s: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return store.Account{}, fmt.Errorf("account %s: %w", id, classify(err))
	}
	return a, nil
}

func (r accounts) ListAccounts(ctx context.Context) ([]store.Account, error) {
	return queryAll(ctx, r.tx, "list accounts", scanAccount, `SELECT `+accountColumns+` FROM accounts ORDER BY name`)
}

// UpdateAccount leaves the new name out of its errors, like AccountByName.
func (r accounts) UpdateAccount(ctx context.Context, a store.Account) error {
	res, err := r.tx.ExecContext(ctx, `UPDATE accounts SET name = ?, email = ?, password_hash = ?,
		admin = ?, auditor = ?, must_change_password = ?, disabled = ?, anonymized = ?,
		totp_secret = ?, totp_last_step = ? WHERE id = ?`,
		a.Name, a.Email, a.PasswordHash, a.Admin, a.Auditor, a.MustChangePassword, a.Disabled, a.Anonymized,
		nullBlob(a.TOTPSecret), a.TOTPLastStep, a.ID)
	if isUniqueViolation(err) {
		return fmt.Errorf("update account %s: name taken: %w", a.ID, store.ErrConflict)
	}
	return rowsChanged(res, err, "update account "+a.ID)
}

// DeleteAccount relies on the schema: login_state rows cascade, and
// service_accounts.owner_id restricts.
func (r accounts) DeleteAccount(ctx context.Context, id string) error {
	res, err := r.tx.ExecContext(ctx, `DELETE FROM accounts WHERE id = ?`, id)
	if isForeignKeyViolation(err) {
		return fmt.Errorf("delete account %s: it owns service accounts: %w", id, store.ErrConflict)
	}
	return rowsChanged(res, err, "delete account "+id)
}

func (r accounts) SetPasswordHash(ctx context.Context, id, hash string) error {
	res, err := r.tx.ExecContext(ctx, `UPDATE accounts SET password_hash = ? WHERE id = ?`, hash, id)
	return rowsChanged(res, err, "set password hash of account "+id)
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

// rowsChanged turns the result of an UPDATE or DELETE of one record into
// an error: err wrapped with op, or store.ErrNotFound if no row matched.
func rowsChanged(res sql.Result, err error, op string) error {
	if err != nil {
		return fmt.Errorf("%s: %w", op, classify(err))
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if n == 0 {
		return fmt.Errorf("%s: %w", op, store.ErrNotFound)
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
