package audit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"sync"
	"time"

	"github.com/rampart-ml/rampart/internal/store"
)

// Follower defaults.
const (
	DefaultFollowInterval     = time.Second
	DefaultCheckpointRecords  = 1000
	DefaultCheckpointInterval = time.Minute
)

// followBatch is how many records the Follower reads per transaction.
const followBatch = 512

// ErrCopyDiverged means the JSON-lines copy holds a record the database
// does not (the database lost records after it: restored from a backup,
// or truncated) or holds differently. The Follower refuses to append to
// such a copy: it is evidence. Check it with VerifyCopy, then move it away
// to start a new one.
var ErrCopyDiverged = errors.New("audit copy does not match the database")

// FollowerOptions configure NewFollower.
type FollowerOptions struct {
	Store store.Store // checkpoints are written here
	// Reader, when set, is where records are read: a read-only handle on
	// the same database whose transactions do not hold up writers
	// (sqlite.OpenReadOnly), since the Follower reads everything the
	// writer appends. Default: Store.
	Reader store.Store
	Signer *Signer
	// File, when set, is the path of a JSON-lines copy of the log (see
	// MarshalRecordLine): created 0600, appended to and synced after each
	// batch. A copy that exists is continued after the last record or
	// checkpoint of its last complete line (a torn last line, from a crash
	// mid-write, is cut off); an empty or new one starts at record 1.
	File string
	// Stream, when set, receives the same lines for records committed
	// after the Follower starts (stdout, for a SIEM).
	Stream io.Writer
	// Interval is how often the Follower looks for new records without
	// being notified (default 1 s): records appended in other
	// transactions (Recorder.Record) are found this way.
	Interval time.Duration
	// A periodic checkpoint is signed when CheckpointRecords records
	// (default 1000) or CheckpointInterval (default 1 min) have passed
	// since the last checkpoint, with at least one new record.
	CheckpointRecords  uint64
	CheckpointInterval time.Duration
	Now                func() time.Time
	// Log receives failures (no personal data: seqs and errors); nil
	// discards them.
	Log *slog.Logger
}

// Follower follows the committed log: it copies new records to its sinks
// and signs checkpoints, periodic ones while the server runs and the
// shutdown one in Close, writing them to the sinks too. Start it after
// the Recorder is made (pass its Notify as RecorderOptions.OnCommit) and
// close it after the Recorder.
type Follower struct {
	o     FollowerOptions
	sinks []*sink

	mu     sync.Mutex // serialises steps and Close
	pos    uint64     // the highest seq seen in the store
	cpSeq  uint64     // the seq the latest checkpoint signs
	cpAt   time.Time  // and when it was made
	closed bool

	poke chan struct{}
	stop chan struct{}
	done chan struct{} // nil until Start

	lastLog time.Time // of the last failure logged by step
}

// NewFollower opens the sinks and finds where each resumes. It refuses a
// copy whose last line is not in the database as it is
// (ErrCopyDiverged), or that cannot be parsed.
func NewFollower(ctx context.Context, o FollowerOptions) (*Follower, error) {
	if o.Store == nil || o.Signer == nil {
		return nil, errors.New("audit follower: store and signer are required")
	}
	if o.Reader == nil {
		o.Reader = o.Store
	}
	if o.Interval <= 0 {
		o.Interval = DefaultFollowInterval
	}
	if o.CheckpointRecords == 0 {
		o.CheckpointRecords = DefaultCheckpointRecords
	}
	if o.CheckpointInterval <= 0 {
		o.CheckpointInterval = DefaultCheckpointInterval
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	f := &Follower{o: o, poke: make(chan struct{}, 1), stop: make(chan struct{})}
	var head store.AuditRecord
	var haveHead bool
	var cps []store.AuditCheckpoint
	err := o.Store.InTx(ctx, func(tx store.Tx) error {
		var err error
		if head, haveHead, err = tx.Audit().AuditHead(ctx); err != nil {
			return err
		}
		cps, err = tx.Audit().AuditCheckpoints(ctx)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("audit follower: %w", err)
	}
	if haveHead {
		f.pos = head.Seq
	}
	if n := len(cps); n > 0 {
		f.cpSeq, f.cpAt = cps[n-1].Seq, cps[n-1].Time
	}
	if o.File != "" {
		s, err := openFileSink(ctx, o.File, o.Store)
		if err != nil {
			return nil, err
		}
		f.sinks = append(f.sinks, s)
	}
	if o.Stream != nil {
		f.sinks = append(f.sinks, &sink{name: "stream", w: o.Stream, next: f.pos})
	}
	return f, nil
}

// Start starts following in a goroutine of its own.
func (f *Follower) Start() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.done != nil || f.closed {
		return
	}
	f.done = make(chan struct{})
	go f.run()
}

// Notify tells the Follower that records were committed; it never
// blocks, and several notifications before the next step make one.
func (f *Follower) Notify() {
	select {
	case f.poke <- struct{}{}:
	default:
	}
}

func (f *Follower) run() {
	defer close(f.done)
	t := time.NewTicker(f.o.Interval)
	defer t.Stop()
	for {
		select {
		case <-f.stop:
			return
		case <-f.poke:
		case <-t.C:
		}
		// Bounded, so a hung store cannot stop the loop for good.
		ctx, cancel := context.WithTimeout(context.Background(), max(10*f.o.Interval, 10*time.Second))
		err := f.step(ctx)
		cancel()
		if err != nil && time.Since(f.lastLog) >= time.Minute {
			f.lastLog = time.Now()
			f.o.Log.Error("audit follower", slog.Any("error", err))
		}
	}
}

// step copies the records committed since the last step to the sinks and
// signs a periodic checkpoint when one is due.
func (f *Follower) step(ctx context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return nil
	}
	// A sink that fails does not hold back checkpoints: they are what
	// makes the log in the store tamper-evident.
	err := f.catchUp(ctx, math.MaxUint64)
	now := f.o.Now()
	if f.pos > f.cpSeq && (f.pos-f.cpSeq >= f.o.CheckpointRecords || now.Sub(f.cpAt) >= f.o.CheckpointInterval) {
		err = errors.Join(err, f.checkpoint(ctx, KindPeriodic, now))
	}
	return err
}

// Close stops following, copies what is left, signs the shutdown
// checkpoint, writes it to the sinks and closes them. Call it after the
// Recorder's Close, so the checkpoint covers every queued record.
func (f *Follower) Close(ctx context.Context) error {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return nil
	}
	done := f.done
	close(f.stop)
	f.mu.Unlock()
	if done != nil {
		select {
		case <-done:
		case <-ctx.Done():
			return fmt.Errorf("audit follower: close: %w", ctx.Err())
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	err := f.catchUp(ctx, math.MaxUint64)
	if cerr := f.checkpoint(ctx, KindShutdown, f.o.Now()); cerr != nil {
		err = errors.Join(err, cerr)
	}
	for _, s := range f.sinks {
		if cerr := s.close(); cerr != nil {
			err = errors.Join(err, cerr)
		}
	}
	return err
}

// checkpoint signs the head of the log, then writes the records up to it
// and the checkpoint's line to the sinks.
func (f *Follower) checkpoint(ctx context.Context, kind string, now time.Time) error {
	var c store.AuditCheckpoint
	err := f.o.Store.InTx(ctx, func(tx store.Tx) error {
		var err error
		c, err = Checkpoint(ctx, tx, f.o.Signer, kind, now)
		return err
	})
	if err != nil {
		return err
	}
	f.cpSeq, f.cpAt = c.Seq, c.Time
	// Records committed between the last read and the checkpoint go
	// before its line, and nothing after it.
	err = f.catchUp(ctx, c.Seq)
	line := MarshalCheckpointLine(c)
	for _, s := range f.sinks {
		if s.next != c.Seq { // behind after a failed write: it gets the next one
			continue
		}
		if werr := s.write(line, c.Seq); werr != nil {
			err = errors.Join(err, werr)
		}
	}
	return err
}

// catchUp reads the records after the sinks' positions, up to through,
// and writes them to the sinks, one batch at a time.
func (f *Follower) catchUp(ctx context.Context, through uint64) error {
	if len(f.sinks) == 0 {
		return f.readHead(ctx)
	}
	var errs []error
	for {
		from := uint64(math.MaxUint64)
		for _, s := range f.sinks {
			from = min(from, s.next)
		}
		if from >= through {
			break
		}
		limit := uint64(followBatch)
		if through-from < limit {
			limit = through - from
		}
		var recs []store.AuditRecord
		var prune *store.AuditCheckpoint
		err := f.o.Reader.InTx(ctx, func(tx store.Tx) error {
			var err error
			if recs, err = tx.Audit().AuditRecords(ctx, from, int(limit)); err != nil { // #nosec G115 -- at most followBatch
				return err
			}
			if len(recs) > 0 && recs[0].Seq > from+1 {
				prune, err = latestPrune(ctx, tx)
			}
			return err
		})
		if err != nil {
			return errors.Join(append(errs, err)...)
		}
		if len(recs) == 0 {
			break
		}
		f.pos = max(f.pos, recs[len(recs)-1].Seq)
		progress := false
		for _, s := range f.sinks {
			if err := s.writeRecords(recs, prune); err != nil {
				errs = append(errs, err)
				continue
			}
			progress = true
		}
		if !progress { // every sink failed: try again at the next step
			if err := f.readHead(ctx); err != nil { // checkpoints still count the records
				errs = append(errs, err)
			}
			break
		}
		if uint64(len(recs)) < limit {
			break
		}
	}
	return errors.Join(errs...)
}

// readHead updates pos when there are no sinks to copy to.
func (f *Follower) readHead(ctx context.Context) error {
	return f.o.Reader.InTx(ctx, func(tx store.Tx) error {
		head, ok, err := tx.Audit().AuditHead(ctx)
		if ok {
			f.pos = max(f.pos, head.Seq)
		}
		return err
	})
}

// latestPrune returns the prune checkpoint with the highest seq, or nil.
func latestPrune(ctx context.Context, tx store.Tx) (*store.AuditCheckpoint, error) {
	cps, err := tx.Audit().AuditCheckpoints(ctx)
	if err != nil {
		return nil, err
	}
	for i := len(cps) - 1; i >= 0; i-- {
		if cps[i].Kind == KindPrune {
			return &cps[i], nil
		}
	}
	return nil, nil
}

// sink is a copy of the log: a file or a stream.
type sink struct {
	name string
	w    io.Writer
	file *os.File // nil for a stream
	size int64    // bytes of the file known to be whole lines
	next uint64   // the seq of the last record (or checkpoint) written
	buf  []byte
}

// writeRecords writes the records of recs after s.next. If the records
// do not follow on (older ones were pruned before this copy got them),
// the prune checkpoint they follow is written first, so the copy stays
// verifiable; without one, the gap is written as it is and VerifyCopy
// reports it.
func (s *sink) writeRecords(recs []store.AuditRecord, prune *store.AuditCheckpoint) error {
	s.buf = s.buf[:0]
	last := s.next
	for _, r := range recs {
		if r.Seq <= last {
			continue
		}
		if r.Seq > last+1 && prune != nil && prune.Seq == r.Seq-1 {
			s.buf = append(s.buf, MarshalCheckpointLine(*prune)...)
		}
		s.buf = append(s.buf, MarshalRecordLine(r)...)
		last = r.Seq
	}
	if last == s.next {
		return nil
	}
	return s.write(s.buf, last)
}

// write writes whole lines ending with seq last. A file is synced; if
// the write fails, what was written of it is cut off again, so the file
// never holds a partial line that later lines would follow.
func (s *sink) write(lines []byte, last uint64) error {
	if s.file == nil {
		_, err := s.w.Write(lines)
		// A stream cannot be rewound: what failed is skipped, not retried.
		s.next = last
		if err != nil {
			return fmt.Errorf("audit copy to %s: %w", s.name, err)
		}
		return nil
	}
	n, err := s.file.Write(lines)
	if err == nil {
		err = s.file.Sync()
	}
	if err != nil {
		if n > 0 {
			if terr := s.file.Truncate(s.size); terr != nil {
				err = errors.Join(err, terr)
			}
		}
		return fmt.Errorf("audit copy %s: %w", s.name, err)
	}
	s.size += int64(n)
	s.next = last
	return nil
}

func (s *sink) close() error {
	if s.file == nil {
		return nil
	}
	if err := s.file.Close(); err != nil {
		return fmt.Errorf("audit copy %s: %w", s.name, err)
	}
	return nil
}

// openFileSink opens (or creates, 0600) the copy at path and finds where
// it resumes: after the seq of its last complete line, checked against
// the store.
func openFileSink(ctx context.Context, path string, st store.Store) (*sink, error) {
	file, err := os.OpenFile(path, os.O_RDWR|os.O_APPEND|os.O_CREATE, 0o600) // #nosec G304 -- operator-configured path
	if err != nil {
		return nil, fmt.Errorf("audit copy: %w", err)
	}
	s := &sink{name: path, w: file, file: file}
	last, size, err := lastLine(file)
	if err == nil && last != nil {
		err = checkResume(ctx, st, path, *last)
	}
	if err == nil {
		s.size = size
		if last != nil {
			s.next = last.Record.Seq
			if last.Type == LineCheckpoint {
				s.next = last.Checkpoint.Seq
			}
		}
		// Cut off a torn last line.
		var fi os.FileInfo
		if fi, err = file.Stat(); err == nil && fi.Size() != size {
			if err = file.Truncate(size); err == nil {
				err = file.Sync()
			}
		}
	}
	if err != nil {
		_ = file.Close()
		return nil, fmt.Errorf("audit copy %s: %w", path, err)
	}
	return s, nil
}

// lastLine returns the last complete line of file (nil if it has none)
// and the length of the file up to its end.
func lastLine(file *os.File) (*Line, int64, error) {
	fi, err := file.Stat()
	if err != nil {
		return nil, 0, err
	}
	size := fi.Size()
	// A torn last line and a whole one before it are both at most
	// MaxLineSize long.
	n := min(size, 2*(MaxLineSize+1))
	tail := make([]byte, n)
	if _, err := file.ReadAt(tail, size-n); err != nil && !errors.Is(err, io.EOF) {
		return nil, 0, err
	}
	end := bytes.LastIndexByte(tail, '\n')
	if end < 0 {
		if n < size {
			return nil, 0, errors.New("last line is too long")
		}
		return nil, 0, nil // only a torn line, or empty
	}
	start := bytes.LastIndexByte(tail[:end], '\n') + 1
	if start == 0 && n < size {
		return nil, 0, errors.New("last line is too long")
	}
	l, err := ParseLine(tail[start:end])
	if err != nil {
		return nil, 0, fmt.Errorf("last line: %w", err)
	}
	return &l, size - n + int64(end) + 1, nil
}

// checkResume checks that the copy's last line is in the store as it is,
// unless it was pruned.
func checkResume(ctx context.Context, st store.Store, path string, l Line) error {
	seq, hash := l.Record.Seq, l.Record.Hash
	if l.Type == LineCheckpoint {
		seq, hash = l.Checkpoint.Seq, l.Checkpoint.Head
	}
	if seq == 0 {
		return nil
	}
	var rec []store.AuditRecord
	var head store.AuditRecord
	err := st.InTx(ctx, func(tx store.Tx) error {
		var err error
		if rec, err = tx.Audit().AuditRecords(ctx, seq-1, 1); err != nil {
			return err
		}
		head, _, err = tx.Audit().AuditHead(ctx)
		return err
	})
	switch {
	case err != nil:
		return err
	case head.Seq < seq:
		return fmt.Errorf("%w: the copy goes up to record %d, the database only to %d (restored from a backup, or truncated?); check the copy with VerifyCopy and move it away to start a new one",
			ErrCopyDiverged, seq, head.Seq)
	case len(rec) == 0 || rec[0].Seq != seq:
		return nil // pruned since
	case !bytes.Equal(rec[0].Hash, hash):
		return fmt.Errorf("%w: record %d differs; check the copy with VerifyCopy and move it away to start a new one", ErrCopyDiverged, seq)
	}
	return nil
}
