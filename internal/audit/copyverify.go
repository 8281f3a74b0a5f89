package audit

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"sort"
	"time"

	"github.com/rampart-ml/rampart/internal/store"
)

// CopyReport summarises a VerifyCopy.
type CopyReport struct {
	Records     uint64 // record lines verified
	FirstSeq    uint64 // the copy's first record (0 if none)
	LastSeq     uint64 // and its last
	Checkpoints int    // checkpoint lines verified
	// LastCheckpointSeq is the seq the copy's latest checkpoint signs.
	LastCheckpointSeq uint64
	// Pruned counts records of the copy that the database no longer has
	// because a (validly signed) prune checkpoint removed them.
	Pruned uint64
	// Behind counts records the database has after the copy's last: the
	// copy lags, or the database holds records appended after it.
	Behind uint64
	// Torn is set when the copy ends in an incomplete line (it was being
	// written); that line is ignored.
	Torn     bool
	Duration time.Duration
}

// VerifyCopy checks a JSON-lines copy of the log (as the Follower writes
// it) against the store. The copy must itself be a valid chain: seqs
// without gaps, each record linking to the one before and hashing to its
// hash, each checkpoint validly signed under pub and signing the hash of
// the record before it (a copy may begin mid-log; a checkpoint before its
// first record anchors it). And every record of the copy must be in the
// store, identical, unless it is at or below the store's latest validly
// signed prune checkpoint. This catches what Verify alone cannot: records
// removed from the end of the database together with the checkpoints that
// covered them, or rewritten after the last checkpoint.
//
// It returns a *VerifyError naming the first bad seq; other errors are
// failures to read.
func VerifyCopy(ctx context.Context, st store.Store, copy io.Reader, pub ed25519.PublicKey) (CopyReport, error) {
	start := time.Now()
	var rep CopyReport
	if len(pub) != ed25519.PublicKeySize {
		return rep, errors.New("audit verify copy: invalid public key")
	}
	var (
		cps  []store.AuditCheckpoint
		head store.AuditRecord
	)
	err := st.InTx(ctx, func(tx store.Tx) error {
		var err error
		if cps, err = tx.Audit().AuditCheckpoints(ctx); err != nil {
			return err
		}
		head, _, err = tx.Audit().AuditHead(ctx)
		return err
	})
	if err != nil {
		return rep, fmt.Errorf("audit verify copy: %w", err)
	}
	// Only a prune checkpoint with a valid signature excuses a missing
	// record.
	var prunedThrough uint64
	for _, c := range cps {
		if c.Kind == KindPrune && VerifyCheckpoint(pub, c) {
			prunedThrough = max(prunedThrough, c.Seq)
		}
	}

	cv := copyVerifier{pub: pub, rep: &rep, db: storeCursor{st: st}, prunedThrough: prunedThrough}
	r := bufio.NewReaderSize(copy, 64<<10)
	for n := 1; ; n++ {
		line, err := readLine(r)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil && !errors.Is(err, errTorn) {
			return cv.done(start, fmt.Errorf("audit verify copy: line %d: %w", n, err))
		}
		l, perr := ParseLine(line)
		if errors.Is(err, errTorn) {
			if perr != nil { // a line being written: not part of the copy yet
				rep.Torn = true
				break
			}
		} else if perr != nil {
			return cv.done(start, &VerifyError{Seq: cv.next(), Reason: fmt.Sprintf("copy line %d cannot be parsed: %v", n, perr)})
		}
		switch l.Type {
		case LineRecord:
			err = cv.record(ctx, l.Record)
		case LineCheckpoint:
			err = cv.checkpoint(l.Checkpoint)
		}
		if err != nil {
			return cv.done(start, err)
		}
	}
	if head.Seq > rep.LastSeq {
		rep.Behind = head.Seq - rep.LastSeq
	}
	return cv.done(start, nil)
}

// errTorn marks a last line without its "\n".
var errTorn = errors.New("incomplete last line")

// readLine returns the next line without its "\n"; io.EOF at the end,
// errTorn with the content of a last line that has no "\n".
func readLine(r *bufio.Reader) ([]byte, error) {
	var long []byte
	for {
		chunk, err := r.ReadSlice('\n')
		if len(long)+len(chunk) > MaxLineSize+2 {
			return nil, fmt.Errorf("longer than %d bytes", MaxLineSize)
		}
		switch {
		case err == nil:
			return append(long, chunk[:len(chunk)-1]...), nil
		case errors.Is(err, bufio.ErrBufferFull):
			long = append(long, chunk...)
		case errors.Is(err, io.EOF):
			long = append(long, chunk...)
			if len(long) == 0 {
				return nil, io.EOF
			}
			return long, errTorn
		default:
			return nil, err
		}
	}
}

// copyVerifier walks a copy's lines.
type copyVerifier struct {
	pub           ed25519.PublicKey
	rep           *CopyReport
	db            storeCursor
	prunedThrough uint64

	have     bool   // a record has been verified
	lastHash []byte // its hash
	// anchor, before the first record (or after a prune), is the
	// checkpoint the next record must follow.
	anchor *store.AuditCheckpoint
}

// next is the seq the copy should hold next.
func (v *copyVerifier) next() uint64 {
	switch {
	case v.have:
		return v.rep.LastSeq + 1
	case v.anchor != nil:
		return v.anchor.Seq + 1
	}
	return 1
}

func (v *copyVerifier) record(ctx context.Context, r store.AuditRecord) error {
	var prev []byte
	switch {
	case v.have || v.anchor != nil:
		want := v.next()
		if r.Seq > want {
			return &VerifyError{Seq: want, Reason: fmt.Sprintf("missing from the copy: its next record is %d", r.Seq)}
		}
		if r.Seq < want {
			return &VerifyError{Seq: r.Seq, Reason: "out of sequence in the copy"}
		}
		prev = v.lastHash
		if !v.have {
			prev = v.anchor.Head
		}
	case r.Seq == 1:
		prev = genesis[:]
	default:
		prev = r.PrevHash // a copy that begins mid-log, unanchored
	}
	if !bytes.Equal(r.PrevHash, prev) {
		return &VerifyError{Seq: r.Seq, Reason: "link to the previous record broken in the copy"}
	}
	if !bytes.Equal(RecordHash(r.PrevHash, r.Seq, EventOf(r)), r.Hash) {
		return &VerifyError{Seq: r.Seq, Reason: "hash mismatch in the copy (edited)"}
	}
	stored, ok, err := v.db.get(ctx, r.Seq)
	switch {
	case err != nil:
		return fmt.Errorf("audit verify copy: %w", err)
	case !ok && r.Seq <= v.prunedThrough:
		v.rep.Pruned++
	case !ok:
		return &VerifyError{Seq: r.Seq, Reason: "in the copy but missing from the database (deleted or truncated)"}
	case !sameRecord(stored, r):
		return &VerifyError{Seq: r.Seq, Reason: "differs between the copy and the database"}
	}
	if v.rep.Records == 0 {
		v.rep.FirstSeq = r.Seq
	}
	v.rep.Records++
	v.rep.LastSeq = r.Seq
	v.have, v.lastHash, v.anchor = true, r.Hash, nil
	return nil
}

func (v *copyVerifier) checkpoint(c store.AuditCheckpoint) error {
	if !VerifyCheckpoint(v.pub, c) {
		return &VerifyError{Seq: c.Seq, Reason: fmt.Sprintf("%s checkpoint in the copy: invalid signature (forged or edited)", c.Kind)}
	}
	switch {
	case !v.have && c.Seq == 0 && !bytes.Equal(c.Head, genesis[:]):
		return &VerifyError{Seq: 0, Reason: "checkpoint of the empty log does not sign the genesis hash"}
	case !v.have:
		if v.anchor == nil || c.Seq >= v.anchor.Seq {
			v.anchor = &c
		}
	case c.Seq == v.rep.LastSeq:
		if !bytes.Equal(c.Head, v.lastHash) {
			return &VerifyError{Seq: c.Seq, Reason: fmt.Sprintf("does not match the signed %s checkpoint in the copy", c.Kind)}
		}
	case c.Seq > v.rep.LastSeq && c.Kind == KindPrune:
		// The records between were pruned before the copy got them; the
		// prune checkpoint anchors the records after it.
		v.have, v.anchor = false, &c
	case c.Seq > v.rep.LastSeq:
		return &VerifyError{Seq: v.rep.LastSeq + 1, Reason: fmt.Sprintf(
			"missing from the copy: a signed %s checkpoint covers records up to %d", c.Kind, c.Seq)}
	default:
		return &VerifyError{Seq: c.Seq, Reason: "checkpoint out of order in the copy"}
	}
	v.rep.Checkpoints++
	v.rep.LastCheckpointSeq = c.Seq
	return nil
}

func (v *copyVerifier) done(start time.Time, err error) (CopyReport, error) {
	v.rep.Duration = time.Since(start)
	return *v.rep, err
}

// sameRecord reports whether two records are the same in every field.
func sameRecord(a, b store.AuditRecord) bool {
	ea, eb := EventOf(a), EventOf(b)
	// Times compare with Equal: their locations may differ.
	timeEqual := ea.Time.Equal(eb.Time)
	ea.Time, eb.Time = time.Time{}, time.Time{}
	return a.Seq == b.Seq && timeEqual && ea == eb &&
		bytes.Equal(a.PrevHash, b.PrevHash) && bytes.Equal(a.Hash, b.Hash)
}

// storeCursor reads store records by increasing seq, in batches.
type storeCursor struct {
	st       store.Store
	buf      []store.AuditRecord
	from, to uint64 // buf holds every stored record with seq in [from, to]; empty when to < from
}

// get returns the stored record seq, if there is one.
func (c *storeCursor) get(ctx context.Context, seq uint64) (store.AuditRecord, bool, error) {
	if seq < c.from || seq > c.to || c.to < c.from {
		var recs []store.AuditRecord
		err := c.st.InTx(ctx, func(tx store.Tx) error {
			var err error
			recs, err = tx.Audit().AuditRecords(ctx, seq-1, verifyBatch)
			return err
		})
		if err != nil {
			return store.AuditRecord{}, false, err
		}
		// A seq past the last one read is read again: the database may
		// have grown since (a copy can be newer than the first read).
		c.buf, c.from, c.to = recs, seq, seq-1
		if len(recs) > 0 {
			c.to = recs[len(recs)-1].Seq
		}
	}
	i := sort.Search(len(c.buf), func(i int) bool { return c.buf[i].Seq >= seq })
	if i < len(c.buf) && c.buf[i].Seq == seq {
		return c.buf[i], true, nil
	}
	return store.AuditRecord{}, false, nil
}
