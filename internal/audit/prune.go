package audit

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/rampart-ml/rampart/internal/store"
)

// PruneReport says what Prune removed.
type PruneReport struct {
	// Through is the seq of the last record removed: every record up to
	// it is gone (0 when nothing was pruned).
	Through uint64
	Removed int64 // records removed by this call
	// Checkpoint is the prune checkpoint that signs record Through (zero
	// when nothing was pruned).
	Checkpoint store.AuditCheckpoint
}

// Prune removes the records older than before (retention), keeping the
// log verifiable: in one transaction it finds P, the last record before
// the first one at or after before (never the head: the chain must go on
// from a record), signs a prune checkpoint of P and the hash of record P,
// and deletes records 1 to P. Verify then accepts a log that starts at
// P+1, because the signed checkpoint vouches for what came before; the
// database refuses the deletion without such a checkpoint.
//
// The log is verified first (Verify, with s's public key) and nothing is
// pruned if it fails: pruning would destroy the evidence. Records are
// pruned by time of record, so one written out of time order (a queued
// record, drafted before an earlier seq committed) keeps the records
// after it until it is old enough itself.
func Prune(ctx context.Context, st store.Store, s *Signer, before, now time.Time) (PruneReport, error) {
	var rep PruneReport
	switch {
	case s == nil:
		return rep, errors.New("audit prune: no signer")
	case before.IsZero() || now.IsZero():
		return rep, errors.New("audit prune: zero time")
	}
	if _, err := Verify(ctx, st, s.Public()); err != nil {
		return rep, fmt.Errorf("audit prune: the log does not verify, nothing pruned: %w", err)
	}
	err := st.InTx(ctx, func(tx store.Tx) error {
		a := tx.Audit()
		head, ok, err := a.AuditHead(ctx)
		if err != nil || !ok {
			return err
		}
		through := head.Seq - 1
		first, ok, err := a.FirstAuditSeqAt(ctx, before)
		if err != nil {
			return err
		}
		if ok {
			through = min(through, first-1)
		}
		if through == 0 {
			return nil
		}
		recs, err := a.AuditRecords(ctx, through-1, 1)
		if err != nil {
			return err
		}
		if len(recs) == 0 || recs[0].Seq != through {
			return nil // pruned already
		}
		c, err := addCheckpoint(ctx, tx, s, store.AuditCheckpoint{
			Seq: through, Head: recs[0].Hash, Kind: KindPrune, Time: now.UTC(),
		})
		if err != nil {
			return err
		}
		n, err := a.PruneAuditRecords(ctx, through)
		if err != nil {
			return err
		}
		rep = PruneReport{Through: through, Removed: n, Checkpoint: c}
		return nil
	})
	if err != nil {
		return PruneReport{}, fmt.Errorf("audit prune: %w", err)
	}
	return rep, nil
}
