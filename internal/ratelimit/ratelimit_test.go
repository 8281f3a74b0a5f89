package ratelimit

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

var t0 = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)

func newLimiter(t testing.TB, p Policy) *Limiter[uint64] {
	t.Helper()
	l, err := New[uint64](p)
	if err != nil {
		t.Fatalf("New(%+v): %v", p, err)
	}
	return l
}

// checkConsistent verifies that the map and the LRU list agree.
func checkConsistent[K comparable](t *testing.T, l *Limiter[K]) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for e := l.lru.next; e != &l.lru; e = e.next {
		if e.next.prev != e {
			t.Fatalf("broken list link at %v", e.key)
		}
		if l.entries[e.key] != e {
			t.Fatalf("list entry %v not in the map", e.key)
		}
		n++
		if n > len(l.entries) {
			t.Fatalf("list longer than the map (%d)", len(l.entries))
		}
	}
	if n != len(l.entries) {
		t.Fatalf("list has %d entries, map %d", n, len(l.entries))
	}
}

func TestPolicyValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		p    Policy
		want int
	}{
		{"minimal", Policy{Burst: 1, Refill: time.Nanosecond, Max: 1}, 0},
		{"zero", Policy{}, 3},
		{"negative", Policy{Burst: -1, Refill: -time.Second, Max: -1}, 3},
		{"window overflows", Policy{Burst: 1 << 40, Refill: time.Hour, Max: 1}, 1},
	}
	for _, tt := range tests {
		err := tt.p.Validate()
		var n int
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			n = len(j.Unwrap())
		} else if err != nil {
			n = 1
		}
		if n != tt.want {
			t.Errorf("%s: %d problems (%v), want %d", tt.name, n, err, tt.want)
		}
	}
	if _, err := New[string](Policy{}); err == nil || errors.Unwrap(err) == nil && err.Error() == "" {
		t.Error("New accepted an invalid policy")
	}
}

func TestBurstRefill(t *testing.T) {
	t.Parallel()
	p := Policy{Burst: 20, Refill: time.Second, Max: 100_000} // burst 20, 1/s
	l := newLimiter(t, p)
	a := uint64(1)
	other := uint64(2)

	type step struct {
		at        time.Duration // since t0
		addr      uint64
		n         int // attempts
		wantOK    bool
		wantRetry time.Duration // of the last attempt
	}
	steps := []step{
		{0, a, 20, true, 0},           // the burst
		{0, a, 1, false, time.Second}, // then refusal
		{500 * time.Millisecond, a, 1, false, 500 * time.Millisecond},
		{0, other, 20, true, 0},                               // other sources are unaffected
		{time.Second, a, 1, true, 0},                          // refill: one token per second
		{time.Second, a, 1, false, time.Second},               // ...and only one
		{3 * time.Second, a, 2, true, 0},                      // two more seconds, two more tokens
		{3 * time.Second, a, 1, false, time.Second},           //
		{3*time.Second + time.Hour, a, 20, true, 0},           // an idle source gets its full burst back
		{3*time.Second + time.Hour, a, 1, false, time.Second}, // but no more
	}
	for i, s := range steps {
		now := t0.Add(s.at)
		for j := range s.n {
			ok, retry := l.Allow(s.addr, now)
			last := j == s.n-1
			if ok != s.wantOK && (last || s.wantOK) {
				t.Fatalf("step %d attempt %d: Allow() = %v, want %v", i, j+1, ok, s.wantOK)
			}
			if last && retry != s.wantRetry {
				t.Fatalf("step %d: retryAfter = %v, want %v", i, retry, s.wantRetry)
			}
		}
	}
	checkConsistent(t, l)
}

func TestRefusalsDoNotCost(t *testing.T) {
	t.Parallel()
	l := newLimiter(t, Policy{Burst: 2, Refill: time.Second, Max: 10})
	a := uint64(9)
	l.Allow(a, t0)
	l.Allow(a, t0)
	for range 1000 { // hammering while empty must not push the refill further out
		if ok, _ := l.Allow(a, t0.Add(500*time.Millisecond)); ok {
			t.Fatal("allowed while empty")
		}
	}
	if ok, _ := l.Allow(a, t0.Add(time.Second)); !ok {
		t.Error("refused after the refill despite only refused attempts in between")
	}
}

func TestMemoryBound(t *testing.T) {
	t.Parallel()
	p := Policy{Burst: 20, Refill: time.Second, Max: 100_000}
	limit := p.Max
	distinct := uint64(1_000_000)
	if testing.Short() {
		distinct = 100_000
	}
	l := newLimiter(t, p)
	peak := 0
	for n := range distinct {
		// All within one second: no bucket refills, nothing is idle, so
		// only the cap keeps the table small.
		if ok, _ := l.Allow((n), t0.Add(time.Duration(n))); !ok {
			t.Fatalf("a new key %v was refused", n)
		}
		if n%10_000 == 0 {
			peak = max(peak, l.Len())
		}
	}
	peak = max(peak, l.Len())
	if peak > limit {
		t.Fatalf("tracked %d sources, cap is %d", peak, limit)
	}
	if l.Len() != limit {
		t.Errorf("Len() = %d after the flood, want the cap %d", l.Len(), limit)
	}
	checkConsistent(t, l)
}

func TestEvictsLeastRecentlyUsed(t *testing.T) {
	t.Parallel()
	l := newLimiter(t, Policy{Burst: 1, Refill: time.Hour, Max: 3})
	a, b, c, d := uint64(1), uint64(2), uint64(3), uint64(4)
	for _, x := range []uint64{a, b, c} {
		l.Allow(x, t0) // each now empty for an hour
	}
	l.Allow(a, t0) // refused, but a is now the most recently seen
	l.Allow(d, t0) // evicts b, the least recently seen
	if ok, _ := l.Allow(a, t0); ok {
		t.Error("a was evicted although recently seen")
	}
	if ok, _ := l.Allow(c, t0); ok {
		t.Error("c was evicted before b")
	}
	if ok, _ := l.Allow(b, t0); !ok {
		t.Error("b was not evicted")
	}
	if l.Len() != 3 {
		t.Errorf("Len() = %d, want 3", l.Len())
	}
	checkConsistent(t, l)
}

func TestForgetsIdleKeys(t *testing.T) {
	t.Parallel()
	l := newLimiter(t, Policy{Burst: 5, Refill: time.Second, Max: 100})
	for n := range uint64(50) {
		l.Allow((n), t0)
	}
	// Long after every bucket refilled, traffic from one source sheds one
	// idle source per call.
	later := t0.Add(time.Hour)
	for i := range 60 {
		l.Allow((1000), later.Add(time.Duration(i)*time.Second))
	}
	if got := l.Len(); got != 1 {
		t.Errorf("Len() = %d, want only the active source left", got)
	}
	checkConsistent(t, l)
}

func TestConcurrent(t *testing.T) {
	t.Parallel()
	const burst, sources, goroutines, attempts = 20, 8, 16, 200
	l := newLimiter(t, Policy{Burst: burst, Refill: time.Hour, Max: sources / 2})
	var allowed [sources]atomic.Int64
	// hammer sends attempts from every source across goroutines at once.
	hammer := func(l *Limiter[uint64]) {
		var wg sync.WaitGroup
		for g := range goroutines {
			wg.Go(func() {
				for i := range attempts {
					s := (g + i) % sources
					if ok, _ := l.Allow(uint64(s), t0); ok {
						allowed[s].Add(1)
					}
				}
			})
		}
		wg.Wait()
	}
	hammer(l)
	if l.Len() > sources/2 {
		t.Errorf("Len() = %d, cap %d", l.Len(), sources/2)
	}
	checkConsistent(t, l)

	// Without eviction the clock stands still, so each source gets exactly
	// its burst however the goroutines interleave.
	l = newLimiter(t, Policy{Burst: burst, Refill: time.Hour, Max: sources})
	allowed = [sources]atomic.Int64{}
	hammer(l)
	for s := range allowed {
		if got := allowed[s].Load(); got != burst {
			t.Errorf("source %d: %d attempts allowed, want exactly %d", s, got, burst)
		}
	}
	checkConsistent(t, l)
}
