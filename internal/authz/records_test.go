package authz_test

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/rampart-ml/rampart/internal/access"
	"github.com/rampart-ml/rampart/internal/principal"
	"github.com/rampart-ml/rampart/internal/store"
)

// TestAccessControlIsAudited: every domain and grant change, each refused
// grant and each Require denial of a running server is in the audit log,
// with the actor as a pseudonym and the grantee only by kind.
func TestAccessControlIsAudited(t *testing.T) {
	t.Parallel()
	e := start(t)
	alice := e.newUser(t, "alice")

	e.createDomains(t, "com.acme", "com.spare")
	g := e.grant(t, alice, "user", "com.acme", "read")
	// Refusals: alice may not grant (403); the admin's second grant to
	// alice on com.acme is a duplicate (409).
	wantError(t, e.postGrant(t, alice, "group", "ml-team", "com.acme", "read"), http.StatusForbidden, "forbidden")
	wantError(t, e.postGrant(t, e.admin, "user", alice.ID, "com.acme", "all"), http.StatusConflict, "grant_exists")
	// alice sees her grant but may not revoke it.
	e.revoke(t, alice, g.ID, http.StatusForbidden)
	// A denial through Require, as target handlers will meet it.
	p := principal.Principal{ID: alice.ID, Kind: principal.User}
	if err := e.App.Authz().Require(context.Background(), p, access.Target{Kind: access.Model, Domain: "com.acme", ID: "com.acme.m"}, access.All); err == nil {
		t.Fatal("Require allowed all to a reader")
	}
	e.revoke(t, e.admin, g.ID, http.StatusNoContent)
	wantStatus(t, e.Do(t, "DELETE", "/api/v1/domains/com.spare", e.admin.Token, nil), http.StatusNoContent)

	// Denials are queued (Submit): read once the model denial is committed.
	recs := e.WaitAuditRecords(t, "the model denial", func(recs []store.AuditRecord) bool {
		return slices.ContainsFunc(recs, func(r store.AuditRecord) bool { return r.Action == "access.deny" && r.TargetKind == "model" })
	})
	names := map[string]string{e.admin.ID: "admin", alice.ID: "alice"}
	subjects := map[string]string{} // pseudonym → "admin" or "alice"
	e.InTx(t, func(ctx context.Context, tx store.Tx) error {
		for _, r := range recs {
			if id, err := tx.Audit().SubjectByPseudonym(ctx, r.Actor); err == nil {
				subjects[r.Actor] = names[id]
			}
		}
		return nil
	})
	type row struct{ Actor, Action, TargetKind, TargetDomain, TargetID, Outcome, Reason string }
	var got []row
	for _, r := range recs {
		if !strings.HasPrefix(r.Action, "domain.") && !strings.HasPrefix(r.Action, "grant.") &&
			(r.Action != "access.deny" || r.TargetKind == "route") {
			continue
		}
		got = append(got, row{subjects[r.Actor], r.Action, r.TargetKind, r.TargetDomain, r.TargetID, r.Outcome, r.Reason})
		for _, field := range []string{r.Actor, r.TargetID, r.TargetDomain, r.Reason} {
			if strings.Contains(field, alice.ID) || strings.Contains(field, "alice") {
				t.Errorf("record %d names alice: %+v", r.Seq, r)
			}
		}
	}
	want := []row{
		{"admin", "domain.create", "domain", "", "com.acme", "success", ""},
		{"admin", "domain.create", "domain", "", "com.spare", "success", ""},
		{"admin", "grant.create", "grant", "com.acme", g.ID, "success", "grantee=user privilege=read"},
		{"alice", "grant.create", "grant", "com.acme", "", "denied", "code=forbidden grantee=group privilege=read"},
		{"admin", "grant.create", "grant", "com.acme", "", "failure", "code=grant_exists grantee=user privilege=all"},
		{"alice", "grant.revoke", "grant", "com.acme", g.ID, "denied", "code=forbidden grantee=user privilege=read"},
		{"alice", "access.deny", "model", "com.acme", "com.acme.m", "denied", "privilege=all"},
		{"admin", "grant.revoke", "grant", "com.acme", g.ID, "success", "grantee=user privilege=read"},
		{"admin", "domain.delete", "domain", "", "com.spare", "success", ""},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("access-control records (-want +got):\n%s", diff)
	}
}
