package audit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rampart-ml/rampart/internal/store"
	"github.com/rampart-ml/rampart/internal/store/sqlite"
)

// copiedLog is a closed SQLite log and the JSON-lines copy a Follower
// made of it while it was written: records 1 to copiedRecords, with
// periodic checkpoints every 50 records, the last ones after the last
// checkpoint.
type copiedLog struct {
	db      string
	copy    []byte
	recs    []store.AuditRecord
	cps     []uint64 // seqs of the checkpoints
	signer  *Signer
	lastCP  uint64
	priorCP uint64 // the checkpoint before the last
}

const copiedRecords = 220

func writeCopiedLog(t *testing.T) copiedLog {
	t.Helper()
	ctx := context.Background()
	l := copiedLog{db: filepath.Join(t.TempDir(), "rampart.db"), signer: newSigner(t)}
	st, err := sqlite.Open(ctx, l.db)
	if err != nil {
		t.Fatal(err)
	}
	copyPath := filepath.Join(t.TempDir(), "audit.jsonl")
	f := newFollower(t, FollowerOptions{Store: st, Signer: l.signer, File: copyPath,
		CheckpointRecords: 50, CheckpointInterval: time.Hour, Now: newClock().Now})
	for i := 0; i < copiedRecords; i += 10 {
		l.recs = append(l.recs, appendEvents(t, st, i, i+10)...)
		if err := f.step(ctx); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range f.sinks { // no shutdown checkpoint: records after the last one stay unsigned
		if err := s.close(); err != nil {
			t.Fatal(err)
		}
	}
	rep, err := Verify(ctx, st, l.signer.Public())
	if err != nil || rep.Unsigned == 0 || rep.Checkpoints < 3 {
		t.Fatalf("Verify = %+v, %v; want checkpoints and unsigned records after them", rep, err)
	}
	err = st.InTx(ctx, func(tx store.Tx) error {
		cps, err := tx.Audit().AuditCheckpoints(ctx)
		for _, c := range cps {
			l.cps = append(l.cps, c.Seq)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	l.lastCP, l.priorCP = l.cps[len(l.cps)-1], l.cps[len(l.cps)-2]
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	if l.copy, err = os.ReadFile(copyPath); err != nil { // #nosec G304 -- test file
		t.Fatal(err)
	}
	return l
}

// verifyMutated applies sql to a copy of the database and returns what
// Verify and VerifyCopy say.
func (l copiedLog) verifyMutated(t *testing.T, copy []byte, sql ...string) (Report, error, CopyReport, error) {
	t.Helper()
	p := copyFile(t, l.db)
	if len(sql) > 0 {
		mutate(t, p, sql...)
	}
	st, err := sqlite.OpenReadOnly(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	rep, verr := Verify(context.Background(), st, l.signer.Public())
	crep, cerr := VerifyCopy(context.Background(), st, bytes.NewReader(copy), l.signer.Public())
	return rep, verr, crep, cerr
}

func wantVerifyError(t *testing.T, what string, err error, seq uint64) {
	t.Helper()
	var ve *VerifyError
	if !errors.As(err, &ve) {
		t.Fatalf("%s = %v, want a VerifyError at %d", what, err, seq)
	}
	if ve.Seq != seq {
		t.Fatalf("%s names record %d (%v), want %d", what, ve.Seq, err, seq)
	}
	t.Logf("%s: %v", what, err)
}

func TestVerifyCopyIntact(t *testing.T) {
	t.Parallel()
	l := writeCopiedLog(t)
	_, verr, rep, err := l.verifyMutated(t, l.copy)
	if verr != nil || err != nil {
		t.Fatalf("Verify = %v, VerifyCopy = %+v, %v", verr, rep, err)
	}
	want := CopyReport{Records: copiedRecords, FirstSeq: 1, LastSeq: copiedRecords,
		Checkpoints: len(l.cps), LastCheckpointSeq: l.lastCP, Duration: rep.Duration}
	if rep != want {
		t.Errorf("report %+v, want %+v", rep, want)
	}
	// A prefix of the copy is a valid copy that lags.
	prefix := l.copy[:bytes.Index(l.copy, []byte(`{"type":"record","seq":101,`))]
	_, _, rep, err = l.verifyMutated(t, prefix)
	if err != nil || rep.Records != 100 || rep.Behind != copiedRecords-100 {
		t.Errorf("VerifyCopy of a prefix = %+v, %v", rep, err)
	}
	// A copy being written ends in a partial line: ignored.
	torn := append(bytes.Clone(prefix), `{"type":"record","seq":101,"ti`...)
	_, _, rep, err = l.verifyMutated(t, torn)
	if err != nil || !rep.Torn || rep.Records != 100 {
		t.Errorf("VerifyCopy of a torn copy = %+v, %v", rep, err)
	}
	// A copy that starts mid-log.
	from := bytes.Index(l.copy, []byte(`{"type":"record","seq":120,`))
	_, _, rep, err = l.verifyMutated(t, l.copy[from:])
	if err != nil || rep.FirstSeq != 120 || rep.Records != copiedRecords-119 {
		t.Errorf("VerifyCopy from record 120 = %+v, %v", rep, err)
	}
	// An empty copy.
	if _, _, rep, err = l.verifyMutated(t, nil); err != nil || rep.Records != 0 || rep.Behind != copiedRecords {
		t.Errorf("VerifyCopy of an empty copy = %+v, %v", rep, err)
	}
}

// TestVerifyCopyClosesLimits: what Verify cannot see in the database
// alone (TestVerifyLimits), the copy shows.
func TestVerifyCopyClosesLimits(t *testing.T) {
	t.Parallel()
	l := writeCopiedLog(t)
	tests := []struct {
		name string
		sql  []string
		want uint64
	}{
		{"records after the last checkpoint removed",
			[]string{fmt.Sprintf(`DELETE FROM audit_records WHERE seq > %d`, l.lastCP+3)}, l.lastCP + 4},
		{"last checkpoint and its records removed", []string{
			fmt.Sprintf(`DELETE FROM audit_checkpoints WHERE seq = %d`, l.lastCP),
			fmt.Sprintf(`DELETE FROM audit_records WHERE seq > %d`, l.priorCP)}, l.priorCP + 1},
		{"records after the last checkpoint rewritten", rewriteFrom(l.recs, l.lastCP+2), l.lastCP + 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rep, verr, _, err := l.verifyMutated(t, l.copy, tt.sql...)
			if verr != nil {
				t.Fatalf("Verify = %v; this mutation was expected to go unseen by it", verr)
			}
			t.Logf("Verify: %+v", rep)
			wantVerifyError(t, "VerifyCopy", err, tt.want)
		})
	}
	// A record appended after the copy's last is not evidence of anything.
	e := EventOf(l.recs[copiedRecords-1])
	prev := l.recs[copiedRecords-1].Hash
	forged := recordOf(copiedRecords+1, prev, RecordHash(prev, copiedRecords+1, e), e)
	_, _, rep, err := l.verifyMutated(t, l.copy, insertRecord(forged))
	if err != nil || rep.Behind != 1 {
		t.Errorf("VerifyCopy with a record after the copy = %+v, %v; want Behind 1", rep, err)
	}
}

// TestVerifyCopyDetectsCopyEdits: a copy that is not a valid chain, or
// does not match the database, is reported at its first bad record.
func TestVerifyCopyDetectsCopyEdits(t *testing.T) {
	t.Parallel()
	l := writeCopiedLog(t)
	lines := bytes.SplitAfter(l.copy, []byte("\n"))
	lines = lines[:len(lines)-1] // the empty string after the last "\n"
	// index returns the line of record seq, or of the checkpoint at seq.
	index := func(typ string, seq uint64) int {
		prefix := fmt.Sprintf(`{"type":%q,"seq":%d,`, typ, seq)
		for i, line := range lines {
			if bytes.HasPrefix(line, []byte(prefix)) {
				return i
			}
		}
		t.Fatalf("no %s line at %d", typ, seq)
		return 0
	}
	edit := func(f func(ls [][]byte) [][]byte) []byte {
		ls := make([][]byte, len(lines))
		for i := range lines {
			ls[i] = bytes.Clone(lines[i])
		}
		return bytes.Join(f(ls), nil)
	}
	replace := func(i int, old, new string) func([][]byte) [][]byte {
		return func(ls [][]byte) [][]byte {
			if !bytes.Contains(ls[i], []byte(old)) {
				t.Fatalf("line %d has no %q", i, old)
			}
			ls[i] = bytes.Replace(ls[i], []byte(old), []byte(new), 1)
			return ls
		}
	}
	// remarshal parses line i, changes it with f and marshals it again.
	remarshal := func(i int, f func(*Line)) func([][]byte) [][]byte {
		return func(ls [][]byte) [][]byte {
			pl, err := ParseLine(ls[i])
			if err != nil {
				t.Fatal(err)
			}
			f(&pl)
			if pl.Type == LineRecord {
				ls[i] = MarshalRecordLine(pl.Record)
			} else {
				ls[i] = MarshalCheckpointLine(pl.Checkpoint)
			}
			return ls
		}
	}
	r73, r74 := index(LineRecord, 73), index(LineRecord, 74)
	cp := index(LineCheckpoint, l.priorCP)
	// The copy rewritten from record 73 on, as consistently as an
	// attacker can without the key.
	var rechained []byte
	{
		prev := l.recs[71].Hash
		var b []byte
		for _, line := range lines {
			pl, err := ParseLine(line)
			if err != nil {
				t.Fatal(err)
			}
			if pl.Type == LineRecord && pl.Record.Seq >= 73 {
				e := EventOf(pl.Record)
				if pl.Record.Seq == 73 {
					e.Outcome = OutcomeDenied
				}
				r := recordOf(pl.Record.Seq, prev, RecordHash(prev, pl.Record.Seq, e), e)
				prev = r.Hash
				b = append(b, MarshalRecordLine(r)...)
				continue
			}
			if pl.Type == LineCheckpoint && pl.Checkpoint.Seq >= 73 {
				continue // they would not match: drop them
			}
			b = append(b, line...)
		}
		rechained = b
	}
	tests := []struct {
		name string
		copy []byte
		want uint64
	}{
		{"record edited", edit(replace(r73, `"outcome":"success"`, `"outcome":"denied"`)), 73},
		{"record hash edited", edit(remarshal(r73, func(l *Line) { l.Record.Hash[0] ^= 1 })), 73},
		{"record time edited", edit(remarshal(r73, func(l *Line) { l.Record.Time = l.Record.Time.Add(time.Nanosecond) })), 73},
		{"record deleted", edit(func(ls [][]byte) [][]byte { return append(ls[:r73], ls[r73+1:]...) }), 73},
		{"records swapped", edit(func(ls [][]byte) [][]byte { ls[r73], ls[r74] = ls[r74], ls[r73]; return ls }), 73},
		{"record duplicated", edit(func(ls [][]byte) [][]byte {
			return append(ls[:r74], append([][]byte{ls[r73]}, ls[r74:]...)...)
		}), 73},
		{"line not parsable", edit(func(ls [][]byte) [][]byte {
			return append(ls[:r74], append([][]byte{[]byte("garbage\n")}, ls[r74:]...)...)
		}), 74},
		{"checkpoint signature edited", edit(remarshal(cp, func(l *Line) { l.Checkpoint.Signature[5] ^= 1 })), l.priorCP},
		{"checkpoint head edited", edit(remarshal(cp, func(l *Line) { l.Checkpoint.Head[5] ^= 1 })), l.priorCP},
		{"checkpoint moved before its record", edit(func(ls [][]byte) [][]byte {
			ls[cp-1], ls[cp] = ls[cp], ls[cp-1]
			return ls
		}), l.priorCP},
		{"chain rewritten in the copy", rechained, 73},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, verr, rep, err := l.verifyMutated(t, tt.copy)
			if verr != nil {
				t.Fatalf("Verify of the untouched database = %v", verr)
			}
			t.Logf("report %+v", rep)
			wantVerifyError(t, "VerifyCopy", err, tt.want)
		})
	}
}

// TestVerifyCopyPruned: records of the copy that a signed prune
// checkpoint removed from the database are not missing; records removed
// below a forged one are.
func TestVerifyCopyPruned(t *testing.T) {
	t.Parallel()
	l := writeCopiedLog(t)
	ctx := context.Background()
	p := copyFile(t, l.db)
	st, err := sqlite.Open(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	prep, err := Prune(ctx, st, l.signer, l.recs[60].Time, time.Now())
	if err != nil || prep.Through != 60 || prep.Removed != 60 {
		t.Fatalf("Prune = %+v, %v", prep, err)
	}
	rep, err := VerifyCopy(ctx, st, bytes.NewReader(l.copy), l.signer.Public())
	if err != nil || rep.Pruned != 60 || rep.Records != copiedRecords {
		t.Errorf("VerifyCopy after pruning = %+v, %v", rep, err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	// A forged prune checkpoint lets SQL delete records, not hide it.
	db := openRaw(t, p)
	for _, q := range []string{
		fmt.Sprintf(`INSERT INTO audit_checkpoints (seq, head, kind, time, signature) VALUES (100, x'%x', 'prune', '2031-01-01T00:00:00.000000000Z', randomblob(64))`, l.recs[99].Hash),
		`DELETE FROM audit_records WHERE seq <= 100`,
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	ro, err := sqlite.OpenReadOnly(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	_, err = VerifyCopy(ctx, ro, bytes.NewReader(l.copy), l.signer.Public())
	wantVerifyError(t, "VerifyCopy", err, 61)
	_, err = Verify(ctx, ro, l.signer.Public())
	wantVerifyError(t, "Verify", err, 100)
}

func TestVerifyCopyReadErrors(t *testing.T) {
	t.Parallel()
	st, _ := openStore(t)
	if _, err := VerifyCopy(context.Background(), st, strings.NewReader(""), nil); err == nil {
		t.Error("VerifyCopy without a key: no error")
	}
	long := strings.Repeat("x", MaxLineSize+10) + "\n"
	var ve *VerifyError
	if _, err := VerifyCopy(context.Background(), st, strings.NewReader(long), newSigner(t).Public()); err == nil || errors.As(err, &ve) {
		t.Errorf("VerifyCopy of an overlong line = %v, want a read error", err)
	}
}
