package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/rampart-ml/rampart/internal/store"
)

// serviceAccounts implements store.ServiceAccounts on the service_accounts,
// client_secrets and client_keys tables.
type serviceAccounts struct {
	tx *sql.Tx
}

var _ store.ServiceAccounts = serviceAccounts{}

// serviceAccountColumns are the columns scanServiceAccount reads, in its order.
const serviceAccountColumns = `id, name, description, owner_id, disabled, expires_at, created_at`

func scanServiceAccount(row rowScanner) (store.ServiceAccount, error) {
	var (
		sa      store.ServiceAccount
		expires sql.NullString
		created string
	)
	if err := row.Scan(&sa.ID, &sa.Name, &sa.Description, &sa.OwnerID, &sa.Disabled, &expires, &created); err != nil {
		return store.ServiceAccount{}, err
	}
	var err error
	if sa.ExpiresAt, err = parseNullTime(expires); err == nil {
		sa.CreatedAt, err = time.Parse(time.RFC3339Nano, created)
	}
	if err != nil {
		return store.ServiceAccount{}, fmt.Errorf("service account %s: %w", sa.ID, err)
	}
	return sa, nil
}

func (r serviceAccounts) CreateServiceAccount(ctx context.Context, sa store.ServiceAccount) error {
	_, err := r.tx.ExecContext(ctx, `INSERT INTO service_accounts
		(id, name, description, owner_id, disabled, expires_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		sa.ID, sa.Name, sa.Description, sa.OwnerID, sa.Disabled, nullTime(sa.ExpiresAt), formatTime(sa.CreatedAt))
	switch {
	case isUniqueViolation(err):
		return fmt.Errorf("create service account %s: id or name taken: %w", sa.ID, store.ErrConflict)
	case isForeignKeyViolation(err):
		return fmt.Errorf("create service account %s: owner %s: %w", sa.ID, sa.OwnerID, store.ErrNotFound)
	case err != nil:
		return fmt.Errorf("create service account %s: %w", sa.ID, classify(err))
	}
	return nil
}

func (r serviceAccounts) ServiceAccountByID(ctx context.Context, id string) (store.ServiceAccount, error) {
	sa, err := scanServiceAccount(r.tx.QueryRowContext(ctx,
		`SELECT `+serviceAccountColumns+` FROM service_accounts WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return store.ServiceAccount{}, fmt.Errorf("service account %s: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return store.ServiceAccount{}, fmt.Errorf("service account %s: %w", id, classify(err))
	}
	return sa, nil
}

// ServiceAccountByName leaves name out of its errors: it is a client id
// from a request, and may be a secret pasted into the wrong field.
func (r serviceAccounts) ServiceAccountByName(ctx context.Context, name string) (store.ServiceAccount, error) {
	sa, err := scanServiceAccount(r.tx.QueryRowContext(ctx,
		`SELECT `+serviceAccountColumns+` FROM service_accounts WHERE name = ?`, name))
	if errors.Is(err, sql.ErrNoRows) {
		return store.ServiceAccount{}, fmt.Errorf("service account by name: %w", store.ErrNotFound)
	}
	if err != nil {
		return store.ServiceAccount{}, fmt.Errorf("service account by name: %w", classify(err))
	}
	return sa, nil
}

func (r serviceAccounts) ListServiceAccounts(ctx context.Context) ([]store.ServiceAccount, error) {
	return queryAll(ctx, r.tx, "list service accounts", scanServiceAccount, `SELECT `+serviceAccountColumns+` FROM service_accounts ORDER BY name`)
}

func (r serviceAccounts) UpdateServiceAccount(ctx context.Context, sa store.ServiceAccount) error {
	res, err := r.tx.ExecContext(ctx, `UPDATE service_accounts
		SET description = ?, owner_id = ?, disabled = ?, expires_at = ? WHERE id = ?`,
		sa.Description, sa.OwnerID, sa.Disabled, nullTime(sa.ExpiresAt), sa.ID)
	if isForeignKeyViolation(err) {
		return fmt.Errorf("update service account %s: owner %s: %w", sa.ID, sa.OwnerID, store.ErrNotFound)
	}
	return rowsChanged(res, err, "update service account "+sa.ID)
}

// DeleteServiceAccount relies on the schema: secrets and keys cascade.
func (r serviceAccounts) DeleteServiceAccount(ctx context.Context, id string) error {
	res, err := r.tx.ExecContext(ctx, `DELETE FROM service_accounts WHERE id = ?`, id)
	return rowsChanged(res, err, "delete service account "+id)
}

func (r serviceAccounts) AddClientSecret(ctx context.Context, s store.ClientSecret) error {
	_, err := r.tx.ExecContext(ctx, `INSERT INTO client_secrets
		(id, service_account_id, hash, created_at, expires_at) VALUES (?, ?, ?, ?, ?)`,
		s.ID, s.ServiceAccountID, s.Hash, formatTime(s.CreatedAt), nullTime(s.ExpiresAt))
	switch {
	case isUniqueViolation(err):
		return fmt.Errorf("add client secret %s: id taken: %w", s.ID, store.ErrConflict)
	case isForeignKeyViolation(err):
		return fmt.Errorf("add client secret %s: service account %s: %w", s.ID, s.ServiceAccountID, store.ErrNotFound)
	case err != nil:
		return fmt.Errorf("add client secret %s: %w", s.ID, classify(err))
	}
	return nil
}

func (r serviceAccounts) ClientSecrets(ctx context.Context, serviceAccountID string) ([]store.ClientSecret, error) {
	rows, err := r.tx.QueryContext(ctx, `SELECT id, service_account_id, hash, created_at, expires_at
		FROM client_secrets WHERE service_account_id = ? ORDER BY created_at, id`, serviceAccountID)
	if err != nil {
		return nil, fmt.Errorf("client secrets of %s: %w", serviceAccountID, classify(err))
	}
	defer rows.Close()
	var list []store.ClientSecret
	for rows.Next() {
		var (
			s       store.ClientSecret
			created string
			expires sql.NullString
		)
		if err := rows.Scan(&s.ID, &s.ServiceAccountID, &s.Hash, &created, &expires); err != nil {
			return nil, fmt.Errorf("client secrets of %s: %w", serviceAccountID, classify(err))
		}
		if s.CreatedAt, err = time.Parse(time.RFC3339Nano, created); err == nil {
			s.ExpiresAt, err = parseNullTime(expires)
		}
		if err != nil {
			return nil, fmt.Errorf("client secret %s: %w", s.ID, err)
		}
		list = append(list, s)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("client secrets of %s: %w", serviceAccountID, classify(err))
	}
	return list, nil
}

func (r serviceAccounts) ExpireClientSecrets(ctx context.Context, serviceAccountID string, at time.Time) error {
	// Fixed-width UTC text compares in time order.
	_, err := r.tx.ExecContext(ctx, `UPDATE client_secrets SET expires_at = ?
		WHERE service_account_id = ? AND (expires_at IS NULL OR expires_at > ?)`,
		formatTime(at), serviceAccountID, formatTime(at))
	if err != nil {
		return fmt.Errorf("expire client secrets of %s: %w", serviceAccountID, classify(err))
	}
	return nil
}

func (r serviceAccounts) DeleteClientSecret(ctx context.Context, serviceAccountID, id string) error {
	res, err := r.tx.ExecContext(ctx, `DELETE FROM client_secrets WHERE service_account_id = ? AND id = ?`,
		serviceAccountID, id)
	return rowsChanged(res, err, fmt.Sprintf("delete client secret %s of %s", id, serviceAccountID))
}

func (r serviceAccounts) AddClientKey(ctx context.Context, k store.ClientKey) error {
	_, err := r.tx.ExecContext(ctx, `INSERT INTO client_keys
		(service_account_id, id, public_key, created_at, expires_at) VALUES (?, ?, ?, ?, ?)`,
		k.ServiceAccountID, k.ID, k.PublicKey, formatTime(k.CreatedAt), nullTime(k.ExpiresAt))
	switch {
	case isUniqueViolation(err):
		return fmt.Errorf("add client key %s of %s: id taken: %w", k.ID, k.ServiceAccountID, store.ErrConflict)
	case isForeignKeyViolation(err):
		return fmt.Errorf("add client key %s: service account %s: %w", k.ID, k.ServiceAccountID, store.ErrNotFound)
	case err != nil:
		return fmt.Errorf("add client key %s of %s: %w", k.ID, k.ServiceAccountID, classify(err))
	}
	return nil
}

func (r serviceAccounts) ClientKeys(ctx context.Context, serviceAccountID string) ([]store.ClientKey, error) {
	rows, err := r.tx.QueryContext(ctx, `SELECT id, service_account_id, public_key, created_at, expires_at
		FROM client_keys WHERE service_account_id = ? ORDER BY created_at, id`, serviceAccountID)
	if err != nil {
		return nil, fmt.Errorf("client keys of %s: %w", serviceAccountID, classify(err))
	}
	defer rows.Close()
	var list []store.ClientKey
	for rows.Next() {
		var (
			k       store.ClientKey
			created string
			expires sql.NullString
		)
		if err := rows.Scan(&k.ID, &k.ServiceAccountID, &k.PublicKey, &created, &expires); err != nil {
			return nil, fmt.Errorf("client keys of %s: %w", serviceAccountID, classify(err))
		}
		if k.CreatedAt, err = time.Parse(time.RFC3339Nano, created); err == nil {
			k.ExpiresAt, err = parseNullTime(expires)
		}
		if err != nil {
			return nil, fmt.Errorf("client key %s of %s: %w", k.ID, serviceAccountID, err)
		}
		list = append(list, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("client keys of %s: %w", serviceAccountID, classify(err))
	}
	return list, nil
}

func (r serviceAccounts) DeleteClientKey(ctx context.Context, serviceAccountID, id string) error {
	res, err := r.tx.ExecContext(ctx, `DELETE FROM client_keys WHERE service_account_id = ? AND id = ?`,
		serviceAccountID, id)
	return rowsChanged(res, err, fmt.Sprintf("delete client key %s of %s", id, serviceAccountID))
}
