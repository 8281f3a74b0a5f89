package authz

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/rampart-ml/rampart/internal/access"
	"github.com/rampart-ml/rampart/internal/httpapi"
	"github.com/rampart-ml/rampart/internal/principal"
	"github.com/rampart-ml/rampart/internal/store"
	"github.com/rampart-ml/rampart/internal/store/sqlite"
)

// fakeClock is a settable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// watchedStore is a real store that counts the cache's transactions and
// can run a hook after one commits (once).
type watchedStore struct {
	store.Store
	txs   atomic.Int64
	after func()
}

func (s *watchedStore) InTx(ctx context.Context, fn func(tx store.Tx) error) error {
	s.txs.Add(1)
	err := s.Store.InTx(ctx, fn)
	if h := s.after; h != nil {
		s.after = nil
		h()
	}
	return err
}

func openStore(t *testing.T) *sqlite.Store {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "rampart.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

// write runs fn in a transaction of st (not through the cache).
func write(t *testing.T, st store.Store, fn func(ctx context.Context, tx store.Tx) error) {
	t.Helper()
	ctx := context.Background()
	if err := st.InTx(ctx, func(tx store.Tx) error { return fn(ctx, tx) }); err != nil {
		t.Fatal(err)
	}
}

func addDomain(name string) func(context.Context, store.Tx) error {
	return func(ctx context.Context, tx store.Tx) error {
		return tx.Domains().CreateDomain(ctx, store.Domain{Name: name, CreatedBy: "admin", CreatedAt: time.Now()})
	}
}

func addGrant(id, user, domain, privilege string) func(context.Context, store.Tx) error {
	return func(ctx context.Context, tx store.Tx) error {
		return tx.Grants().CreateGrant(ctx, store.Grant{ID: id, SubjectKind: "user", SubjectID: user, Domain: domain,
			Privilege: privilege, CreatedBy: "admin", CreatedAt: time.Now()})
	}
}

func mustPolicy(t *testing.T, c *Cache) *access.Policy {
	t.Helper()
	p, err := c.Policy(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func grantIDs(p *access.Policy) []string {
	ids := []string{}
	for _, g := range p.Grants() {
		ids = append(ids, g.ID)
	}
	return ids
}

func TestCacheReloadsWhenTheAccessVersionChanges(t *testing.T) {
	t.Parallel()
	st := &watchedStore{Store: openStore(t)}
	clock := &fakeClock{t: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	c := NewCache(st, clock.now)
	write(t, st.Store, addDomain("com.acme"))

	p1 := mustPolicy(t, c)
	if len(p1.Grants()) != 0 || st.txs.Load() != 1 {
		t.Fatalf("first load: %v grants, %d transactions", grantIDs(p1), st.txs.Load())
	}
	// Within recheck the store is not asked at all.
	clock.advance(recheck - time.Millisecond)
	if p := mustPolicy(t, c); p != p1 || st.txs.Load() != 1 {
		t.Fatalf("within %v: new policy %v, %d transactions", recheck, p != p1, st.txs.Load())
	}
	// Then it reads the version, and keeps the policy while it is the same.
	clock.advance(time.Millisecond)
	if p := mustPolicy(t, c); p != p1 || st.txs.Load() != 2 {
		t.Fatalf("version unchanged: new policy %v, %d transactions", p != p1, st.txs.Load())
	}

	// A change made elsewhere (nobody calls Invalidate) shows after recheck.
	write(t, st.Store, addGrant("g1", "alice", "com.acme", "read"))
	if p := mustPolicy(t, c); p != p1 {
		t.Fatal("reloaded before recheck passed")
	}
	clock.advance(recheck)
	p2 := mustPolicy(t, c)
	if diff := cmp.Diff([]string{"g1"}, grantIDs(p2)); diff != "" {
		t.Fatalf("after a change elsewhere (-want +got):\n%s", diff)
	}
	alice := access.Requester{Kind: access.User, ID: "alice"}
	if d := p2.Decide(alice, access.Target{Kind: access.Model, Domain: "com.acme.team"}, access.Read); !d.Allowed {
		t.Errorf("Decide with the reloaded policy: %+v", d)
	}

	// Invalidate makes the very next call read the store, at any time.
	write(t, st.Store, func(ctx context.Context, tx store.Tx) error { return tx.Grants().DeleteGrant(ctx, "g1") })
	c.Invalidate()
	if p := mustPolicy(t, c); len(p.Grants()) != 0 {
		t.Fatalf("after Invalidate: %v", grantIDs(p))
	}
	// Domain changes count as changes too.
	txs := st.txs.Load()
	c.Invalidate()
	p3 := mustPolicy(t, c)
	write(t, st.Store, addDomain("com.other"))
	c.Invalidate()
	if p := mustPolicy(t, c); p == p3 || st.txs.Load() != txs+2 {
		t.Errorf("a domain change did not rebuild the policy (%d transactions)", st.txs.Load()-txs)
	}
}

// TestCacheInvalidateDuringReloadIsNotLost: a revocation that commits and
// invalidates while a reload is between reading the store and publishing
// its result must still apply to the next request, not up to recheck
// later.
func TestCacheInvalidateDuringReloadIsNotLost(t *testing.T) {
	t.Parallel()
	st := &watchedStore{Store: openStore(t)}
	clock := &fakeClock{t: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	c := NewCache(st, clock.now)
	write(t, st.Store, addDomain("com.acme"))
	write(t, st.Store, addGrant("g1", "alice", "com.acme", "read"))
	mustPolicy(t, c)

	c.Invalidate()
	st.after = func() {
		// The reload has read the store: now the grant goes.
		write(t, st.Store, func(ctx context.Context, tx store.Tx) error { return tx.Grants().DeleteGrant(ctx, "g1") })
		c.Invalidate()
	}
	if p := mustPolicy(t, c); len(p.Grants()) != 1 {
		t.Fatalf("the racing reload saw %v", grantIDs(p))
	}
	if p := mustPolicy(t, c); len(p.Grants()) != 0 {
		t.Fatalf("the next call, at the same instant, still has %v: the Invalidate was lost", grantIDs(p))
	}
}

// TestCacheConcurrentUse runs readers against a stream of changes (with
// -race, it checks the locking); after each change and Invalidate, the
// writer's next Policy sees it.
func TestCacheConcurrentUse(t *testing.T) {
	t.Parallel()
	st := openStore(t)
	c := NewCache(st, nil)
	write(t, st, addDomain("com.acme"))
	var (
		stop    atomic.Bool
		wg      sync.WaitGroup
		readErr atomic.Value
	)
	for range 8 {
		wg.Go(func() {
			for !stop.Load() {
				p, err := c.Policy(context.Background())
				if err != nil {
					readErr.Store(err)
					return
				}
				p.Decide(access.Requester{Kind: access.User, ID: "u1"}, access.Target{Kind: access.Model, Domain: "com.acme"}, access.Read)
			}
		})
	}
	for i := range 40 {
		user := fmt.Sprintf("u%d", i)
		write(t, st, addGrant("g"+user, user, "com.acme", "infer"))
		c.Invalidate()
		p := mustPolicy(t, c)
		if eff, _ := p.Effective(access.Requester{Kind: access.User, ID: user}, "com.acme"); eff != access.Infer {
			t.Fatalf("grant %d not seen after Invalidate", i)
		}
	}
	stop.Store(true)
	wg.Wait()
	if err, _ := readErr.Load().(error); err != nil {
		t.Fatal(err)
	}
}

// TestCacheRefusesCorruptGrants: grants the policy cannot hold make the
// cache fail, and Require with it, rather than skip them (fail closed).
func TestCacheRefusesCorruptGrants(t *testing.T) {
	t.Parallel()
	st := openStore(t)
	// The schema accepts any non-empty domain name; access does not.
	write(t, st, addDomain("Not..A.Domain"))
	write(t, st, addGrant("g1", "alice", "Not..A.Domain", "all"))
	c := NewCache(st, nil)
	if _, err := c.Policy(context.Background()); !errors.Is(err, access.ErrInvalid) {
		t.Fatalf("Policy = %v, want ErrInvalid", err)
	}
	svc := New(Options{Store: st, Cache: c})
	err := svc.Require(context.Background(), principal.Principal{ID: "admin", Kind: principal.User, Admin: true},
		access.Target{Kind: access.Model, Domain: "com.acme"}, access.Read)
	var he *httpapi.HTTPError
	if err == nil || errors.As(err, &he) {
		t.Fatalf("Require = %v, want an internal error", err)
	}
}

// TestRequire covers Require's three answers without HTTP.
func TestRequire(t *testing.T) {
	t.Parallel()
	st := openStore(t)
	write(t, st, addDomain("com.acme"))
	write(t, st, addDomain("com.other"))
	write(t, st, addGrant("g1", "alice", "com.acme", "read"))
	write(t, st, addGrant("g2", "alice", "com.other", "infer"))
	svc := New(Options{Store: st, Cache: NewCache(st, nil), Recorder: newRecorder(t, st)})
	alice := principal.Principal{ID: "alice", Kind: principal.User}
	admin := principal.Principal{ID: "root", Kind: principal.User, Admin: true}
	for _, tc := range []struct {
		p      principal.Principal
		t      access.Target
		want   access.Privilege
		status int // 0: allowed
		code   string
	}{
		{alice, access.Target{Kind: access.Model, Domain: "com.acme", ID: "com.acme.m"}, access.Read, 0, ""},
		{alice, access.Target{Kind: access.Notebook, Domain: "com.acme.team", ID: "n"}, access.Infer, 0, ""},
		{alice, access.Target{Kind: access.Model, Domain: "com.acme", ID: "com.acme.m"}, access.All, http.StatusForbidden, "forbidden"},
		{alice, access.Target{Kind: access.ModelService, Domain: "com.other", ID: "s"}, access.Infer, 0, ""},
		// Infer is not enough to know the target exists.
		{alice, access.Target{Kind: access.ModelService, Domain: "com.other", ID: "s"}, access.Read, http.StatusNotFound, "not_found"},
		{alice, access.Target{Kind: access.ModelService, Domain: "com.other", ID: "s"}, access.All, http.StatusNotFound, "not_found"},
		{alice, access.Target{Kind: access.Model, ID: "m"}, access.Infer, http.StatusNotFound, "not_found"},
		{alice, access.Target{Kind: access.Model, Domain: "com", ID: "com.m"}, access.Read, http.StatusNotFound, "not_found"},
		{principal.Principal{ID: "alice", Kind: principal.ServiceAccount}, access.Target{Kind: access.Model, Domain: "com.acme"}, access.Infer, http.StatusNotFound, "not_found"},
		{principal.Principal{}, access.Target{Kind: access.Model, Domain: "com.acme"}, access.Infer, http.StatusNotFound, "not_found"},
		{admin, access.Target{Kind: access.TrainingJob, Domain: "com.nowhere"}, access.All, 0, ""},
		{admin, access.Target{Kind: access.TrainingJob}, access.All, 0, ""},
		// A malformed question is refused, for admins too.
		{admin, access.Target{Kind: "dataset", Domain: "com.acme"}, access.Read, http.StatusNotFound, "not_found"},
		{alice, access.Target{Kind: access.Model, Domain: "com.acme"}, access.None, http.StatusNotFound, "not_found"},
	} {
		err := svc.Require(context.Background(), tc.p, tc.t, tc.want)
		var he *httpapi.HTTPError
		switch {
		case tc.status == 0 && err != nil:
			t.Errorf("Require(%s, %+v, %s) = %v, want nil", tc.p.ID, tc.t, tc.want, err)
		case tc.status == 0:
		case !errors.As(err, &he) || he.Status != tc.status || he.Code != tc.code:
			t.Errorf("Require(%s, %+v, %s) = %v, want %d %s", tc.p.ID, tc.t, tc.want, err, tc.status, tc.code)
		}
	}
}

func TestRequesterOf(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		p    principal.Principal
		want access.Requester
	}{
		{principal.Principal{ID: "u1", Kind: principal.User, Name: "alice", Groups: []string{"g"}},
			access.Requester{ID: "u1", Kind: access.User, Groups: []string{"g"}}},
		{principal.Principal{ID: "sa-1", Kind: principal.ServiceAccount},
			access.Requester{ID: "sa-1", Kind: access.ServiceAccount}},
		{principal.Principal{ID: "root", Kind: principal.User, Admin: true},
			access.Requester{ID: "root", Kind: access.User, Admin: true}},
	} {
		if diff := cmp.Diff(tc.want, RequesterOf(tc.p)); diff != "" {
			t.Errorf("RequesterOf(%+v) (-want +got):\n%s", tc.p, diff)
		}
	}
}
