package authz_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/rampart-ml/rampart/internal/authz"
)

// domainNames lists the domains GET /api/v1/domains shows who.
func (e *env) domainNames(t *testing.T, who subject) []string {
	t.Helper()
	ds := decode[[]authz.Domain](t, e.Do(t, "GET", "/api/v1/domains", who.Token, nil), http.StatusOK)
	names := []string{}
	for _, d := range ds {
		if d.CreatedAt.IsZero() {
			t.Errorf("domain %s has no created_at", d.Name)
		}
		names = append(names, d.Name)
	}
	return names
}

// grantIDs lists the ids of the grants GET /api/v1/grants shows who.
func (e *env) grantIDs(t *testing.T, who subject) []string {
	t.Helper()
	gs := decode[[]authz.Grant](t, e.Do(t, "GET", "/api/v1/grants", who.Token, nil), http.StatusOK)
	ids := []string{}
	for _, g := range gs {
		ids = append(ids, g.ID)
	}
	return ids
}

// sameSet compares id lists ignoring order.
var sameSet = cmp.Transformer("sorted", func(in []string) map[string]bool {
	m := map[string]bool{}
	for _, s := range in {
		m[s] = true
	}
	return m
})

func TestDomainCreate(t *testing.T) {
	t.Parallel()
	e := start(t)
	alice := e.newUser(t, "alice")

	res := e.Do(t, "POST", "/api/v1/domains", e.admin.Token, map[string]string{"name": "com.acme"})
	d := decode[authz.Domain](t, res, http.StatusCreated)
	if d.Name != "com.acme" || d.CreatedAt.IsZero() {
		t.Errorf("created %+v", d)
	}
	// A subdomain does not need its parent, and is a domain of its own.
	e.createDomains(t, "org.example.team")

	for _, name := range []string{"", "*", "Com.acme", "com..acme", ".com", "com.", "com.ac_me", "-com",
		"com.acme.*", strings.Repeat("a", 64), "a.b.c.d.e.f.g.h.i.j.k", strings.Repeat("a.", 127) + "a"} {
		res := e.Do(t, "POST", "/api/v1/domains", e.admin.Token, map[string]string{"name": name})
		wantError(t, res, http.StatusUnprocessableEntity, "invalid_domain")
	}
	wantError(t, e.Do(t, "POST", "/api/v1/domains", e.admin.Token, map[string]string{"name": "com.acme"}),
		http.StatusConflict, "domain_exists")
	wantError(t, e.Do(t, "POST", "/api/v1/domains", e.admin.Token, map[string]any{"name": "com.x", "owner": "alice"}),
		http.StatusBadRequest, "malformed_json")

	// Only admins create domains, even ones nobody has yet.
	wantStatus(t, e.Do(t, "POST", "/api/v1/domains", alice.Token, map[string]string{"name": "com.alice"}), http.StatusForbidden)
	wantStatus(t, e.Do(t, "POST", "/api/v1/domains", "", map[string]string{"name": "com.anon"}), http.StatusUnauthorized)
	// Holding all on a domain does not make one an admin of its subdomains' existence.
	e.grant(t, alice, "user", "com.acme", "all")
	wantStatus(t, e.Do(t, "POST", "/api/v1/domains", alice.Token, map[string]string{"name": "com.acme.sub"}), http.StatusForbidden)

	if diff := cmp.Diff([]string{"com.acme", "org.example.team"}, e.domainNames(t, e.admin)); diff != "" {
		t.Errorf("domains (-want +got):\n%s", diff)
	}
}

func TestDomainListIsFiltered(t *testing.T) {
	t.Parallel()
	e := start(t)
	e.createDomains(t, "com.acme", "com.acme.team", "com.acme.team.vision", "com.other", "org.example")
	alice := e.newUser(t, "alice") // all on com.acme: sees the whole subtree
	bob := e.newUser(t, "bob")     // read on com.acme.team: the subtree below, not the parent
	carol := e.newUser(t, "carol") // infer only: cannot read, sees nothing
	dave := e.newUser(t, "dave")   // no grants
	sa := e.newServiceAccount(t, "pipeline")
	e.grant(t, alice, "user", "com.acme", "all")
	e.grant(t, bob, "user", "com.acme.team", "read")
	e.grant(t, carol, "user", "com.other", "infer")
	e.grant(t, dave, "user", "*", "all") // "*" reaches targets without a domain, no domain name
	e.grant(t, sa, "service-account", "org.example", "read")

	for _, tc := range []struct {
		who  subject
		want []string
	}{
		{e.admin, []string{"com.acme", "com.acme.team", "com.acme.team.vision", "com.other", "org.example"}},
		{alice, []string{"com.acme", "com.acme.team", "com.acme.team.vision"}},
		{bob, []string{"com.acme.team", "com.acme.team.vision"}},
		{carol, []string{}},
		{dave, []string{}},
		{sa, []string{"org.example"}},
	} {
		if diff := cmp.Diff(tc.want, e.domainNames(t, tc.who)); diff != "" {
			t.Errorf("domains %s sees (-want +got):\n%s", tc.who.Name, diff)
		}
	}
	wantStatus(t, e.Do(t, "GET", "/api/v1/domains", "", nil), http.StatusUnauthorized)
}

func TestDomainDelete(t *testing.T) {
	t.Parallel()
	e := start(t)
	e.createDomains(t, "com.acme", "com.acme.team")
	alice := e.newUser(t, "alice")
	g := e.grant(t, alice, "user", "com.acme.team", "all")

	for _, name := range []string{"com.unknown", "Bad..Name", "*"} {
		wantError(t, e.Do(t, "DELETE", "/api/v1/domains/"+url.PathEscape(name), e.admin.Token, nil),
			http.StatusNotFound, "not_found")
	}
	// Even all on the domain does not allow deleting it: admins only.
	wantStatus(t, e.Do(t, "DELETE", "/api/v1/domains/com.acme.team", alice.Token, nil), http.StatusForbidden)
	wantError(t, e.Do(t, "DELETE", "/api/v1/domains/com.acme.team", e.admin.Token, nil),
		http.StatusConflict, "domain_in_use")

	e.revoke(t, e.admin, g.ID, http.StatusNoContent)
	wantStatus(t, e.Do(t, "DELETE", "/api/v1/domains/com.acme.team", e.admin.Token, nil), http.StatusNoContent)
	wantError(t, e.Do(t, "DELETE", "/api/v1/domains/com.acme.team", e.admin.Token, nil), http.StatusNotFound, "not_found")
	if diff := cmp.Diff([]string{"com.acme"}, e.domainNames(t, e.admin)); diff != "" {
		t.Errorf("domains after delete (-want +got):\n%s", diff)
	}
	// The name can be used again, and a grant on it works.
	e.createDomains(t, "com.acme.team")
	e.grant(t, alice, "user", "com.acme.team", "read")
}

func TestGrantCreateByAdmin(t *testing.T) {
	t.Parallel()
	e := start(t)
	e.createDomains(t, "com.acme", "com.acme.internal", "com.acme.internal.deep", "com.other")
	alice := e.newUser(t, "alice")
	bob := e.newUser(t, "bob")
	sa := e.newServiceAccount(t, "pipeline")

	parent := e.grant(t, alice, "user", "com.acme", "all")
	if parent.CreatedAt.IsZero() || !strings.HasPrefix(parent.ID, "g-") {
		t.Errorf("grant %+v", parent)
	}
	e.grant(t, sa, "service-account", "com.other", "infer")
	e.grant(t, sa, "service-account", "*", "read")
	// Groups come from identity providers and are not listed: any
	// well-formed name is accepted.
	e.grant(t, subject{ID: "ml-team"}, "group", "com.acme", "read")
	// A subdomain grant that raises what the parent gives is fine.
	e.grant(t, bob, "user", "com.acme", "infer")
	e.grant(t, bob, "user", "com.acme.internal", "read")

	// MXE: "if all access rights are defined for domain com.ericsson then it
	// is not valid to set read for com.ericsson.internal" — and the error
	// names the parent grant.
	for _, tc := range []struct{ who, domain, privilege string }{
		{alice.ID, "com.acme.internal", "read"},
		{alice.ID, "com.acme.internal", "all"},
		{alice.ID, "com.acme.internal.deep", "infer"},
		{bob.ID, "com.acme.internal.deep", "read"}, // the nearest parent grant decides
	} {
		msg := wantError(t, e.postGrant(t, e.admin, "user", tc.who, tc.domain, tc.privilege), http.StatusConflict, "grant_redundant")
		if tc.who == alice.ID && !strings.Contains(msg, parent.ID) {
			t.Errorf("redundant %s on %s: %q does not name the parent grant %s", tc.privilege, tc.domain, msg, parent.ID)
		}
		if !strings.Contains(msg, "parent domain") {
			t.Errorf("redundant %s on %s: %q", tc.privilege, tc.domain, msg)
		}
	}
	// The same subject on the same domain, whatever the privilege.
	for _, p := range []string{"all", "read"} {
		msg := wantError(t, e.postGrant(t, e.admin, "user", alice.ID, "com.acme", p), http.StatusConflict, "grant_exists")
		if !strings.Contains(msg, parent.ID) {
			t.Errorf("duplicate: %q does not name grant %s", msg, parent.ID)
		}
	}

	for _, tc := range []struct {
		name                        string
		kind, id, domain, privilege string
		code                        string
	}{
		{"unknown domain", "user", bob.ID, "com.nowhere", "read", "unknown_domain"},
		{"unknown subdomain", "user", bob.ID, "com.other.team", "all", "unknown_domain"},
		{"unknown user", "user", "no-such-user", "com.other", "read", "unknown_subject"},
		{"unknown service account", "service-account", "sa-0000", "com.other", "read", "unknown_subject"},
		{"user id as service account", "service-account", bob.ID, "com.other", "read", "unknown_subject"},
		{"service account id as user", "user", sa.ID, "com.acme", "read", "unknown_subject"},
		{"invalid privilege", "user", bob.ID, "com.other", "write", "invalid_grant"},
		{"privilege none", "user", bob.ID, "com.other", "none", "invalid_grant"},
		{"privilege upper case", "user", bob.ID, "com.other", "READ", "invalid_grant"},
		{"empty privilege", "user", bob.ID, "com.other", "", "invalid_grant"},
		{"invalid subject kind", "role", bob.ID, "com.other", "read", "invalid_grant"},
		{"empty group", "group", "", "com.other", "read", "invalid_grant"},
		{"group with newline", "group", "a\nb", "com.other", "read", "invalid_grant"},
		{"invalid domain", "user", bob.ID, "Com..Other", "read", "invalid_grant"},
		{"empty domain", "user", bob.ID, "", "read", "invalid_grant"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantError(t, e.postGrant(t, e.admin, tc.kind, tc.id, tc.domain, tc.privilege), http.StatusUnprocessableEntity, tc.code)
		})
	}
	wantError(t, e.Do(t, "POST", "/api/v1/grants", e.admin.Token, map[string]string{
		"subject_kind": "user", "subject_id": bob.ID, "domain": "com.other", "privilege": "read", "expires": "never",
	}), http.StatusBadRequest, "malformed_json")
	// The client cannot choose the id.
	res := e.Do(t, "POST", "/api/v1/grants", e.admin.Token, map[string]string{
		"id": "g-chosen", "subject_kind": "user", "subject_id": bob.ID, "domain": "com.other", "privilege": "read",
	})
	if g := decode[authz.Grant](t, res, http.StatusCreated); g.ID == "g-chosen" {
		t.Error("the client chose the grant id")
	}
	wantStatus(t, e.postGrant(t, subject{}, "user", bob.ID, "com.other", "all"), http.StatusUnauthorized)
}

func TestGrantDelegation(t *testing.T) {
	t.Parallel()
	e := start(t)
	e.createDomains(t, "com.acme", "com.acme.team", "com.other")
	alice := e.newUser(t, "alice") // all on com.acme: administers it
	bob := e.newUser(t, "bob")
	carol := e.newUser(t, "carol") // all on com.other
	dave := e.newUser(t, "dave")   // no grants at all
	aliceAll := e.grant(t, alice, "user", "com.acme", "all")
	carolAll := e.grant(t, carol, "user", "com.other", "all")

	// alice grants read on a subdomain, and on her domain itself.
	bobTeam := e.grantAs(t, alice, bob, "user", "com.acme.team", "read")
	// ... and up to all, never more than she holds (all is the top).
	daveTeam := e.grantAs(t, alice, dave, "user", "com.acme.team", "all")
	e.revoke(t, alice, daveTeam.ID, http.StatusNoContent)
	// Her grants are checked like the admin's.
	wantError(t, e.postGrant(t, alice, "user", "no-such-user", "com.acme.team", "read"), http.StatusUnprocessableEntity, "unknown_subject")
	wantError(t, e.postGrant(t, alice, "user", bob.ID, "com.acme.nowhere", "read"), http.StatusUnprocessableEntity, "unknown_domain")
	wantError(t, e.postGrant(t, alice, "user", bob.ID, "com.acme.team", "read"), http.StatusConflict, "grant_exists")
	// The redundancy rule applies to delegated grants too.
	wantError(t, e.postGrant(t, alice, "user", alice.ID, "com.acme.team", "read"), http.StatusConflict, "grant_redundant")

	// Outside her domain, and on "*", she may not grant.
	wantError(t, e.postGrant(t, alice, "user", bob.ID, "com.other", "read"), http.StatusForbidden, "forbidden")
	wantError(t, e.postGrant(t, alice, "user", bob.ID, "*", "infer"), http.StatusForbidden, "forbidden")
	wantError(t, e.postGrant(t, alice, "user", bob.ID, "com", "read"), http.StatusForbidden, "forbidden")
	// Nor may bob, who only reads com.acme.team, grant anything there.
	wantError(t, e.postGrant(t, bob, "user", dave.ID, "com.acme.team", "infer"), http.StatusForbidden, "forbidden")
	// Someone without grants learns nothing about which subjects exist:
	// an unknown subject and an unknown domain get the same 403 as a
	// known one.
	for _, tc := range []struct{ kind, id, domain string }{
		{"user", bob.ID, "com.acme"},
		{"user", "no-such-user", "com.acme"},
		{"service-account", "sa-guess", "com.acme"},
		{"user", bob.ID, "com.nowhere"},
		{"user", bob.ID, "*"},
	} {
		wantError(t, e.postGrant(t, dave, tc.kind, tc.id, tc.domain, "read"), http.StatusForbidden, "forbidden")
	}

	// Revocation: who cannot see a grant gets 404, who can see but not
	// administer it 403.
	e.revoke(t, alice, carolAll.ID, http.StatusNotFound)
	e.revoke(t, dave, aliceAll.ID, http.StatusNotFound)
	e.revoke(t, bob, bobTeam.ID, http.StatusForbidden) // his own, but read only
	e.revoke(t, bob, aliceAll.ID, http.StatusNotFound)
	e.revoke(t, carol, bobTeam.ID, http.StatusNotFound)
	e.revoke(t, alice, "g-000000000000000000000000", http.StatusNotFound)
	e.revoke(t, e.admin, "g-000000000000000000000000", http.StatusNotFound)
	e.revoke(t, alice, bobTeam.ID, http.StatusNoContent)
	e.revoke(t, alice, bobTeam.ID, http.StatusNotFound)
	wantStatus(t, e.Do(t, "DELETE", "/api/v1/grants/"+carolAll.ID, "", nil), http.StatusUnauthorized)

	// With the grant gone, bob's check says so at once.
	res := decode[authz.CheckResult](t, e.Do(t, "GET",
		"/api/v1/access/check?kind=model&domain=com.acme.team&privilege=read", bob.Token, nil), http.StatusOK)
	if res.Allowed {
		t.Errorf("bob still reads com.acme.team after revocation: %+v", res)
	}
}

func TestGrantListVisibility(t *testing.T) {
	t.Parallel()
	e := start(t)
	e.createDomains(t, "com.acme", "com.acme.team", "com.other")
	alice := e.newUser(t, "alice")
	bob := e.newUser(t, "bob")
	carol := e.newUser(t, "carol")
	dave := e.newUser(t, "dave")
	sa := e.newServiceAccount(t, "pipeline")

	aliceAll := e.grant(t, alice, "user", "com.acme", "all")
	bobTeam := e.grant(t, bob, "user", "com.acme.team", "read")
	bobOther := e.grant(t, bob, "user", "com.other", "infer")
	carolOther := e.grant(t, carol, "user", "com.other", "all")
	saTeam := e.grant(t, sa, "service-account", "com.acme.team", "infer")
	saWild := e.grant(t, sa, "service-account", "*", "read")
	group := e.grant(t, subject{ID: "ml-team"}, "group", "com.acme", "read")
	groupOther := e.grant(t, subject{ID: "ops"}, "group", "com.other", "read")
	all := []string{aliceAll.ID, bobTeam.ID, bobOther.ID, carolOther.ID, saTeam.ID, saWild.ID, group.ID, groupOther.ID}

	for _, tc := range []struct {
		who  subject
		want []string
	}{
		{e.admin, all},
		// Her own, and every grant on the domains she administers.
		{alice, []string{aliceAll.ID, bobTeam.ID, saTeam.ID, group.ID}},
		// His own only: read on com.acme.team administers nothing.
		{bob, []string{bobTeam.ID, bobOther.ID}},
		{carol, []string{carolOther.ID, bobOther.ID, groupOther.ID}},
		{dave, []string{}},
		{sa, []string{saTeam.ID, saWild.ID}},
	} {
		if diff := cmp.Diff(tc.want, e.grantIDs(t, tc.who), sameSet); diff != "" {
			t.Errorf("grants %s sees (-want +got):\n%s", tc.who.Name, diff)
		}
	}
	wantStatus(t, e.Do(t, "GET", "/api/v1/grants", "", nil), http.StatusUnauthorized)
}

func TestAccessCheck(t *testing.T) {
	t.Parallel()
	e := start(t)
	e.createDomains(t, "com.acme", "com.acme.team", "com.other")
	alice := e.newUser(t, "alice")
	bob := e.newUser(t, "bob")
	sa := e.newServiceAccount(t, "pipeline")
	aliceAll := e.grant(t, alice, "user", "com.acme", "all")
	aliceTeam := e.grant(t, alice, "user", "com.other", "read")
	bobWild := e.grant(t, bob, "user", "*", "infer")
	saInfer := e.grant(t, sa, "service-account", "com.acme.team", "infer")

	check := func(t *testing.T, who subject, query string) authz.CheckResult {
		t.Helper()
		return decode[authz.CheckResult](t, e.Do(t, "GET", "/api/v1/access/check?"+query, who.Token, nil), http.StatusOK)
	}
	// The check names the deciding grant without its creation time.
	view := func(g authz.Grant) *authz.Grant {
		return &authz.Grant{ID: g.ID, SubjectKind: g.SubjectKind, SubjectID: g.SubjectID, Domain: g.Domain, Privilege: g.Privilege}
	}
	for _, tc := range []struct {
		name  string
		who   subject
		query string
		want  authz.CheckResult
	}{
		{"inherited from the parent", alice, "kind=model&domain=com.acme.team&privilege=all",
			authz.CheckResult{Allowed: true, Effective: "all", Grant: view(aliceAll)}},
		{"on the domain itself, about oneself by id", alice, "subject=" + alice.ID + "&kind=notebook&domain=com.acme&privilege=infer",
			authz.CheckResult{Allowed: true, Effective: "all", Grant: view(aliceAll)}},
		// Denied, but the grant giving what is held is named.
		{"read but not all", alice, "kind=flow&domain=com.other&privilege=all",
			authz.CheckResult{Allowed: false, Effective: "read", Grant: view(aliceTeam)}},
		{"read suffices", alice, "kind=flow-deployment&domain=com.other&privilege=read",
			authz.CheckResult{Allowed: true, Effective: "read", Grant: view(aliceTeam)}},
		{"no grant on a parent of the grant", alice, "kind=model&domain=com&privilege=infer",
			authz.CheckResult{Effective: "none"}},
		{"no domain needs *", alice, "kind=model&privilege=infer",
			authz.CheckResult{Effective: "none"}},
		{"* names the targets without a domain", bob, "kind=model-service&domain=*&privilege=infer",
			authz.CheckResult{Allowed: true, Effective: "infer", Grant: view(bobWild)}},
		{"* does not reach named domains", bob, "kind=model-service&domain=com.acme&privilege=infer",
			authz.CheckResult{Effective: "none"}},
		{"service account", sa, "kind=model-service&domain=com.acme.team&privilege=infer",
			authz.CheckResult{Allowed: true, Effective: "infer", Grant: view(saInfer)}},
		{"service account cannot read", sa, "kind=model-service&domain=com.acme.team&privilege=read",
			authz.CheckResult{Effective: "infer", Grant: view(saInfer)}},
		{"admin about itself", e.admin, "kind=training-job&domain=com.nowhere&privilege=all",
			authz.CheckResult{Allowed: true, Effective: "all", Admin: true}},
		{"admin about alice", e.admin, "subject=" + alice.ID + "&kind=model&domain=com.acme.team&privilege=all",
			authz.CheckResult{Allowed: true, Effective: "all", Grant: view(aliceAll)}},
		{"admin about alice, denied", e.admin, "subject=" + alice.ID + "&kind=training-package&domain=com.other&privilege=all",
			authz.CheckResult{Effective: "read", Grant: view(aliceTeam)}},
		{"admin about a service account", e.admin, "subject=" + sa.ID + "&kind=model-service&domain=com.acme.team&privilege=infer",
			authz.CheckResult{Allowed: true, Effective: "infer", Grant: view(saInfer)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := check(t, tc.who, tc.query)
			if got.Reason == "" {
				t.Error("no reason")
			}
			got.Reason = ""
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("check %s (-want +got):\n%s", tc.query, diff)
			}
		})
	}

	// Only admins ask about others; the answer does not depend on whether
	// the other exists.
	for _, id := range []string{bob.ID, sa.ID, e.admin.ID, "no-such-user"} {
		wantError(t, e.Do(t, "GET", "/api/v1/access/check?kind=model&domain=com.acme&privilege=read&subject="+url.QueryEscape(id), alice.Token, nil),
			http.StatusForbidden, "forbidden")
	}
	wantError(t, e.Do(t, "GET", "/api/v1/access/check?kind=model&domain=com.acme&privilege=read&subject=no-such-user", e.admin.Token, nil),
		http.StatusNotFound, "not_found")
	for _, q := range []string{
		"", "domain=com.acme&privilege=read", "kind=models&domain=com.acme&privilege=read", "kind=Model&privilege=read",
		"kind=model&domain=com.acme", "kind=model&domain=com.acme&privilege=none", "kind=model&domain=com.acme&privilege=write",
		"kind=model&domain=Com..acme&privilege=read", "kind=model&domain=com.*&privilege=read",
	} {
		wantError(t, e.Do(t, "GET", "/api/v1/access/check?"+q, alice.Token, nil), http.StatusBadRequest, "invalid_request")
	}
	wantStatus(t, e.Do(t, "GET", "/api/v1/access/check?kind=model&domain=com.acme&privilege=read", "", nil), http.StatusUnauthorized)
}
