package sqlite

import (
	"context"
	"database/sql"
	"fmt"
)

// rowScanner is what a *sql.Row and *sql.Rows have in common.
type rowScanner = interface{ Scan(...any) error }

// queryAll runs query in tx and scans every row with scan. Every error is
// classified and prefixed with what ("list models"); no row is a nil
// slice, not an error.
func queryAll[T any](ctx context.Context, tx *sql.Tx, what string, scan func(rowScanner) (T, error), query string, args ...any) ([]T, error) {
	rows, err := tx.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, classify(err))
	}
	defer rows.Close()
	var list []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, classify(err))
		}
		list = append(list, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", what, classify(err))
	}
	return list, nil
}
