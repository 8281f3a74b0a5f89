package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/rampart-ml/rampart/internal/store"
)

// models implements store.Models on the models, model_versions,
// model_files and unsigned_domains tables (migration 0008).
type models struct {
	tx *sql.Tx
}

var _ store.Models = models{}

// signerKeys implements store.SignerKeys on the signer_keys table.
type signerKeys struct {
	tx *sql.Tx
}

var _ store.SignerKeys = signerKeys{}

// parseTime reads a time column written by formatTime.
func parseTime(what, s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%s: %w", what, err)
	}
	return t, nil
}

func (r models) CreateModel(ctx context.Context, m store.Model) error {
	_, err := r.tx.ExecContext(ctx, `INSERT INTO models (id, domain, title, description, created_by, created_at)
		VALUES (?, ?, ?, ?, ?, ?)`, m.ID, m.Domain, m.Title, m.Description, m.CreatedBy, formatTime(m.CreatedAt))
	switch {
	case isUniqueViolation(err):
		return fmt.Errorf("create model %s: %w", m.ID, store.ErrConflict)
	case isTriggerViolation(err):
		return fmt.Errorf("create model %s: domain %s: %w", m.ID, m.Domain, store.ErrNotFound)
	case err != nil:
		return fmt.Errorf("create model %s: %w", m.ID, classify(err))
	}
	return nil
}

const modelColumns = `id, domain, title, description, created_by, created_at`

func scanModel(row rowScanner) (store.Model, error) {
	var (
		m       store.Model
		created string
	)
	if err := row.Scan(&m.ID, &m.Domain, &m.Title, &m.Description, &m.CreatedBy, &created); err != nil {
		return store.Model{}, err
	}
	var err error
	m.CreatedAt, err = parseTime("model "+m.ID+": created_at", created)
	return m, err
}

func (r models) ModelByID(ctx context.Context, id string) (store.Model, error) {
	m, err := scanModel(r.tx.QueryRowContext(ctx, `SELECT `+modelColumns+` FROM models WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return store.Model{}, fmt.Errorf("model %s: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return store.Model{}, fmt.Errorf("model %s: %w", id, classify(err))
	}
	return m, nil
}

func (r models) ListModels(ctx context.Context) ([]store.Model, error) {
	return queryAll(ctx, r.tx, "list models", scanModel, `SELECT `+modelColumns+` FROM models ORDER BY id`)
}

func (r models) UpdateModel(ctx context.Context, m store.Model) error {
	res, err := r.tx.ExecContext(ctx, `UPDATE models SET title = ?, description = ? WHERE id = ?`, m.Title, m.Description, m.ID)
	return rowsChanged(res, err, "update model "+m.ID)
}

func (r models) DeleteModel(ctx context.Context, id string) error {
	res, err := r.tx.ExecContext(ctx, `DELETE FROM models WHERE id = ?`, id)
	// ON DELETE RESTRICT reports as a trigger constraint in SQLite.
	if isForeignKeyViolation(err) || isTriggerViolation(err) {
		return fmt.Errorf("delete model %s: it has versions: %w", id, store.ErrConflict)
	}
	return rowsChanged(res, err, "delete model "+id)
}

func (r models) CreateModelVersion(ctx context.Context, v store.ModelVersion) error {
	_, err := r.tx.ExecContext(ctx, `INSERT INTO model_versions (model_id, version, state, state_reason,
		model_file, subject_digest, signed, signer_key_id, verified_at, metadata, created_by, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		v.ModelID, v.Version, v.State, v.StateReason, v.ModelFile, v.SubjectDigest, v.Signed, v.SignerKeyID,
		formatTime(v.VerifiedAt), v.Metadata, v.CreatedBy, formatTime(v.CreatedAt))
	switch {
	case isUniqueViolation(err):
		return fmt.Errorf("create version %s of %s: %w", v.Version, v.ModelID, store.ErrConflict)
	case isForeignKeyViolation(err):
		return fmt.Errorf("create version %s of %s: model: %w", v.Version, v.ModelID, store.ErrNotFound)
	case err != nil:
		return fmt.Errorf("create version %s of %s: %w", v.Version, v.ModelID, classify(err))
	}
	for _, f := range v.Files {
		_, err := r.tx.ExecContext(ctx, `INSERT INTO model_files (model_id, version, path, size, digest)
			VALUES (?, ?, ?, ?, ?)`, v.ModelID, v.Version, f.Path, f.Size, f.Digest)
		if isUniqueViolation(err) {
			return fmt.Errorf("create version %s of %s: file listed twice: %w", v.Version, v.ModelID, store.ErrConflict)
		}
		if err != nil {
			return fmt.Errorf("create version %s of %s: file: %w", v.Version, v.ModelID, classify(err))
		}
	}
	return nil
}

const versionColumns = `model_id, version, state, state_reason, model_file, subject_digest, signed,
	signer_key_id, verified_at, metadata, created_by, created_at`

func scanVersion(row rowScanner) (store.ModelVersion, error) {
	var (
		v                 store.ModelVersion
		verified, created string
	)
	err := row.Scan(&v.ModelID, &v.Version, &v.State, &v.StateReason, &v.ModelFile, &v.SubjectDigest, &v.Signed,
		&v.SignerKeyID, &verified, &v.Metadata, &v.CreatedBy, &created)
	if err != nil {
		return store.ModelVersion{}, err
	}
	if v.VerifiedAt, err = parseTime("verified_at", verified); err != nil {
		return store.ModelVersion{}, err
	}
	v.CreatedAt, err = parseTime("created_at", created)
	return v, err
}

func (r models) ModelVersion(ctx context.Context, modelID, version string) (store.ModelVersion, error) {
	v, err := scanVersion(r.tx.QueryRowContext(ctx, `SELECT `+versionColumns+` FROM model_versions
		WHERE model_id = ? AND version = ?`, modelID, version))
	if errors.Is(err, sql.ErrNoRows) {
		return store.ModelVersion{}, fmt.Errorf("version %s of %s: %w", version, modelID, store.ErrNotFound)
	}
	if err != nil {
		return store.ModelVersion{}, fmt.Errorf("version %s of %s: %w", version, modelID, classify(err))
	}
	rows, err := r.tx.QueryContext(ctx, `SELECT path, size, digest FROM model_files
		WHERE model_id = ? AND version = ? ORDER BY path`, modelID, version)
	if err != nil {
		return store.ModelVersion{}, fmt.Errorf("files of version %s of %s: %w", version, modelID, classify(err))
	}
	defer rows.Close()
	for rows.Next() {
		var f store.ModelFile
		if err := rows.Scan(&f.Path, &f.Size, &f.Digest); err != nil {
			return store.ModelVersion{}, fmt.Errorf("files of version %s of %s: %w", version, modelID, classify(err))
		}
		v.Files = append(v.Files, f)
	}
	if err := rows.Err(); err != nil {
		return store.ModelVersion{}, fmt.Errorf("files of version %s of %s: %w", version, modelID, classify(err))
	}
	return v, nil
}

func (r models) ListModelVersions(ctx context.Context, modelID string) ([]store.ModelVersion, error) {
	return queryAll(ctx, r.tx, "versions of "+modelID, scanVersion, `SELECT `+versionColumns+` FROM model_versions
		WHERE model_id = ? ORDER BY created_at, version`, modelID)
}

func (r models) SetModelVersionState(ctx context.Context, modelID, version, state, reason string) error {
	res, err := r.tx.ExecContext(ctx, `UPDATE model_versions SET state = ?, state_reason = ?
		WHERE model_id = ? AND version = ?`, state, reason, modelID, version)
	return rowsChanged(res, err, "set the state of version "+version+" of "+modelID)
}

func (r models) DeleteModelVersion(ctx context.Context, modelID, version string) error {
	res, err := r.tx.ExecContext(ctx, `DELETE FROM model_versions WHERE model_id = ? AND version = ?`, modelID, version)
	// model_services references versions ON DELETE RESTRICT (migration
	// 0009), which SQLite may report as either kind of constraint.
	if isForeignKeyViolation(err) || isTriggerViolation(err) {
		return fmt.Errorf("delete version %s of %s: a model service deploys it: %w", version, modelID, store.ErrConflict)
	}
	return rowsChanged(res, err, "delete version "+version+" of "+modelID)
}

func (r models) CountFilesWithDigest(ctx context.Context, domain, digest string) (int, error) {
	var n int
	err := r.tx.QueryRowContext(ctx, `SELECT count(*) FROM model_files f JOIN models m ON m.id = f.model_id
		WHERE f.digest = ? AND m.domain = ?`, digest, domain).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("files with digest %s: %w", digest, classify(err))
	}
	return n, nil
}

func (r models) SetUnsignedAllowed(ctx context.Context, domain string, allowed bool, by string, at time.Time) error {
	if !allowed {
		_, err := r.tx.ExecContext(ctx, `DELETE FROM unsigned_domains WHERE domain = ?`, domain)
		if err != nil {
			return fmt.Errorf("unsigned admission for %s: %w", domain, classify(err))
		}
		return nil
	}
	_, err := r.tx.ExecContext(ctx, `INSERT INTO unsigned_domains (domain, set_by, set_at) VALUES (?, ?, ?)
		ON CONFLICT (domain) DO NOTHING`, domain, by, formatTime(at))
	if isTriggerViolation(err) {
		return fmt.Errorf("unsigned admission for %s: %w", domain, store.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("unsigned admission for %s: %w", domain, classify(err))
	}
	return nil
}

func (r models) UnsignedAllowed(ctx context.Context) ([]string, error) {
	rows, err := r.tx.QueryContext(ctx, `SELECT domain FROM unsigned_domains ORDER BY domain`)
	if err != nil {
		return nil, fmt.Errorf("unsigned admission: %w", classify(err))
	}
	defer rows.Close()
	var list []string
	for rows.Next() {
		var d string
		if err := rows.Scan(&d); err != nil {
			return nil, fmt.Errorf("unsigned admission: %w", classify(err))
		}
		list = append(list, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("unsigned admission: %w", classify(err))
	}
	return list, nil
}

func (r signerKeys) AddSignerKey(ctx context.Context, k store.SignerKey) error {
	_, err := r.tx.ExecContext(ctx, `INSERT INTO signer_keys (id, domain, public_key, algorithm, description,
		not_before, not_after, revoked_at, created_by, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		k.ID, k.Domain, k.PublicKey, k.Algorithm, k.Description, formatTime(k.NotBefore), nullTime(k.NotAfter),
		nullTime(k.RevokedAt), k.CreatedBy, formatTime(k.CreatedAt))
	switch {
	case isUniqueViolation(err):
		return fmt.Errorf("add signer key %s: %w", k.ID, store.ErrConflict)
	case isTriggerViolation(err):
		return fmt.Errorf("add signer key %s: domain %s: %w", k.ID, k.Domain, store.ErrNotFound)
	case err != nil:
		return fmt.Errorf("add signer key %s: %w", k.ID, classify(err))
	}
	return nil
}

const signerKeyColumns = `id, domain, public_key, algorithm, description, not_before, not_after, revoked_at,
	created_by, created_at`

func scanSignerKey(row rowScanner) (store.SignerKey, error) {
	var (
		k                   store.SignerKey
		notBefore, created  string
		notAfter, revokedAt sql.NullString
	)
	err := row.Scan(&k.ID, &k.Domain, &k.PublicKey, &k.Algorithm, &k.Description, &notBefore, &notAfter, &revokedAt,
		&k.CreatedBy, &created)
	if err != nil {
		return store.SignerKey{}, err
	}
	if k.NotBefore, err = parseTime("not_before", notBefore); err != nil {
		return store.SignerKey{}, err
	}
	if k.NotAfter, err = parseNullTime(notAfter); err != nil {
		return store.SignerKey{}, fmt.Errorf("not_after: %w", err)
	}
	if k.RevokedAt, err = parseNullTime(revokedAt); err != nil {
		return store.SignerKey{}, fmt.Errorf("revoked_at: %w", err)
	}
	k.CreatedAt, err = parseTime("created_at", created)
	return k, err
}

func (r signerKeys) SignerKeyByID(ctx context.Context, id string) (store.SignerKey, error) {
	k, err := scanSignerKey(r.tx.QueryRowContext(ctx, `SELECT `+signerKeyColumns+` FROM signer_keys WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return store.SignerKey{}, fmt.Errorf("signer key %s: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return store.SignerKey{}, fmt.Errorf("signer key %s: %w", id, classify(err))
	}
	return k, nil
}

func (r signerKeys) ListSignerKeys(ctx context.Context) ([]store.SignerKey, error) {
	return queryAll(ctx, r.tx, "list signer keys", scanSignerKey, `SELECT `+signerKeyColumns+` FROM signer_keys ORDER BY domain, id`)
}

func (r signerKeys) RevokeSignerKey(ctx context.Context, id string, at time.Time) error {
	res, err := r.tx.ExecContext(ctx, `UPDATE signer_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL`,
		formatTime(at), id)
	err = rowsChanged(res, err, "revoke signer key "+id)
	if errors.Is(err, store.ErrNotFound) {
		if _, gerr := r.SignerKeyByID(ctx, id); gerr == nil {
			return fmt.Errorf("revoke signer key %s: revoked already: %w", id, store.ErrConflict)
		}
	}
	return err
}

func (r signerKeys) DeleteSignerKey(ctx context.Context, id string) error {
	res, err := r.tx.ExecContext(ctx, `DELETE FROM signer_keys WHERE id = ?`, id)
	if isTriggerViolation(err) {
		return fmt.Errorf("delete signer key %s: revoke it first: %w", id, store.ErrConflict)
	}
	return rowsChanged(res, err, "delete signer key "+id)
}
