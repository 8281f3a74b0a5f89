package services

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/rampart-ml/rampart/internal/audit"
	"github.com/rampart-ml/rampart/internal/store"
)

// maxReasonLen bounds a failure reason: machine text such as
// "worker exited: signal 9", never request data.
const maxReasonLen = 200

// ReporterOptions configure a Reporter.
type ReporterOptions struct {
	Store store.Store
	// Recorder records failures; without one, failures are refused
	// (they must not go unrecorded).
	Recorder *audit.Recorder
	Now      func() time.Time
}

// Reporter is how the supervisor records the actual state of a service:
// Up when every replica is healthy, Down when the last worker has exited
// after a stop, Fail with a reason when a worker cannot start or keeps
// crashing. Each report is checked against Next in the transaction that
// stores it; a failure is recorded in the audit log in that transaction.
type Reporter struct {
	store store.Store
	rec   *audit.Recorder
	now   func() time.Time
}

// NewReporter returns a Reporter.
func NewReporter(o ReporterOptions) *Reporter {
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Reporter{store: o.Store, rec: o.Recorder, now: o.Now}
}

// supervisorActor is who a failure record names: the server itself.
var supervisorActor = &audit.Actor{ID: "supervisor", Kind: audit.ActorSystem}

// Report applies e (Up, Down, Fail or Resume) to service name and returns its new
// state. A report that no longer fits (the service was stopped while it
// came up: Up in "stopping") wraps ErrTransition; the supervisor drops it
// and reconciles again. A deleted service wraps store.ErrNotFound.
func (r *Reporter) Report(ctx context.Context, name string, e Event, reason string) (State, error) {
	if e != Up && e != Down && e != Fail && e != Resume {
		return "", fmt.Errorf("report %s on service %s: %w: only up, down, fail and resume are reported", e, name, ErrTransition)
	}
	if len(reason) > maxReasonLen {
		// Cut on a byte boundary, then drop a rune the cut split.
		reason = strings.ToValidUTF8(reason[:maxReasonLen], "")
	}
	if e != Fail {
		reason = ""
	}
	if e == Fail && r.rec == nil {
		return "", errNoRecorder
	}
	var to State
	err := r.store.InTx(ctx, func(tx store.Tx) error {
		s, err := tx.Services().ServiceByName(ctx, name)
		if err != nil {
			return err
		}
		if to, err = Next(State(s.State), e); err != nil {
			return err
		}
		if err := tx.Services().SetServiceState(ctx, name, string(to), reason, r.now().UTC()); err != nil {
			return err
		}
		if e != Fail {
			return nil
		}
		en := entry(ActionFail, s)
		en.Outcome, en.Reason, en.Actor = audit.OutcomeFailure, reason, supervisorActor
		return r.rec.Record(ctx, tx, en)
	})
	if err != nil {
		return "", fmt.Errorf("report %s on service %s: %w", e, name, err)
	}
	return to, nil
}
