package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/rampart-ml/rampart/internal/store"
)

// sealedSecrets implements store.SealedSecrets over the tables that hold
// sealed values.
type sealedSecrets struct {
	tx *sql.Tx
}

var _ store.SealedSecrets = sealedSecrets{}

func (t *sqliteTx) SealedSecrets() store.SealedSecrets { return sealedSecrets{tx: t.tx} }

// secretColumns maps each kind to its table, owner column and value
// column. The names are constants, never input, so building the queries
// from them is safe.
var secretColumns = map[store.SecretKind]struct{ table, owner, value string }{
	store.SecretSigningKey: {"signing_keys", "id", "sealed_private"},
	store.SecretTOTP:       {"accounts", "id", "totp_secret"},
	store.SecretPseudonym:  {"pseudonym_secrets", "subject_id", "secret"},
}

func columnsOf(kind store.SecretKind) (table, owner, value string, err error) {
	c, ok := secretColumns[kind]
	if !ok {
		return "", "", "", fmt.Errorf("sealed secrets: unknown kind %q", kind)
	}
	return c.table, c.owner, c.value, nil
}

func (r sealedSecrets) ListSealedSecrets(ctx context.Context, kind store.SecretKind) ([]store.SealedSecret, error) {
	table, owner, value, err := columnsOf(kind)
	if err != nil {
		return nil, err
	}
	// #nosec G202 -- table and column names come from secretColumns, never from input
	rows, err := r.tx.QueryContext(ctx, `SELECT `+owner+`, `+value+` FROM `+table+
		` WHERE `+value+` IS NOT NULL ORDER BY `+owner)
	if err != nil {
		return nil, fmt.Errorf("list sealed %s secrets: %w", kind, classify(err))
	}
	defer rows.Close()
	var out []store.SealedSecret
	for rows.Next() {
		s := store.SealedSecret{Kind: kind}
		if err := rows.Scan(&s.Owner, &s.Sealed); err != nil {
			return nil, fmt.Errorf("list sealed %s secrets: %w", kind, classify(err))
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list sealed %s secrets: %w", kind, classify(err))
	}
	return out, nil
}

func (r sealedSecrets) ReplaceSealedSecret(ctx context.Context, s store.SealedSecret) error {
	table, owner, value, err := columnsOf(s.Kind)
	if err != nil {
		return err
	}
	if len(s.Sealed) == 0 {
		return fmt.Errorf("replace sealed %s secret of %s: empty value", s.Kind, s.Owner)
	}
	// #nosec G202 -- table and column names come from secretColumns, never from input
	res, err := r.tx.ExecContext(ctx, `UPDATE `+table+` SET `+value+` = ? WHERE `+owner+` = ? AND `+value+` IS NOT NULL`,
		s.Sealed, s.Owner)
	if err != nil {
		return fmt.Errorf("replace sealed %s secret of %s: %w", s.Kind, s.Owner, classify(err))
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("replace sealed %s secret of %s: %w", s.Kind, s.Owner, classify(err))
	} else if n == 0 {
		return fmt.Errorf("replace sealed %s secret of %s: %w", s.Kind, s.Owner, store.ErrNotFound)
	}
	return nil
}
