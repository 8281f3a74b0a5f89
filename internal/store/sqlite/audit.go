package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"net/url"
	"os"
	"time"

	"github.com/rampart-ml/rampart/internal/store"
)

// audit implements store.Audit on the audit_records, audit_checkpoints and
// pseudonym_secrets tables (migrations 0006 and 0007). The event is kept as columns,
// one per field of store.AuditRecord, times as text in timeLayout.
type audit struct {
	tx    *sql.Tx
	stmts *stmtCache
}

var _ store.Audit = audit{}

// auditRecordColumns are the columns scanAuditRecord reads, in its order.
const auditRecordColumns = `seq, time, actor, actor_kind, source, action, target_kind,
	target_domain, target_id, outcome, reason, request_id, prev_hash, hash`

// The statements on the path of every audited change, prepared once when
// the store opens (see stmtCache).
const (
	// The insert takes place only if the record links to the head: its
	// prev_hash (?13) is the hash of the last record (the genesis hash of
	// zeros for an empty log) and its seq (?1) the next one.
	insertAuditRecord = `INSERT INTO audit_records (` + auditRecordColumns + `)
		SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14
		WHERE ?13 = COALESCE((SELECT hash FROM audit_records ORDER BY seq DESC LIMIT 1), zeroblob(32))
		AND ?1 = COALESCE((SELECT max(seq) FROM audit_records), 0) + 1`
	selectAuditHead       = `SELECT ` + auditRecordColumns + ` FROM audit_records ORDER BY seq DESC LIMIT 1`
	selectAuditHeadLink   = `SELECT seq, hash FROM audit_records ORDER BY seq DESC LIMIT 1`
	selectPseudonymSecret = `SELECT secret FROM pseudonym_secrets WHERE subject_id = ?`
)

// hotStatements are prepared by Open and OpenReadOnly.
var hotStatements = []string{insertAuditRecord, selectAuditHead, selectAuditHeadLink, selectPseudonymSecret}

// seqArg converts a sequence number for SQLite, whose integers are int64.
func seqArg(seq uint64) (int64, error) {
	if seq > math.MaxInt64 {
		return 0, fmt.Errorf("audit sequence number %d is out of range", seq)
	}
	return int64(seq), nil
}

func scanAuditRecord(row rowScanner) (store.AuditRecord, error) {
	var (
		r   store.AuditRecord
		seq int64
		at  string
	)
	err := row.Scan(&seq, &at, &r.Actor, &r.ActorKind, &r.Source, &r.Action, &r.TargetKind,
		&r.TargetDomain, &r.TargetID, &r.Outcome, &r.Reason, &r.RequestID, &r.PrevHash, &r.Hash)
	if err != nil {
		return store.AuditRecord{}, err
	}
	if seq < 0 { // the CHECK refuses it; a hand-edited file may not have it
		return store.AuditRecord{}, fmt.Errorf("audit record %d: negative sequence number", seq)
	}
	r.Seq = uint64(seq)
	// A time that does not parse is reported as the zero time rather than
	// as an error, so that a verifier names this record as the bad one
	// (its hash no longer matches) instead of failing to read the log.
	if r.Time, err = time.Parse(time.RFC3339Nano, at); err != nil {
		r.Time = time.Time{}
	}
	return r, nil
}

func (r audit) AppendAuditRecord(ctx context.Context, rec store.AuditRecord) error {
	stmt, err := r.stmts.in(ctx, r.tx, insertAuditRecord)
	if err != nil {
		return fmt.Errorf("append audit record %d: %w", rec.Seq, err)
	}
	return insertLinked(ctx, stmt, rec)
}

// insertLinked runs insertAuditRecord for rec: ErrConflict if rec does
// not link to the head, or its seq is taken.
func insertLinked(ctx context.Context, stmt *sql.Stmt, rec store.AuditRecord) error {
	seq, err := seqArg(rec.Seq)
	if err != nil {
		return err
	}
	res, err := stmt.ExecContext(ctx,
		seq, formatTime(rec.Time), rec.Actor, rec.ActorKind, rec.Source, rec.Action, rec.TargetKind,
		rec.TargetDomain, rec.TargetID, rec.Outcome, rec.Reason, rec.RequestID,
		notNullBlob(rec.PrevHash), notNullBlob(rec.Hash))
	// The schema's audit_records_no_replace trigger fires before the
	// primary key is checked; it refuses nothing but an existing seq.
	if isUniqueViolation(err) || isTriggerViolation(err) {
		return fmt.Errorf("append audit record %d: %w", rec.Seq, store.ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("append audit record %d: %w", rec.Seq, classify(err))
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return fmt.Errorf("append audit record %d: it does not link to the last record: %w", rec.Seq, store.ErrConflict)
	}
	return nil
}

// notNullBlob stores a nil slice as an empty blob, not as NULL.
func notNullBlob(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

func (r audit) AuditHead(ctx context.Context) (store.AuditRecord, bool, error) {
	stmt, err := r.stmts.in(ctx, r.tx, selectAuditHead)
	if err != nil {
		return store.AuditRecord{}, false, fmt.Errorf("audit head: %w", err)
	}
	rec, err := scanAuditRecord(stmt.QueryRowContext(ctx))
	if errors.Is(err, sql.ErrNoRows) {
		return store.AuditRecord{}, false, nil
	}
	if err != nil {
		return store.AuditRecord{}, false, fmt.Errorf("audit head: %w", classify(err))
	}
	return rec, true, nil
}

func (r audit) AuditHeadLink(ctx context.Context) (uint64, []byte, bool, error) {
	stmt, err := r.stmts.in(ctx, r.tx, selectAuditHeadLink)
	if err != nil {
		return 0, nil, false, fmt.Errorf("audit head: %w", err)
	}
	var (
		seq  int64
		hash []byte
	)
	err = stmt.QueryRowContext(ctx).Scan(&seq, &hash)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil, false, nil
	}
	if err != nil {
		return 0, nil, false, fmt.Errorf("audit head: %w", classify(err))
	}
	if seq < 0 {
		return 0, nil, false, fmt.Errorf("audit head: negative sequence number %d", seq)
	}
	return uint64(seq), hash, true, nil
}

func (r audit) AuditRecords(ctx context.Context, afterSeq uint64, limit int) ([]store.AuditRecord, error) {
	if limit <= 0 {
		return nil, fmt.Errorf("audit records: limit %d must be positive", limit)
	}
	after, err := seqArg(afterSeq)
	if err != nil {
		return nil, nil // nothing can follow the largest sequence number
	}
	rows, err := r.tx.QueryContext(ctx, `SELECT `+auditRecordColumns+` FROM audit_records
		WHERE seq > ? ORDER BY seq LIMIT ?`, after, limit)
	if err != nil {
		return nil, fmt.Errorf("audit records after %d: %w", afterSeq, classify(err))
	}
	defer rows.Close()
	list := make([]store.AuditRecord, 0, min(limit, 1024))
	for rows.Next() {
		rec, err := scanAuditRecord(rows)
		if err != nil {
			return nil, fmt.Errorf("audit records after %d: %w", afterSeq, classify(err))
		}
		list = append(list, rec)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("audit records after %d: %w", afterSeq, classify(err))
	}
	return list, nil
}

func (r audit) AddAuditCheckpoint(ctx context.Context, c store.AuditCheckpoint) error {
	seq, err := seqArg(c.Seq)
	if err != nil {
		return err
	}
	_, err = r.tx.ExecContext(ctx, `INSERT INTO audit_checkpoints (seq, head, kind, time, signature)
		VALUES (?, ?, ?, ?, ?)`, seq, notNullBlob(c.Head), c.Kind, formatTime(c.Time), notNullBlob(c.Signature))
	if isTriggerViolation(err) {
		return fmt.Errorf("add audit checkpoint at %d: a prune checkpoint must sign an existing record: %w", c.Seq, store.ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("add audit checkpoint at %d: %w", c.Seq, classify(err))
	}
	return nil
}

func (r audit) AuditCheckpoints(ctx context.Context) ([]store.AuditCheckpoint, error) {
	rows, err := r.tx.QueryContext(ctx, `SELECT seq, head, kind, time, signature
		FROM audit_checkpoints ORDER BY seq, id`)
	if err != nil {
		return nil, fmt.Errorf("audit checkpoints: %w", classify(err))
	}
	defer rows.Close()
	var list []store.AuditCheckpoint
	for rows.Next() {
		var (
			c   store.AuditCheckpoint
			seq int64
			at  string
		)
		if err := rows.Scan(&seq, &c.Head, &c.Kind, &at, &c.Signature); err != nil {
			return nil, fmt.Errorf("audit checkpoints: %w", classify(err))
		}
		if seq < 0 {
			return nil, fmt.Errorf("audit checkpoint: negative sequence number %d", seq)
		}
		c.Seq = uint64(seq)
		// As for records: a bad time fails the signature, not the read.
		if c.Time, err = time.Parse(time.RFC3339Nano, at); err != nil {
			c.Time = time.Time{}
		}
		list = append(list, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("audit checkpoints: %w", classify(err))
	}
	return list, nil
}

func (r audit) SetPseudonymSecret(ctx context.Context, subjectID, pseudonym string, secret []byte) error {
	if subjectID == "" || pseudonym == "" || len(secret) == 0 {
		return errors.New("set pseudonym secret: empty subject, pseudonym or secret")
	}
	_, err := r.tx.ExecContext(ctx, `INSERT INTO pseudonym_secrets (subject_id, pseudonym, secret) VALUES (?, ?, ?)`,
		subjectID, pseudonym, secret)
	if isUniqueViolation(err) {
		return fmt.Errorf("set pseudonym secret: %w", store.ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("set pseudonym secret: %w", classify(err))
	}
	return nil
}

func (r audit) SubjectByPseudonym(ctx context.Context, pseudonym string) (string, error) {
	var subject string
	err := r.tx.QueryRowContext(ctx, `SELECT subject_id FROM pseudonym_secrets WHERE pseudonym = ?`, pseudonym).Scan(&subject)
	if errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("pseudonym %s: %w", pseudonym, store.ErrNotFound)
	}
	if err != nil {
		return "", fmt.Errorf("pseudonym %s: %w", pseudonym, classify(err))
	}
	return subject, nil
}

func (r audit) FindAuditRecords(ctx context.Context, q store.AuditQuery) ([]store.AuditRecord, error) {
	if q.Limit <= 0 {
		return nil, fmt.Errorf("find audit records: limit %d must be positive", q.Limit)
	}
	after, err := seqArg(q.AfterSeq)
	if err != nil {
		return nil, nil // nothing can follow the largest sequence number
	}
	query, args := `SELECT `+auditRecordColumns+` FROM audit_records WHERE seq > ?`, []any{after}
	if !q.Since.IsZero() {
		query, args = query+` AND time >= ?`, append(args, formatTime(q.Since))
	}
	if q.Subject != "" {
		query, args = query+` AND (actor = ? OR target_id = ?)`, append(args, q.Subject, q.Subject)
	}
	rows, err := r.tx.QueryContext(ctx, query+` ORDER BY seq LIMIT ?`, append(args, q.Limit)...)
	if err != nil {
		return nil, fmt.Errorf("find audit records: %w", classify(err))
	}
	defer rows.Close()
	var list []store.AuditRecord
	for rows.Next() {
		rec, err := scanAuditRecord(rows)
		if err != nil {
			return nil, fmt.Errorf("find audit records: %w", classify(err))
		}
		list = append(list, rec)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("find audit records: %w", classify(err))
	}
	return list, nil
}

func (r audit) FirstAuditSeqAt(ctx context.Context, t time.Time) (uint64, bool, error) {
	var seq sql.NullInt64
	err := r.tx.QueryRowContext(ctx, `SELECT min(seq) FROM audit_records WHERE time >= ?`, formatTime(t)).Scan(&seq)
	if err != nil {
		return 0, false, fmt.Errorf("first audit record at %v: %w", t, classify(err))
	}
	if !seq.Valid || seq.Int64 < 0 {
		return 0, false, nil
	}
	return uint64(seq.Int64), true, nil
}

func (r audit) PruneAuditRecords(ctx context.Context, throughSeq uint64) (int64, error) {
	through, err := seqArg(throughSeq)
	if err != nil {
		return 0, err
	}
	res, err := r.tx.ExecContext(ctx, `DELETE FROM audit_records WHERE seq <= ?`, through)
	if isTriggerViolation(err) {
		return 0, fmt.Errorf("prune audit records through %d: no prune checkpoint covers them: %w", throughSeq, store.ErrConflict)
	}
	if err != nil {
		return 0, fmt.Errorf("prune audit records through %d: %w", throughSeq, classify(err))
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("prune audit records through %d: %w", throughSeq, classify(err))
	}
	return n, nil
}

func (r audit) PseudonymSecret(ctx context.Context, subjectID string) ([]byte, error) {
	var secret []byte
	stmt, err := r.stmts.in(ctx, r.tx, selectPseudonymSecret)
	if err != nil {
		return nil, fmt.Errorf("pseudonym secret: %w", err)
	}
	err = stmt.QueryRowContext(ctx, subjectID).Scan(&secret)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("pseudonym secret: %w", store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("pseudonym secret: %w", classify(err))
	}
	return secret, nil
}

func (r audit) AddErasedSubject(ctx context.Context, tag []byte) error {
	if len(tag) != 32 {
		return fmt.Errorf("add erased subject: tag of %d bytes, want 32", len(tag))
	}
	_, err := r.tx.ExecContext(ctx, `INSERT INTO erased_subjects (tag) VALUES (?) ON CONFLICT DO NOTHING`, tag)
	if err != nil {
		return fmt.Errorf("add erased subject: %w", classify(err))
	}
	return nil
}

func (r audit) IsErasedSubject(ctx context.Context, tag []byte) (bool, error) {
	var one int
	err := r.tx.QueryRowContext(ctx, `SELECT 1 FROM erased_subjects WHERE tag = ?`, tag).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("erased subject: %w", classify(err))
	}
	return true, nil
}

func (r audit) DeletePseudonymSecret(ctx context.Context, subjectID string) error {
	res, err := r.tx.ExecContext(ctx, `DELETE FROM pseudonym_secrets WHERE subject_id = ?`, subjectID)
	return rowsChanged(res, err, "delete pseudonym secret")
}

// OpenReadOnly opens an existing database for reading only, for offline
// tools such as `rampart audit verify`. It neither creates the file nor
// migrates it, so the database must be at exactly this binary's schema
// version. It takes no lock: under WAL it may read while a server writes,
// each transaction seeing a consistent snapshot. InTx transactions are
// deferred (they never take the write lock) and any write fails.
func OpenReadOnly(ctx context.Context, path string) (*Store, error) {
	if path == "" {
		return nil, errors.New("open database: empty path")
	}
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("open database: %w", err) // *PathError names the path
	}
	name, err := dsn(path)
	if err != nil {
		return nil, err
	}
	u, err := url.Parse(name)
	if err != nil {
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	q := url.Values{}
	q.Set("mode", "ro")
	q.Add("_pragma", "busy_timeout(5000)")
	q.Add("_pragma", "query_only(1)")
	q.Set("_txlock", "deferred")
	u.RawQuery = q.Encode()
	db, err := sql.Open(driverName, u.String())
	if err != nil {
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	db.SetMaxOpenConns(maxOpenConns)
	db.SetMaxIdleConns(maxOpenConns)

	ms, err := loadMigrations(defaultMigrations())
	if err != nil {
		_ = db.Close()
		return nil, err
	}
	want := ms[len(ms)-1].version
	var version int
	err = db.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&version)
	switch {
	case err != nil:
		err = fmt.Errorf("open database %s read-only: %w", path, classify(err))
	case version > want:
		err = fmt.Errorf("open database %s: %w: it is at schema version %d, this binary supports up to %d; upgrade rampart",
			path, store.ErrSchemaTooNew, version, want)
	case version < want:
		err = fmt.Errorf("open database %s: it is at schema version %d, this binary expects %d; run this binary's rampart serve once to migrate it",
			path, version, want)
	}
	if err != nil {
		_ = db.Close()
		return nil, err
	}
	stmts, err := newStmtCache(ctx, db, hotStatements...)
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	return &Store{db: db, path: path, version: version, stmts: stmts}, nil
}

// AppendAuditRecords inserts recs, in order, with one prepared statement:
// for batches (the audit writer), where preparing the insert for every
// record would cost as much as the insert itself. ErrConflict if a seq
// is taken.
func (r audit) AppendAuditRecords(ctx context.Context, recs []store.AuditRecord) error {
	stmt, err := r.stmts.in(ctx, r.tx, insertAuditRecord)
	if err != nil {
		return fmt.Errorf("append audit records: %w", err)
	}
	defer stmt.Close()
	for _, rec := range recs {
		if err := insertLinked(ctx, stmt, rec); err != nil {
			return err
		}
	}
	return nil
}
