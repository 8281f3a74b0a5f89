package supervisor

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"github.com/rampart-ml/rampart/internal/runtime/ipc"
	"github.com/rampart-ml/rampart/internal/runtime/worker"
)

// Restart policy of a replica's worker.
const (
	firstBackoff = 100 * time.Millisecond
	maxBackoff   = 30 * time.Second
	// stableAfter: a worker that ran this long resets the back-off and the
	// failure count.
	stableAfter = time.Minute
	// maxFailures in a row (failed starts, or crashes before stableAfter)
	// fail the service.
	maxFailures  = 5
	startTimeout = 2 * time.Minute
	pingTimeout  = 5 * time.Second
	stopGrace    = 10 * time.Second
)

// replica is one worker slot of a running service. Its loop keeps a worker
// process in proc (nil while none is up).
type replica struct {
	svc   *Service
	index int
	spec  worker.Spec
	slots chan struct{} // one token per call in flight; cap MaxConcurrent

	proc atomic.Pointer[worker.Process]
	// killedSlow is the worker killed because a call outlasted the
	// service's timeout: its exit is not counted as a crash.
	killedSlow atomic.Pointer[worker.Process]
	done       chan struct{} // closed when the loop has ended and its worker is gone
}

func (r *replica) release() { <-r.slots }

// events a replica loop reports to its service's controller.
type replicaEvent struct {
	r      *replica
	up     bool   // a worker started (the first time, or again)
	failed string // the replica gave up: the service fails with this reason
	hello  ipc.Metadata
}

// run keeps a worker running until ctx ends; then it asks the worker to
// finish its calls and exit (killing it after stopGrace).
func (r *replica) run(ctx context.Context, sup *Supervisor, events chan<- replicaEvent) {
	defer close(r.done)
	log := sup.log.With(slog.String("service", r.svc.Name), slog.Int("replica", r.index))
	backoff, failures := firstBackoff, 0
	for ctx.Err() == nil {
		startCtx, cancel := context.WithTimeout(ctx, startTimeout)
		p, err := worker.Start(startCtx, r.spec, sup.workerLog(r.svc.Name, r.index))
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			failures++
			log.Warn("model worker did not start", slog.String("error", err.Error()), slog.Int("failures", failures))
			if failures >= maxFailures {
				send(ctx, events, replicaEvent{r: r, failed: failReason(fmt.Sprintf("the worker did not start %d times in a row: ", failures), err)})
				return
			}
			if !sleep(ctx, backoff) {
				return
			}
			backoff = min(backoff*2, maxBackoff)
			continue
		}
		r.proc.Store(p)
		send(ctx, events, replicaEvent{r: r, up: true, hello: p.Client().Metadata()})
		started := time.Now()
		exited := r.watch(ctx, p, sup.opt.HealthInterval, log)
		r.proc.Store(nil)
		if !exited { // ctx ended: stop the worker
			r.stop(p)
			return
		}
		sup.workerExited(r.svc, r.index, p)
		if time.Since(started) >= stableAfter {
			backoff, failures = firstBackoff, 0
		}
		if r.killedSlow.CompareAndSwap(p, nil) {
			continue // replaced at once: the worker did not crash
		}
		failures++
		if failures >= maxFailures {
			send(ctx, events, replicaEvent{r: r, failed: fmt.Sprintf("the worker exited %d times in a row within %v of starting", failures, stableAfter)})
			return
		}
		if !sleep(ctx, backoff) {
			return
		}
		backoff = min(backoff*2, maxBackoff)
	}
}

// watch waits until the worker exits (true) or ctx ends (false), pinging
// it every interval and killing it when it does not answer.
func (r *replica) watch(ctx context.Context, p *worker.Process, interval time.Duration, log *slog.Logger) bool {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-p.Exited():
			return true
		case <-ctx.Done():
			return false
		case <-t.C:
			pctx, cancel := context.WithTimeout(ctx, pingTimeout)
			err := p.Client().Ping(pctx)
			cancel()
			if err != nil && ctx.Err() == nil {
				log.Warn("model worker failed its health check; killing it", slog.String("error", err.Error()))
				p.Kill()
			}
		}
	}
}

// stop asks the worker to finish what it is doing and exit, and kills it
// if it has not after stopGrace.
func (r *replica) stop(p *worker.Process) {
	_ = p.Client().Shutdown()
	t := time.NewTimer(stopGrace)
	defer t.Stop()
	select {
	case <-p.Exited():
	case <-t.C:
		p.Kill()
		<-p.Exited()
	}
}

// maxReason is the length of a failure reason the services API keeps
// (services.Reporter cuts longer ones).
const maxReason = 200

// failReason is prefix and err's text, bounded to maxReason by dropping
// the middle of err's text: the wrapping context is at its start, the
// cause (ORT's own words, say) at its end, and both must survive the cut.
func failReason(prefix string, err error) string {
	msg := err.Error()
	if len(prefix)+len(msg) <= maxReason {
		return prefix + msg
	}
	const ellipsis = " … "
	room := max(maxReason-len(prefix)-len(ellipsis), 0)
	head, tail := msg[:room/3], msg[len(msg)-(room-room/3):]
	return strings.ToValidUTF8(prefix+head, "") + ellipsis + strings.ToValidUTF8(tail, "")
}

// send hands the control loop an event, unless ctx ends first: the loop
// may itself be waiting for this replica to stop, and must not wait on a
// replica that waits on it.
func send(ctx context.Context, events chan<- replicaEvent, ev replicaEvent) {
	select {
	case events <- ev:
	case <-ctx.Done():
	}
}

// sleep waits d or until ctx ends (false).
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
