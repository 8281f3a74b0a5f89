package bruteforce

import (
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"time"
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
// It tracks at most MaxSources sources. A new source beyond that evicts the
// least recently seen one, so memory stays bounded under a flood of distinct
// addresses. Forgetting a source whose bucket has refilled loses nothing;
// forgetting one still in debt gives it a fresh bucket, which happens only
// when more than MaxSources sources appeared within one Burst×Refill window:
// per-source limiting cannot stop an attack that large, and the per-account
// lockout is what bounds it.
//
// Buckets are kept as a GCRA "theoretical arrival time", one time.Time per
// source, so Allow is exact and needs no floating point.
type SourceLimiter struct {
	interval time.Duration // Refill
	window   time.Duration // Burst × Refill
	max      int

	mu      sync.Mutex
	entries map[sourceKey]*sourceEntry
	lru     sourceEntry // sentinel: lru.next is the most recently used
}

type sourceEntry struct {
	key        sourceKey
	tat        time.Time // the bucket is full again at tat
	prev, next *sourceEntry
}

// NewSourceLimiter returns a limiter for p, or an error if p is invalid.
func NewSourceLimiter(p SourcePolicy) (*SourceLimiter, error) {
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("source limiter policy: %w", err)
	}
	l := &SourceLimiter{
		interval: p.Refill,
		window:   time.Duration(p.Burst) * p.Refill,
		max:      p.MaxSources,
		entries:  make(map[sourceKey]*sourceEntry),
	}
	l.lru.next, l.lru.prev = &l.lru, &l.lru
	return l, nil
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
	key := sourceKeyOf(addr)

	l.mu.Lock()
	defer l.mu.Unlock()

	e := l.entries[key]
	if e == nil {
		e = l.insert(key, now)
	} else {
		l.unlink(e)
		l.pushFront(e)
	}
	tat := e.tat
	if tat.Before(now) {
		tat = now
	}
	tat = tat.Add(l.interval)
	if over := tat.Sub(now) - l.window; over > 0 {
		l.dropIdleTail(now)
		return false, over
	}
	e.tat = tat
	l.dropIdleTail(now)
	return true, 0
}

// Len returns the number of tracked sources.
func (l *SourceLimiter) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.entries)
}

// insert adds a fresh entry for key, reusing the least recently used entry
// when the limiter is full so that a flood allocates nothing.
func (l *SourceLimiter) insert(key sourceKey, now time.Time) *sourceEntry {
	var e *sourceEntry
	if len(l.entries) >= l.max {
		e = l.lru.prev
		l.unlink(e)
		delete(l.entries, e.key)
		*e = sourceEntry{}
	} else {
		e = new(sourceEntry)
	}
	e.key, e.tat = key, now
	l.entries[key] = e
	l.pushFront(e)
	return e
}

// dropIdleTail forgets the least recently used source if its bucket is full,
// since a fresh bucket is the same; one per call keeps the cost constant
// while letting the table shrink when traffic stops.
func (l *SourceLimiter) dropIdleTail(now time.Time) {
	e := l.lru.prev
	if e == &l.lru || e.tat.After(now) {
		return
	}
	l.unlink(e)
	delete(l.entries, e.key)
}

func (l *SourceLimiter) unlink(e *sourceEntry) {
	e.prev.next, e.next.prev = e.next, e.prev
	e.prev, e.next = nil, nil
}

func (l *SourceLimiter) pushFront(e *sourceEntry) {
	e.prev, e.next = &l.lru, l.lru.next
	l.lru.next.prev = e
	l.lru.next = e
}
