package audit

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/rampart-ml/rampart/internal/store"
)

// clock is a settable time for tests.
type clock struct{ ns atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.ns.Store(time.Date(2025, 6, 7, 10, 0, 0, 0, time.UTC).UnixNano())
	return c
}

func (c *clock) Now() time.Time          { return time.Unix(0, c.ns.Load()).UTC() }
func (c *clock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

// syncBuffer is a bytes.Buffer safe for a writer goroutine and a reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) Bytes() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return bytes.Clone(s.b.Bytes())
}

func newFollower(t testing.TB, o FollowerOptions) *Follower {
	t.Helper()
	f, err := NewFollower(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// parseCopy parses every line of a copy.
func parseCopy(t testing.TB, data []byte) []Line {
	t.Helper()
	var lines []Line
	for _, b := range bytes.SplitAfter(data, []byte("\n")) {
		if len(b) == 0 {
			continue
		}
		l, err := ParseLine(b)
		if err != nil {
			t.Fatalf("line %q: %v", b, err)
		}
		lines = append(lines, l)
	}
	return lines
}

// kinds summarises a copy: "r<seq>" for records, "<kind>@<seq>" for checkpoints.
func recordSeqs(lines []Line) (recs []uint64, cps []store.AuditCheckpoint) {
	for _, l := range lines {
		if l.Type == LineRecord {
			recs = append(recs, l.Record.Seq)
		} else {
			cps = append(cps, l.Checkpoint)
		}
	}
	return recs, cps
}

func checkCopy(t testing.TB, st store.Store, data []byte, pub []byte, wantRecords uint64) CopyReport {
	t.Helper()
	rep, err := VerifyCopy(context.Background(), st, bytes.NewReader(data), pub)
	if err != nil {
		t.Fatalf("VerifyCopy = %+v, %v", rep, err)
	}
	if rep.Records != wantRecords {
		t.Errorf("VerifyCopy checked %d records, want %d", rep.Records, wantRecords)
	}
	return rep
}

// TestFollower: records written through a started Recorder reach the
// file (from record 1) and the stream (from the head at start), with
// periodic checkpoints and a shutdown checkpoint at the end; both copies
// verify, and so does the log.
func TestFollower(t *testing.T) {
	t.Parallel()
	st, _ := openStore(t)
	ctx := context.Background()
	signer := newSigner(t)
	appendEvents(t, st, 0, 5) // before the follower starts
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	var stream syncBuffer
	f := newFollower(t, FollowerOptions{
		Store: st, Signer: signer, File: path, Stream: &stream,
		CheckpointRecords: 10, Interval: time.Hour, // only notifications
	})
	r := newRecorder(t, st, RecorderOptions{OnCommit: f.Notify})
	r.Start()
	f.Start()
	for i := range 40 {
		if err := r.Write(ctx, userEntry("model.read", i)); err != nil {
			t.Fatal(err)
		}
	}
	closeRecorder(t, r)
	if err := f.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(ctx); err != nil {
		t.Errorf("second Close = %v", err)
	}

	rep, err := Verify(ctx, st, signer.Public())
	if err != nil || rep.Records != 45 || rep.Unsigned != 0 {
		t.Fatalf("Verify = %+v, %v", rep, err)
	}
	file, err := os.ReadFile(path) // #nosec G304 -- test file
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("copy mode = %v, %v; want 0600", fi.Mode(), err)
	}
	checkCopy(t, st, file, signer.Public(), 45)
	recs, cps := recordSeqs(parseCopy(t, file))
	if len(recs) != 45 || recs[0] != 1 || recs[44] != 45 {
		t.Errorf("file holds records %v", recs)
	}
	if len(cps) < 2 || cps[len(cps)-1].Kind != KindShutdown || cps[len(cps)-1].Seq != 45 {
		t.Errorf("file holds checkpoints %+v; want some periodic ones and the shutdown one at 45", cps)
	}
	for i, c := range cps[:len(cps)-1] {
		if c.Kind != KindPeriodic {
			t.Errorf("checkpoint %d is %s", i, c.Kind)
		}
	}
	// Every checkpoint in the store is in the file, in the same order.
	var stored []store.AuditCheckpoint
	if err := st.InTx(ctx, func(tx store.Tx) error {
		stored, err = tx.Audit().AuditCheckpoints(ctx)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(stored, cps, equateLineTime); diff != "" {
		t.Errorf("checkpoints stored and in the file differ (-stored +file):\n%s", diff)
	}

	streamed := stream.Bytes()
	checkCopy(t, st, streamed, signer.Public(), 40)
	if recs, _ := recordSeqs(parseCopy(t, streamed)); len(recs) != 40 || recs[0] != 6 {
		t.Errorf("stream holds records %v, want 6 to 45", recs)
	}
}

// countCheckpoints returns how many checkpoints st holds.
func countCheckpoints(t testing.TB, st store.Store) int {
	t.Helper()
	var n int
	err := st.InTx(context.Background(), func(tx store.Tx) error {
		cps, err := tx.Audit().AuditCheckpoints(context.Background())
		n = len(cps)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestFollowerCheckpointRecords: a checkpoint every CheckpointRecords
// records (the first at once: the log had none).
func TestFollowerCheckpointRecords(t *testing.T) {
	t.Parallel()
	st, _ := openStore(t)
	ctx := context.Background()
	clk := newClock()
	f := newFollower(t, FollowerOptions{Store: st, Signer: newSigner(t), Now: clk.Now, CheckpointRecords: 5})
	for _, tt := range []struct {
		records, want int
	}{{1, 1}, {4, 1}, {1, 2}, {3, 2}, {7, 3}} {
		appendEvents(t, st, 0, tt.records)
		if err := f.step(ctx); err != nil {
			t.Fatal(err)
		}
		if n := countCheckpoints(t, st); n != tt.want {
			t.Fatalf("after %d more records (to %d): %d checkpoints, want %d", tt.records, f.pos, n, tt.want)
		}
	}
}

// TestFollowerCheckpointInterval: with few records, a checkpoint is
// signed once CheckpointInterval has passed, and not without new records.
func TestFollowerCheckpointInterval(t *testing.T) {
	t.Parallel()
	st, _ := openStore(t)
	ctx := context.Background()
	clk := newClock()
	f := newFollower(t, FollowerOptions{Store: st, Signer: newSigner(t), Now: clk.Now, Interval: time.Hour})
	countCheckpoints := func() int { return countCheckpoints(t, st) }
	step := func() {
		if err := f.step(ctx); err != nil {
			t.Fatal(err)
		}
	}
	step()
	clk.Advance(2 * DefaultCheckpointInterval)
	step()
	if n := countCheckpoints(); n != 0 {
		t.Fatalf("%d checkpoints of an empty log", n)
	}
	appendEvents(t, st, 0, 3)
	step() // the interval has passed since the start (no checkpoint yet)
	if n := countCheckpoints(); n != 1 {
		t.Fatalf("%d checkpoints, want 1", n)
	}
	appendEvents(t, st, 3, 4)
	step()
	if n := countCheckpoints(); n != 1 {
		t.Fatalf("%d checkpoints before the interval, want 1", n)
	}
	clk.Advance(DefaultCheckpointInterval)
	step()
	if n := countCheckpoints(); n != 2 {
		t.Fatalf("%d checkpoints after the interval, want 2", n)
	}
	if err := f.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if n := countCheckpoints(); n != 3 {
		t.Fatalf("%d checkpoints after Close, want 3 (with the shutdown one)", n)
	}
}

// TestFollowerPolls: records appended in other transactions (Record) are
// found without a notification.
func TestFollowerPolls(t *testing.T) {
	t.Parallel()
	st, _ := openStore(t)
	var stream syncBuffer
	f := newFollower(t, FollowerOptions{Store: st, Signer: newSigner(t), Stream: &stream, Interval: time.Millisecond})
	f.Start()
	appendEvents(t, st, 0, 3)
	waitFor(t, "the stream to get 3 records", func() bool { return bytes.Count(stream.Bytes(), []byte("\n")) >= 3 })
	if err := f.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestFollowerResumes: a copy is continued after its last complete line;
// a torn last line is cut off first.
func TestFollowerResumes(t *testing.T) {
	t.Parallel()
	st, _ := openStore(t)
	ctx := context.Background()
	signer := newSigner(t)
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	opts := FollowerOptions{Store: st, Signer: signer, File: path, Interval: time.Hour}

	appendEvents(t, st, 0, 10)
	f := newFollower(t, opts)
	if err := f.Close(ctx); err != nil { // records 1-10, shutdown checkpoint at 10
		t.Fatal(err)
	}
	appendEvents(t, st, 10, 20)
	f = newFollower(t, opts)
	if err := f.step(ctx); err != nil { // records 11-20
		t.Fatal(err)
	}
	// A crash in the middle of a write: half a line at the end.
	file, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0) // #nosec G304 -- test file
	if err != nil {
		t.Fatal(err)
	}
	if _, err := file.Write(MarshalRecordLine(store.AuditRecord{Seq: 21})[:40]); err != nil {
		t.Fatal(err)
	}
	if err := file.Close(); err != nil {
		t.Fatal(err)
	}
	appendEvents(t, st, 20, 25)
	f = newFollower(t, opts)
	if err := f.Close(ctx); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path) // #nosec G304 -- test file
	if err != nil {
		t.Fatal(err)
	}
	checkCopy(t, st, data, signer.Public(), 25)
	recs, cps := recordSeqs(parseCopy(t, data))
	if len(recs) != 25 || len(cps) != 2 || cps[0].Seq != 10 || cps[1].Seq != 25 {
		t.Errorf("copy holds records %v and checkpoints %+v", recs, cps)
	}
}

// TestFollowerRefusesDivergedCopy: a copy that goes further than the
// database, or differs from it, is evidence and is not appended to.
func TestFollowerRefusesDivergedCopy(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, _ := openStore(t)
	appendEvents(t, st, 0, 10)
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	if err := newFollower(t, FollowerOptions{Store: st, Signer: newSigner(t), File: path}).Close(ctx); err != nil {
		t.Fatal(err)
	}
	before, err := os.ReadFile(path) // #nosec G304 -- test file
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name    string
		records int
	}{
		{"database restored from an older backup", 5},
		{"another database", 12},
	} {
		other, _ := openStore(t)
		appendEvents(t, other, 100, 100+tt.records) // different events
		_, err := NewFollower(ctx, FollowerOptions{Store: other, Signer: newSigner(t), File: path})
		if !errors.Is(err, ErrCopyDiverged) {
			t.Errorf("%s: NewFollower = %v, want ErrCopyDiverged", tt.name, err)
		}
	}
	after, err := os.ReadFile(path) // #nosec G304 -- test file
	if err != nil || !bytes.Equal(before, after) {
		t.Errorf("the refused copy was changed (%v)", err)
	}
	// A copy whose last line cannot be parsed is refused too.
	bad := filepath.Join(t.TempDir(), "bad.jsonl")
	if err := os.WriteFile(bad, []byte("not a line\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := NewFollower(ctx, FollowerOptions{Store: st, Signer: newSigner(t), File: bad}); err == nil {
		t.Error("NewFollower accepted a copy that cannot be parsed")
	}
}

// TestFollowerAfterPrune: a new copy of a pruned log starts with the
// prune checkpoint, so it verifies on its own.
func TestFollowerAfterPrune(t *testing.T) {
	t.Parallel()
	st, _ := openStore(t)
	ctx := context.Background()
	signer := newSigner(t)
	appendEvents(t, st, 0, 20)
	cut := event(10).Time
	rep, err := Prune(ctx, st, signer, cut, time.Now())
	if err != nil || rep.Through != 10 {
		t.Fatalf("Prune = %+v, %v", rep, err)
	}
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	if err := newFollower(t, FollowerOptions{Store: st, Signer: signer, File: path}).Close(ctx); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path) // #nosec G304 -- test file
	if err != nil {
		t.Fatal(err)
	}
	lines := parseCopy(t, data)
	if lines[0].Type != LineCheckpoint || lines[0].Checkpoint.Kind != KindPrune || lines[0].Checkpoint.Seq != 10 {
		t.Errorf("first line %+v, want the prune checkpoint at 10", lines[0])
	}
	checkCopy(t, st, data, signer.Public(), 10)
}

// failWriter fails every write.
type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errDisk }

// TestFollowerSinkFails: a sink that fails does not stop checkpoints.
func TestFollowerSinkFails(t *testing.T) {
	t.Parallel()
	st, _ := openStore(t)
	ctx := context.Background()
	f := newFollower(t, FollowerOptions{Store: st, Signer: newSigner(t), Stream: failWriter{}, CheckpointRecords: 5})
	appendEvents(t, st, 0, 6)
	if err := f.step(ctx); !errors.Is(err, errDisk) {
		t.Errorf("step = %v, want the sink's error", err)
	}
	if f.cpSeq != 6 {
		t.Errorf("checkpoint at %d, want 6", f.cpSeq)
	}
}
