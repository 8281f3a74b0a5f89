// Package authz connects the pure access-control decisions (internal/access)
// to the server: it keeps the grants in memory, reloads them when they
// change (in this process at once, in others within a second), and serves
// the domain, grant and access-check API.
//
// It never takes an identity from a request header: the requester is the
// principal the authentication step put in the context.
package authz

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/rampart-ml/rampart/internal/access"
	"github.com/rampart-ml/rampart/internal/principal"
	"github.com/rampart-ml/rampart/internal/store"
)

// recheck bounds how stale the cached policy may be when another process
// changes grants: the store's access version is read at most this often.
const recheck = 250 * time.Millisecond

// Cache holds the current access.Policy.
type Cache struct {
	store store.Store
	now   func() time.Time

	mu        sync.RWMutex
	policy    *access.Policy
	version   int64
	checkedAt time.Time
	// invalidations counts Invalidate calls, so a reload that was already
	// reading the store when one came does not pass its result off as
	// fresh.
	invalidations uint64
	loading       sync.Mutex
}

// NewCache returns a cache that loads on first use.
func NewCache(st store.Store, now func() time.Time) *Cache {
	if now == nil {
		now = time.Now
	}
	return &Cache{store: st, now: now, version: -1}
}

// Policy returns the current policy, reloading it if the grants changed.
func (c *Cache) Policy(ctx context.Context) (*access.Policy, error) {
	now := c.now()
	c.mu.RLock()
	p, fresh := c.policy, c.policy != nil && now.Sub(c.checkedAt) < recheck
	c.mu.RUnlock()
	if fresh {
		return p, nil
	}
	c.loading.Lock()
	defer c.loading.Unlock()
	c.mu.RLock()
	p, fresh = c.policy, c.policy != nil && now.Sub(c.checkedAt) < recheck
	known, invalidations := c.version, c.invalidations
	c.mu.RUnlock()
	if fresh {
		return p, nil
	}
	var (
		version int64
		grants  []store.Grant
	)
	err := c.store.InTx(ctx, func(tx store.Tx) error {
		var err error
		if version, err = tx.Grants().AccessVersion(ctx); err != nil || version == known {
			return err
		}
		grants, err = tx.Grants().ListGrants(ctx)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("load grants: %w", err)
	}
	if version != known || p == nil {
		if p, err = policyOf(grants); err != nil {
			return nil, err
		}
	}
	c.mu.Lock()
	c.policy, c.version = p, version
	// An Invalidate during the load may stand for a change committed after
	// the store was read: leave the policy stale so the next call reads
	// again, rather than serve this one for up to recheck.
	if c.invalidations == invalidations {
		c.checkedAt = now
	}
	c.mu.Unlock()
	return p, nil
}

// Invalidate makes the next Policy call reload: called after this
// process changed grants or domains, so the change applies to the very
// next request.
func (c *Cache) Invalidate() {
	c.mu.Lock()
	c.checkedAt = time.Time{}
	c.invalidations++
	c.mu.Unlock()
}

func policyOf(grants []store.Grant) (*access.Policy, error) {
	gs := make([]access.Grant, 0, len(grants))
	for _, g := range grants {
		ag, err := toAccess(g)
		if err != nil {
			return nil, err
		}
		gs = append(gs, ag)
	}
	return access.NewPolicy(gs)
}

func toAccess(g store.Grant) (access.Grant, error) {
	priv, err := access.ParsePrivilege(g.Privilege)
	if err != nil {
		return access.Grant{}, fmt.Errorf("grant %s: %w", g.ID, err)
	}
	return access.Grant{ID: g.ID, Subject: access.Subject{Kind: access.SubjectKind(g.SubjectKind), ID: g.SubjectID},
		Domain: g.Domain, Privilege: priv}, nil
}

// RequesterOf converts an authenticated principal.
func RequesterOf(p principal.Principal) access.Requester {
	kind := access.SubjectKind(p.Kind)
	return access.Requester{ID: p.ID, Kind: kind, Groups: p.Groups, Admin: p.Admin}
}
