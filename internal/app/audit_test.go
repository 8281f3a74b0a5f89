package app_test

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/rampart-ml/rampart/internal/app"
	"github.com/rampart-ml/rampart/internal/app/apptest"
	"github.com/rampart-ml/rampart/internal/audit"
	"github.com/rampart-ml/rampart/internal/store"
)

// GET /api/v1/audit/verify checks the chain of a running server; it is
// for admins only.
func TestAuditVerifyEndpoint(t *testing.T) {
	t.Parallel()
	s := apptest.Start(t, apptest.FastHashing)
	admin := s.Login(t, "admin", s.AdminPassword).AccessToken
	// The generated password must change before anything else.
	const pw = "violet-orbit-lantern-quarry-42"
	apptest.WantStatus(t, s.Do(t, "POST", "/api/v1/me/password", admin,
		map[string]string{"current_password": s.AdminPassword, "new_password": pw}), http.StatusNoContent)
	admin = s.Login(t, "admin", pw).AccessToken

	got := apptest.Decode[app.AuditVerification](t, s.Do(t, "GET", "/api/v1/audit/verify", admin, nil), http.StatusOK)
	if !got.Intact || got.KeyFingerprint == "" || got.Problem != "" {
		t.Errorf("verification of a fresh server: %+v", got)
	}
	apptest.WantStatus(t, s.Do(t, "GET", "/api/v1/audit/verify", "", nil), http.StatusUnauthorized)

	user := apptest.Decode[struct {
		ID              string `json:"id"`
		InitialPassword string `json:"initial_password"`
	}](t, s.Do(t, "POST", "/api/v1/accounts", admin, map[string]string{"name": "carol"}), http.StatusCreated)
	tok := s.Login(t, "carol", user.InitialPassword).AccessToken
	apptest.WantStatus(t, s.Do(t, "POST", "/api/v1/me/password", tok,
		map[string]string{"current_password": user.InitialPassword, "new_password": "amber-granite-meadow-falcon-77"}), http.StatusNoContent)
	tok = s.Login(t, "carol", "amber-granite-meadow-falcon-77").AccessToken
	apptest.WantStatus(t, s.Do(t, "GET", "/api/v1/audit/verify", tok, nil), http.StatusForbidden)
}

// testUser is a signed-in account.
type testUser struct {
	ID, Name, Token string
}

// startWithAdmin starts a server whose admin has changed the generated
// password, and signs the admin in.
func startWithAdmin(t *testing.T) (*apptest.Server, testUser) {
	t.Helper()
	s := apptest.Start(t, apptest.FastHashing)
	t.Cleanup(s.Client.CloseIdleConnections)
	tok := s.Login(t, "admin", s.AdminPassword).AccessToken
	apptest.WantStatus(t, s.Do(t, "POST", "/api/v1/me/password", tok,
		map[string]string{"current_password": s.AdminPassword, "new_password": adminPassword}), http.StatusNoContent)
	admin := testUser{Name: "admin", Token: s.Login(t, "admin", adminPassword).AccessToken}
	admin.ID = apptest.Decode[struct{ ID string }](t, s.Do(t, "GET", "/api/v1/me", admin.Token, nil), http.StatusOK).ID
	return s, admin
}

const adminPassword = "violet-orbit-lantern-quarry-42"

// newUser creates an account as admin (an auditor when auditor is set:
// directly in the store, before the account's first request), changes
// its generated password and signs it in.
func newUser(t *testing.T, s *apptest.Server, admin testUser, name string, auditor bool) testUser {
	t.Helper()
	created := apptest.Decode[struct {
		ID              string `json:"id"`
		InitialPassword string `json:"initial_password"`
	}](t, s.Do(t, "POST", "/api/v1/accounts", admin.Token, map[string]string{"name": name}), http.StatusCreated)
	if auditor {
		s.MakeAuditor(t, created.ID)
	}
	first := s.Login(t, name, created.InitialPassword).AccessToken
	pw := "amber-granite-meadow-falcon-77"
	apptest.WantStatus(t, s.Do(t, "POST", "/api/v1/me/password", first,
		map[string]string{"current_password": created.InitialPassword, "new_password": pw}), http.StatusNoContent)
	return testUser{ID: created.ID, Name: name, Token: s.Login(t, name, pw).AccessToken}
}

// recordLine is a line of GET /api/v1/audit/records.
type recordLine struct {
	Type         string `json:"type"`
	Seq          uint64 `json:"seq"`
	Time         string `json:"time"`
	Actor        string `json:"actor"`
	ActorKind    string `json:"actor_kind"`
	Source       string `json:"source"`
	Action       string `json:"action"`
	TargetKind   string `json:"target_kind"`
	TargetDomain string `json:"target_domain"`
	TargetID     string `json:"target_id"`
	Outcome      string `json:"outcome"`
	Reason       string `json:"reason"`
	RequestID    string `json:"request_id"`
	PrevHash     string `json:"prev_hash"`
	Hash         string `json:"hash"`
}

// readRecords gets GET /api/v1/audit/records?query as who and decodes its
// lines; it fails the test unless the answer is 200 JSON lines.
func readRecords(t *testing.T, s *apptest.Server, who testUser, query string) ([]recordLine, apptest.Response) {
	t.Helper()
	res := s.Do(t, "GET", "/api/v1/audit/records?"+query, who.Token, nil)
	apptest.WantStatus(t, res, http.StatusOK)
	if ct := res.Header.Get("Content-Type"); ct != "application/x-ndjson" {
		t.Fatalf("Content-Type %q", ct)
	}
	var out []recordLine
	for _, line := range strings.Split(strings.TrimSuffix(string(res.Body), "\n"), "\n") {
		if line == "" {
			continue
		}
		var raw map[string]any
		if err := json.Unmarshal([]byte(line), &raw); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		keys := slices.Sorted(maps.Keys(raw))
		want := []string{"action", "actor", "actor_kind", "hash", "outcome", "prev_hash", "reason", "request_id", "seq",
			"source", "target_domain", "target_id", "target_kind", "time", "type"}
		if diff := cmp.Diff(want, keys); diff != "" {
			t.Fatalf("line fields (-want +got):\n%s", diff)
		}
		var r recordLine
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	return out, res
}

// checkLine recomputes a line's hash from its fields: the export holds
// exactly what the chain covers.
func checkLine(t *testing.T, l recordLine) {
	t.Helper()
	at, err := time.Parse(time.RFC3339Nano, l.Time)
	if err != nil {
		t.Fatalf("record %d time %q: %v", l.Seq, l.Time, err)
	}
	prev, err := hex.DecodeString(l.PrevHash)
	if err != nil {
		t.Fatal(err)
	}
	e := audit.Event{Time: at, Actor: l.Actor, ActorKind: l.ActorKind, Source: l.Source, Action: l.Action,
		TargetKind: l.TargetKind, TargetDomain: l.TargetDomain, TargetID: l.TargetID, Outcome: l.Outcome,
		Reason: l.Reason, RequestID: l.RequestID}
	if got := hex.EncodeToString(audit.RecordHash(prev, l.Seq, e)); got != l.Hash || l.Type != "record" {
		t.Errorf("record %d: type %q, hash %s, recomputed %s", l.Seq, l.Type, l.Hash, got)
	}
}

// TestAuditRecords: an auditor reads the log as JSON lines, in pages; a
// read that returns records is recorded before it is answered (the next
// read starts with its record); one that returns nothing is not.
func TestAuditRecords(t *testing.T) {
	t.Parallel()
	s, admin := startWithAdmin(t)
	auditor := newUser(t, s, admin, "audra", true)
	apptest.WantStatus(t, s.Do(t, "POST", "/api/v1/domains", admin.Token, map[string]string{"name": "com.acme"}), http.StatusCreated)

	all, res := readRecords(t, s, auditor, "")
	if len(all) < 2 {
		t.Fatalf("%d records", len(all))
	}
	for i, l := range all {
		checkLine(t, l)
		if l.Seq != uint64(i+1) || (i > 0 && l.PrevHash != all[i-1].Hash) {
			t.Errorf("line %d: seq %d, prev %s, want the chain from 1", i, l.Seq, l.PrevHash)
		}
	}
	last := all[len(all)-1]
	if got := res.Header.Get(app.AuditHeadHeader); got != strconv.FormatUint(last.Seq, 10) {
		t.Errorf("%s: %q, want %d", app.AuditHeadHeader, got, last.Seq)
	}
	next, _ := readRecords(t, s, auditor, "after_seq="+strconv.FormatUint(last.Seq, 10))
	if len(next) != 1 || next[0].Action != "audit.export" || next[0].ActorKind != "user" ||
		next[0].Reason != "after_seq=0 limit=1000" || next[0].RequestID != res.Header.Get("X-Request-Id") {
		t.Fatalf("after the first read: %+v, want its audit.export record", next)
	}
	// That read showed the auditor only their own read, so it is not
	// recorded: a tail polling at the end adds nothing.
	after := "after_seq=" + strconv.FormatUint(next[0].Seq, 10)
	for range 2 {
		if empty, res := readRecords(t, s, auditor, after); len(empty) != 0 || res.Header.Get(app.AuditHeadHeader) != strconv.FormatUint(next[0].Seq, 10) {
			t.Errorf("a read at the end: %+v, head %s; want nothing, and no record of it", empty, res.Header.Get(app.AuditHeadHeader))
		}
	}
	if !slices.ContainsFunc(all, func(l recordLine) bool { return l.Action == "domain.create" && l.TargetID == "com.acme" }) {
		t.Error("no domain.create record")
	}

	// Pages: after_seq and limit.
	page, _ := readRecords(t, s, auditor, "after_seq=1&limit=2")
	if len(page) != 2 || page[0].Seq != 2 || page[1].Seq != 3 {
		t.Errorf("after_seq=1&limit=2: %+v", page)
	}
	// since: nothing from the future; everything from the past.
	if got, _ := readRecords(t, s, auditor, "since="+url.QueryEscape(time.Now().Add(time.Hour).Format(time.RFC3339))); len(got) != 0 {
		t.Errorf("since in an hour: %d records", len(got))
	}
	got, _ := readRecords(t, s, auditor, "since=2000-01-01T00:00:00Z&limit=10000")
	if len(got) < len(all)+1 || got[len(got)-1].Action != "audit.export" {
		t.Errorf("since 2000: %d records, the last %+v", len(got), got[len(got)-1])
	}
}

// TestAuditRecordsBadQuery: bad parameters are refused with 400 and a
// message that names the problem, before anything is read or recorded.
func TestAuditRecordsBadQuery(t *testing.T) {
	t.Parallel()
	s, admin := startWithAdmin(t)
	auditor := newUser(t, s, admin, "audra", true)
	for _, tc := range []struct{ query, msg string }{
		{"after_seq=-1", "after_seq must be a whole number"},
		{"after_seq=x", "after_seq must be a whole number"},
		{"after_seq=", "after_seq must be a whole number"},
		{"since=yesterday", "since must be an RFC 3339 time"},
		{"since=2025-01-02", "since must be an RFC 3339 time"},
		{"limit=0", "limit must be a whole number from 1 to 10000"},
		{"limit=10001", "limit must be a whole number from 1 to 10000"},
		{"limit=ten", "limit must be a whole number from 1 to 10000"},
		{"limit=1&limit=2", `query parameter "limit" is given 2 times`},
		{"after=3", `unknown query parameter "after"`},
	} {
		msg := apptest.WantError(t, s.Do(t, "GET", "/api/v1/audit/records?"+tc.query, auditor.Token, nil),
			http.StatusBadRequest, "invalid_request")
		if !strings.Contains(msg, tc.msg) {
			t.Errorf("%s: %q, want it to say %q", tc.query, msg, tc.msg)
		}
	}
	for _, r := range s.AuditRecords(t, store.AuditQuery{}) {
		if r.Action == "audit.export" {
			t.Errorf("a refused read was recorded as an export: %+v", r)
		}
	}
}

// TestAuditReadsNeedAuditor: the admin role is not enough to read the log
// or resolve pseudonyms, and each refusal is itself recorded.
func TestAuditReadsNeedAuditor(t *testing.T) {
	t.Parallel()
	s, admin := startWithAdmin(t)
	user := newUser(t, s, admin, "carol", false)
	pseudonym := "p-" + strings.Repeat("ab", 32)
	for _, who := range []testUser{admin, user} {
		apptest.WantError(t, s.Do(t, "GET", "/api/v1/audit/records", who.Token, nil), http.StatusForbidden, "forbidden")
		apptest.WantError(t, s.Do(t, "GET", "/api/v1/audit/pseudonyms/"+pseudonym, who.Token, nil), http.StatusForbidden, "forbidden")
	}
	apptest.WantStatus(t, s.Do(t, "GET", "/api/v1/audit/records", "", nil), http.StatusUnauthorized)

	// Refusals are queued (Submit): read once all four are committed.
	s.WaitAuditRecords(t, "the 4 refusals", func(recs []store.AuditRecord) bool {
		return apptest.CountAudit(recs, func(r store.AuditRecord) bool { return r.Action == "access.deny" }) >= 4
	})
	denials := readDenials(t, s)
	var want []string
	for _, who := range []testUser{admin, user} {
		want = append(want,
			who.ID+" route GET /api/v1/audit/records denied forbidden",
			who.ID+" route GET /api/v1/audit/pseudonyms/{pseudonym} denied forbidden")
	}
	if diff := cmp.Diff(want, denials); diff != "" {
		t.Errorf("access.deny records (-want +got):\n%s", diff)
	}
}

// readDenials returns the access.deny records as "subject kind id outcome
// reason" lines.
func readDenials(t *testing.T, s *apptest.Server) []string {
	t.Helper()
	var denials []string
	s.InTx(t, func(ctx context.Context, tx store.Tx) error {
		recs, err := tx.Audit().FindAuditRecords(ctx, store.AuditQuery{Limit: 1000})
		if err != nil {
			return err
		}
		for _, r := range recs {
			if r.Action != "access.deny" {
				continue
			}
			who, err := tx.Audit().SubjectByPseudonym(ctx, r.Actor)
			if err != nil {
				return err
			}
			denials = append(denials, who+" "+r.TargetKind+" "+r.TargetID+" "+r.Outcome+" "+r.Reason)
		}
		return nil
	})
	return denials
}

// TestAuditResolvePseudonym: an auditor learns whom a pseudonym stands for
// while the subject's secret exists; each lookup is recorded with its
// outcome; unknown, malformed and erased pseudonyms get the same 404.
func TestAuditResolvePseudonym(t *testing.T) {
	t.Parallel()
	s, admin := startWithAdmin(t)
	auditor := newUser(t, s, admin, "audra", true)
	carol := newUser(t, s, admin, "carol", false)
	sa := apptest.Decode[struct{ ID string }](t, s.Do(t, "POST", "/api/v1/service-accounts", carol.Token,
		map[string]string{"name": "carols-bot"}), http.StatusCreated)
	// Records that name admin and carol (actors) and the service account
	// (the target of its creation, or of this denial at least).
	apptest.WantStatus(t, s.Do(t, "POST", "/api/v1/domains", admin.Token, map[string]string{"name": "com.acme"}), http.StatusCreated)
	apptest.WantStatus(t, s.Do(t, "GET", "/api/v1/audit/records", carol.Token, nil), http.StatusForbidden)

	pseudonyms := map[string]string{}
	s.InTx(t, func(ctx context.Context, tx store.Tx) error {
		for _, id := range []string{admin.ID, carol.ID, sa.ID} {
			p, err := s.App.Recorder().PseudonymOf(ctx, tx, id)
			if err != nil {
				return err
			}
			pseudonyms[id] = p
		}
		return nil
	})
	for _, want := range []app.ResolvedPseudonym{
		{Pseudonym: pseudonyms[admin.ID], SubjectID: admin.ID, Kind: "user", Name: "admin"},
		{Pseudonym: pseudonyms[carol.ID], SubjectID: carol.ID, Kind: "user", Name: "carol"},
		{Pseudonym: pseudonyms[sa.ID], SubjectID: sa.ID, Kind: "service-account", Name: "carols-bot"},
	} {
		got := apptest.Decode[app.ResolvedPseudonym](t, s.Do(t, "GET", "/api/v1/audit/pseudonyms/"+want.Pseudonym, auditor.Token, nil), http.StatusOK)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("resolve (-want +got):\n%s", diff)
		}
	}

	// Erase carol's secret (crypto-shredding): her pseudonym no longer
	// resolves, and answers like one that never existed.
	s.InTx(t, func(ctx context.Context, tx store.Tx) error { return s.App.Recorder().Erase(ctx, tx, carol.ID) })
	const notFound = "pseudonym not found (never existed, or its subject was erased)"
	for _, p := range []string{pseudonyms[carol.ID], "p-" + strings.Repeat("0", 64), "carol", "p-XYZ"} {
		msg := apptest.WantError(t, s.Do(t, "GET", "/api/v1/audit/pseudonyms/"+url.PathEscape(p), auditor.Token, nil), http.StatusNotFound, "not_found")
		if msg != notFound {
			t.Errorf("%s: %q", p, msg)
		}
	}

	var got []string
	for _, r := range s.AuditRecords(t, store.AuditQuery{}) {
		if r.Action == "pseudonym.resolve" {
			got = append(got, r.TargetKind+" "+r.TargetID+" "+r.Outcome+" "+r.Reason)
		}
	}
	want := []string{
		"pseudonym " + pseudonyms[admin.ID] + " success ",
		"pseudonym " + pseudonyms[carol.ID] + " success ",
		"pseudonym " + pseudonyms[sa.ID] + " success ",
		"pseudonym " + pseudonyms[carol.ID] + " failure ",
		"pseudonym p-" + strings.Repeat("0", 64) + " failure ",
		"pseudonym  failure malformed pseudonym",
		"pseudonym  failure malformed pseudonym",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("pseudonym.resolve records (-want +got):\n%s", diff)
	}
}

// TestBadTokenFlood: anyone can send bad tokens; a flood of them is
// refused (401) without filling the audit queue or the log: a few are
// recorded, the rest counted, and the API keeps answering others.
func TestBadTokenFlood(t *testing.T) {
	t.Parallel()
	s, admin := startWithAdmin(t)
	for range 300 {
		apptest.WantStatus(t, s.Do(t, "GET", "/api/v1/me", "not-a-token", nil), http.StatusUnauthorized)
	}
	apptest.WantStatus(t, s.Do(t, "GET", "/api/v1/me", admin.Token, nil), http.StatusOK)
	if st := s.App.Recorder().Stats(); st.Suppressed < 250 {
		t.Errorf("%d refusals suppressed, want most of the 300", st.Suppressed)
	}
	isRefusal := func(r store.AuditRecord) bool { return r.Action == "authn.refuse" }
	recs := s.WaitAuditRecords(t, "an authn.refuse record", func(recs []store.AuditRecord) bool {
		return apptest.CountAudit(recs, isRefusal) >= 1
	})
	if recorded := apptest.CountAudit(recs, isRefusal); recorded > 50 {
		t.Fatalf("%d authn.refuse records for 300 bad tokens from one address", recorded)
	}
}
