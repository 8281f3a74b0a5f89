package audit

import (
	"context"
	"crypto/ed25519"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rampart-ml/rampart/internal/store"
	"github.com/rampart-ml/rampart/internal/store/sqlite"
)

func TestVerifyEmptyLog(t *testing.T) {
	t.Parallel()
	st, _ := openStore(t)
	s := newSigner(t)
	rep, err := Verify(context.Background(), st, s.Public())
	if err != nil || rep.Records != 0 || rep.LastSeq != 0 {
		t.Fatalf("Verify of an empty log = %+v, %v", rep, err)
	}
	checkpoint(t, st, s, KindShutdown)
	if rep, err := Verify(context.Background(), st, s.Public()); err != nil || rep.Checkpoints != 1 {
		t.Fatalf("Verify of an empty log with a checkpoint = %+v, %v", rep, err)
	}
	if _, err := Verify(context.Background(), st, nil); err == nil {
		t.Error("Verify without a key: no error")
	}
	var ve *VerifyError
	if _, err := Verify(context.Background(), st, newSigner(t).Public()); !errors.As(err, &ve) || ve.Seq != 0 {
		t.Errorf("Verify with another key = %v, want a bad signature at 0", err)
	}
}

// Layout of the log the mutation test tampers with.
const (
	mutRecords = 200
	mutBatch   = 10 // records per transaction
)

// mutCheckpoints are the seqs signed, periodically and at the end.
var mutCheckpoints = []uint64{50, 100, 150, 200}

// writeMutationLog writes mutRecords records through Append and the
// checkpoints into a real SQLite store, closes it and returns the file, the
// records as written and the public key.
func writeMutationLog(t *testing.T) (string, []store.AuditRecord, ed25519.PublicKey) {
	t.Helper()
	s := newSigner(t)
	path, recs := writeLog(t, s, nil)
	return path, recs, s.Public()
}

// writeLog writes the mutation test's log with s, calls more (if not nil)
// with the open store, and closes it.
func writeLog(t *testing.T, s *Signer, more func(st store.Store)) (string, []store.AuditRecord) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "rampart.db")
	st, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	var recs []store.AuditRecord
	next := 0
	for i := 0; i < mutRecords; i += mutBatch {
		recs = append(recs, appendEvents(t, st, i, i+mutBatch)...)
		if next < len(mutCheckpoints) && uint64(len(recs)) == mutCheckpoints[next] {
			kind := KindPeriodic
			if next == len(mutCheckpoints)-1 {
				kind = KindShutdown
			}
			checkpoint(t, st, s, kind)
			next++
		}
	}
	rep, err := Verify(context.Background(), st, s.Public())
	if err != nil || rep.Records != mutRecords || rep.Checkpoints != len(mutCheckpoints) || rep.Unsigned != 0 {
		t.Fatalf("Verify of the intact log = %+v, %v", rep, err)
	}
	if more != nil {
		more(st)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	return path, recs
}

// mutation is one way an attacker with write access to the file changes
// the log; want is the seq Verify must name.
type mutation struct {
	name string
	sql  []string
	want uint64
}

var recordColumns = []string{"time", "actor", "actor_kind", "source", "action", "target_kind",
	"target_domain", "target_id", "outcome", "reason", "request_id", "prev_hash", "hash", "seq"}

// editColumn returns SQL that changes column of record seq.
func editColumn(column string, seq uint64) string {
	var set string
	switch column {
	case "time":
		set = `time = '2031-01-01T00:00:00.000000000Z'`
	case "prev_hash", "hash":
		set = column + ` = randomblob(32)`
	case "seq":
		set = `seq = 1000000`
	default:
		set = column + ` = ` + column + ` || 'x'`
	}
	return fmt.Sprintf(`UPDATE audit_records SET %s WHERE seq = %d`, set, seq)
}

// shift makes room for a record at seq by moving seq.. one up (as an
// attacker inserting a record in the middle would).
func shift(seq uint64) []string {
	return []string{
		fmt.Sprintf(`UPDATE audit_records SET seq = seq + 1000000 WHERE seq >= %d`, seq),
		`UPDATE audit_records SET seq = seq - 1000000 + 1 WHERE seq >= 1000000`,
	}
}

// insertRecord returns SQL that inserts r.
func insertRecord(r store.AuditRecord) string {
	return fmt.Sprintf(`INSERT INTO audit_records (seq, time, actor, actor_kind, source, action, target_kind,
		target_domain, target_id, outcome, reason, request_id, prev_hash, hash)
		VALUES (%d, '%s', '%s', '%s', '%s', '%s', '%s', '%s', '%s', '%s', '%s', '%s', x'%x', x'%x')`,
		r.Seq, r.Time.UTC().Format(timeLayout), r.Actor, r.ActorKind, r.Source, r.Action, r.TargetKind,
		r.TargetDomain, r.TargetID, r.Outcome, strings.ReplaceAll(r.Reason, "'", "''"), r.RequestID, r.PrevHash, r.Hash)
}

// swapContents exchanges every column in columns of records a and b
// (through a copy: an UPDATE's subquery would see the row it just changed).
func swapContents(a, b uint64, columns []string) []string {
	var sets []string
	for _, c := range columns {
		sets = append(sets, fmt.Sprintf(`%s = (SELECT %s FROM swap WHERE swap.seq = %d + %d - audit_records.seq)`, c, c, a, b))
	}
	return []string{
		`DROP TABLE IF EXISTS temp.swap`,
		fmt.Sprintf(`CREATE TEMP TABLE swap AS SELECT * FROM audit_records WHERE seq IN (%d, %d)`, a, b),
		fmt.Sprintf(`UPDATE audit_records SET %s WHERE seq IN (%d, %d)`, strings.Join(sets, ", "), a, b),
	}
}

// rewriteFrom edits record from and recomputes the chain after it, as an
// attacker who knows the (public) hash construction would: only a
// checkpoint catches it.
func rewriteFrom(recs []store.AuditRecord, from uint64) []string {
	stmts := []string{fmt.Sprintf(`DELETE FROM audit_records WHERE seq >= %d`, from)}
	prev := recs[from-2].Hash
	for _, r := range recs[from-1:] {
		e := EventOf(r)
		if r.Seq == from {
			e.Outcome = OutcomeDenied
		}
		r = recordOf(r.Seq, prev, RecordHash(prev, r.Seq, e), e)
		stmts = append(stmts, insertRecord(r))
		prev = r.Hash
	}
	return stmts
}

func mutations(recs []store.AuditRecord) []mutation {
	var ms []mutation
	// Every column of a first, an ordinary, a checkpointed and the last record.
	for _, seq := range []uint64{1, 73, 150, 200} {
		for _, c := range recordColumns {
			ms = append(ms, mutation{fmt.Sprintf("edit %s of %d", c, seq), []string{editColumn(c, seq)}, seq})
		}
	}
	for _, seq := range []uint64{1, 73, 150, 200} {
		ms = append(ms, mutation{fmt.Sprintf("delete %d", seq), []string{fmt.Sprintf(`DELETE FROM audit_records WHERE seq = %d`, seq)}, seq})
	}
	ms = append(ms, mutation{"delete 60 to 70", []string{`DELETE FROM audit_records WHERE seq BETWEEN 60 AND 70`}, 60})

	// A forged record with a made-up hash, in the middle and at the start.
	for _, seq := range []uint64{1, 73} {
		forged := recs[seq-1]
		forged.Reason, forged.Hash = "forged", recs[0].Hash
		ms = append(ms, mutation{fmt.Sprintf("insert forged record at %d", seq), append(shift(seq), insertRecord(forged)), seq})
	}
	// A forged record chained properly to the one before it: the record
	// after it no longer links, so that is the first bad one.
	{
		e := EventOf(recs[72])
		e.Outcome = OutcomeSuccess
		prev := recs[71].Hash
		forged := recordOf(73, prev, RecordHash(prev, 73, e), e)
		ms = append(ms, mutation{"insert chained forged record at 73", append(shift(73), insertRecord(forged)), 74})
	}
	// A forged record with a made-up hash after the last checkpoint.
	{
		forged := recs[199]
		forged.Seq, forged.PrevHash = 201, recs[199].Hash
		ms = append(ms, mutation{"append forged record", []string{insertRecord(forged)}, 201})
	}

	// Reordering: whole rows, or only the events under their hashes.
	allButSeq := recordColumns[:len(recordColumns)-1]
	eventColumns := recordColumns[:len(recordColumns)-3]
	for _, p := range [][2]uint64{{10, 11}, {73, 120}, {1, 200}} {
		ms = append(ms,
			mutation{fmt.Sprintf("swap records %d and %d", p[0], p[1]), swapContents(p[0], p[1], allButSeq), p[0]},
			mutation{fmt.Sprintf("swap events of %d and %d", p[0], p[1]), swapContents(p[0], p[1], eventColumns), p[0]})
	}

	// Truncation before a checkpoint.
	ms = append(ms,
		mutation{"truncate after 120", []string{`DELETE FROM audit_records WHERE seq > 120`}, 121},
		mutation{"truncate the last record", []string{`DELETE FROM audit_records WHERE seq = 200`}, 200},
		mutation{"truncate everything", []string{`DELETE FROM audit_records`}, 1},
	)

	// A chain rewritten from an edit onwards: the next checkpoint.
	ms = append(ms,
		mutation{"rewrite chain from 73", rewriteFrom(recs, 73), 100},
		mutation{"rewrite chain from 151", rewriteFrom(recs, 151), 200},
	)

	// Checkpoints.
	for _, cp := range []struct {
		name, set string
		want      uint64
	}{
		{"head", `head = randomblob(32)`, 100},
		{"seq", `seq = 101`, 101},
		{"kind", `kind = 'shutdown'`, 100},
		{"time", `time = '2031-01-01T00:00:00.000000000Z'`, 100},
		{"signature", `signature = randomblob(64)`, 100},
	} {
		ms = append(ms, mutation{"edit checkpoint " + cp.name, []string{`UPDATE audit_checkpoints SET ` + cp.set + ` WHERE seq = 100`}, cp.want})
	}
	ms = append(ms, mutation{"insert forged checkpoint", []string{fmt.Sprintf(
		`INSERT INTO audit_checkpoints (seq, head, kind, time, signature) VALUES (120, x'%x', 'periodic', '2031-01-01T00:00:00.000000000Z', randomblob(64))`,
		recs[119].Hash)}, 120})
	return ms
}

// TestVerifyDetectsMutations writes a log through Append, then for each
// mutation tampers with a copy of the SQLite file directly, dropping the
// append-only triggers first as an attacker with the file would, and
// checks that Verify names the first affected record.
func TestVerifyDetectsMutations(t *testing.T) {
	t.Parallel()
	path, recs, pub := writeMutationLog(t)
	ms := mutations(recs)
	detected := 0
	for _, m := range ms {
		t.Run(m.name, func(t *testing.T) {
			p := copyFile(t, path)
			mutate(t, p, m.sql...)
			st, err := sqlite.OpenReadOnly(context.Background(), p)
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			rep, err := Verify(context.Background(), st, pub)
			var ve *VerifyError
			if !errors.As(err, &ve) {
				t.Fatalf("Verify = %+v, %v; want a VerifyError", rep, err)
			}
			if ve.Seq != m.want {
				t.Fatalf("Verify names record %d (%v), want %d", ve.Seq, err, m.want)
			}
			t.Log(err)
			detected++
		})
	}
	t.Logf("%d of %d mutations detected at the first affected record", detected, len(ms))
}

// TestVerifyLimits documents what the log alone cannot show: records
// appended after the last checkpoint can be removed, and a forged record
// chained properly can be added after it, or the last checkpoint deleted
// with the records it covers. Report.Unsigned and the latest checkpoint
// tell the operator how much is exposed; copies of checkpoints outside
// the database close the gap: see TestVerifyCopyClosesLimits.
func TestVerifyLimits(t *testing.T) {
	t.Parallel()
	path, recs, pub := writeMutationLog(t)
	e := EventOf(recs[199])
	forged := recordOf(201, recs[199].Hash, RecordHash(recs[199].Hash, 201, e), e)
	for _, m := range []struct {
		name      string
		sql       []string
		wantLast  uint64
		wantCheck uint64
	}{
		{"chained record after the last checkpoint", []string{insertRecord(forged)}, 201, 200},
		{"last checkpoint and its records removed", []string{
			`DELETE FROM audit_checkpoints WHERE seq = 200`, `DELETE FROM audit_records WHERE seq > 150`}, 150, 150},
	} {
		t.Run(m.name, func(t *testing.T) {
			p := copyFile(t, path)
			mutate(t, p, m.sql...)
			st, err := sqlite.OpenReadOnly(context.Background(), p)
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			rep, err := Verify(context.Background(), st, pub)
			if err != nil {
				t.Fatalf("Verify = %v; this mutation was expected to go unseen (update the test if it no longer does)", err)
			}
			if rep.LastSeq != m.wantLast || rep.LastCheckpointSeq != m.wantCheck || rep.Unsigned != m.wantLast-m.wantCheck {
				t.Errorf("report = %+v", rep)
			}
		})
	}
}

// TestAppendOnlyTriggers: without an attacker dropping them, the database
// refuses to change or delete a record or checkpoint.
func TestAppendOnlyTriggers(t *testing.T) {
	t.Parallel()
	path, _, _ := writeMutationLog(t)
	db := openRaw(t, path)
	for _, q := range []string{
		`UPDATE audit_records SET reason = 'x' WHERE seq = 5`,
		`DELETE FROM audit_records WHERE seq = 5`,
		`DELETE FROM audit_records`,
		`UPDATE audit_checkpoints SET kind = 'prune'`,
		`DELETE FROM audit_checkpoints`,
	} {
		if _, err := db.Exec(q); err == nil || !strings.Contains(err.Error(), "append-only") {
			t.Errorf("%s: err = %v, want the append-only refusal", q, err)
		}
	}
}

func copyFile(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path) // #nosec G304 -- test file
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path + "-wal"); err == nil {
		t.Fatal("the store left a WAL file behind; copy it too")
	}
	p := filepath.Join(t.TempDir(), "rampart.db")
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func openRaw(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// mutate drops the append-only triggers and runs stmts in one transaction.
func mutate(t *testing.T, path string, stmts ...string) {
	t.Helper()
	db := openRaw(t, path)
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback() }()
	for _, q := range append([]string{
		`DROP TRIGGER audit_records_no_update`, `DROP TRIGGER audit_records_no_delete`,
		`DROP TRIGGER audit_records_no_replace`, `DROP TRIGGER audit_checkpoints_no_update`,
		`DROP TRIGGER audit_checkpoints_no_delete`, `DROP TRIGGER audit_checkpoints_no_replace`,
	}, stmts...) {
		if _, err := tx.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
}
