package bruteforce

import (
	"encoding/binary"
	"net/netip"
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

// The bucket mechanics (burst, refill, eviction, memory bound,
// concurrency) are tested in internal/ratelimit; these tests are about what
// a source is.
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
