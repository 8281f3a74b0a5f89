package bruteforce

import (
	"encoding/binary"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func newSourceLimiter(t testing.TB, p SourcePolicy) *SourceLimiter {
	t.Helper()
	l, err := NewSourceLimiter(p)
	if err != nil {
		t.Fatalf("NewSourceLimiter(%+v): %v", p, err)
	}
	return l
}

func TestSourcePolicyValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		p    SourcePolicy
		want int
	}{
		{"default", DefaultSourcePolicy(), 0},
		{"minimal", SourcePolicy{Burst: 1, Refill: time.Nanosecond, MaxSources: 1}, 0},
		{"zero", SourcePolicy{}, 3},
		{"negative", SourcePolicy{Burst: -1, Refill: -time.Second, MaxSources: -1}, 3},
		{"window overflows", SourcePolicy{Burst: 1 << 40, Refill: time.Hour, MaxSources: 1}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if errs := joined(tt.p.Validate()); len(errs) != tt.want {
				t.Errorf("Validate() = %v, want %d problems", errs, tt.want)
			}
		})
	}
	if _, err := NewSourceLimiter(SourcePolicy{}); err == nil {
		t.Error("NewSourceLimiter accepted an invalid policy")
	}
}

func TestSourceKey(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"192.0.2.7", "::ffff:192.0.2.7"},
		{"::ffff:192.0.2.7", "::ffff:192.0.2.7"},
		{"2001:db8:1:2:3:4:5:6", "2001:db8:1:2::"},
		{"2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::"},
		{"fe80::1%eth0", "fe80::"},
		{"::1", "::"},
		{"0.0.0.0", "::ffff:0.0.0.0"},
	}
	for _, tt := range tests {
		if got, want := sourceKeyOf(netip.MustParseAddr(tt.in)), sourceKey(netip.MustParseAddr(tt.want).As16()); got != want {
			t.Errorf("sourceKeyOf(%s) = %v, want %v (%s)", tt.in, netip.AddrFrom16(got), netip.AddrFrom16(want), tt.want)
		}
	}
	if got := sourceKeyOf(netip.Addr{}); got != (sourceKey{}) {
		t.Errorf("sourceKeyOf(invalid) = %v, want all zeros", got)
	}
	// IPv4 keys and IPv6 /64 keys never collide, even for ::ffff:0:0/64.
	if v4, v6 := sourceKeyOf(netip.MustParseAddr("0.0.0.0")), sourceKeyOf(netip.MustParseAddr("::ffff:0:0:1")); v4 == v6 {
		t.Errorf("0.0.0.0 and ::ffff:0:0:1 share key %v", v4)
	}
}

func TestSourceLimiterBurstRefill(t *testing.T) {
	t.Parallel()
	p := DefaultSourcePolicy() // burst 20, 1/s
	l := newSourceLimiter(t, p)
	a := netip.MustParseAddr("198.51.100.1")
	other := netip.MustParseAddr("198.51.100.2")

	type step struct {
		at        time.Duration // since t0
		addr      netip.Addr
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
}

func TestSourceLimiterRefusalsDoNotCost(t *testing.T) {
	t.Parallel()
	l := newSourceLimiter(t, SourcePolicy{Burst: 2, Refill: time.Second, MaxSources: 10})
	a := netip.MustParseAddr("203.0.113.9")
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

func TestSourceLimiterIPv6Prefix(t *testing.T) {
	t.Parallel()
	l := newSourceLimiter(t, SourcePolicy{Burst: 3, Refill: time.Minute, MaxSources: 10})
	same := []string{"2001:db8:aa:bb::1", "2001:db8:aa:bb:1234::99", "2001:db8:aa:bb:ffff:ffff:ffff:fffe"}
	for _, s := range same {
		if ok, _ := l.Allow(netip.MustParseAddr(s), t0); !ok {
			t.Fatalf("Allow(%s) refused within the burst", s)
		}
	}
	if ok, _ := l.Allow(netip.MustParseAddr("2001:db8:aa:bb:dead:beef::"), t0); ok {
		t.Error("a fourth address in the same /64 got its own bucket")
	}
	if ok, _ := l.Allow(netip.MustParseAddr("2001:db8:aa:bc::1"), t0); !ok {
		t.Error("the neighbouring /64 shares the bucket")
	}
	// IPv4 and its IPv4-mapped form are one source.
	v4, mapped := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("::ffff:192.0.2.1")
	for range 3 {
		l.Allow(v4, t0)
	}
	if ok, _ := l.Allow(mapped, t0); ok {
		t.Error("IPv4-mapped address got its own bucket")
	}
	if got := l.Len(); got != 3 {
		t.Errorf("Len() = %d, want 3 sources", got)
	}
}

// addrN returns the n-th of many distinct sources: IPv6 /64s for even n,
// IPv4 addresses for odd n.
func addrN(n uint64) netip.Addr {
	if n%2 == 1 {
		var b [4]byte
		binary.BigEndian.PutUint32(b[:], uint32(n>>1)|1<<31)
		return netip.AddrFrom4(b)
	}
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], 0x2001_0db8_0000_0000|n>>1)
	binary.BigEndian.PutUint64(b[8:], n*0x9e3779b97f4a7c15) // varied interface ids
	return netip.AddrFrom16(b)
}

func TestSourceLimiterMemoryBound(t *testing.T) {
	t.Parallel()
	p := DefaultSourcePolicy()
	limit := p.MaxSources
	distinct := uint64(1_000_000)
	if testing.Short() {
		distinct = 100_000
	}
	l := newSourceLimiter(t, p)
	peak := 0
	for n := range distinct {
		// All within one second: no bucket refills, nothing is idle, so
		// only the cap keeps the table small.
		if ok, _ := l.Allow(addrN(n), t0.Add(time.Duration(n))); !ok {
			t.Fatalf("a new source %v was refused", addrN(n))
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
}

func TestSourceLimiterEvictsLeastRecentlyUsed(t *testing.T) {
	t.Parallel()
	l := newSourceLimiter(t, SourcePolicy{Burst: 1, Refill: time.Hour, MaxSources: 3})
	a, b, c, d := addrN(1), addrN(2), addrN(3), addrN(4)
	for _, x := range []netip.Addr{a, b, c} {
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
}

func TestSourceLimiterForgetsIdleSources(t *testing.T) {
	t.Parallel()
	l := newSourceLimiter(t, SourcePolicy{Burst: 5, Refill: time.Second, MaxSources: 100})
	for n := range uint64(50) {
		l.Allow(addrN(n), t0)
	}
	// Long after every bucket refilled, traffic from one source sheds one
	// idle source per call.
	later := t0.Add(time.Hour)
	for i := range 60 {
		l.Allow(addrN(1000), later.Add(time.Duration(i)*time.Second))
	}
	if got := l.Len(); got != 1 {
		t.Errorf("Len() = %d, want only the active source left", got)
	}
}

func TestSourceLimiterConcurrent(t *testing.T) {
	t.Parallel()
	const burst, sources, goroutines, attempts = 20, 8, 16, 200
	l := newSourceLimiter(t, SourcePolicy{Burst: burst, Refill: time.Hour, MaxSources: sources / 2})
	var allowed [sources]atomic.Int64
	// hammer sends attempts from every source across goroutines at once.
	hammer := func(l *SourceLimiter) {
		var wg sync.WaitGroup
		for g := range goroutines {
			wg.Go(func() {
				for i := range attempts {
					s := (g + i) % sources
					if ok, _ := l.Allow(addrN(uint64(s)), t0); ok {
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

	// Without eviction the clock stands still, so each source gets exactly
	// its burst however the goroutines interleave.
	l = newSourceLimiter(t, SourcePolicy{Burst: burst, Refill: time.Hour, MaxSources: sources})
	allowed = [sources]atomic.Int64{}
	hammer(l)
	for s := range allowed {
		if got := allowed[s].Load(); got != burst {
			t.Errorf("source %d: %d attempts allowed, want exactly %d", s, got, burst)
		}
	}
}

func BenchmarkSourceLimiterAllow(b *testing.B) {
	l := newSourceLimiter(b, DefaultSourcePolicy())
	addrs := make([]netip.Addr, 1024)
	for i := range addrs {
		addrs[i] = addrN(uint64(i))
	}
	b.Run("known", func(b *testing.B) { // 1024 sources, each attempting 1000 times a second
		b.ReportAllocs()
		now := t0
		for i := 0; b.Loop(); i++ {
			now = now.Add(time.Microsecond)
			l.Allow(addrs[i%len(addrs)], now)
		}
	})
	b.Run("flood", func(b *testing.B) { // a new source every call, table full
		l := newSourceLimiter(b, SourcePolicy{Burst: 20, Refill: time.Second, MaxSources: 10_000})
		b.ReportAllocs()
		for i := uint64(0); b.Loop(); i++ {
			l.Allow(addrN(i), t0)
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			now := t0
			for i := 0; pb.Next(); i++ {
				l.Allow(addrs[i%len(addrs)], now)
			}
		})
	})
}
