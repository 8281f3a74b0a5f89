package bruteforce

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func newHashLimiter(t *testing.T, p HashPolicy) *HashLimiter {
	t.Helper()
	h, err := NewHashLimiter(p)
	if err != nil {
		t.Fatalf("NewHashLimiter(%+v): %v", p, err)
	}
	return h
}

// waitForWaiters polls until n callers are queued in h.
func waitForWaiters(t *testing.T, h *HashLimiter, n int64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for h.waiting.Load() != n {
		if time.Now().After(deadline) {
			t.Fatalf("%d callers waiting, want %d", h.waiting.Load(), n)
		}
		runtime.Gosched()
	}
}

func TestHashPolicyValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		p    HashPolicy
		want int
	}{
		{"default", DefaultHashPolicy(), 0},
		{"no queue", HashPolicy{Concurrency: 1}, 0},
		{"zero", HashPolicy{}, 1},
		{"negative", HashPolicy{Concurrency: -1, Queue: -1}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if errs := joined(tt.p.Validate()); len(errs) != tt.want {
				t.Errorf("Validate() = %v, want %d problems", errs, tt.want)
			}
		})
	}
	if d := DefaultHashPolicy(); d.Concurrency != max(1, runtime.GOMAXPROCS(0)/2) || d.Queue != 4*d.Concurrency {
		t.Errorf("DefaultHashPolicy() = %+v, want half of GOMAXPROCS (at least 1) and 4× that", d)
	}
	if _, err := NewHashLimiter(HashPolicy{}); err == nil {
		t.Error("NewHashLimiter accepted an invalid policy")
	}
}

func TestHashLimiterBoundsConcurrency(t *testing.T) {
	t.Parallel()
	const n, callers = 3, 64
	h := newHashLimiter(t, HashPolicy{Concurrency: n, Queue: callers}) // everyone may wait
	var running, peak, done atomic.Int64
	var wg sync.WaitGroup
	for range callers {
		wg.Go(func() {
			release, err := h.Acquire(context.Background())
			if err != nil {
				t.Errorf("Acquire: %v", err)
				return
			}
			defer release()
			cur := running.Add(1)
			for {
				p := peak.Load()
				if cur <= p || peak.CompareAndSwap(p, cur) {
					break
				}
			}
			time.Sleep(100 * time.Microsecond) // "hash"
			running.Add(-1)
			done.Add(1)
		})
	}
	wg.Wait()
	if got := peak.Load(); got > n || got < 1 {
		t.Errorf("peak concurrency %d, want 1..%d", got, n)
	}
	if done.Load() != callers {
		t.Errorf("%d of %d callers ran", done.Load(), callers)
	}
	if len(h.slots) != 0 || h.waiting.Load() != 0 {
		t.Errorf("after all released: %d slots held, %d waiting", len(h.slots), h.waiting.Load())
	}
}

func TestHashLimiterQueueOverflow(t *testing.T) {
	t.Parallel()
	const n, queue = 2, 3
	h := newHashLimiter(t, HashPolicy{Concurrency: n, Queue: queue})
	var held []func()
	for range n {
		release, err := h.Acquire(context.Background())
		if err != nil {
			t.Fatalf("Acquire with free slots: %v", err)
		}
		held = append(held, release)
	}
	// Fill the queue.
	results := make(chan error, queue)
	for range queue {
		go func() {
			release, err := h.Acquire(context.Background())
			if err == nil {
				release()
			}
			results <- err
		}()
	}
	waitForWaiters(t, h, queue)

	// Beyond the queue: fail fast.
	for range 100 {
		start := time.Now()
		_, err := h.Acquire(context.Background())
		if !errors.Is(err, ErrBusy) {
			t.Fatalf("Acquire with a full queue = %v, want ErrBusy", err)
		}
		if d := time.Since(start); d > 50*time.Millisecond {
			t.Fatalf("ErrBusy took %v, want immediate", d)
		}
	}
	if got := h.waiting.Load(); got != queue {
		t.Fatalf("refused callers left %d waiting, want %d", got, queue)
	}

	// Releasing lets the queue drain, each waiter running in turn.
	for _, release := range held {
		release()
		release() // idempotent: must not free a second slot
	}
	for range queue {
		if err := <-results; err != nil {
			t.Errorf("queued Acquire = %v, want success", err)
		}
	}
	if len(h.slots) != 0 {
		t.Errorf("%d slots still held", len(h.slots))
	}
}

func TestHashLimiterNoQueue(t *testing.T) {
	t.Parallel()
	h := newHashLimiter(t, HashPolicy{Concurrency: 1, Queue: 0})
	release, err := h.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.Acquire(context.Background()); !errors.Is(err, ErrBusy) {
		t.Errorf("Acquire with Queue 0 and no slot = %v, want ErrBusy", err)
	}
	release()
	release, err = h.Acquire(context.Background())
	if err != nil {
		t.Errorf("Acquire after release = %v", err)
	} else {
		release()
	}
}

func TestHashLimiterContext(t *testing.T) {
	t.Parallel()
	h := newHashLimiter(t, HashPolicy{Concurrency: 1, Queue: 4})
	release, err := h.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer release()

	t.Run("cancel while waiting", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		errc := make(chan error, 1)
		go func() {
			_, err := h.Acquire(ctx)
			errc <- err
		}()
		waitForWaiters(t, h, 1)
		cancel()
		select {
		case err := <-errc:
			if !errors.Is(err, context.Canceled) {
				t.Errorf("Acquire after cancel = %v, want context.Canceled", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Acquire did not return after cancel")
		}
		waitForWaiters(t, h, 0)
	})
	t.Run("deadline while waiting", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Millisecond)
		defer cancel()
		if _, err := h.Acquire(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Acquire = %v, want context.DeadlineExceeded", err)
		}
		waitForWaiters(t, h, 0)
	})
	t.Run("already cancelled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		free := newHashLimiter(t, HashPolicy{Concurrency: 1})
		if _, err := free.Acquire(ctx); !errors.Is(err, context.Canceled) {
			t.Errorf("Acquire with a cancelled ctx = %v, want context.Canceled even with a free slot", err)
		}
	})
}

func BenchmarkHashLimiterAcquire(b *testing.B) {
	h, err := NewHashLimiter(DefaultHashPolicy())
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		release, err := h.Acquire(ctx)
		if err != nil {
			b.Fatal(err)
		}
		release()
	}
}

// With a duty below 1 a slot stays closed after a hash for a time
// proportional to the hash, then opens again.
func TestHashLimiterDuty(t *testing.T) {
	t.Parallel()
	h, err := NewHashLimiter(HashPolicy{Concurrency: 1, Queue: 1, Duty: 0.5})
	if err != nil {
		t.Fatal(err)
	}
	release, err := h.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond) // "hashing"
	start := time.Now()
	release()
	// Queue 1: a caller may wait, but not a second one.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	release, err = h.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	release()
	if waited := time.Since(start); waited < 20*time.Millisecond {
		t.Errorf("slot reopened after %v, want at least the 20ms the hash took (duty 0.5)", waited)
	}
	if err := (HashPolicy{Concurrency: 1, Duty: 1.5}).Validate(); err == nil {
		t.Error("duty 1.5 accepted")
	}
}
