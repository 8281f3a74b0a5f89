package services

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/rampart-ml/rampart/internal/audit"
	"github.com/rampart-ml/rampart/internal/authz"
	"github.com/rampart-ml/rampart/internal/principal"
	"github.com/rampart-ml/rampart/internal/secrets"
	"github.com/rampart-ml/rampart/internal/store"
	"github.com/rampart-ml/rampart/internal/store/sqlite"
)

// recordingController is the no-op Controller of the tests: it only
// remembers which services it was told about.
type recordingController struct {
	mu    sync.Mutex
	names []string
}

func (c *recordingController) Reconcile(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.names = append(c.names, name)
}

func (c *recordingController) take() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.names
	c.names = nil
	return out
}

type harness struct {
	st   store.Store
	rec  *audit.Recorder
	api  *API
	ctrl *recordingController
	rep  *Reporter
}

// newHarness opens a store with the service "svc" (created, in domain
// org.ops, deploying com.acme.m 1.0) and the API and Reporter on it.
func newHarness(t *testing.T) *harness {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "rampart.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	sealer, err := secrets.New(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	rec, err := audit.NewRecorder(audit.RecorderOptions{Store: st, Sealer: sealer, SourceKey: bytes.Repeat([]byte{9}, 32)})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC)
	err = st.InTx(ctx, func(tx store.Tx) error {
		for _, d := range []string{"com.acme", "org.ops"} {
			if err := tx.Domains().CreateDomain(ctx, store.Domain{Name: d, CreatedAt: now}); err != nil {
				return err
			}
		}
		if err := tx.Models().CreateModel(ctx, store.Model{ID: "com.acme.m", Domain: "com.acme", CreatedAt: now}); err != nil {
			return err
		}
		if err := tx.Models().CreateModelVersion(ctx, store.ModelVersion{ModelID: "com.acme.m", Version: "1.0",
			State: store.VersionActive, ModelFile: "model.onnx", SubjectDigest: strings.Repeat("ab", 32)}); err != nil {
			return err
		}
		return tx.Services().CreateService(ctx, store.Service{Name: "svc", Domain: "org.ops", ModelID: "com.acme.m",
			ModelVersion: "1.0", Spec: DefaultSpec(), DesiredState: store.ServiceStopped, State: string(Created),
			CreatedAt: now, UpdatedAt: now})
	})
	if err != nil {
		t.Fatal(err)
	}
	ctrl := &recordingController{}
	az := authz.New(authz.Options{Store: st, Cache: authz.NewCache(st, nil), Recorder: rec})
	return &harness{
		st: st, rec: rec, ctrl: ctrl,
		api: NewAPI(Options{Store: st, Authz: az, Recorder: rec, Controller: ctrl}),
		rep: NewReporter(ReporterOptions{Store: st, Recorder: rec}),
	}
}

// call runs a handler as the admin, as the router would.
func (h *harness) call(t *testing.T, fn func(http.ResponseWriter, *http.Request) error, method, body string) error {
	t.Helper()
	r := httptest.NewRequest(method, "/api/v1/services/svc", strings.NewReader(body))
	r.SetPathValue("name", "svc")
	r = r.WithContext(principal.WithContext(r.Context(), principal.Principal{ID: "id-admin", Kind: "user", Admin: true}))
	return fn(httptest.NewRecorder(), r)
}

func (h *harness) state(t *testing.T) string {
	t.Helper()
	var s store.Service
	if err := h.st.InTx(context.Background(), func(tx store.Tx) error {
		var err error
		s, err = tx.Services().ServiceByName(context.Background(), "svc")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return s.DesiredState + "/" + s.State + "/" + s.StateReason
}

// The controller hears of every committed change, and of nothing else.
func TestControllerToldOfChanges(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	steps := []struct {
		name    string
		fn      func(http.ResponseWriter, *http.Request) error
		method  string
		body    string
		told    bool
		wantErr bool
	}{
		{"start", h.api.start, "POST", "", true, false},
		{"start again", h.api.start, "POST", "", false, false},
		{"delete while starting", h.api.delete, "DELETE", "", false, true},
		{"scale", h.api.scale, "POST", `{"replicas":2}`, true, false},
		{"scale to the same", h.api.scale, "POST", `{"replicas":2}`, false, false},
		{"stop", h.api.stop, "POST", "", true, false},
		{"stop again", h.api.stop, "POST", "", false, false},
	}
	for _, st := range steps {
		err := h.call(t, st.fn, st.method, st.body)
		if (err != nil) != st.wantErr {
			t.Fatalf("%s: error %v, want error %v", st.name, err, st.wantErr)
		}
		var want []string
		if st.told {
			want = []string{"svc"}
		}
		if diff := cmp.Diff(want, h.ctrl.take()); diff != "" {
			t.Errorf("%s: Reconcile calls (-want +got):\n%s", st.name, diff)
		}
	}
	if _, err := h.rep.Report(context.Background(), "svc", Down, ""); err != nil {
		t.Fatal(err)
	}
	if err := h.call(t, h.api.delete, "DELETE", ""); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"svc"}, h.ctrl.take()); diff != "" {
		t.Errorf("delete: Reconcile calls (-want +got):\n%s", diff)
	}
}

func TestReporter(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	h := newHarness(t)
	if err := h.call(t, h.api.start, "POST", ""); err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("x", maxReasonLen+50)
	for _, tc := range []struct {
		name   string
		event  Event
		reason string
		want   string // desired/state/reason afterwards
		err    error
	}{
		{"healthy", Up, "ignored", "running/ready/", nil},
		{"up again is stale", Up, "", "running/ready/", ErrTransition},
		{"start is no report", Start, "", "running/ready/", ErrTransition},
		{"crash", Fail, "worker exited: signal 9", "running/failed/worker exited: signal 9", nil},
		{"down after failing is stale", Down, "", "running/failed/worker exited: signal 9", ErrTransition},
		{"fails again, long reason", Fail, long, "running/failed/" + long[:maxReasonLen], nil},
		{"a rune cut in two is dropped", Fail, strings.Repeat("x", maxReasonLen-1) + "é", "running/failed/" + long[:maxReasonLen-1], nil},
	} {
		_, err := h.rep.Report(ctx, "svc", tc.event, tc.reason)
		if !errors.Is(err, tc.err) || (tc.err == nil) != (err == nil) {
			t.Errorf("%s: Report = %v, want %v", tc.name, err, tc.err)
		}
		if got := h.state(t); got != tc.want {
			t.Errorf("%s: state %q, want %q", tc.name, got, tc.want)
		}
	}
	if _, err := h.rep.Report(ctx, "nope", Fail, "x"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Report on an unknown service = %v, want ErrNotFound", err)
	}
	if _, err := NewReporter(ReporterOptions{Store: h.st}).Report(ctx, "svc", Fail, "x"); !errors.Is(err, audit.ErrWrite) {
		t.Errorf("Report of a failure without a recorder = %v, want audit.ErrWrite", err)
	}

	var recs []store.AuditRecord
	if err := h.st.InTx(ctx, func(tx store.Tx) error {
		var err error
		recs, err = tx.Audit().FindAuditRecords(ctx, store.AuditQuery{Limit: 100})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	var fails []string
	for _, r := range recs {
		if r.Action == ActionFail {
			if r.Actor != "supervisor" || r.ActorKind != audit.ActorSystem || r.Outcome != audit.OutcomeFailure ||
				r.TargetKind != "model-service" || r.TargetID != "svc" || r.TargetDomain != "org.ops" {
				t.Errorf("failure record = %+v", r)
			}
			fails = append(fails, r.Reason)
		}
	}
	if !slices.Equal(fails, []string{"worker exited: signal 9", long[:maxReasonLen], long[:maxReasonLen-1]}) {
		t.Errorf("failure records' reasons = %q", fails)
	}
}
