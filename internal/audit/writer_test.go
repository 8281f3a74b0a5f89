package audit

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rampart-ml/rampart/internal/store"
)

// newRecorder returns a Recorder over st with test keys; o's store,
// sealer and source key are filled in.
func newRecorder(t testing.TB, st store.Store, o RecorderOptions) *Recorder {
	t.Helper()
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	o.Store, o.Sealer, o.SourceKey = st, newSealer(t), key
	r, err := NewRecorder(o)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// userEntry is an entry by user id-<n>, recorded as a pseudonym.
func userEntry(action string, n int) Entry {
	return Entry{
		Action: action, Target: Target{Kind: "model", Domain: "com.acme", ID: fmt.Sprintf("m-%d", n)},
		Actor: &Actor{ID: fmt.Sprintf("id-%d", n%7), Kind: ActorUser},
	}
}

// records returns every record of st.
func records(t testing.TB, st store.Store) []store.AuditRecord {
	t.Helper()
	var all []store.AuditRecord
	err := st.InTx(context.Background(), func(tx store.Tx) error {
		var err error
		all, err = tx.Audit().AuditRecords(context.Background(), 0, 1_000_000)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return all
}

// testStore wraps a store: it can hold transactions at a gate, fail them,
// and refuse records of one action.
type testStore struct {
	store.Store
	mu      sync.Mutex
	gate    chan struct{} // nil: open
	waiting chan struct{} // gets a value for each transaction held at the gate
	fail    atomic.Pointer[error]
	bad     string // AppendAuditRecord refuses records of this action
	txs     atomic.Int64
}

var errDisk = errors.New("disk I/O error")

func newTestStore(t testing.TB) *testStore {
	st, _ := openStore(t)
	return &testStore{Store: st, waiting: make(chan struct{}, 1000)}
}

// hold makes transactions wait until the returned func is called.
func (s *testStore) hold() (release func()) {
	g := make(chan struct{})
	s.mu.Lock()
	s.gate = g
	s.mu.Unlock()
	return func() {
		s.mu.Lock()
		s.gate = nil
		s.mu.Unlock()
		close(g)
	}
}

func (s *testStore) setFailing(fail bool) {
	if fail {
		err := fmt.Errorf("begin transaction: %w", errDisk)
		s.fail.Store(&err)
	} else {
		s.fail.Store(nil)
	}
}

func (s *testStore) InTx(ctx context.Context, fn func(tx store.Tx) error) error {
	s.mu.Lock()
	g := s.gate
	s.mu.Unlock()
	if g != nil {
		s.waiting <- struct{}{}
		select {
		case <-g:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if err := s.fail.Load(); err != nil {
		return *err
	}
	s.txs.Add(1)
	return s.Store.InTx(ctx, func(tx store.Tx) error { return fn(badTx{Tx: tx, bad: s.bad}) })
}

type badTx struct {
	store.Tx
	bad string
}

func (t badTx) Audit() store.Audit { return badAudit{Audit: t.Tx.Audit(), bad: t.bad} }

type badAudit struct {
	store.Audit
	bad string
}

func (a badAudit) AppendAuditRecord(ctx context.Context, r store.AuditRecord) error {
	if a.bad != "" && r.Action == a.bad {
		return errDisk
	}
	return a.Audit.AppendAuditRecord(ctx, r)
}

// waitFor polls cond until it holds, failing the test after a generous
// bound (a hang, not a timing assertion).
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func closeRecorder(t testing.TB, r *Recorder) {
	t.Helper()
	if err := r.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestWriterConcurrent: many goroutines Write and Submit at once; every
// record is there once, the chain verifies, and batches were shared.
func TestWriterConcurrent(t *testing.T) {
	t.Parallel()
	st, _ := openStore(t)
	commits := atomic.Int64{}
	r := newRecorder(t, st, RecorderOptions{OnCommit: func() { commits.Add(1) }})
	r.Start()
	const goroutines, each = 16, 40
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, goroutines*each)
	for g := range goroutines {
		wg.Go(func() {
			for i := range each {
				e := userEntry("inference.call", g*each+i)
				if i%2 == 0 {
					errs <- r.Write(ctx, e)
				} else {
					errs <- r.Submit(ctx, e)
				}
			}
		})
	}
	wg.Wait()
	closeRecorder(t, r)
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	const n = goroutines * each
	recs := records(t, st)
	if len(recs) != n {
		t.Fatalf("%d records, want %d", len(recs), n)
	}
	seen := map[string]bool{}
	for _, rec := range recs {
		if seen[rec.TargetID] {
			t.Errorf("%s recorded twice", rec.TargetID)
		}
		seen[rec.TargetID] = true
		if !IsPseudonym(rec.Actor) {
			t.Errorf("record %d: actor %q is not a pseudonym", rec.Seq, rec.Actor)
		}
	}
	s := newSigner(t)
	checkpoint(t, st, s, KindShutdown)
	if rep, err := Verify(ctx, st, s.Public()); err != nil || rep.Records != n {
		t.Fatalf("Verify = %+v, %v", rep, err)
	}
	stats := r.Stats()
	if stats.Queued != n || stats.Written != n || stats.Lost != 0 || stats.Dropped != 0 || stats.Pending != 0 {
		t.Errorf("stats = %+v", stats)
	}
	if stats.Batches == 0 || stats.Batches > n || commits.Load() != int64(stats.Batches) {
		t.Errorf("stats = %+v, OnCommit called %d times", stats, commits.Load())
	}
	t.Logf("%d records in %d batches", n, stats.Batches)
}

// TestWriterGroupCommit: what queues while a transaction is held is
// committed in one transaction, up to maxBatch.
func TestWriterGroupCommit(t *testing.T) {
	t.Parallel()
	st := newTestStore(t)
	r := newRecorder(t, st, RecorderOptions{})
	r.Start()
	ctx := context.Background()
	release := st.hold()
	if err := r.Submit(ctx, userEntry("first", 0)); err != nil {
		t.Fatal(err)
	}
	<-st.waiting // the writer holds the first record at the gate
	const n = maxBatch + 10
	for i := range n {
		if err := r.Submit(ctx, userEntry("queued", i)); err != nil {
			t.Fatal(err)
		}
	}
	release()
	closeRecorder(t, r)
	// The first alone, then maxBatch, then the rest.
	if s, txs := r.Stats(), st.txs.Load(); s.Batches != 3 || txs != 3 {
		t.Errorf("stats = %+v, %d transactions; want 3 batches", s, txs)
	}
	if got := len(records(t, st)); got != n+1 {
		t.Fatalf("%d records, want %d", got, n+1)
	}
}

func TestWriterQueueFull(t *testing.T) {
	t.Parallel()
	for _, policy := range []QueuePolicy{QueueRefuse, QueueDrop} {
		t.Run(policy.String(), func(t *testing.T) {
			t.Parallel()
			st := newTestStore(t)
			r := newRecorder(t, st, RecorderOptions{QueueSize: 2, QueueFull: policy})
			r.Start()
			ctx := context.Background()
			release := st.hold()
			if err := r.Submit(ctx, userEntry("first", 0)); err != nil {
				t.Fatal(err)
			}
			<-st.waiting // taken by the writer: the queue is empty again
			for i := range 2 {
				if err := r.Submit(ctx, userEntry("queued", i)); err != nil {
					t.Fatal(err)
				}
			}
			err := r.Submit(ctx, userEntry("overflow", 9))
			avail := r.Available()
			switch policy {
			case QueueRefuse:
				if !errors.Is(err, ErrQueueFull) || !errors.Is(err, ErrWrite) {
					t.Errorf("Submit on a full queue = %v, want ErrQueueFull and ErrWrite", err)
				}
				// A full queue refuses what would go into it, not every
				// request: changes are recorded in their own transactions.
				if avail != nil {
					t.Errorf("Available = %v, want nil", avail)
				}
				var se interface{ HTTPStatus() (int, string, string) }
				if !errors.As(err, &se) {
					t.Fatalf("%v has no HTTP status", err)
				}
				if status, _, msg := se.HTTPStatus(); status != 503 || msg == "" {
					t.Errorf("HTTPStatus = %d %q", status, msg)
				}
			case QueueDrop:
				if err != nil || avail != nil {
					t.Errorf("Submit = %v, Available = %v; want nil for the drop policy", err, avail)
				}
			}
			release()
			closeRecorder(t, r)
			if got := len(records(t, st)); got != 3 {
				t.Errorf("%d records, want 3", got)
			}
			s := r.Stats()
			if wantDropped := uint64(policy); s.Dropped != wantDropped || s.Queued != 3 || s.Written != 3 {
				t.Errorf("stats = %+v", s)
			}
		})
	}
}

// TestWriterFailingStore: when the store fails, Write reports ErrWrite,
// submitted records are counted lost, and Available refuses until the
// store works again.
func TestWriterFailingStore(t *testing.T) {
	t.Parallel()
	for _, started := range []bool{true, false} {
		t.Run(fmt.Sprintf("started=%v", started), func(t *testing.T) {
			t.Parallel()
			st := newTestStore(t)
			r := newRecorder(t, st, RecorderOptions{ProbeInterval: time.Millisecond})
			if started {
				r.Start()
				defer closeRecorder(t, r)
			}
			ctx := context.Background()
			if err := r.Write(ctx, userEntry("before", 0)); err != nil || r.Available() != nil {
				t.Fatalf("Write = %v, Available = %v", err, r.Available())
			}
			st.setFailing(true)
			err := r.Write(ctx, userEntry("token.issue", 1))
			if !errors.Is(err, ErrWrite) || !errors.Is(err, errDisk) {
				t.Fatalf("Write to a failing store = %v, want ErrWrite", err)
			}
			if started {
				if err := r.Available(); !errors.Is(err, ErrWrite) {
					t.Errorf("Available = %v, want ErrWrite", err)
				}
				if err := r.Submit(ctx, userEntry("access.deny", 2)); err != nil {
					t.Fatalf("Submit = %v; it queues without waiting", err)
				}
				waitFor(t, "the submitted record to be lost", func() bool { return r.Stats().Lost == 1 })
			} else if err := r.Submit(ctx, userEntry("access.deny", 2)); !errors.Is(err, ErrWrite) {
				t.Errorf("Submit before Start to a failing store = %v, want ErrWrite", err)
			}
			st.setFailing(false)
			if started { // the writer's probe finds the store working
				waitFor(t, "Available", func() bool { return r.Available() == nil })
			}
			if err := r.Write(ctx, userEntry("after", 3)); err != nil {
				t.Fatal(err)
			}
			if err := r.Available(); err != nil {
				t.Errorf("Available after a successful write = %v", err)
			}
			if got := len(records(t, st)); got != 2 {
				t.Errorf("%d records, want 2", got)
			}
		})
	}
}

// TestWriterBadRecord: a record the store refuses does not sink the
// others committed in its batch; each Write gets its own answer.
func TestWriterBadRecord(t *testing.T) {
	t.Parallel()
	st := newTestStore(t)
	st.bad = "bad.record"
	r := newRecorder(t, st, RecorderOptions{})
	r.Start()
	ctx := context.Background()
	release := st.hold()
	if err := r.Submit(ctx, userEntry("first", 0)); err != nil {
		t.Fatal(err)
	}
	<-st.waiting
	results := make(chan error, 4)
	var wg sync.WaitGroup
	for i, action := range []string{"good.write", "bad.record", "good.write", "bad.record"} {
		if i%2 == 1 {
			if err := r.Submit(ctx, userEntry(action, i)); err != nil {
				t.Fatal(err)
			}
			continue
		}
		wg.Go(func() { results <- r.Write(ctx, userEntry(action, i)) })
	}
	// Both Writes queued behind the held transaction.
	waitFor(t, "queued records", func() bool { return r.Stats().Queued == 5 })
	release()
	wg.Wait()
	close(results)
	for err := range results {
		if err != nil {
			t.Errorf("good Write = %v", err)
		}
	}
	bad := Entry{Action: "bad.record", Actor: &Actor{ID: "id-1", Kind: ActorUser}}
	if err := r.Write(ctx, bad); !errors.Is(err, ErrWrite) {
		t.Errorf("bad Write = %v, want ErrWrite", err)
	}
	closeRecorder(t, r)
	var actions []string
	for _, rec := range records(t, st) {
		actions = append(actions, rec.Action)
	}
	if want := []string{"first", "good.write", "good.write"}; fmt.Sprint(actions) != fmt.Sprint(want) {
		t.Errorf("records %v, want %v", actions, want)
	}
	if s := r.Stats(); s.Lost != 2 || s.Written != 3 {
		t.Errorf("stats = %+v, want 2 lost and 3 written", s)
	}
	if err := r.Available(); !errors.Is(err, ErrWrite) {
		// Closed now; before, a batch with good records kept it available.
		t.Errorf("Available after Close = %v", err)
	}
}

// TestWriterClose: Close writes what is queued, then Write and Submit
// refuse.
func TestWriterClose(t *testing.T) {
	t.Parallel()
	st := newTestStore(t)
	r := newRecorder(t, st, RecorderOptions{})
	r.Start()
	ctx := context.Background()
	release := st.hold()
	const n = 100
	for i := range n {
		if err := r.Submit(ctx, userEntry("queued", i)); err != nil {
			t.Fatal(err)
		}
	}
	<-st.waiting
	closed := make(chan error, 1)
	go func() { closed <- r.Close(ctx) }()
	// Close stops taking records before the queue is drained.
	waitFor(t, "Close to begin", func() bool { return r.Available() != nil })
	if err := r.Submit(ctx, userEntry("late", 0)); !errors.Is(err, ErrWrite) {
		t.Errorf("Submit after Close = %v, want ErrWrite", err)
	}
	if err := r.Write(ctx, userEntry("late", 0)); !errors.Is(err, ErrWrite) {
		t.Errorf("Write after Close = %v, want ErrWrite", err)
	}
	release()
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	if got := len(records(t, st)); got != n {
		t.Errorf("%d records after Close, want %d", got, n)
	}
	if err := r.Close(ctx); err != nil {
		t.Errorf("second Close = %v", err)
	}
	r.Start() // after Close: does nothing
	if err := r.Submit(ctx, userEntry("late", 0)); !errors.Is(err, ErrWrite) {
		t.Errorf("Submit after Start after Close = %v, want ErrWrite", err)
	}
}

// TestWriterCloseTimeout: Close gives up with ctx when the store hangs.
func TestWriterCloseTimeout(t *testing.T) {
	t.Parallel()
	st := newTestStore(t)
	r := newRecorder(t, st, RecorderOptions{})
	r.Start()
	release := st.hold()
	defer release()
	if err := r.Submit(context.Background(), userEntry("held", 0)); err != nil {
		t.Fatal(err)
	}
	<-st.waiting
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := r.Close(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Close = %v, want context.Canceled", err)
	}
}

// TestWriteGivesUp: a Write whose context ends returns ErrWrite, and is
// not written if the writer had not taken it yet.
func TestWriteGivesUp(t *testing.T) {
	t.Parallel()
	st := newTestStore(t)
	r := newRecorder(t, st, RecorderOptions{})
	r.Start()
	release := st.hold()
	if err := r.Submit(context.Background(), userEntry("first", 0)); err != nil {
		t.Fatal(err)
	}
	<-st.waiting
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Write(ctx, userEntry("abandoned", 1)) }()
	waitFor(t, "the Write to queue", func() bool { return r.Stats().Queued == 2 })
	cancel()
	// Write answers what the writer did: it skips a request given up
	// before its batch, and says so.
	release()
	if err := <-done; !errors.Is(err, ErrWrite) || !errors.Is(err, context.Canceled) {
		t.Errorf("Write = %v, want ErrWrite and Canceled", err)
	}
	closeRecorder(t, r)
	if recs := records(t, st); len(recs) != 1 {
		t.Errorf("%d records, want only the first", len(recs))
	}
	if r.failure.Load() != nil {
		t.Errorf("an abandoned Write marked the store as failing")
	}
}

func TestRecorderOptions(t *testing.T) {
	t.Parallel()
	st, _ := openStore(t)
	for _, o := range []RecorderOptions{{QueueSize: -1}, {QueueFull: 7}} {
		o.Store, o.Sealer, o.SourceKey = st, newSealer(t), make([]byte, 32)
		if _, err := NewRecorder(o); err == nil {
			t.Errorf("NewRecorder(%+v): no error", o)
		}
	}
	for _, s := range []string{"refuse", "drop"} {
		p, err := ParseQueuePolicy(s)
		if err != nil || p.String() != s {
			t.Errorf("ParseQueuePolicy(%q) = %v, %v", s, p, err)
		}
	}
	if _, err := ParseQueuePolicy("block"); err == nil {
		t.Error("ParseQueuePolicy(block): no error")
	}
}
