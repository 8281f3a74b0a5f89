package bruteforce

import (
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/rampart-ml/rampart/internal/ratelimit"
)

// SourcePolicy configures a [SourceLimiter].
type SourcePolicy struct {
	// Burst is how many attempts a source may make at once.
	Burst int
	// Refill is the time in which a source earns back one attempt.
	Refill time.Duration
	// MaxSources bounds how many sources are tracked, and so the memory used
	// (about 140 bytes each).
	MaxSources int
}

// DefaultSourcePolicy returns the defaults: bursts of 20 attempts, one more
// each second, at most 100,000 tracked sources (about 14 MB).
func DefaultSourcePolicy() SourcePolicy {
	return SourcePolicy{Burst: 20, Refill: time.Second, MaxSources: 100_000}
}

// Validate reports every problem with p at once.
func (p SourcePolicy) Validate() error {
	var errs []error
	if p.Burst < 1 {
		errs = append(errs, fmt.Errorf("burst is %d, must be at least 1", p.Burst))
	}
	if p.Refill <= 0 {
		errs = append(errs, fmt.Errorf("refill is %v, must be positive", p.Refill))
	} else if p.Burst > 0 && time.Duration(p.Burst) > (1<<62)/p.Refill {
		errs = append(errs, fmt.Errorf("burst (%d) × refill (%v) is too long", p.Burst, p.Refill))
	}
	if p.MaxSources < 1 {
		errs = append(errs, fmt.Errorf("MaxSources is %d, must be at least 1", p.MaxSources))
	}
	return errors.Join(errs...)
}

// SourceLimiter is a token bucket per client source: an IPv4 address, or the
// /64 of an IPv6 address (one customer network, which a single attacker
// controls entirely). It is safe for concurrent use.
//
// It tracks at most MaxSources sources (see ratelimit.Limiter for what
// eviction means): forgetting one still in debt happens only when more than
// MaxSources sources appeared within one Burst×Refill window; per-source
// limiting cannot stop an attack that large, and the per-account lockout is
// what bounds it.
type SourceLimiter struct {
	l *ratelimit.Limiter[sourceKey]
}

// NewSourceLimiter returns a limiter for p, or an error if p is invalid.
func NewSourceLimiter(p SourcePolicy) (*SourceLimiter, error) {
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("source limiter policy: %w", err)
	}
	l, err := ratelimit.New[sourceKey](ratelimit.Policy{Burst: p.Burst, Refill: p.Refill, Max: p.MaxSources})
	if err != nil {
		return nil, fmt.Errorf("source limiter policy: %w", err)
	}
	return &SourceLimiter{l: l}, nil
}

// sourceKey identifies a bucket: the 16-byte form of an IPv4 address
// (::ffff:a.b.c.d), or of the first address of an IPv6 /64 (whose low 64
// bits are zero, so the two kinds never collide). A plain array hashes faster
// than a netip.Addr, which carries a zone pointer.
type sourceKey [16]byte

// sourceKeyOf maps addr to the key of its bucket: IPv4 (including
// IPv4-mapped IPv6) to itself, IPv6 to its /64, ignoring any zone. The
// invalid Addr maps to the all-zero key, shared with ::/64, which no real
// client uses: callers that fail to parse a peer address share one bucket
// rather than bypass the limit.
func sourceKeyOf(addr netip.Addr) sourceKey {
	k := sourceKey(addr.As16()) // IPv4 comes out IPv4-mapped, zone dropped
	if addr.Is6() && !addr.Is4In6() {
		clear(k[8:])
	}
	return k
}

// Allow takes one attempt from addr's bucket at time now. When the bucket is
// empty it returns false and how long until the next attempt would be
// allowed. Call it for every login attempt, before any other work.
func (l *SourceLimiter) Allow(addr netip.Addr, now time.Time) (ok bool, retryAfter time.Duration) {
	return l.l.Allow(sourceKeyOf(addr), now)
}

// Len returns the number of tracked sources.
func (l *SourceLimiter) Len() int { return l.l.Len() }
