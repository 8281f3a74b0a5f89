package app_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/rampart-ml/rampart/internal/app"
	"github.com/rampart-ml/rampart/internal/app/apptest"
	"github.com/rampart-ml/rampart/internal/audit"
	"github.com/rampart-ml/rampart/internal/store"
)

// export gets who's GET /api/v1/me/export, raw and decoded.
func export(t *testing.T, s *apptest.Server, who testUser) (app.Export, string) {
	t.Helper()
	res := s.Do(t, "GET", "/api/v1/me/export", who.Token, nil)
	return apptest.Decode[app.Export](t, res, http.StatusOK), string(res.Body)
}

// TestExportOwnData: a user's export holds their profile, their service
// accounts (credential ids, never values), the grants to them and to
// their service accounts, and exactly the audit records that name their
// pseudonym, the export's own included.
func TestExportOwnData(t *testing.T) {
	t.Parallel()
	s, admin := startWithAdmin(t)
	alice := newUser(t, s, admin, "alice", false)
	bob := newUser(t, s, admin, "bob", false)
	bot := apptest.Decode[struct {
		ID             string `json:"id"`
		ClientSecret   string `json:"client_secret"`
		ClientSecretID string `json:"client_secret_id"`
	}](t, s.Do(t, "POST", "/api/v1/service-accounts", alice.Token, map[string]string{"name": "alices-bot"}), http.StatusCreated)
	apptest.WantStatus(t, s.Do(t, "POST", "/api/v1/domains", admin.Token, map[string]string{"name": "com.acme"}), http.StatusCreated)
	var grants []string
	for _, g := range []map[string]string{
		{"subject_kind": "user", "subject_id": alice.ID, "domain": "com.acme", "privilege": "read"},
		{"subject_kind": "service-account", "subject_id": bot.ID, "domain": "*", "privilege": "infer"},
		{"subject_kind": "user", "subject_id": bob.ID, "domain": "com.acme", "privilege": "all"},
	} {
		grants = append(grants, apptest.Decode[struct{ ID string }](t, s.Do(t, "POST", "/api/v1/grants", admin.Token, g), http.StatusCreated).ID)
	}
	// Each of them is refused once: records with them as actors.
	for _, who := range []testUser{alice, bob} {
		apptest.WantStatus(t, s.Do(t, "GET", "/api/v1/audit/records", who.Token, nil), http.StatusForbidden)
	}
	// Refusals are queued (Submit): wait until both are committed.
	s.WaitAuditRecords(t, "the 2 refusals", func(recs []store.AuditRecord) bool {
		return apptest.CountAudit(recs, func(r store.AuditRecord) bool {
			return r.Action == "access.deny" && r.TargetID == "GET /api/v1/audit/records"
		}) == 2
	})
	bobsExport, _ := export(t, s, bob)
	got, raw := export(t, s, alice)

	if got.Subject.ID != alice.ID || got.Subject.Kind != "user" || !strings.HasPrefix(got.Subject.Pseudonym, "p-") ||
		got.Subject.Pseudonym == bobsExport.Subject.Pseudonym || got.ExportedAt.IsZero() {
		t.Errorf("subject %+v (bob's %+v)", got.Subject, bobsExport.Subject)
	}
	if p := got.Profile; p == nil || p.Name != "alice" || p.Admin || p.Auditor || p.Disabled || p.MustChangePassword ||
		p.HasTOTP || p.CreatedAt.IsZero() {
		t.Errorf("profile %+v", got.Profile)
	}
	if len(got.ServiceAccounts) != 1 {
		t.Fatalf("service accounts %+v", got.ServiceAccounts)
	}
	if sa := got.ServiceAccounts[0]; sa.ID != bot.ID || sa.Name != "alices-bot" || len(sa.ClientSecrets) != 1 ||
		sa.ClientSecrets[0].ID != bot.ClientSecretID || len(sa.ClientKeys) != 0 {
		t.Errorf("service account %+v", sa)
	}
	var grantIDs []string
	for _, g := range got.Grants {
		grantIDs = append(grantIDs, g.ID)
	}
	if diff := cmp.Diff(grants[:2], grantIDs, cmpSorted); diff != "" {
		t.Errorf("grants (-want +got):\n%s", diff)
	}
	if o := got.OwnedTargets; o.Domains == nil || len(o.Domains) != 0 || o.Models == nil || o.Services == nil {
		t.Errorf("owned targets %+v", o)
	}
	if adminsExport, _ := export(t, s, admin); len(adminsExport.OwnedTargets.Domains) != 1 || adminsExport.OwnedTargets.Domains[0].Name != "com.acme" {
		t.Errorf("admin's owned targets %+v", adminsExport.OwnedTargets)
	}

	// The records: the refused read and the export itself, both alice's;
	// none of bob's.
	var actions []string
	records := parseExported(t, got.AuditRecords)
	for _, r := range records {
		if r.Actor != got.Subject.Pseudonym && r.TargetID != got.Subject.Pseudonym {
			t.Errorf("record %d does not name alice: %+v", r.Seq, r)
		}
		actions = append(actions, r.Action)
	}
	// Her life so far, in order, among the other records that name her
	// (sessions, tokens, her service account's secret).
	want := []string{"account.create", "login", "password.change", "login", "service-account.create", "access.deny", "account.export"}
	if rest := subsequence(want, actions); len(rest) > 0 {
		t.Errorf("alice's records %v lack %v (in this order: %v)", actions, rest, want)
	}
	if last := records[len(records)-1]; last.TargetKind != "user" || last.TargetID != got.Subject.Pseudonym {
		t.Errorf("export record %+v", last)
	}
	if strings.Contains(raw, bobsExport.Subject.Pseudonym) || strings.Contains(raw, bob.ID) {
		t.Error("alice's export names bob")
	}
	// No secret of any kind.
	for _, secret := range []string{bot.ClientSecret, "$argon2id", alice.Token, `"password":`, "password_hash", "totp_secret"} {
		if strings.Contains(raw, secret) {
			t.Errorf("the export holds %q", secret)
		}
	}
	// Its record was committed before the answer.
	if recs := s.AuditRecords(t, store.AuditQuery{Subject: got.Subject.Pseudonym}); recs[len(recs)-1].Action != "account.export" {
		t.Errorf("stored records of alice end with %+v", recs[len(recs)-1])
	}
}

// TestExportDocumentShape: the top-level fields, with empty lists as []
// and a profile as null only where there is no account.
func TestExportDocumentShape(t *testing.T) {
	t.Parallel()
	s, admin := startWithAdmin(t)
	_, raw := export(t, s, admin)
	var doc map[string]json.RawMessage
	if err := json.Unmarshal([]byte(raw), &doc); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for k := range doc {
		keys = append(keys, k)
	}
	want := []string{"audit_records", "exported_at", "grants", "owned_targets", "profile", "service_accounts", "subject"}
	if diff := cmp.Diff(want, keys, cmpSorted); diff != "" {
		t.Errorf("fields (-want +got):\n%s", diff)
	}
	for _, k := range []string{"grants", "service_accounts"} {
		if string(doc[k]) != "[]" {
			t.Errorf("%s: %s, want []", k, doc[k])
		}
	}
	if string(doc["owned_targets"]) != `{"domains":[],"models":[],"services":[]}` {
		t.Errorf("owned_targets: %s", doc["owned_targets"])
	}
	apptest.WantStatus(t, s.Do(t, "GET", "/api/v1/me/export", "", nil), http.StatusUnauthorized)
}

var cmpSorted = cmp.Transformer("sorted", func(in []string) []string {
	out := append([]string(nil), in...)
	slices.Sort(out)
	return out
})

// subsequence returns what is left of want after matching it, in order,
// against got (nothing when want is a subsequence of got).
func subsequence(want, got []string) []string {
	for _, g := range got {
		if len(want) > 0 && want[0] == g {
			want = want[1:]
		}
	}
	return want
}

// parseExported reads the records of an export: audit copy lines.
func parseExported(t *testing.T, raw []json.RawMessage) []store.AuditRecord {
	t.Helper()
	var out []store.AuditRecord
	for _, r := range raw {
		l, err := audit.ParseLine(r)
		if err != nil || l.Type != audit.LineRecord {
			t.Fatalf("exported record %s: %v", r, err)
		}
		out = append(out, l.Record)
	}
	return out
}
