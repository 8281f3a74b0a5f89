package identity

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/rampart-ml/rampart/internal/principal"
	"github.com/rampart-ml/rampart/internal/store"
)

// ErrInactive refuses a subject that no longer exists, is disabled or has
// expired: its tokens stop working at once, whatever their expiry.
var ErrInactive = errors.New("account is unknown, disabled or expired")

// ServiceAccountIDPrefix starts every service account id, so a token
// subject names its kind without a lookup.
const ServiceAccountIDPrefix = "sa-"

// Subject is what a token's subject resolves to right now.
type Subject struct {
	Principal principal.Principal
	// MustChangePassword: the user may only change their password.
	MustChangePassword bool
}

// Directory resolves token subjects to principals on every request, so a
// disabled or deleted account loses access immediately. Lookups are cached
// for at most TTL; writers in this process call Invalidate so their own
// changes apply at once, and the TTL bounds how long another process's
// change can take.
type Directory struct {
	store store.Store
	ttl   time.Duration
	now   func() time.Time

	mu      sync.RWMutex
	entries map[string]directoryEntry
	// invalidations counts Invalidate calls, so a lookup that was already
	// reading the store when one came does not cache what it read.
	invalidations uint64
}

type directoryEntry struct {
	subject Subject
	err     error
	at      time.Time
}

// maxDirectoryEntries bounds the cache; when full it is cleared (simple,
// and a miss costs one indexed read).
const maxDirectoryEntries = 100_000

// NewDirectory returns a Directory caching lookups for ttl (default 1s).
func NewDirectory(st store.Store, ttl time.Duration, now func() time.Time) *Directory {
	if ttl <= 0 {
		ttl = time.Second
	}
	if now == nil {
		now = time.Now
	}
	return &Directory{store: st, ttl: ttl, now: now, entries: make(map[string]directoryEntry)}
}

// Lookup returns the subject with this id, or ErrInactive.
func (d *Directory) Lookup(ctx context.Context, id string) (Subject, error) {
	now := d.now()
	d.mu.RLock()
	e, ok := d.entries[id]
	d.mu.RUnlock()
	if ok && now.Sub(e.at) < d.ttl {
		return e.subject, e.err
	}
	d.mu.RLock()
	invalidations := d.invalidations
	d.mu.RUnlock()
	s, err := d.load(ctx, id, now)
	if err != nil && !errors.Is(err, ErrInactive) {
		return Subject{}, err // technical: not cached
	}
	d.mu.Lock()
	// An Invalidate during the load may stand for a change committed after
	// the store was read: answer this request, but do not cache it.
	if d.invalidations == invalidations {
		if len(d.entries) >= maxDirectoryEntries {
			clear(d.entries)
		}
		d.entries[id] = directoryEntry{subject: s, err: err, at: now}
	}
	d.mu.Unlock()
	return s, err
}

// Invalidate drops the cached entry for id.
func (d *Directory) Invalidate(id string) {
	d.mu.Lock()
	delete(d.entries, id)
	d.invalidations++
	d.mu.Unlock()
}

func (d *Directory) load(ctx context.Context, id string, now time.Time) (Subject, error) {
	var s Subject
	err := d.store.InTx(ctx, func(tx store.Tx) error {
		if strings.HasPrefix(id, ServiceAccountIDPrefix) {
			sa, err := tx.ServiceAccounts().ServiceAccountByID(ctx, id)
			if err != nil {
				return err
			}
			if sa.Disabled || (!sa.ExpiresAt.IsZero() && !now.Before(sa.ExpiresAt)) {
				return ErrInactive
			}
			s.Principal = principal.Principal{ID: sa.ID, Kind: principal.ServiceAccount, Name: sa.Name}
			return nil
		}
		a, err := tx.Accounts().AccountByID(ctx, id)
		if err != nil {
			return err
		}
		if a.Disabled || a.Anonymized {
			return ErrInactive
		}
		s.Principal = principal.Principal{ID: a.ID, Kind: principal.User, Name: a.Name, Admin: a.Admin, Auditor: a.Auditor}
		s.MustChangePassword = a.MustChangePassword
		return nil
	})
	switch {
	case errors.Is(err, store.ErrNotFound), errors.Is(err, ErrInactive):
		return Subject{}, ErrInactive
	case err != nil:
		return Subject{}, fmt.Errorf("look up subject: %w", err)
	}
	return s, nil
}
