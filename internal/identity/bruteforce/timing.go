package bruteforce

import (
	"context"
	"time"
)

// DefaultMinResponse is the default floor for login answers: above the
// normal latency of an argon2id verification with the default parameters
// plus a database transaction, and too short for a person to notice.
const DefaultMinResponse = 200 * time.Millisecond

// Timing pads login answers to a minimum duration, so that unknown-user,
// wrong-password and locked-account answers cannot be told apart by small
// differences in the work behind them. It complements, and does not replace,
// verifying a dummy hash (see the package documentation): a floor hides only
// differences below it, and under load every path may exceed it.
type Timing struct {
	// Min is the shortest answer. 0 disables padding.
	Min time.Duration
}

// Pad waits until elapsed (the time already spent on the request) reaches
// t.Min. It returns early with ctx.Err() if ctx ends first; the caller should
// then drop the answer, since the client is gone.
func (t Timing) Pad(ctx context.Context, elapsed time.Duration) error {
	wait := t.Min - elapsed
	if wait <= 0 {
		return ctx.Err()
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
