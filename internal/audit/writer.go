package audit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rampart-ml/rampart/internal/store"
)

// ErrQueueFull means Submit could not queue a record because the audit
// queue is full (QueueRefuse). It wraps ErrWrite and, like it, answers 503:
// the action is refused rather than left unrecorded.
var ErrQueueFull error = &unavailableError{
	msg:    "audit queue is full",
	answer: "the audit queue is full, so the action was not performed; try again later",
	parent: ErrWrite,
}

// errClosed is what Write and Submit return once Close has begun.
var errClosed = errors.New("audit recorder is closed")

// DefaultQueueSize is the queue bound when RecorderOptions.QueueSize is 0.
const DefaultQueueSize = 10000

// maxBatch bounds the records the writer commits in one transaction.
const maxBatch = 512

// QueuePolicy says what Submit does with a record when the queue is full.
type QueuePolicy int

const (
	// QueueRefuse makes Submit return an error wrapping ErrQueueFull: the
	// caller refuses the action (fail-closed; the default).
	QueueRefuse QueuePolicy = iota
	// QueueDrop drops the record and counts it (Stats.Dropped); Submit
	// returns nil and the action goes on unrecorded. A warning is logged
	// at most once a minute.
	QueueDrop
)

// String returns "refuse" or "drop".
func (p QueuePolicy) String() string {
	switch p {
	case QueueRefuse:
		return "refuse"
	case QueueDrop:
		return "drop"
	}
	return fmt.Sprintf("QueuePolicy(%d)", int(p))
}

// ParseQueuePolicy parses "refuse" or "drop" (configuration).
func ParseQueuePolicy(s string) (QueuePolicy, error) {
	switch s {
	case "refuse":
		return QueueRefuse, nil
	case "drop":
		return QueueDrop, nil
	}
	return 0, fmt.Errorf("audit queue policy %q: must be refuse or drop", s)
}

// Stats counts what the Recorder's writer did since the Recorder was made.
type Stats struct {
	Queued  uint64 // records taken into the queue
	Written uint64 // records committed by Write and Submit (not Record)
	Dropped uint64 // records Submit dropped on a full queue (QueueDrop)
	Lost    uint64 // submitted records the store refused: never written
	Batches uint64 // transactions the writer committed
	Pending int    // records in the queue now
	// Suppressed counts refusals not recorded one by one (SubmitIfRoom,
	// Suppress); the next one recorded says how many came before it.
	Suppressed uint64
}

// Recorder states.
const (
	stateNew     = iota // Write and Submit write synchronously
	stateRunning        // the writer goroutine takes the queue
	stateClosed         // Write and Submit refuse
)

// request is a drafted record waiting for the writer. done is nil for
// Submit; Write waits on it (buffered, so the writer never blocks).
type request struct {
	ctx  context.Context
	d    draft
	done chan error
}

// failure is a failed write and when it happened.
type failure struct {
	err error
	at  time.Time
}

// writer is the Recorder's bounded queue and the goroutine that empties
// it in batches (group commit): whatever has queued while one transaction
// commits goes into the next, up to maxBatch records.
type writer struct {
	queue      chan request
	policy     QueuePolicy
	onCommit   func()
	probeEvery time.Duration
	log        *slog.Logger

	// mu guards state, and keeps the queue from being closed under a
	// sender: senders hold it for reading.
	mu      sync.RWMutex
	state   int
	closing chan struct{} // closed when Close begins: frees Writes waiting for room
	once    sync.Once
	done    chan struct{} // closed when the writer goroutine has returned

	// failure is the last failed write while nothing has succeeded since.
	failure atomic.Pointer[failure]

	queued, written, dropped, lost, batches atomic.Uint64
	lastWarn                                atomic.Int64  // unix nanoseconds of the last "dropped" warning
	suppressed, suppressedTotal             atomic.Uint64 // since the last recorded refusal; in all
}

// init sets w up from o's queue options.
func (w *writer) init(o RecorderOptions) error {
	switch {
	case o.QueueSize < 0:
		return fmt.Errorf("audit recorder: queue size %d is negative", o.QueueSize)
	case o.QueueSize == 0:
		o.QueueSize = DefaultQueueSize
	}
	switch o.QueueFull {
	case QueueRefuse, QueueDrop:
	default:
		return fmt.Errorf("audit recorder: unknown queue policy %d", int(o.QueueFull))
	}
	if o.ProbeInterval <= 0 {
		o.ProbeInterval = time.Second
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	w.queue = make(chan request, o.QueueSize)
	w.policy, w.onCommit, w.probeEvery, w.log = o.QueueFull, o.OnCommit, o.ProbeInterval, o.Log
	w.closing = make(chan struct{})
	return nil
}

// Start starts the writer goroutine: from then on Submit queues records
// and Write waits for the batch that commits its record. Before Start
// both write synchronously, each in a transaction of its own (tests,
// offline tools). Starting twice, or after Close, does nothing.
func (r *Recorder) Start() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.state != stateNew {
		return
	}
	r.state = stateRunning
	r.done = make(chan struct{})
	go r.run()
}

// Close stops taking records (Write and Submit then return an error
// wrapping ErrWrite; Record, in the caller's transaction, still works),
// writes everything already queued and returns when it is committed, or
// with ctx's error. Call it after the HTTP server has stopped and before
// the Follower's Close, which signs the shutdown checkpoint.
func (r *Recorder) Close(ctx context.Context) error {
	r.once.Do(func() { close(r.closing) })
	r.mu.Lock()
	if r.state == stateRunning {
		close(r.queue)
	}
	r.state = stateClosed
	done := r.done
	r.mu.Unlock()
	if done == nil { // never started
		return nil
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("audit: close with %d records still queued: %w", len(r.queue), ctx.Err())
	}
}

// Submit records e without making the caller wait for the commit: for
// records on hot paths that change no state (denials, sampled inference).
// The entry is drafted at once (request id, source, time and actor are
// taken now), then queued. It returns an error wrapping ErrWrite when the
// record cannot be taken: the queue is full (ErrQueueFull, unless the
// policy is QueueDrop), the Recorder is closed, or, before Start, the
// synchronous write failed. The caller then refuses the action rather
// than let it pass unrecorded. A queued record the store later refuses is
// counted in Stats.Lost and logged. Inside a transaction use Record: before
// Start, Submit opens a transaction of its own.
func (r *Recorder) Submit(ctx context.Context, e Entry) error {
	d, err := r.draft(ctx, e)
	if err != nil {
		return err
	}
	r.mu.RLock()
	switch r.state {
	case stateNew:
		r.mu.RUnlock()
		return r.writeNow(ctx, d)
	case stateClosed:
		r.mu.RUnlock()
		return fmt.Errorf("audit %s: %w: %w", e.Action, ErrWrite, errClosed)
	}
	select {
	case r.queue <- request{d: d}:
		r.mu.RUnlock()
		r.queued.Add(1)
		return nil
	default:
		r.mu.RUnlock()
	}
	if r.policy == QueueDrop {
		r.dropped.Add(1)
		r.warnDropped()
		return nil
	}
	return fmt.Errorf("audit %s: %w", e.Action, ErrQueueFull)
}

// Write records e and returns once it is committed: for actions that
// change no state of their own (a token issued from a valid credential, a
// sensitive read), which must not happen unrecorded. Concurrent Writes
// (and Submits) are committed together in one transaction. It waits for
// room in a full queue; if ctx ends first it returns an error wrapping
// ErrWrite, and a queued record whose ctx has ended when its batch is
// formed is not written (the same error). Before Start it writes in a
// transaction of its own. Never call it inside a transaction (use Record there): the
// writer needs the write lock the caller would be holding.
//
// ctx bounds only the wait for room in the queue: once the record is
// queued, Write returns the outcome of its commit.
func (r *Recorder) Write(ctx context.Context, e Entry) error {
	d, err := r.draft(ctx, e)
	if err != nil {
		return err
	}
	done := make(chan error, 1)
	r.mu.RLock()
	switch r.state {
	case stateNew:
		r.mu.RUnlock()
		return r.writeNow(ctx, d)
	case stateClosed:
		r.mu.RUnlock()
		return fmt.Errorf("audit %s: %w: %w", e.Action, ErrWrite, errClosed)
	}
	select {
	case r.queue <- request{ctx: ctx, d: d, done: done}:
		r.mu.RUnlock()
		r.queued.Add(1)
	case <-r.closing:
		r.mu.RUnlock()
		return fmt.Errorf("audit %s: %w: %w", e.Action, ErrWrite, errClosed)
	case <-ctx.Done():
		r.mu.RUnlock()
		return fmt.Errorf("audit %s: %w: %w", e.Action, ErrWrite, context.Cause(ctx))
	}
	// Once queued, the record may commit whatever ctx does, so the answer
	// must be the writer's: an error here while the record commits would
	// leave a record of an action the caller then does not take.
	return <-done
}

// Available reports whether the audit log takes records (nil) or why not
// (an error wrapping ErrWrite), so requests can be refused before they
// start work they could not record: the last write failed and nothing
// has been written since (the started writer probes the store every
// ProbeInterval meanwhile, so the state clears when the store works
// again), or the Recorder is closed. A full queue is not reported here:
// it refuses only what would go into it (Submit), while changes, recorded
// in their own transactions, go on.
func (r *Recorder) Available() error {
	r.mu.RLock()
	state := r.state
	r.mu.RUnlock()
	// Without the writer nothing probes the store: a failure then counts
	// for ProbeInterval, after which requests may try again.
	if f := r.failure.Load(); f != nil && (state == stateRunning || time.Since(f.at) < r.probeEvery) {
		return fmt.Errorf("audit log unavailable: %w", f.err)
	}
	if state == stateClosed {
		return fmt.Errorf("audit log unavailable: %w: %w", ErrWrite, errClosed)
	}
	return nil
}

// Stats returns the writer's counters (for metrics).
func (r *Recorder) Stats() Stats {
	return Stats{
		Queued: r.queued.Load(), Written: r.written.Load(), Dropped: r.dropped.Load(),
		Lost: r.lost.Load(), Batches: r.batches.Load(), Pending: len(r.queue), Suppressed: r.suppressedTotal.Load(),
	}
}

// SubmitIfRoom queues e like Submit, but only while the queue is at most
// half full, and reports whether it did; otherwise e is counted as
// suppressed. It is for refusals anyone can cause without credentials (a
// bad token): a flood of them must neither fill the queue, which would
// refuse every request, nor make the log grow without bound. The next
// refusal recorded carries "suppressed_before=N" in its reason, so the
// log still says how many there were.
func (r *Recorder) SubmitIfRoom(ctx context.Context, e Entry) bool {
	if len(r.queue) > cap(r.queue)/2 {
		r.Suppress()
		return false
	}
	if n := r.suppressed.Swap(0); n > 0 {
		e.Reason = strings.TrimSpace(e.Reason + " suppressed_before=" + strconv.FormatUint(n, 10))
		if err := r.Submit(ctx, e); err != nil {
			r.suppressed.Add(n + 1)
			r.suppressedTotal.Add(1)
			return false
		}
		return true
	}
	if err := r.Submit(ctx, e); err != nil {
		r.Suppress()
		return false
	}
	return true
}

// Suppress counts a refusal that is not recorded on its own (the caller
// limits how many one source may cause); see SubmitIfRoom.
func (r *Recorder) Suppress() {
	r.suppressed.Add(1)
	r.suppressedTotal.Add(1)
}

// writeNow writes d in a transaction of its own (the Recorder is not
// started).
func (r *Recorder) writeNow(ctx context.Context, d draft) error {
	err := r.store.InTx(ctx, func(tx store.Tx) error { return r.append(ctx, tx, d) })
	if err != nil {
		err = writeError(d.Action, err)
		if ctx.Err() == nil { // a caller giving up says nothing about the store
			r.failed(err)
		}
		return err
	}
	r.written.Add(1)
	r.succeeded()
	return nil
}

// writeError makes sure err, from a transaction that wrote the record of
// action, wraps ErrWrite (a failure to begin or commit does not yet).
func writeError(action string, err error) error {
	if errors.Is(err, ErrWrite) || errors.Is(err, ErrInvalidEvent) {
		return err
	}
	return fmt.Errorf("audit %s: %w: %w", action, ErrWrite, err)
}

func (r *Recorder) failed(err error) { r.failure.Store(&failure{err: err, at: time.Now()}) }

func (r *Recorder) succeeded() {
	r.failure.Store(nil)
	if r.onCommit != nil {
		r.onCommit()
	}
}

// run is the writer goroutine: it takes the first queued request, then
// whatever else is queued without waiting, up to maxBatch, and commits
// them together. It returns when Close has closed the queue and the
// queue is empty.
func (r *Recorder) run() {
	defer close(r.done)
	probe := time.NewTicker(r.probeEvery)
	defer probe.Stop()
	reqs := make([]request, 0, maxBatch)
	for {
		var probeC <-chan time.Time
		if r.failure.Load() != nil {
			probeC = probe.C
		}
		select {
		case q, ok := <-r.queue:
			if !ok {
				return
			}
			reqs = append(reqs[:0], q)
			open := true
		fill:
			for len(reqs) < maxBatch {
				select {
				case q, ok := <-r.queue:
					if !ok {
						open = false
						break fill
					}
					reqs = append(reqs, q)
				default:
					break fill
				}
			}
			r.commit(reqs)
			clear(reqs) // let the drafts go
			if !open {
				return
			}
		case <-probeC:
			r.probe()
		}
	}
}

// commit writes reqs in one transaction. If it fails because a record
// could not be appended, each is retried in a transaction of its own, so
// one bad record cannot sink the others; each waiting Write gets its own
// result. Writes whose callers have given up are not written.
func (r *Recorder) commit(reqs []request) {
	ctx := context.Background()
	todo := reqs[:0]
	for _, q := range reqs {
		if q.done != nil && q.ctx.Err() != nil {
			q.done <- fmt.Errorf("audit %s: %w: %w", q.d.Action, ErrWrite, context.Cause(q.ctx))
			continue
		}
		todo = append(todo, q)
	}
	if len(todo) == 0 {
		return
	}
	appendFailed := false
	err := r.store.InTx(ctx, func(tx store.Tx) error {
		b := r.newBatch(tx)
		for _, q := range todo {
			if err := b.append(ctx, q.d); err != nil {
				appendFailed = true
				return err
			}
		}
		if err := b.flush(ctx); err != nil {
			appendFailed = true
			return err
		}
		return nil
	})
	if err == nil {
		r.written.Add(uint64(len(todo)))
		r.batches.Add(1)
		r.succeeded()
		for _, q := range todo {
			r.finish(q, nil)
		}
		return
	}
	if !appendFailed || len(todo) == 1 {
		// The transaction itself failed (begin or commit): the store is
		// down for every record alike.
		for _, q := range todo {
			r.finish(q, writeError(q.d.Action, err))
		}
		r.failed(writeError(todo[0].d.Action, err))
		return
	}
	var last error
	ok := false
	for _, q := range todo {
		err := r.store.InTx(ctx, func(tx store.Tx) error { return r.append(ctx, tx, q.d) })
		if err != nil {
			last = writeError(q.d.Action, err)
			r.finish(q, last)
			continue
		}
		ok = true
		r.written.Add(1)
		r.batches.Add(1)
		r.finish(q, nil)
	}
	if ok {
		r.succeeded() // the store works; the failures were the records'
	} else {
		r.failed(last)
	}
}

// finish answers q's waiter, or counts and logs a lost submitted record
// (its action and the error only: never who or what it was about).
func (r *Recorder) finish(q request, err error) {
	switch {
	case q.done != nil:
		q.done <- err
	case err != nil:
		r.lost.Add(1)
		r.log.Error("audit record lost", slog.String("action", q.d.Action), slog.Any("error", err))
	}
}

// probe checks, while writes fail, whether the store answers again: a
// transaction that reads the head of the log. If it does the failure is
// cleared, so Available lets requests through; if writes still fail the
// next one sets it again.
func (r *Recorder) probe() {
	ctx, cancel := context.WithTimeout(context.Background(), r.probeEvery)
	defer cancel()
	err := r.store.InTx(ctx, func(tx store.Tx) error {
		_, err := readHead(ctx, tx)
		return err
	})
	if err == nil {
		r.failure.Store(nil)
	}
}

// warnDropped logs that records are being dropped, at most once a minute.
func (r *Recorder) warnDropped() {
	now := time.Now().UnixNano()
	last := r.lastWarn.Load()
	if now-last < int64(time.Minute) || !r.lastWarn.CompareAndSwap(last, now) {
		return
	}
	r.log.Warn("audit queue full: records dropped (queue policy drop)",
		slog.Uint64("dropped_total", r.dropped.Load()), slog.Int("queue_size", cap(r.queue)))
}
