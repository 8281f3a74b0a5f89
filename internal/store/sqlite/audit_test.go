package sqlite

import (
	"context"
	"errors"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rampart-ml/rampart/internal/store"
)

func appendRecord(ctx context.Context, s store.Store, seq uint64) error {
	return s.InTx(ctx, func(tx store.Tx) error {
		return tx.Audit().AppendAuditRecord(ctx, store.AuditRecord{
			Seq: seq, Time: time.Now(), Actor: "rampart", ActorKind: "system", Action: "test",
			Outcome: "success", PrevHash: make([]byte, 32), Hash: make([]byte, 32),
		})
	})
}

// TestAuditAppendOnly: the schema refuses to change or delete records and
// checkpoints, whatever statement asks.
func TestAuditAppendOnly(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := openTemp(t)
	if err := appendRecord(ctx, s, 1); err != nil {
		t.Fatal(err)
	}
	if err := s.InTx(ctx, func(tx store.Tx) error {
		return tx.Audit().AddAuditCheckpoint(ctx, store.AuditCheckpoint{Seq: 1, Head: make([]byte, 32), Kind: "periodic", Time: time.Now(), Signature: []byte{1}})
	}); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`UPDATE audit_records SET outcome = 'failure'`,
		`UPDATE audit_records SET seq = 2`,
		`DELETE FROM audit_records WHERE seq = 1`,
		`DELETE FROM audit_records`,
		`INSERT OR REPLACE INTO audit_records SELECT * FROM audit_records`,
		`REPLACE INTO audit_records SELECT * FROM audit_records`,
		`INSERT INTO audit_records SELECT * FROM audit_records WHERE true ON CONFLICT (seq) DO UPDATE SET outcome = 'failure'`,
		`INSERT OR REPLACE INTO audit_checkpoints SELECT * FROM audit_checkpoints`,
		`UPDATE audit_checkpoints SET head = x'00'`,
		`DELETE FROM audit_checkpoints`,
	} {
		if _, err := s.db.ExecContext(ctx, q); err == nil || !strings.Contains(err.Error(), "append-only") {
			t.Errorf("%s: err = %v, want the append-only refusal", q, err)
		}
	}
}

func TestOpenReadOnly(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "rampart.db")
	w := openAt(t, path)
	if err := appendRecord(ctx, w, 1); err != nil {
		t.Fatal(err)
	}

	// Reads while the writer has the file open, and sees its later commits.
	r, err := OpenReadOnly(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := r.Ping(ctx); err != nil {
		t.Errorf("Ping: %v", err)
	}
	if err := appendRecord(ctx, w, 2); err != nil {
		t.Fatal(err)
	}
	err = r.InTx(ctx, func(tx store.Tx) error {
		head, ok, err := tx.Audit().AuditHead(ctx)
		if err != nil || !ok || head.Seq != 2 {
			t.Errorf("AuditHead = %d, %v, %v; want 2", head.Seq, ok, err)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	// Writes fail.
	if err := appendRecord(ctx, r, 3); err == nil {
		t.Error("a read-only store accepted a write")
	}
	// Its transactions do not take the write lock: the writer goes on.
	done := make(chan error, 1)
	err = r.InTx(ctx, func(tx store.Tx) error {
		go func() { done <- appendRecord(ctx, w, 3) }()
		select {
		case err := <-done:
			return err
		case <-time.After(3 * time.Second):
			return errors.New("the writer waited for a read-only transaction")
		}
	})
	if err != nil {
		t.Error(err)
	}

	// With the writer closed too.
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	r2, err := OpenReadOnly(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Close()
	if err := r2.Ping(ctx); err != nil {
		t.Errorf("Ping after the writer closed: %v", err)
	}
}

func TestOpenReadOnlyRefuses(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	if _, err := OpenReadOnly(ctx, filepath.Join(t.TempDir(), "none.db")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: err = %v, want ErrNotExist", err)
	}
	// A database at an older schema version is not migrated.
	old := filepath.Join(t.TempDir(), "old.db")
	s := openAt(t, old)
	if _, err := s.db.ExecContext(ctx, `DELETE FROM schema_migrations WHERE version = (SELECT MAX(version) FROM schema_migrations)`); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenReadOnly(ctx, old); err == nil || !strings.Contains(err.Error(), "migrate it") {
		t.Errorf("older schema: err = %v", err)
	}
	// A newer one is refused.
	if _, err := s.db.ExecContext(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES (9999, 'x')`); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenReadOnly(ctx, old); !errors.Is(err, store.ErrSchemaTooNew) {
		t.Errorf("newer schema: err = %v, want ErrSchemaTooNew", err)
	}
	// Not a database.
	if _, err := OpenReadOnly(ctx, "audit_test.go"); err == nil {
		t.Error("opened a Go file as a database")
	}
}

// TestAuditPruneTrigger: records at or below a prune checkpoint can be
// deleted; records above it cannot, by any statement.
func TestAuditPruneTrigger(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := openTemp(t)
	for seq := uint64(1); seq <= 4; seq++ {
		if err := appendRecord(ctx, s, seq); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.InTx(ctx, func(tx store.Tx) error {
		return tx.Audit().AddAuditCheckpoint(ctx, store.AuditCheckpoint{Seq: 2, Head: make([]byte, 32), Kind: "prune", Time: time.Now(), Signature: []byte{1}})
	}); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`DELETE FROM audit_records WHERE seq = 3`,
		`DELETE FROM audit_records`,
		`DELETE FROM audit_records WHERE seq >= 2`,
	} {
		if _, err := s.db.ExecContext(ctx, q); err == nil || !strings.Contains(err.Error(), "append-only") {
			t.Errorf("%s: err = %v, want the append-only refusal", q, err)
		}
	}
	var n int
	if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM audit_records`).Scan(&n); err != nil || n != 4 {
		t.Fatalf("%d records (%v) after refused deletes, want 4", n, err)
	}
	if _, err := s.db.ExecContext(ctx, `DELETE FROM audit_records WHERE seq <= 2`); err != nil {
		t.Fatalf("delete at and below the prune checkpoint: %v", err)
	}
	if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM audit_records`).Scan(&n); err != nil || n != 2 {
		t.Errorf("%d records (%v) after pruning, want 2", n, err)
	}
}

// TestAppendAuditRecords: the batch insert stores records as the single
// one does, and refuses a taken seq with ErrConflict.
func TestAppendAuditRecords(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := openTemp(t)
	if err := appendRecord(ctx, s, 1); err != nil {
		t.Fatal(err)
	}
	var recs []store.AuditRecord
	prev := make([]byte, 32) // record 1's hash
	for seq := uint64(2); seq <= 6; seq++ {
		recs = append(recs, store.AuditRecord{
			Seq: seq, Time: time.Date(2025, 1, 2, 3, 4, 5, int(seq), time.UTC), // #nosec G115 -- small
			Actor: "rampart", ActorKind: "system", Action: "test", Outcome: "success", Reason: "r",
			PrevHash: prev, Hash: []byte{byte(seq)}, // #nosec G115 -- small
		})
		prev = recs[len(recs)-1].Hash
	}
	err := s.InTx(ctx, func(tx store.Tx) error { return tx.Audit().(audit).AppendAuditRecords(ctx, recs) })
	if err != nil {
		t.Fatal(err)
	}
	err = s.InTx(ctx, func(tx store.Tx) error {
		got, err := tx.Audit().AuditRecords(ctx, 1, 10)
		if err != nil {
			return err
		}
		if len(got) != len(recs) {
			t.Fatalf("%d records, want %d", len(got), len(recs))
		}
		for i := range got {
			if got[i].Seq != recs[i].Seq || !got[i].Time.Equal(recs[i].Time) || got[i].Hash[0] != recs[i].Hash[0] || got[i].Reason != "r" {
				t.Errorf("record %d = %+v, want %+v", i, got[i], recs[i])
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	err = s.InTx(ctx, func(tx store.Tx) error { return tx.Audit().(audit).AppendAuditRecords(ctx, recs[4:]) })
	if !errors.Is(err, store.ErrConflict) {
		t.Errorf("a taken seq: err = %v, want ErrConflict", err)
	}
	// A record that does not link to the head is refused, whatever its seq.
	unlinked := recs[4]
	unlinked.Seq, unlinked.PrevHash = 7, make([]byte, 32)
	err = s.InTx(ctx, func(tx store.Tx) error { return tx.Audit().AppendAuditRecord(ctx, unlinked) })
	if !errors.Is(err, store.ErrConflict) {
		t.Errorf("an unlinked record: err = %v, want ErrConflict", err)
	}
	skipping := recs[4]
	skipping.Seq, skipping.PrevHash = 9, recs[4].Hash
	err = s.InTx(ctx, func(tx store.Tx) error { return tx.Audit().AppendAuditRecord(ctx, skipping) })
	if !errors.Is(err, store.ErrConflict) {
		t.Errorf("a record skipping seqs: err = %v, want ErrConflict", err)
	}
}
