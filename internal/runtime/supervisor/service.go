package supervisor

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rampart-ml/rampart/internal/inference"
	"github.com/rampart-ml/rampart/internal/runtime/ipc"
	"github.com/rampart-ml/rampart/internal/tensor"
)

// Errors of Infer, checked with errors.Is.
var (
	// ErrNotReady: the service is not running (stopped, starting,
	// draining, or no replica is up).
	ErrNotReady = errors.New("model service is not ready")
	// ErrWorkerDied: the worker serving the call died during it; it is
	// being restarted.
	ErrWorkerDied = errors.New("the model worker serving this request died; it is being restarted")
	// ErrTimeout: the call took longer than the service's timeout; the
	// worker was killed and is being replaced.
	ErrTimeout = errors.New("the model did not answer within the service's timeout")
	// ErrInvalidArgument: the worker refused the inputs as not fitting the
	// model (the gateway's validation normally catches this first).
	ErrInvalidArgument = errors.New("the inputs do not fit the model")
	// ErrModel: the model failed on the inputs.
	ErrModel = errors.New("the model failed")
)

// Service is one model service as the inference path sees it. Its
// identity fields never change; the running part is swapped atomically.
type Service struct {
	Name, Domain, ModelID, ModelVersion string

	rt atomic.Pointer[running]
	m  *serviceMetrics
}

// running is a started service: its verified model directory, its
// signature and its replicas.
type running struct {
	sig     inference.Signature
	timeout time.Duration

	replicas atomic.Pointer[[]*replica] // copy-on-write on scale
	next     atomic.Uint32

	// gate: Infer holds it shared while a call is in flight; a drain takes
	// it exclusively, after setting draining so that no call waits on it.
	gate     sync.RWMutex
	draining atomic.Bool
}

// Signature is what a request must look like, from the worker's own view
// of the model; ok is false when the service is not running or draining.
func (s *Service) Signature() (sig inference.Signature, ok bool) {
	rt := s.rt.Load()
	if rt == nil || rt.draining.Load() {
		return inference.Signature{}, false
	}
	return rt.sig, true
}

// Ready says the service is running with at least one live replica.
func (s *Service) Ready() bool {
	rt := s.rt.Load()
	if rt == nil || rt.draining.Load() {
		return false
	}
	for _, r := range *rt.replicas.Load() {
		if r.proc.Load() != nil {
			return true
		}
	}
	return false
}

// Infer runs the model on inputs and returns the outputs named (all when
// outputs is empty).
func (s *Service) Infer(ctx context.Context, inputs []tensor.Tensor, outputs []string) ([]tensor.Tensor, error) {
	rt := s.rt.Load()
	if rt == nil || rt.draining.Load() {
		return nil, ErrNotReady
	}
	rt.gate.RLock()
	defer rt.gate.RUnlock()
	if rt.draining.Load() {
		return nil, ErrNotReady
	}
	s.m.inFlight.Inc()
	defer s.m.inFlight.Dec()

	queued := time.Now()
	r, err := rt.acquire(ctx)
	if err != nil {
		return nil, err
	}
	defer r.release()
	p := r.proc.Load()
	if p == nil {
		return nil, ErrNotReady
	}
	started := time.Now()
	s.m.queue.Observe(started.Sub(queued).Seconds())

	callCtx, cancel := context.WithTimeout(ctx, rt.timeout)
	defer cancel()
	out, err := p.Client().Infer(callCtx, inputs, outputs)
	s.m.worker.Observe(time.Since(started).Seconds())
	if err == nil {
		return out, nil
	}
	var re *ipc.RemoteError
	switch {
	case errors.Is(err, ipc.ErrWorkerDied):
		return nil, ErrWorkerDied
	case ctx.Err() != nil:
		return nil, ctx.Err()
	case callCtx.Err() != nil:
		// The worker is stuck on this call: kill it; its replica loop
		// starts a new one, without counting the kill as a crash (a slow
		// request is no fault of the worker's, and a caller must not be
		// able to fail the service by sending a few of them).
		r.killedSlow.Store(p)
		p.Kill()
		return nil, fmt.Errorf("%w (%v)", ErrTimeout, rt.timeout)
	case errors.As(err, &re) && errors.Is(err, ipc.ErrInvalidArgument):
		return nil, fmt.Errorf("%w: %s", ErrInvalidArgument, re.Msg)
	case errors.As(err, &re):
		return nil, fmt.Errorf("%w: %s", ErrModel, re.Msg)
	}
	return nil, err
}

// acquire takes a slot on a live replica: the first free one after the
// last pick, or else waits for one (until ctx ends).
func (rt *running) acquire(ctx context.Context) (*replica, error) {
	rs := *rt.replicas.Load()
	if len(rs) == 0 {
		return nil, ErrNotReady
	}
	start := int(rt.next.Add(1))
	live := 0
	for i := range rs {
		r := rs[(start+i)%len(rs)]
		if r.proc.Load() == nil {
			continue
		}
		live++
		select {
		case r.slots <- struct{}{}:
			return r, nil
		default:
		}
	}
	if live == 0 {
		return nil, ErrNotReady
	}
	// Every live replica is busy: queue on one of them, in turn.
	for i := range rs {
		r := rs[(start+i)%len(rs)]
		if r.proc.Load() == nil {
			continue
		}
		select {
		case r.slots <- struct{}{}:
			return r, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return nil, ErrNotReady
}

// drain stops new calls and waits until those in flight have finished,
// at most d.
func (rt *running) drain(d time.Duration) {
	rt.draining.Store(true)
	done := make(chan struct{})
	go func() {
		rt.gate.Lock()
		close(done)
		rt.gate.Unlock()
	}()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
	}
}

// signatureOf is the request signature from a worker's metadata.
func signatureOf(m ipc.Metadata) inference.Signature {
	conv := func(ts []ipc.TensorSpec) []inference.IO {
		out := make([]inference.IO, 0, len(ts))
		for _, t := range ts {
			out = append(out, inference.IO{Name: t.Name, Datatype: t.Datatype, Shape: t.Shape})
		}
		return out
	}
	// NaN and ±Inf inputs are refused: no model takes them on purpose, and
	// they are a classic way to make one misbehave.
	return inference.Signature{Inputs: conv(m.Inputs), Outputs: conv(m.Outputs), RejectNonFinite: true}
}
