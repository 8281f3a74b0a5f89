package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	sqlite3 "modernc.org/sqlite/lib"

	"github.com/rampart-ml/rampart/internal/store"
)

// domains implements store.Domains on the domains table.
type domains struct {
	tx *sql.Tx
}

var _ store.Domains = domains{}

// grants implements store.Grants on the grants and access_version tables.
type grants struct {
	tx *sql.Tx
}

var _ store.Grants = grants{}

// isTriggerViolation reports whether err is a RAISE(ABORT) in a trigger:
// the schema enforces the reference from grants to domains with triggers,
// because the wildcard domain "*" has no row to reference.
func isTriggerViolation(err error) bool {
	code, ok := sqliteCode(err)
	return ok && code == sqlite3.SQLITE_CONSTRAINT_TRIGGER
}

func (r domains) CreateDomain(ctx context.Context, d store.Domain) error {
	_, err := r.tx.ExecContext(ctx, `INSERT INTO domains (name, created_by, created_at) VALUES (?, ?, ?)`,
		d.Name, d.CreatedBy, formatTime(d.CreatedAt))
	if isUniqueViolation(err) {
		return fmt.Errorf("create domain %s: %w", d.Name, store.ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("create domain %s: %w", d.Name, classify(err))
	}
	return nil
}

func (r domains) ListDomains(ctx context.Context) ([]store.Domain, error) {
	rows, err := r.tx.QueryContext(ctx, `SELECT name, created_by, created_at FROM domains ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list domains: %w", classify(err))
	}
	defer rows.Close()
	var list []store.Domain
	for rows.Next() {
		var (
			d       store.Domain
			created string
		)
		if err := rows.Scan(&d.Name, &d.CreatedBy, &created); err != nil {
			return nil, fmt.Errorf("list domains: %w", classify(err))
		}
		if d.CreatedAt, err = time.Parse(time.RFC3339Nano, created); err != nil {
			return nil, fmt.Errorf("domain %s: created_at: %w", d.Name, err)
		}
		list = append(list, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list domains: %w", classify(err))
	}
	return list, nil
}

func (r domains) DomainExists(ctx context.Context, name string) (bool, error) {
	var exists bool
	err := r.tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM domains WHERE name = ?)`, name).Scan(&exists)
	if err != nil {
		return false, fmt.Errorf("domain %s exists: %w", name, classify(err))
	}
	return exists, nil
}

// DeleteDomain relies on the schema: a trigger refuses to delete a domain
// a grant names, and targets will reference domains with foreign keys.
func (r domains) DeleteDomain(ctx context.Context, name string) error {
	res, err := r.tx.ExecContext(ctx, `DELETE FROM domains WHERE name = ?`, name)
	if isTriggerViolation(err) || isForeignKeyViolation(err) {
		return fmt.Errorf("delete domain %s: it is in use: %w", name, store.ErrConflict)
	}
	return rowsChanged(res, err, "delete domain "+name)
}

// grantColumns are the columns scanGrant reads, in its order.
const grantColumns = `id, subject_kind, subject_id, domain, privilege, created_by, created_at`

func scanGrant(row rowScanner) (store.Grant, error) {
	var (
		g       store.Grant
		created string
	)
	if err := row.Scan(&g.ID, &g.SubjectKind, &g.SubjectID, &g.Domain, &g.Privilege, &g.CreatedBy, &created); err != nil {
		return store.Grant{}, err
	}
	var err error
	if g.CreatedAt, err = time.Parse(time.RFC3339Nano, created); err != nil {
		return store.Grant{}, fmt.Errorf("grant %s: created_at: %w", g.ID, err)
	}
	return g, nil
}

// CreateGrant relies on the schema: a trigger refuses a domain other than
// "*" that has no row (it fires before the uniqueness checks).
func (r grants) CreateGrant(ctx context.Context, g store.Grant) error {
	_, err := r.tx.ExecContext(ctx, `INSERT INTO grants
		(id, subject_kind, subject_id, domain, privilege, created_by, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		g.ID, g.SubjectKind, g.SubjectID, g.Domain, g.Privilege, g.CreatedBy, formatTime(g.CreatedAt))
	switch {
	case isUniqueViolation(err):
		return fmt.Errorf("create grant %s: id taken or %s %s already has a grant on %s: %w",
			g.ID, g.SubjectKind, g.SubjectID, g.Domain, store.ErrConflict)
	case isTriggerViolation(err):
		return fmt.Errorf("create grant %s: domain %s: %w", g.ID, g.Domain, store.ErrNotFound)
	case err != nil:
		return fmt.Errorf("create grant %s: %w", g.ID, classify(err))
	}
	return nil
}

func (r grants) ListGrants(ctx context.Context) ([]store.Grant, error) {
	return queryAll(ctx, r.tx, "list grants", scanGrant, `SELECT `+grantColumns+` FROM grants
		ORDER BY domain, subject_kind, subject_id`)
}

func (r grants) GrantByID(ctx context.Context, id string) (store.Grant, error) {
	g, err := scanGrant(r.tx.QueryRowContext(ctx, `SELECT `+grantColumns+` FROM grants WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return store.Grant{}, fmt.Errorf("grant %s: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return store.Grant{}, fmt.Errorf("grant %s: %w", id, classify(err))
	}
	return g, nil
}

func (r grants) DeleteGrant(ctx context.Context, id string) error {
	res, err := r.tx.ExecContext(ctx, `DELETE FROM grants WHERE id = ?`, id)
	return rowsChanged(res, err, "delete grant "+id)
}

func (r grants) DeleteGrantsOfSubject(ctx context.Context, kind, id string) (int, error) {
	res, err := r.tx.ExecContext(ctx, `DELETE FROM grants WHERE subject_kind = ? AND subject_id = ?`, kind, id)
	if err != nil {
		return 0, fmt.Errorf("delete grants of %s %s: %w", kind, id, classify(err))
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("delete grants of %s %s: %w", kind, id, err)
	}
	return int(n), nil
}

// AccessVersion reads the counter the schema's triggers maintain.
func (r grants) AccessVersion(ctx context.Context) (int64, error) {
	var v int64
	if err := r.tx.QueryRowContext(ctx, `SELECT version FROM access_version WHERE id = 1`).Scan(&v); err != nil {
		return 0, fmt.Errorf("access version: %w", classify(err))
	}
	return v, nil
}
