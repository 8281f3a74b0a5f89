package audit

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"time"

	"github.com/rampart-ml/rampart/internal/store"
)

// verifyBatch is how many records Verify reads per transaction: memory
// stays bounded whatever the length of the log.
const verifyBatch = 1000

// Report summarises a verification.
type Report struct {
	Records     uint64 // records verified
	LastSeq     uint64 // the last record's seq; 0 for an empty log
	Head        []byte // the last record's hash (the genesis hash for an empty log)
	Checkpoints int    // checkpoints verified
	// LastCheckpointSeq is the seq the latest checkpoint signs (0 if none).
	LastCheckpointSeq uint64
	// PrunedThrough is the seq of the last record pruned (retention): the
	// log starts after it (0 if nothing was pruned).
	PrunedThrough uint64
	// Unsigned counts the records after the latest checkpoint: they chain
	// correctly, but until the next checkpoint nothing proves the log was
	// not cut short before, or after, them.
	Unsigned uint64
	Duration time.Duration
}

// VerifyError names the first record (by seq) at which the log is not as
// it was written, and why.
type VerifyError struct {
	Seq    uint64
	Reason string
}

func (e *VerifyError) Error() string { return fmt.Sprintf("record %d: %s", e.Seq, e.Reason) }

// Verify reads the whole log in seq order, in batches, and checks that
// the seqs run 1, 2, 3… without a gap; that each record names the hash of
// the one before it and hashes to its stored hash; that every checkpoint's
// signature is valid under pub and its head is the hash of the record at
// its seq; and that no checkpoint signs a record the log no longer has.
// A log that starts at record P+1 is valid only if its latest prune
// checkpoint is at P, is validly signed and signs the previous hash of
// record P+1; the checkpoints of pruned records are checked by signature
// only.
//
// It returns a *VerifyError naming the first bad record, so edits,
// deletions, insertions, reordering and truncation before a checkpoint are
// all reported; a chain rewritten from an edited record onwards is caught
// by the first checkpoint after the edit. Other errors are failures to
// read. The Report covers what was verified up to the first problem.
//
// Checkpoints are read first, in one transaction, so records a running
// server appends meanwhile only add to what is verified.
func Verify(ctx context.Context, st store.Store, pub ed25519.PublicKey) (Report, error) {
	start := time.Now()
	rep := Report{Head: GenesisHash()}
	if len(pub) != ed25519.PublicKeySize {
		return rep, errors.New("audit verify: invalid public key")
	}
	var cps []store.AuditCheckpoint
	err := st.InTx(ctx, func(tx store.Tx) error {
		var err error
		cps, err = tx.Audit().AuditCheckpoints(ctx)
		return err
	})
	if err != nil {
		return rep, fmt.Errorf("audit verify: %w", err)
	}

	v := verifier{pub: pub, cps: cps, rep: &rep}
	prev := GenesisHash()
	started := false
	buf := make([]byte, 0, 1024)
	for {
		var batch []store.AuditRecord
		err := st.InTx(ctx, func(tx store.Tx) error {
			var err error
			batch, err = tx.Audit().AuditRecords(ctx, rep.LastSeq, verifyBatch)
			return err
		})
		if err != nil {
			return v.done(start, fmt.Errorf("audit verify: %w", err))
		}
		if len(batch) == 0 {
			break
		}
		if !started {
			started = true
			if err := v.start(batch[0]); err != nil {
				return v.done(start, err)
			}
			prev = rep.Head
		}
		for _, r := range batch {
			want := rep.LastSeq + 1
			switch {
			case r.Seq > want:
				return v.done(start, &VerifyError{Seq: want, Reason: fmt.Sprintf("missing (deleted): the next record is %d", r.Seq)})
			case r.Seq < want: // the store returned records out of order
				return v.done(start, &VerifyError{Seq: r.Seq, Reason: "out of sequence"})
			case !bytes.Equal(r.PrevHash, prev):
				return v.done(start, &VerifyError{Seq: r.Seq, Reason: "link to the previous record broken (inserted, deleted or reordered)"})
			}
			h := recordHash(buf, prev, r.Seq, EventOf(r))
			if !bytes.Equal(h, r.Hash) {
				return v.done(start, &VerifyError{Seq: r.Seq, Reason: "hash mismatch (edited or reordered)"})
			}
			if err := v.checkpointsAt(r.Seq, h); err != nil {
				return v.done(start, err)
			}
			prev = h
			rep.Records++
			rep.LastSeq = r.Seq
			rep.Head = h
		}
	}
	if !started { // an empty log: only its own checkpoints
		if err := v.checkpointsAt(0, GenesisHash()); err != nil {
			return v.done(start, err)
		}
	}
	// A checkpoint beyond the last record: the log was cut short.
	if v.next < len(cps) {
		c := cps[v.next]
		if !VerifyCheckpoint(pub, c) {
			return v.done(start, &VerifyError{Seq: c.Seq, Reason: fmt.Sprintf("%s checkpoint: invalid signature (forged or edited)", c.Kind)})
		}
		return v.done(start, &VerifyError{Seq: rep.LastSeq + 1, Reason: fmt.Sprintf(
			"missing (truncated): the log ends at record %d but a signed %s checkpoint covers records up to %d",
			rep.LastSeq, c.Kind, c.Seq)})
	}
	return v.done(start, nil)
}

// verifier walks the checkpoints alongside the records.
type verifier struct {
	pub  ed25519.PublicKey
	cps  []store.AuditCheckpoint // sorted by Seq
	next int                     // first checkpoint not yet checked
	rep  *Report
}

// start checks the beginning of the log, whose first record is first:
// record 1 after the checkpoints of the empty log, or a record after
// pruned ones.
func (v *verifier) start(first store.AuditRecord) error {
	if first.Seq <= 1 {
		return v.checkpointsAt(0, GenesisHash())
	}
	pruned := first.Seq - 1
	var latest *store.AuditCheckpoint
	for i := range v.cps {
		if v.cps[i].Kind == KindPrune {
			latest = &v.cps[i] // sorted by seq: the last is the latest
		}
	}
	switch {
	case latest == nil:
		return &VerifyError{Seq: 1, Reason: fmt.Sprintf("missing (deleted): the log starts at record %d and no prune checkpoint removed the records before it", first.Seq)}
	case !VerifyCheckpoint(v.pub, *latest):
		return &VerifyError{Seq: latest.Seq, Reason: "prune checkpoint: invalid signature (forged or edited)"}
	case latest.Seq < pruned:
		return &VerifyError{Seq: latest.Seq + 1, Reason: fmt.Sprintf(
			"missing (deleted): records %d to %d are gone but the latest prune checkpoint is at %d", latest.Seq+1, pruned, latest.Seq)}
	case latest.Seq > pruned:
		return &VerifyError{Seq: first.Seq, Reason: fmt.Sprintf(
			"the log starts at record %d but the latest prune checkpoint removed records up to %d", first.Seq, latest.Seq)}
	case !bytes.Equal(latest.Head, first.PrevHash):
		return &VerifyError{Seq: first.Seq, Reason: "link to the prune checkpoint broken (inserted, deleted or replaced)"}
	}
	// The records these checkpoints sign are gone: their signatures are
	// all that can be checked, and those at the prune point must agree
	// with it.
	for ; v.next < len(v.cps) && v.cps[v.next].Seq <= pruned; v.next++ {
		c := v.cps[v.next]
		switch {
		case !VerifyCheckpoint(v.pub, c):
			return &VerifyError{Seq: c.Seq, Reason: fmt.Sprintf("%s checkpoint: invalid signature (forged or edited)", c.Kind)}
		case c.Seq == pruned && !bytes.Equal(c.Head, latest.Head):
			return &VerifyError{Seq: c.Seq, Reason: fmt.Sprintf("the signed %s checkpoint does not match the prune checkpoint", c.Kind)}
		}
		v.rep.Checkpoints++
		v.rep.LastCheckpointSeq = c.Seq
	}
	v.rep.LastSeq, v.rep.Head, v.rep.PrunedThrough = pruned, latest.Head, pruned
	return nil
}

// checkpointsAt checks every checkpoint at seq against hash, the verified
// hash of record seq.
func (v *verifier) checkpointsAt(seq uint64, hash []byte) error {
	for ; v.next < len(v.cps) && v.cps[v.next].Seq <= seq; v.next++ {
		c := v.cps[v.next]
		switch {
		case !VerifyCheckpoint(v.pub, c):
			return &VerifyError{Seq: c.Seq, Reason: fmt.Sprintf("%s checkpoint: invalid signature (forged or edited)", c.Kind)}
		case c.Seq < seq: // cannot happen: records run without gaps
			return &VerifyError{Seq: c.Seq, Reason: "checkpoint names a record that is missing"}
		case !bytes.Equal(c.Head, hash):
			return &VerifyError{Seq: c.Seq, Reason: fmt.Sprintf(
				"does not match the signed %s checkpoint: records %d to %d were rewritten",
				c.Kind, v.rep.LastCheckpointSeq+1, c.Seq)}
		}
		v.rep.Checkpoints++
		v.rep.LastCheckpointSeq = c.Seq
	}
	return nil
}

func (v *verifier) done(start time.Time, err error) (Report, error) {
	v.rep.Unsigned = v.rep.LastSeq - min(v.rep.LastCheckpointSeq, v.rep.LastSeq)
	v.rep.Duration = time.Since(start)
	return *v.rep, err
}
