package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/rampart-ml/rampart/internal/store"
)

// signingKeys implements store.SigningKeys on the signing_keys table.
type signingKeys struct {
	tx *sql.Tx
}

var _ store.SigningKeys = signingKeys{}

func formatTime(t time.Time) string { return t.UTC().Format(timeLayout) }

func (r signingKeys) CreateSigningKey(ctx context.Context, k store.SigningKey) error {
	_, err := r.tx.ExecContext(ctx, `INSERT INTO signing_keys
		(id, algorithm, sealed_private, created_at, sign_until, publish_until) VALUES (?, ?, ?, ?, ?, ?)`,
		k.ID, k.Algorithm, k.SealedPrivate, formatTime(k.CreatedAt), formatTime(k.SignUntil), formatTime(k.PublishUntil))
	if isUniqueViolation(err) {
		return fmt.Errorf("create signing key %s: %w", k.ID, store.ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("create signing key %s: %w", k.ID, classify(err))
	}
	return nil
}

func (r signingKeys) ListSigningKeys(ctx context.Context) ([]store.SigningKey, error) {
	rows, err := r.tx.QueryContext(ctx, `SELECT id, algorithm, sealed_private, created_at, sign_until, publish_until
		FROM signing_keys ORDER BY created_at, sign_until, id`)
	if err != nil {
		return nil, fmt.Errorf("list signing keys: %w", classify(err))
	}
	defer rows.Close()
	var keys []store.SigningKey
	for rows.Next() {
		var (
			k                        store.SigningKey
			created, sign, published string
		)
		if err := rows.Scan(&k.ID, &k.Algorithm, &k.SealedPrivate, &created, &sign, &published); err != nil {
			return nil, fmt.Errorf("list signing keys: %w", classify(err))
		}
		for _, f := range []struct {
			dst *time.Time
			src string
		}{{&k.CreatedAt, created}, {&k.SignUntil, sign}, {&k.PublishUntil, published}} {
			if *f.dst, err = time.Parse(time.RFC3339Nano, f.src); err != nil {
				return nil, fmt.Errorf("signing key %s: %w", k.ID, err)
			}
		}
		keys = append(keys, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list signing keys: %w", classify(err))
	}
	return keys, nil
}

func (r signingKeys) RetireSigningKeys(ctx context.Context, signUntil, publishUntil time.Time) error {
	// Fixed-width UTC text compares in time order.
	_, err := r.tx.ExecContext(ctx, `UPDATE signing_keys SET sign_until = ?, publish_until = ?
		WHERE sign_until > ?`, formatTime(signUntil), formatTime(publishUntil), formatTime(signUntil))
	if err != nil {
		return fmt.Errorf("retire signing keys: %w", classify(err))
	}
	return nil
}

func (r signingKeys) DeleteExpiredSigningKeys(ctx context.Context, now time.Time) error {
	if _, err := r.tx.ExecContext(ctx, `DELETE FROM signing_keys WHERE publish_until <= ?`, formatTime(now)); err != nil {
		return fmt.Errorf("delete expired signing keys: %w", classify(err))
	}
	return nil
}
