package bruteforce

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// ErrBusy means every password-hashing slot is taken and the wait queue is
// full. The caller should answer 503 at once; the answer reveals nothing
// about any account.
var ErrBusy = errors.New("password hashing busy")

// HashPolicy configures a [HashLimiter].
type HashPolicy struct {
	// Concurrency is how many password hashes may run at once. Each argon2id
	// hash with the default parameters holds 19 MiB for tens of
	// milliseconds, so this also bounds that memory.
	Concurrency int
	// Queue is how many callers may wait for a slot; beyond that Acquire
	// fails with ErrBusy. 0 means never wait.
	Queue int
	// Duty is the largest share of time a slot may spend hashing: after a
	// hash that took d, the slot stays closed for d*(1-Duty)/Duty. Under a
	// flood this caps hashing at Concurrency*Duty CPUs, leaving the rest to
	// other requests. 0 means 1 (no pause).
	Duty float64
}

// DefaultHashPolicy returns the defaults: one hash per two usable CPUs
// (runtime.GOMAXPROCS; at least one), four times as many waiting, and a
// duty of one quarter, so a login flood can take at most an eighth of the
// CPUs (measured in bench/README.md: API p99 stays within about 2× under
// 1000 wrong passwords per second on 2 vCPUs). A slot still completes
// several logins per second.
func DefaultHashPolicy() HashPolicy {
	n := max(1, runtime.GOMAXPROCS(0)/2)
	return HashPolicy{Concurrency: n, Queue: 4 * n, Duty: 0.25}
}

// Validate reports every problem with p at once.
func (p HashPolicy) Validate() error {
	var errs []error
	if p.Concurrency < 1 {
		errs = append(errs, fmt.Errorf("concurrency is %d, must be at least 1", p.Concurrency))
	}
	if p.Duty < 0 || p.Duty > 1 {
		errs = append(errs, fmt.Errorf("duty is %v, must be between 0 and 1", p.Duty))
	}
	if p.Queue < 0 {
		errs = append(errs, fmt.Errorf("queue is %d, must not be negative", p.Queue))
	}
	return errors.Join(errs...)
}

// HashLimiter bounds concurrent password hashing, and the number of callers
// waiting for it, so a flood of logins cannot queue unbounded work or memory.
// It is safe for concurrent use.
type HashLimiter struct {
	slots   chan struct{} // a token in the channel is a slot in use
	queue   int64
	pause   float64 // extra closed time per unit of hashing time
	waiting atomic.Int64
}

// NewHashLimiter returns a limiter for p, or an error if p is invalid.
func NewHashLimiter(p HashPolicy) (*HashLimiter, error) {
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("hash limiter policy: %w", err)
	}
	h := &HashLimiter{slots: make(chan struct{}, p.Concurrency), queue: int64(p.Queue)}
	if p.Duty > 0 && p.Duty < 1 {
		h.pause = (1 - p.Duty) / p.Duty
	}
	return h, nil
}

// Acquire takes a hashing slot, waiting if need be. It returns ErrBusy at
// once when the wait queue is full, and ctx.Err() if ctx ends first. On
// success the caller must call release exactly once when the hash is done;
// further calls do nothing.
func (h *HashLimiter) Acquire(ctx context.Context) (release func(), err error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	select {
	case h.slots <- struct{}{}:
		return h.release(), nil
	default:
	}
	if h.waiting.Add(1) > h.queue {
		h.waiting.Add(-1)
		return nil, ErrBusy
	}
	defer h.waiting.Add(-1)
	select {
	case h.slots <- struct{}{}:
		return h.release(), nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (h *HashLimiter) release() func() {
	var once sync.Once
	start := time.Now()
	return func() {
		once.Do(func() {
			if h.pause == 0 {
				<-h.slots
				return
			}
			closed := time.Duration(float64(time.Since(start)) * h.pause)
			time.AfterFunc(closed, func() { <-h.slots })
		})
	}
}
