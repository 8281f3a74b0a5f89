package identity

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/rampart-ml/rampart/internal/store"
)

// Revocations answers "was this access token, or its session, revoked?"
// from memory. Revocations made in this process apply at once; the set is
// reloaded from the store at most every Refresh so revocations by another
// process apply within that bound.
type Revocations struct {
	store   store.Store
	refresh time.Duration
	now     func() time.Time

	mu       sync.RWMutex
	tokens   map[string]time.Time // jti → expiry
	sessions map[string]time.Time // session id → expiry
	loadedAt time.Time
	loading  sync.Mutex
}

// NewRevocations returns an empty set that loads on first use; refresh
// defaults to one second.
func NewRevocations(st store.Store, refresh time.Duration, now func() time.Time) *Revocations {
	if refresh <= 0 {
		refresh = time.Second
	}
	if now == nil {
		now = time.Now
	}
	return &Revocations{store: st, refresh: refresh, now: now,
		tokens: make(map[string]time.Time), sessions: make(map[string]time.Time)}
}

// Revoked reports whether the token jti or the session sid (either may be
// empty) is revoked.
func (r *Revocations) Revoked(ctx context.Context, jti, sid string) (bool, error) {
	if err := r.ensureFresh(ctx); err != nil {
		return false, err
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	_, t := r.tokens[jti]
	_, s := r.sessions[sid]
	return (jti != "" && t) || (sid != "" && s), nil
}

// AddToken and AddSession record a revocation already committed to the
// store, so this process honours it without waiting for a reload.
func (r *Revocations) AddToken(t store.RevokedToken) {
	r.mu.Lock()
	r.tokens[t.ID] = t.ExpiresAt
	r.mu.Unlock()
}

func (r *Revocations) AddSession(t store.RevokedToken) {
	r.mu.Lock()
	r.sessions[t.ID] = t.ExpiresAt
	r.mu.Unlock()
}

func (r *Revocations) ensureFresh(ctx context.Context) error {
	now := r.now()
	r.mu.RLock()
	fresh := !r.loadedAt.IsZero() && now.Sub(r.loadedAt) < r.refresh
	r.mu.RUnlock()
	if fresh {
		return nil
	}
	// One loader at a time; the others wait and then see its result.
	r.loading.Lock()
	defer r.loading.Unlock()
	r.mu.RLock()
	fresh = !r.loadedAt.IsZero() && now.Sub(r.loadedAt) < r.refresh
	r.mu.RUnlock()
	if fresh {
		return nil
	}
	var tokens, sessions []store.RevokedToken
	err := r.store.InTx(ctx, func(tx store.Tx) error {
		var err error
		tokens, sessions, err = tx.Sessions().Revocations(ctx, now)
		return err
	})
	if err != nil {
		return fmt.Errorf("load revocations: %w", err)
	}
	t := make(map[string]time.Time, len(tokens))
	for _, x := range tokens {
		t[x.ID] = x.ExpiresAt
	}
	s := make(map[string]time.Time, len(sessions))
	for _, x := range sessions {
		s[x.ID] = x.ExpiresAt
	}
	r.mu.Lock()
	// Keep local additions newer than the snapshot's read.
	for id, exp := range r.tokens {
		if _, ok := t[id]; !ok && exp.After(now) {
			t[id] = exp
		}
	}
	for id, exp := range r.sessions {
		if _, ok := s[id]; !ok && exp.After(now) {
			s[id] = exp
		}
	}
	r.tokens, r.sessions, r.loadedAt = t, s, now
	r.mu.Unlock()
	return nil
}
