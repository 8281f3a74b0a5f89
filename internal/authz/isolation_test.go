package authz_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/rampart-ml/rampart/internal/access"
	"github.com/rampart-ml/rampart/internal/app/apptest"
	"github.com/rampart-ml/rampart/internal/datadir"
	"github.com/rampart-ml/rampart/internal/httpapi"
	"github.com/rampart-ml/rampart/internal/principal"
	"github.com/rampart-ml/rampart/internal/store"
	"github.com/rampart-ml/rampart/internal/store/sqlite"
)

// targetAPI stands in for the target APIs of later issues (models, model
// services, flows, ...), mounted on the running server: it keeps targets
// in a map and asks the app's authz.Service, as the real handlers will.
// A model's domain is in its id; every other kind's domain is a field of
// the stored target, which the client never supplies.
type targetAPI struct {
	e       *env
	targets map[access.Kind]map[string]string // kind → id → domain
}

// mountTargets adds, for every kind:
//
//	GET    /test/targets/{kind}/{id}          read
//	PUT    /test/targets/{kind}/{id}          modify (all)
//	DELETE /test/targets/{kind}/{id}          delete (all)
//	POST   /test/targets/{kind}/{id}/start    all
//	POST   /test/targets/{kind}/{id}/stop     all
//	POST   /test/targets/{kind}/{id}/infer    infer
func mountTargets(e *env, targets map[access.Kind]map[string]string) *targetAPI {
	api := &targetAPI{e: e, targets: targets}
	for _, rt := range []struct {
		pattern string
		want    access.Privilege
	}{
		{"GET /test/targets/{kind}/{id}", access.Read},
		{"PUT /test/targets/{kind}/{id}", access.All},
		{"DELETE /test/targets/{kind}/{id}", access.All},
		{"POST /test/targets/{kind}/{id}/start", access.All},
		{"POST /test/targets/{kind}/{id}/stop", access.All},
		{"POST /test/targets/{kind}/{id}/infer", access.Infer},
	} {
		e.App.API().Handle(httpapi.Route{Pattern: rt.pattern, Access: httpapi.Authenticated, Handler: api.handler(rt.want)})
	}
	return api
}

// notFound is the one answer for a target that does not exist and for
// one the caller may not read: the same status and body.
func notFound(kind access.Kind) error {
	return httpapi.Error(http.StatusNotFound, "not_found", fmt.Sprintf("%s not found", kind), nil)
}

func (api *targetAPI) handler(want access.Privilege) httpapi.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		kind, err := access.ParseKind(r.PathValue("kind"))
		if err != nil {
			return httpapi.Error(http.StatusNotFound, "not_found", "not found", nil)
		}
		id := r.PathValue("id")
		domain, exists := api.targets[kind][id]
		if kind == access.Model {
			// The domain is in the id, so the check can come first.
			if domain, _, err = access.SplitModelID(id); err != nil {
				return notFound(kind)
			}
		} else if !exists {
			return notFound(kind)
		}
		p, _ := principal.FromContext(r.Context())
		if err := api.e.App.Authz().Require(r.Context(), p, access.Target{Kind: kind, Domain: domain, ID: id}, want); err != nil {
			return err
		}
		if !exists {
			return notFound(kind)
		}
		httpapi.WriteJSON(w, http.StatusOK, map[string]string{"kind": string(kind), "id": id, "domain": domain})
		return nil
	}
}

// action is one request on a target and the privilege it needs.
type action struct {
	method, suffix string
	want           access.Privilege
}

var actions = []action{
	{"GET", "", access.Read},
	{"PUT", "", access.All},
	{"DELETE", "", access.All},
	{"POST", "/start", access.All},
	{"POST", "/stop", access.All},
	{"POST", "/infer", access.Infer},
}

func targetPath(kind access.Kind, id string) string {
	return "/test/targets/" + string(kind) + "/" + id
}

// TestIsolation is OWASP ASVS 8.2.2 / 8.4.1 through the real server: two
// users in two domains cannot see, read, modify, delete, start, stop or
// infer each other's targets of any kind, including by guessing ids, and
// what they cannot read answers exactly like what does not exist.
func TestIsolation(t *testing.T) {
	t.Parallel()
	e := start(t)
	e.createDomains(t, "com.alpha", "com.alpha.sub", "com.beta")
	alice := e.newUser(t, "alice") // all on com.alpha
	bob := e.newUser(t, "bob")     // all on com.beta
	carol := e.newUser(t, "carol") // read on com.alpha
	wanda := e.newUser(t, "wanda") // read on "*"
	nobody := e.newUser(t, "nobody")
	sa := e.newServiceAccount(t, "scorer") // infer on com.beta
	e.grant(t, alice, "user", "com.alpha", "all")
	e.grant(t, bob, "user", "com.beta", "all")
	e.grant(t, carol, "user", "com.alpha", "read")
	e.grant(t, wanda, "user", "*", "read")
	e.grant(t, sa, "service-account", "com.beta", "infer")

	// One target of every kind in each domain and without a domain.
	targets := map[access.Kind]map[string]string{}
	var all []access.Target
	for _, k := range access.Kinds() {
		targets[k] = map[string]string{}
		for i, d := range []string{"com.alpha", "com.alpha.sub", "com.beta", ""} {
			id := fmt.Sprintf("%s-%d", k, i)
			if k == access.Model && d != "" {
				id = d + ".m" + fmt.Sprint(i)
			}
			targets[k][id] = d
			all = append(all, access.Target{Kind: k, Domain: d, ID: id})
		}
	}
	mountTargets(e, targets)

	// What each subject holds; everything else is none.
	holds := map[string]map[string]access.Privilege{
		alice.Name:  {"com.alpha": access.All, "com.alpha.sub": access.All},
		bob.Name:    {"com.beta": access.All},
		carol.Name:  {"com.alpha": access.Read, "com.alpha.sub": access.Read},
		wanda.Name:  {"": access.Read},
		nobody.Name: {},
		sa.Name:     {"com.beta": access.Infer},
	}
	for _, who := range []subject{alice, bob, carol, wanda, nobody, sa} {
		for _, tg := range all {
			held := holds[who.Name][tg.Domain]
			for _, a := range actions {
				res := e.Do(t, a.method, targetPath(tg.Kind, tg.ID)+a.suffix, who.Token, nil)
				switch {
				case held >= a.want:
					if res.StatusCode != http.StatusOK {
						t.Errorf("%s %s %s %s (holds %s): %d %s, want 200", who.Name, a.method, tg.Kind, tg.ID+a.suffix, held, res.StatusCode, res.Body)
					}
				case held >= access.Read:
					if res.StatusCode != http.StatusForbidden {
						t.Errorf("%s %s %s %s (holds %s): %d %s, want 403", who.Name, a.method, tg.Kind, tg.ID+a.suffix, held, res.StatusCode, res.Body)
					}
				default:
					wantLikeMissing(t, res, tg.Kind, fmt.Sprintf("%s %s %s %s (holds %s)", who.Name, a.method, tg.Kind, tg.ID+a.suffix, held))
				}
			}
		}
		// Guessed ids answer as missing. The one exception: a model's
		// domain is in its id, so who reads that domain (and could list
		// its models) learns it lacks the privilege before whether the
		// model exists; that hides nothing from them.
		for _, k := range access.Kinds() {
			for _, id := range []string{"com.beta.guess", "com.alpha.guess", "com.gamma.guess", "guess", string(k) + "-9"} {
				held := access.None
				if k == access.Model {
					domain, _, _ := access.SplitModelID(id)
					held = holds[who.Name][domain]
				}
				for _, a := range actions {
					res := e.Do(t, a.method, targetPath(k, id)+a.suffix, who.Token, nil)
					what := fmt.Sprintf("%s %s guessed %s %s", who.Name, a.method, k, id+a.suffix)
					if held >= access.Read && held < a.want {
						if res.StatusCode != http.StatusForbidden {
							t.Errorf("%s (holds %s): %d %s, want 403", what, held, res.StatusCode, res.Body)
						}
						continue
					}
					wantLikeMissing(t, res, k, what)
				}
			}
		}
	}

	// The admin reaches everything.
	for _, tg := range all {
		for _, a := range actions {
			wantStatus(t, e.Do(t, a.method, targetPath(tg.Kind, tg.ID)+a.suffix, e.admin.Token, nil), http.StatusOK)
		}
	}
	// Without a token nothing is answered at all.
	wantStatus(t, e.Do(t, "GET", targetPath(access.Model, "com.alpha.m0"), "", nil), http.StatusUnauthorized)
	// A few cases spelled out, for whoever reads this test first.
	wantStatus(t, e.Do(t, "GET", targetPath(access.Model, "com.alpha.m0"), alice.Token, nil), http.StatusOK)
	wantStatus(t, e.Do(t, "GET", targetPath(access.Model, "com.alpha.m0"), bob.Token, nil), http.StatusNotFound)
	wantStatus(t, e.Do(t, "PUT", targetPath(access.Model, "com.alpha.sub.m1"), carol.Token, nil), http.StatusForbidden)
	wantStatus(t, e.Do(t, "POST", targetPath(access.ModelService, "model-service-2")+"/infer", sa.Token, nil), http.StatusOK)
	wantStatus(t, e.Do(t, "GET", targetPath(access.ModelService, "model-service-2"), sa.Token, nil), http.StatusNotFound)
	wantStatus(t, e.Do(t, "GET", targetPath(access.Notebook, "notebook-3"), wanda.Token, nil), http.StatusOK)
	wantStatus(t, e.Do(t, "GET", targetPath(access.Notebook, "notebook-0"), wanda.Token, nil), http.StatusNotFound)
}

// wantLikeMissing checks that res is exactly what a missing target of
// this kind answers.
func wantLikeMissing(t *testing.T, res apptest.Response, kind access.Kind, what string) {
	t.Helper()
	want := fmt.Sprintf(`{"error":"%s not found","code":"not_found"}`+"\n", kind)
	if res.StatusCode != http.StatusNotFound || string(res.Body) != want {
		t.Errorf("%s: %d %s, want 404 %s", what, res.StatusCode, res.Body, want)
	}
}

// TestRequireGroupGrants goes through the app's own authz.Service and
// cache, without HTTP: local accounts have no groups yet, so no token can
// carry one, but federated principals will.
func TestRequireGroupGrants(t *testing.T) {
	t.Parallel()
	e := start(t)
	e.createDomains(t, "com.alpha", "com.beta")
	g := e.grant(t, subject{ID: "ml-team"}, "group", "com.alpha", "read")
	e.grant(t, subject{ID: "ops"}, "group", "com.beta", "all")
	svc := e.App.Authz()
	ctx := context.Background()
	member := principal.Principal{ID: "corp:u1", Kind: principal.User, Groups: []string{"ml-team"}}
	outsider := principal.Principal{ID: "corp:u2", Kind: principal.User, Groups: []string{"ml-team-2"}}
	for _, tc := range []struct {
		p      principal.Principal
		domain string
		want   access.Privilege
		status int // 0: allowed
	}{
		{member, "com.alpha", access.Read, 0},
		{member, "com.alpha", access.Infer, 0},
		{member, "com.alpha", access.All, http.StatusForbidden},
		{member, "com.beta", access.Infer, http.StatusNotFound},
		{member, "", access.Infer, http.StatusNotFound},
		{outsider, "com.alpha", access.Infer, http.StatusNotFound},
		{principal.Principal{ID: "corp:u3", Kind: principal.User, Groups: []string{"ops", "ml-team"}}, "com.beta", access.All, 0},
		{principal.Principal{ID: "sa-x", Kind: principal.ServiceAccount, Groups: []string{"ml-team"}}, "com.alpha", access.Read, 0},
	} {
		err := svc.Require(ctx, tc.p, access.Target{Kind: access.Flow, Domain: tc.domain, ID: "f"}, tc.want)
		if got := statusOf(err); got != tc.status {
			t.Errorf("Require(%v, %q, %s) = %v, want status %d", tc.p.Groups, tc.domain, tc.want, err, tc.status)
		}
	}
	// Revoking the group's grant takes effect for the very next call.
	e.revoke(t, e.admin, g.ID, http.StatusNoContent)
	if err := svc.Require(ctx, member, access.Target{Kind: access.Flow, Domain: "com.alpha", ID: "f"}, access.Infer); statusOf(err) != http.StatusNotFound {
		t.Errorf("after revoking the group grant: %v, want 404", err)
	}
}

func statusOf(err error) int {
	var he *httpapi.HTTPError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &he):
		return he.Status
	default:
		return -1
	}
}

// probe is one request of a stream: when it started and how it ended.
type probe struct {
	start, end time.Time
	status     int
	err        error
}

// stream sends GET path with token every interval until stop is closed.
func (e *env) stream(path, token string, interval time.Duration, stop <-chan struct{}) []probe {
	var out []probe
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		p := probe{start: time.Now()}
		req, err := http.NewRequest("GET", e.URL+path, nil)
		if err == nil {
			req.Header.Set("Authorization", "Bearer "+token)
			var res *http.Response
			if res, err = e.Client.Do(req); err == nil {
				_, _ = io.Copy(io.Discard, res.Body)
				_ = res.Body.Close()
				p.status = res.StatusCode
			}
		}
		p.end, p.err = time.Now(), err
		out = append(out, p)
		select {
		case <-stop:
			return out
		case <-tick.C:
		}
	}
}

// TestRevocationDuringRequestStream: a user reads a target every 20 ms
// while the admin revokes the grant; every request started more than a
// second after the revocation answered (the bound), and in fact
// every request started after it (this process invalidates its cache at
// once), is refused.
func TestRevocationDuringRequestStream(t *testing.T) {
	t.Parallel()
	e := start(t)
	e.createDomains(t, "com.acme")
	alice := e.newUser(t, "alice")
	g := e.grant(t, alice, "user", "com.acme", "read")
	mountTargets(e, map[access.Kind]map[string]string{access.Model: {"com.acme.m": "com.acme"}})
	path := targetPath(access.Model, "com.acme.m")

	stop := make(chan struct{})
	var (
		probes []probe
		wg     sync.WaitGroup
	)
	wg.Go(func() { probes = e.stream(path, alice.Token, 20*time.Millisecond, stop) })
	time.Sleep(300 * time.Millisecond)
	revokeStart := time.Now()
	e.revoke(t, e.admin, g.ID, http.StatusNoContent)
	revoked := time.Now()
	time.Sleep(1300 * time.Millisecond)
	close(stop)
	wg.Wait()

	var before, after, afterSecond int
	var firstRefusal *probe
	for i := range probes {
		p := &probes[i]
		if p.err != nil || (p.status != http.StatusOK && p.status != http.StatusNotFound) {
			t.Fatalf("request at %v: %d %v", p.start.Sub(revoked), p.status, p.err)
		}
		if p.status == http.StatusNotFound && firstRefusal == nil {
			firstRefusal = p
		}
		switch {
		case p.end.Before(revokeStart):
			before++
			if p.status != http.StatusOK {
				t.Errorf("request %v before the revocation was refused", revokeStart.Sub(p.end))
			}
		case p.start.After(revoked):
			after++
			if p.status != http.StatusNotFound {
				t.Errorf("request started %v after the revocation answered was allowed", p.start.Sub(revoked))
			}
			if p.start.After(revoked.Add(time.Second)) {
				afterSecond++
			}
		}
	}
	if before < 1 || after < 5 || afterSecond < 1 || firstRefusal == nil {
		t.Fatalf("too few requests: %d before the revocation, %d after, %d a second after; refused: %v",
			before, after, afterSecond, firstRefusal != nil)
	}
	t.Logf("%d requests (%d before the revocation, %d after, %d of them more than a second after); the revocation took %v; the first refusal started %v after the revocation answered and ended %v after it was sent",
		len(probes), before, after, afterSecond, revoked.Sub(revokeStart), firstRefusal.start.Sub(revoked), firstRefusal.end.Sub(revokeStart))
}

// TestGrantChangesFromAnotherProcess writes grants straight into the
// database through a second connection pool, as another Rampart process
// sharing it would, so this server's cache is never told: it must notice
// by itself within a second (it polls the access version every 250 ms).
func TestGrantChangesFromAnotherProcess(t *testing.T) {
	t.Parallel()
	e := start(t)
	e.createDomains(t, "com.acme")
	alice := e.newUser(t, "alice")
	mountTargets(e, map[access.Kind]map[string]string{access.Model: {"com.acme.m": "com.acme"}})
	path := targetPath(access.Model, "com.acme.m")
	ctx := context.Background()
	other, err := sqlite.Open(ctx, filepath.Join(e.DataDir, datadir.DatabaseFile))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = other.Close() })

	wantStatus(t, e.Do(t, "GET", path, alice.Token, nil), http.StatusNotFound)
	sg := store.Grant{ID: "g-other-process", SubjectKind: "user", SubjectID: alice.ID, Domain: "com.acme",
		Privilege: "read", CreatedBy: e.admin.ID, CreatedAt: time.Now()}
	if err := other.InTx(ctx, func(tx store.Tx) error { return tx.Grants().CreateGrant(ctx, sg) }); err != nil {
		t.Fatal(err)
	}
	t.Logf("a grant made elsewhere applied after %v", e.waitFor(t, path, alice.Token, http.StatusOK))

	if err := other.InTx(ctx, func(tx store.Tx) error { return tx.Grants().DeleteGrant(ctx, sg.ID) }); err != nil {
		t.Fatal(err)
	}
	t.Logf("a revocation made elsewhere applied after %v", e.waitFor(t, path, alice.Token, http.StatusNotFound))
}

// waitFor polls GET path every 10 ms until it answers status, which must
// happen within a second; it returns how long it took.
func (e *env) waitFor(t *testing.T, path, token string, status int) time.Duration {
	t.Helper()
	begin := time.Now()
	for {
		started := time.Now()
		res := e.Do(t, "GET", path, token, nil)
		if res.StatusCode == status {
			return time.Since(begin)
		}
		if started.Sub(begin) > time.Second {
			t.Fatalf("a request started %v after the change still answered %d %s, want %d",
				started.Sub(begin), res.StatusCode, res.Body, status)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
