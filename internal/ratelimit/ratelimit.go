// Package ratelimit is a token bucket per key (a client address, a
// principal, a model service) with bounded memory.
//
// Buckets are kept as a GCRA "theoretical arrival time", one time.Time per
// key, so Allow is exact and needs no floating point. At most Max keys are
// tracked: a new key beyond that evicts the least recently seen one, so a
// flood of distinct keys allocates nothing and memory stays bounded.
// Forgetting a key whose bucket has refilled loses nothing; forgetting one
// still in debt gives it a fresh bucket, which happens only when more than
// Max keys appeared within one Burst×Refill window.
package ratelimit

import (
	"errors"
	"fmt"
	"sync"
	"time"
)

// Policy configures a Limiter.
type Policy struct {
	// Burst is how many events a key may have at once.
	Burst int
	// Refill is the time in which a key earns back one event.
	Refill time.Duration
	// Max bounds how many keys are tracked, and so the memory used.
	Max int
}

// Validate reports every problem with p at once.
func (p Policy) Validate() error {
	var errs []error
	if p.Burst < 1 {
		errs = append(errs, fmt.Errorf("burst is %d, must be at least 1", p.Burst))
	}
	if p.Refill <= 0 {
		errs = append(errs, fmt.Errorf("refill is %v, must be positive", p.Refill))
	} else if p.Burst > 0 && time.Duration(p.Burst) > (1<<62)/p.Refill {
		errs = append(errs, fmt.Errorf("burst (%d) × refill (%v) is too long", p.Burst, p.Refill))
	}
	if p.Max < 1 {
		errs = append(errs, fmt.Errorf("max keys is %d, must be at least 1", p.Max))
	}
	return errors.Join(errs...)
}

// Limiter is a token bucket per key. It is safe for concurrent use.
type Limiter[K comparable] struct {
	interval time.Duration // Refill
	window   time.Duration // Burst × Refill
	max      int

	mu      sync.Mutex
	entries map[K]*entry[K]
	lru     entry[K] // sentinel: lru.next is the most recently used
}

type entry[K comparable] struct {
	key        K
	tat        time.Time // the bucket is full again at tat
	prev, next *entry[K]
}

// New returns a limiter for p, or an error if p is invalid.
func New[K comparable](p Policy) (*Limiter[K], error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	l := &Limiter[K]{
		interval: p.Refill,
		window:   time.Duration(p.Burst) * p.Refill,
		max:      p.Max,
		entries:  make(map[K]*entry[K]),
	}
	l.lru.next, l.lru.prev = &l.lru, &l.lru
	return l, nil
}

// Allow takes one event from key's bucket at time now. When the bucket is
// empty it returns false and how long until the next event would be
// allowed.
func (l *Limiter[K]) Allow(key K, now time.Time) (ok bool, retryAfter time.Duration) {
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

// Len returns the number of tracked keys.
func (l *Limiter[K]) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.entries)
}

// insert adds a fresh entry for key, reusing the least recently used entry
// when the limiter is full so that a flood allocates nothing.
func (l *Limiter[K]) insert(key K, now time.Time) *entry[K] {
	var e *entry[K]
	if len(l.entries) >= l.max {
		e = l.lru.prev
		l.unlink(e)
		delete(l.entries, e.key)
		*e = entry[K]{}
	} else {
		e = new(entry[K])
	}
	e.key, e.tat = key, now
	l.entries[key] = e
	l.pushFront(e)
	return e
}

// dropIdleTail forgets the least recently used key if its bucket is full,
// since a fresh bucket is the same; one per call keeps the cost constant
// while letting the table shrink when traffic stops.
func (l *Limiter[K]) dropIdleTail(now time.Time) {
	e := l.lru.prev
	if e == &l.lru || e.tat.After(now) {
		return
	}
	l.unlink(e)
	delete(l.entries, e.key)
}

func (l *Limiter[K]) unlink(e *entry[K]) {
	e.prev.next, e.next.prev = e.next, e.prev
	e.prev, e.next = nil, nil
}

func (l *Limiter[K]) pushFront(e *entry[K]) {
	e.prev, e.next = &l.lru, l.lru.next
	l.lru.next.prev = e
	l.lru.next = e
}
