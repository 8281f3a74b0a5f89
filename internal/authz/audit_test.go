package authz

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/rampart-ml/rampart/internal/access"
	"github.com/rampart-ml/rampart/internal/audit"
	"github.com/rampart-ml/rampart/internal/httpapi"
	"github.com/rampart-ml/rampart/internal/principal"
	"github.com/rampart-ml/rampart/internal/secrets"
	"github.com/rampart-ml/rampart/internal/store"
)

// newRecorder returns an audit recorder writing to st.
func newRecorder(t *testing.T, st store.Store) *audit.Recorder {
	t.Helper()
	sealer, err := secrets.New(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	rec, err := audit.NewRecorder(audit.RecorderOptions{Store: st, Sealer: sealer, SourceKey: bytes.Repeat([]byte{9}, 32)})
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

// records returns every audit record in st.
func records(t *testing.T, st store.Store) []store.AuditRecord {
	t.Helper()
	var out []store.AuditRecord
	write(t, st, func(ctx context.Context, tx store.Tx) error {
		var err error
		out, err = tx.Audit().AuditRecords(ctx, 0, 10_000)
		return err
	})
	return out
}

// failingStore is a real store whose audit log refuses every append.
type failingStore struct{ store.Store }

var errAuditDisk = errors.New("audit disk full")

func (s failingStore) InTx(ctx context.Context, fn func(tx store.Tx) error) error {
	return s.Store.InTx(ctx, func(tx store.Tx) error { return fn(failingTx{tx}) })
}

type failingTx struct{ store.Tx }

func (f failingTx) Audit() store.Audit { return failingAudit{f.Tx.Audit()} }

type failingAudit struct{ store.Audit }

func (failingAudit) AppendAuditRecord(context.Context, store.AuditRecord) error { return errAuditDisk }

// TestRequireRecordsDenials: every denial is an access.deny record naming
// the target and the privilege wanted, with the refused principal (not
// the request's) as the actor; allowed calls write nothing.
func TestRequireRecordsDenials(t *testing.T) {
	t.Parallel()
	st := openStore(t)
	write(t, st, addDomain("com.acme"))
	write(t, st, addGrant("g1", "alice", "com.acme", "read"))
	rec := newRecorder(t, st)
	svc := New(Options{Store: st, Cache: NewCache(st, nil), Recorder: rec})
	ctx := principal.WithContext(context.Background(), principal.Principal{ID: "someone-else", Kind: principal.User})
	alice := principal.Principal{ID: "alice", Kind: principal.User}
	sa := principal.Principal{ID: "sa-1", Kind: principal.ServiceAccount}

	for _, tc := range []struct {
		p    principal.Principal
		t    access.Target
		want access.Privilege
	}{
		{alice, access.Target{Kind: access.Model, Domain: "com.acme", ID: "com.acme.m"}, access.Read}, // allowed
		{alice, access.Target{Kind: access.Model, Domain: "com.acme", ID: "com.acme.m"}, access.All},  // 403
		{sa, access.Target{Kind: access.Flow, Domain: "com.acme", ID: "f1"}, access.Infer},            // 404
		{principal.Principal{}, access.Target{Kind: access.Notebook, ID: "n\nforged line"}, access.Infer},
		{alice, access.Target{Kind: "Bad Kind", Domain: "com.acme"}, access.Read},
	} {
		_ = svc.Require(ctx, tc.p, tc.t, tc.want)
	}

	pseudonym := func(id string) string {
		var p string
		write(t, st, func(ctx context.Context, tx store.Tx) error {
			var err error
			p, err = rec.PseudonymOf(ctx, tx, id)
			return err
		})
		return p
	}
	type row struct{ Actor, ActorKind, Action, TargetKind, TargetDomain, TargetID, Outcome, Reason string }
	var got []row
	for _, r := range records(t, st) {
		got = append(got, row{r.Actor, r.ActorKind, r.Action, r.TargetKind, r.TargetDomain, r.TargetID, r.Outcome, r.Reason})
	}
	want := []row{
		{pseudonym("alice"), "user", "access.deny", "model", "com.acme", "com.acme.m", "denied", "privilege=all"},
		{pseudonym("sa-1"), "service-account", "access.deny", "flow", "com.acme", "f1", "denied", "privilege=infer"},
		{"anonymous", "anonymous", "access.deny", "notebook", "", `"n\nforged line"`, "denied", "privilege=infer"},
		{pseudonym("alice"), "user", "access.deny", "invalid", "com.acme", "", "denied", "privilege=read"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("records (-want +got):\n%s", diff)
	}
}

// TestRequireFailsClosed: a denial that cannot be recorded is answered
// with the audit error (503), not the 403/404; an allowed call needs no
// record. Without a recorder every denial is refused the same way.
func TestRequireFailsClosed(t *testing.T) {
	t.Parallel()
	st := openStore(t)
	write(t, st, addDomain("com.acme"))
	write(t, st, addGrant("g1", "alice", "com.acme", "read"))
	broken := failingStore{st}
	alice := principal.Principal{ID: "alice", Kind: principal.User}
	target := access.Target{Kind: access.Model, Domain: "com.acme", ID: "com.acme.m"}
	for name, svc := range map[string]*Service{
		"failing store": New(Options{Store: broken, Cache: NewCache(st, nil), Recorder: newRecorder(t, broken)}),
		"no recorder":   New(Options{Store: st, Cache: NewCache(st, nil)}),
	} {
		if err := svc.Require(context.Background(), alice, target, access.Read); err != nil {
			t.Errorf("%s: allowed Require = %v", name, err)
		}
		err := svc.Require(context.Background(), alice, target, access.All)
		var he *httpapi.HTTPError
		if !errors.Is(err, audit.ErrWrite) || errors.As(err, &he) {
			t.Errorf("%s: denied Require = %v, want the audit error", name, err)
		}
		var se httpapi.StatusError
		if !errors.As(err, &se) {
			t.Fatalf("%s: %v is no StatusError", name, err)
		}
		if status, code, _ := se.HTTPStatus(); status != http.StatusServiceUnavailable || code != "audit_unavailable" {
			t.Errorf("%s: answers %d %s, want 503 audit_unavailable", name, status, code)
		}
	}
}

// adminAuth authenticates every request as an admin.
type adminAuth struct{}

func (adminAuth) Authenticate(*http.Request) (principal.Principal, bool, error) {
	return principal.Principal{ID: "root", Kind: principal.User, Admin: true}, true, nil
}

// passAuditor lets every request through the HTTP audit step.
type passAuditor struct{}

func (passAuditor) AuditRequest(*http.Request, principal.Principal, *httpapi.Route) error { return nil }
func (passAuditor) AuditRefusal(*http.Request, principal.Principal, *httpapi.Route, error) error {
	return nil
}

// TestChangesFailClosed: when the audit log refuses the record, the
// domain or grant change is rolled back and the API answers 503
// audit_unavailable.
func TestChangesFailClosed(t *testing.T) {
	t.Parallel()
	st := openStore(t)
	write(t, st, addDomain("com.acme"))
	write(t, st, addDomain("com.spare")) // no grant names it: it could be deleted
	write(t, st, addGrant("g1", "ops", "com.acme", "read"))
	broken := failingStore{st}
	for name, svc := range map[string]*Service{
		"failing store": New(Options{Store: broken, Cache: NewCache(st, nil), Recorder: newRecorder(t, broken)}),
		"no recorder":   New(Options{Store: st, Cache: NewCache(st, nil)}),
	} {
		api := httpapi.New(httpapi.Options{Logger: slog.New(slog.DiscardHandler), MaxRequestBytes: 1 << 20,
			Authenticators: []httpapi.Authenticator{adminAuth{}}, Authorizer: httpapi.RoleAuthorizer{}, Auditor: passAuditor{}})
		svc.Mount(api)
		srv := httptest.NewServer(api.Handler())
		t.Cleanup(srv.Close)
		for _, req := range []struct{ method, path, body string }{
			{"POST", "/api/v1/domains", `{"name":"com.new"}`},
			{"DELETE", "/api/v1/domains/com.spare", ""},
			{"POST", "/api/v1/grants", `{"subject_kind":"group","subject_id":"ml-team","domain":"com.acme","privilege":"read"}`},
			{"POST", "/api/v1/grants", `{"subject_kind":"group","subject_id":"ml-team","domain":"*","privilege":"infer"}`},
			{"DELETE", "/api/v1/grants/g1", ""},
		} {
			r, err := http.NewRequest(req.method, srv.URL+req.path, strings.NewReader(req.body))
			if err != nil {
				t.Fatal(err)
			}
			res, err := srv.Client().Do(r)
			if err != nil {
				t.Fatal(err)
			}
			var body struct{ Code string }
			_ = json.NewDecoder(res.Body).Decode(&body)
			res.Body.Close()
			if res.StatusCode != http.StatusServiceUnavailable || body.Code != "audit_unavailable" {
				t.Errorf("%s: %s %s = %d %q, want 503 audit_unavailable", name, req.method, req.path, res.StatusCode, body.Code)
			}
		}
	}
	// Nothing changed: the two domains, the one grant, no record.
	write(t, st, func(ctx context.Context, tx store.Tx) error {
		ds, err := tx.Domains().ListDomains(ctx)
		if err != nil {
			return err
		}
		gs, err := tx.Grants().ListGrants(ctx)
		if err != nil {
			return err
		}
		if len(ds) != 2 || len(gs) != 1 || gs[0].ID != "g1" {
			t.Errorf("after refused changes: domains %+v, grants %+v", ds, gs)
		}
		return nil
	})
	if rs := records(t, st); len(rs) != 0 {
		t.Errorf("records were written: %+v", rs)
	}
}

// TestAuditText: client text is recorded as it is when safe, otherwise
// quoted and cut, and always passes the audit log's validation.
func TestAuditText(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"com.acme", "com.acme"},
		{"naïve", "naïve"},
		{"a\nb", `"a\nb"`},
		{"x\u202ey", `"x\u202ey"`},
		{"\xff", `"\xff"`},
		{strings.Repeat("a", 20), `"` + strings.Repeat("a", 9)},
	} {
		got := auditText(tc.in, 10)
		if got != tc.want {
			t.Errorf("auditText(%q) = %q, want %q", tc.in, got, tc.want)
		}
		e := audit.Event{Time: time.Now(), Actor: "anonymous", ActorKind: "anonymous", Action: "x", TargetKind: "k", TargetID: got, Outcome: "denied"}
		if err := e.Validate(); err != nil {
			t.Errorf("auditText(%q) = %q: %v", tc.in, got, err)
		}
	}
}
