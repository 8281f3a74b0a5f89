package registry

import (
	"context"
	"fmt"

	"github.com/rampart-ml/rampart/internal/access"
	"github.com/rampart-ml/rampart/internal/audit"
	"github.com/rampart-ml/rampart/internal/store"
)

// ActionModelQuarantine is the audit action of a version quarantined
// because its stored bytes no longer matched their digests.
const ActionModelQuarantine = "model.quarantine"

// quarantineVersion marks a version quarantined (reason is kept with the
// version, code goes in the audit record) together with its audit record.
// The finding is kept even if the caller has given up. actor nil means
// the principal of ctx.
func quarantineVersion(ctx context.Context, st store.Store, rec *audit.Recorder, t access.Target, version, reason, code string, actor *audit.Actor) error {
	ctx = context.WithoutCancel(ctx)
	return st.InTx(ctx, func(tx store.Tx) error {
		if err := tx.Models().SetModelVersionState(ctx, t.ID, version, store.VersionQuarantined, reason); err != nil {
			return fmt.Errorf("quarantine %s@%s: %w", t.ID, version, err)
		}
		return rec.Record(ctx, tx, audit.Entry{
			Action: ActionModelQuarantine, Target: modelTarget(t, version), Outcome: audit.OutcomeFailure,
			Reason: code, Actor: actor,
		})
	})
}
