package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/rampart-ml/rampart/internal/store"
)

// sessions implements store.Sessions on the sessions, refresh_tokens and
// revoked_tokens tables.
type sessions struct {
	tx *sql.Tx
}

var _ store.Sessions = sessions{}

// joinTokens stores a scope or AMR list space-separated (OAuth scope
// syntax). It refuses elements that would not split back to themselves.
func joinTokens(what string, list []string) (string, error) {
	for _, s := range list {
		if s == "" || strings.ContainsAny(s, " \t\r\n") {
			return "", fmt.Errorf("%s %q: empty or contains white space", what, s)
		}
	}
	return strings.Join(list, " "), nil
}

// splitTokens is the inverse of joinTokens; "" is nil.
func splitTokens(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, " ")
}

func (r sessions) CreateSession(ctx context.Context, s store.Session) error {
	scopes, err := joinTokens("scope", s.Scopes)
	if err != nil {
		return fmt.Errorf("create session %s: %w", s.ID, err)
	}
	amr, err := joinTokens("amr", s.AMR)
	if err != nil {
		return fmt.Errorf("create session %s: %w", s.ID, err)
	}
	_, err = r.tx.ExecContext(ctx, `INSERT INTO sessions
		(id, subject, client_id, scopes, amr, auth_time, expires_at, created_at, revoked_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		s.ID, s.Subject, s.ClientID, scopes, amr, formatTime(s.AuthTime), formatTime(s.ExpiresAt),
		formatTime(s.CreatedAt), nullTime(s.RevokedAt))
	if isUniqueViolation(err) {
		return fmt.Errorf("create session %s: %w", s.ID, store.ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("create session %s: %w", s.ID, classify(err))
	}
	return nil
}

func (r sessions) SessionByID(ctx context.Context, id string) (store.Session, error) {
	var (
		s                          store.Session
		scopes, amr                string
		authTime, expires, created string
		revoked                    sql.NullString
	)
	err := r.tx.QueryRowContext(ctx, `SELECT id, subject, client_id, scopes, amr, auth_time, expires_at, created_at, revoked_at
		FROM sessions WHERE id = ?`, id).
		Scan(&s.ID, &s.Subject, &s.ClientID, &scopes, &amr, &authTime, &expires, &created, &revoked)
	if errors.Is(err, sql.ErrNoRows) {
		return store.Session{}, fmt.Errorf("session %s: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return store.Session{}, fmt.Errorf("session %s: %w", id, classify(err))
	}
	s.Scopes, s.AMR = splitTokens(scopes), splitTokens(amr)
	for _, f := range []struct {
		dst *time.Time
		src string
	}{{&s.AuthTime, authTime}, {&s.ExpiresAt, expires}, {&s.CreatedAt, created}} {
		if *f.dst, err = time.Parse(time.RFC3339Nano, f.src); err != nil {
			return store.Session{}, fmt.Errorf("session %s: %w", id, err)
		}
	}
	if s.RevokedAt, err = parseNullTime(revoked); err != nil {
		return store.Session{}, fmt.Errorf("session %s: %w", id, err)
	}
	return s, nil
}

func (r sessions) RevokeSession(ctx context.Context, id string, at time.Time) error {
	// COALESCE keeps the first revocation time; the row still counts as
	// changed, so an already revoked session is not reported missing.
	res, err := r.tx.ExecContext(ctx, `UPDATE sessions SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ?`,
		formatTime(at), id)
	return rowsChanged(res, err, "revoke session "+id)
}

func (r sessions) RevokeSessionsOf(ctx context.Context, subject string, at time.Time) ([]string, error) {
	rows, err := r.tx.QueryContext(ctx, `UPDATE sessions SET revoked_at = ?
		WHERE subject = ? AND revoked_at IS NULL RETURNING id`, formatTime(at), subject)
	if err != nil {
		return nil, fmt.Errorf("revoke sessions of %s: %w", subject, classify(err))
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("revoke sessions of %s: %w", subject, classify(err))
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("revoke sessions of %s: %w", subject, classify(err))
	}
	slices.Sort(ids) // RETURNING has no defined order
	return ids, nil
}

// Refresh tokens are identified by their hash, which is kept out of errors:
// it is not the token, but neither is it anyone's business in a log.

func (r sessions) CreateRefreshToken(ctx context.Context, t store.RefreshToken) error {
	_, err := r.tx.ExecContext(ctx, `INSERT INTO refresh_tokens
		(hash, session_id, created_at, expires_at, used_at) VALUES (?, ?, ?, ?, ?)`,
		t.Hash, t.SessionID, formatTime(t.CreatedAt), formatTime(t.ExpiresAt), nullTime(t.UsedAt))
	switch {
	case isUniqueViolation(err):
		return fmt.Errorf("create refresh token of session %s: hash taken: %w", t.SessionID, store.ErrConflict)
	case isForeignKeyViolation(err):
		return fmt.Errorf("create refresh token: session %s: %w", t.SessionID, store.ErrNotFound)
	case err != nil:
		return fmt.Errorf("create refresh token of session %s: %w", t.SessionID, classify(err))
	}
	return nil
}

func (r sessions) RefreshTokenByHash(ctx context.Context, hash []byte) (store.RefreshToken, error) {
	var (
		t                store.RefreshToken
		created, expires string
		used             sql.NullString
	)
	err := r.tx.QueryRowContext(ctx, `SELECT hash, session_id, created_at, expires_at, used_at
		FROM refresh_tokens WHERE hash = ?`, hash).
		Scan(&t.Hash, &t.SessionID, &created, &expires, &used)
	if errors.Is(err, sql.ErrNoRows) {
		return store.RefreshToken{}, fmt.Errorf("refresh token: %w", store.ErrNotFound)
	}
	if err != nil {
		return store.RefreshToken{}, fmt.Errorf("refresh token: %w", classify(err))
	}
	if t.CreatedAt, err = time.Parse(time.RFC3339Nano, created); err == nil {
		if t.ExpiresAt, err = time.Parse(time.RFC3339Nano, expires); err == nil {
			t.UsedAt, err = parseNullTime(used)
		}
	}
	if err != nil {
		return store.RefreshToken{}, fmt.Errorf("refresh token of session %s: %w", t.SessionID, err)
	}
	return t, nil
}

func (r sessions) UseRefreshToken(ctx context.Context, hash []byte, at time.Time) error {
	// One conditional UPDATE, so two concurrent exchanges of the same token
	// cannot both succeed whatever the isolation level.
	res, err := r.tx.ExecContext(ctx, `UPDATE refresh_tokens SET used_at = ? WHERE hash = ? AND used_at IS NULL`,
		formatTime(at), hash)
	if err != nil {
		return fmt.Errorf("use refresh token: %w", classify(err))
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("use refresh token: %w", err)
	}
	if n == 1 {
		return nil
	}
	var exists bool
	err = r.tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM refresh_tokens WHERE hash = ?)`, hash).Scan(&exists)
	switch {
	case err != nil:
		return fmt.Errorf("use refresh token: %w", classify(err))
	case exists:
		return fmt.Errorf("use refresh token: already used: %w", store.ErrConflict)
	default:
		return fmt.Errorf("use refresh token: %w", store.ErrNotFound)
	}
}

func (r sessions) RevokeAccessToken(ctx context.Context, t store.RevokedToken) error {
	// Revoking twice keeps the later expiry, so the revocation outlives the token.
	_, err := r.tx.ExecContext(ctx, `INSERT INTO revoked_tokens (id, expires_at) VALUES (?, ?)
		ON CONFLICT (id) DO UPDATE SET expires_at = MAX(expires_at, excluded.expires_at)`,
		t.ID, formatTime(t.ExpiresAt))
	if err != nil {
		return fmt.Errorf("revoke access token %s: %w", t.ID, classify(err))
	}
	return nil
}

func (r sessions) Revocations(ctx context.Context, now time.Time) ([]store.RevokedToken, []store.RevokedToken, error) {
	tokens, err := r.revoked(ctx, `SELECT id, expires_at FROM revoked_tokens
		WHERE expires_at > ? ORDER BY expires_at, id`, now)
	if err != nil {
		return nil, nil, fmt.Errorf("revoked access tokens: %w", err)
	}
	revokedSessions, err := r.revoked(ctx, `SELECT id, expires_at FROM sessions
		WHERE revoked_at IS NOT NULL AND expires_at > ? ORDER BY expires_at, id`, now)
	if err != nil {
		return nil, nil, fmt.Errorf("revoked sessions: %w", err)
	}
	return tokens, revokedSessions, nil
}

// revoked runs query, which selects id and expires_at after now.
func (r sessions) revoked(ctx context.Context, query string, now time.Time) ([]store.RevokedToken, error) {
	rows, err := r.tx.QueryContext(ctx, query, formatTime(now))
	if err != nil {
		return nil, classify(err)
	}
	defer rows.Close()
	var list []store.RevokedToken
	for rows.Next() {
		var (
			t       store.RevokedToken
			expires string
		)
		if err := rows.Scan(&t.ID, &expires); err != nil {
			return nil, classify(err)
		}
		if t.ExpiresAt, err = time.Parse(time.RFC3339Nano, expires); err != nil {
			return nil, fmt.Errorf("%s: %w", t.ID, err)
		}
		list = append(list, t)
	}
	if err := rows.Err(); err != nil {
		return nil, classify(err)
	}
	return list, nil
}

func (r sessions) DeleteExpiredSessions(ctx context.Context, now time.Time) error {
	// Refresh tokens go with their session (ON DELETE CASCADE).
	if _, err := r.tx.ExecContext(ctx, `DELETE FROM sessions WHERE expires_at < ?`, formatTime(now)); err != nil {
		return fmt.Errorf("delete expired sessions: %w", classify(err))
	}
	if _, err := r.tx.ExecContext(ctx, `DELETE FROM revoked_tokens WHERE expires_at < ?`, formatTime(now)); err != nil {
		return fmt.Errorf("delete expired revoked tokens: %w", classify(err))
	}
	return nil
}
