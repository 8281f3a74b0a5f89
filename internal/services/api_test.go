package services_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/rampart-ml/rampart/internal/app"
	"github.com/rampart-ml/rampart/internal/app/apptest"
	"github.com/rampart-ml/rampart/internal/services"
	"github.com/rampart-ml/rampart/internal/store"
)

const (
	adminPassword = "violet-orbit-lantern-quarry-42"
	userPassword  = "amber-granite-meadow-falcon-77"
)

// startWithAdmin starts a server whose admin has changed the generated
// password, and returns the admin's token.
func startWithAdmin(t *testing.T) (*apptest.Server, string) {
	t.Helper()
	s := apptest.StartWith(t, []app.Option{app.WithoutRuntime()}, apptest.FastHashing)
	t.Cleanup(s.Client.CloseIdleConnections)
	tok := s.Login(t, "admin", s.AdminPassword).AccessToken
	apptest.WantStatus(t, s.Do(t, "POST", "/api/v1/me/password", tok,
		map[string]string{"current_password": s.AdminPassword, "new_password": adminPassword}), http.StatusNoContent)
	return s, s.Login(t, "admin", adminPassword).AccessToken
}

// newUser creates a plain account with grants (domain → privilege) and
// returns its token.
func newUser(t *testing.T, s *apptest.Server, admin, name string, grants map[string]string) string {
	t.Helper()
	created := apptest.Decode[struct {
		ID              string `json:"id"`
		InitialPassword string `json:"initial_password"`
	}](t, s.Do(t, "POST", "/api/v1/accounts", admin, map[string]string{"name": name}), http.StatusCreated)
	for domain, priv := range grants {
		apptest.WantStatus(t, s.Do(t, "POST", "/api/v1/grants", admin, map[string]string{
			"subject_kind": "user", "subject_id": created.ID, "domain": domain, "privilege": priv}), http.StatusCreated)
	}
	first := s.Login(t, name, created.InitialPassword).AccessToken
	apptest.WantStatus(t, s.Do(t, "POST", "/api/v1/me/password", first,
		map[string]string{"current_password": created.InitialPassword, "new_password": userPassword}), http.StatusNoContent)
	return s.Login(t, name, userPassword).AccessToken
}

// addModel registers com.acme.m with an active 1.0 and a quarantined 2.0
// straight in the store: onboarding is the registry's to test.
func addModel(t *testing.T, s *apptest.Server) {
	t.Helper()
	s.InTx(t, func(ctx context.Context, tx store.Tx) error {
		if err := tx.Models().CreateModel(ctx, store.Model{ID: "com.acme.m", Domain: "com.acme", Title: "m"}); err != nil {
			return err
		}
		for _, v := range []string{"1.0", "2.0"} {
			if err := tx.Models().CreateModelVersion(ctx, store.ModelVersion{
				ModelID: "com.acme.m", Version: v, State: store.VersionActive, ModelFile: "model.onnx",
				SubjectDigest: strings.Repeat("ab", 32), Metadata: "{}",
			}); err != nil {
				return err
			}
		}
		return tx.Models().SetModelVersionState(ctx, "com.acme.m", "2.0", store.VersionQuarantined, "digest mismatch")
	})
}

func createBody(name string) map[string]any {
	return map[string]any{"name": name, "domain": "org.ops", "model_id": "com.acme.m", "model_version": "1.0"}
}

func with(m map[string]any, k string, v any) map[string]any {
	out := map[string]any{}
	for k0, v0 := range m {
		out[k0] = v0
	}
	out[k] = v
	return out
}

// One server for the whole story: starting one is the slow part.
func TestServicesAPI(t *testing.T) {
	t.Parallel()
	s, admin := startWithAdmin(t)
	for _, d := range []string{"com.acme", "org.ops"} {
		apptest.WantStatus(t, s.Do(t, "POST", "/api/v1/domains", admin, map[string]string{"name": d}), http.StatusCreated)
	}
	addModel(t, s)
	alice := newUser(t, s, admin, "alice", map[string]string{"org.ops": "all", "com.acme": "read"})
	bob := newUser(t, s, admin, "bob", map[string]string{"org.ops": "all"})      // may not read the model
	carol := newUser(t, s, admin, "carol", map[string]string{"org.ops": "read"}) // may only look
	mallory := newUser(t, s, admin, "mallory", nil)

	// ---- create ----
	got := apptest.Decode[services.Service](t, s.Do(t, "POST", "/api/v1/services", alice, createBody("ocr")), http.StatusCreated)
	want := services.Service{
		Name: "ocr", Domain: "org.ops", ModelID: "com.acme.m", ModelVersion: "1.0", Replicas: 1,
		Limits:    services.Limits{MemoryBytes: services.DefaultMemoryBytes, Threads: 1, MaxConcurrent: 4},
		TimeoutMS: services.DefaultTimeoutMS, DesiredState: "stopped", State: "created",
	}
	ignoreTimes := cmp.FilterPath(func(p cmp.Path) bool {
		n := p.Last().String()
		return n == ".CreatedAt" || n == ".UpdatedAt"
	}, cmp.Ignore())
	if diff := cmp.Diff(want, got, ignoreTimes); diff != "" {
		t.Errorf("created service (-want +got):\n%s", diff)
	}
	limits := map[string]any{"memory_bytes": 128 << 20, "threads": 2, "max_concurrent": 8}
	got = apptest.Decode[services.Service](t, s.Do(t, "POST", "/api/v1/services", alice,
		with(with(with(createBody("ocr-0"), "replicas", 0), "limits", limits), "timeout_ms", 500)), http.StatusCreated)
	if got.Replicas != 0 || got.Limits != (services.Limits{MemoryBytes: 128 << 20, Threads: 2, MaxConcurrent: 8}) || got.TimeoutMS != 500 {
		t.Errorf("service with explicit limits = %+v", got)
	}

	for _, tc := range []struct {
		name   string
		token  string
		body   map[string]any
		status int
		code   string
	}{
		{"upper-case name", alice, createBody("OCR"), 400, "invalid_name"},
		{"leading dash", alice, createBody("-ocr"), 400, "invalid_name"},
		{"underscore", alice, createBody("o_cr"), 400, "invalid_name"},
		{"too long", alice, createBody(strings.Repeat("a", 64)), 400, "invalid_name"},
		{"empty name", alice, createBody(""), 400, "invalid_name"},
		{"bad domain", alice, with(createBody("x"), "domain", "Org..ops"), 400, "invalid_domain"},
		{"no domain", alice, with(createBody("x"), "domain", ""), 400, "invalid_domain"},
		{"bad model id", alice, with(createBody("x"), "model_id", "com.acme.M!"), 400, "invalid_model_id"},
		{"no version", alice, with(createBody("x"), "model_version", ""), 400, "invalid_version"},
		{"too many replicas", alice, with(createBody("x"), "replicas", 65), 400, "invalid_limits"},
		{"negative replicas", alice, with(createBody("x"), "replicas", -1), 400, "invalid_limits"},
		{"tiny memory", alice, with(createBody("x"), "limits", map[string]any{"memory_bytes": 1}), 400, "invalid_limits"},
		{"zero threads", alice, with(createBody("x"), "limits", map[string]any{"threads": 0}), 400, "invalid_limits"},
		{"zero timeout", alice, with(createBody("x"), "timeout_ms", 0), 400, "invalid_limits"},
		{"long timeout", alice, with(createBody("x"), "timeout_ms", services.MaxTimeoutMS+1), 400, "invalid_limits"},
		{"unknown field", alice, with(createBody("x"), "gpu", true), 400, ""},
		{"duplicate name", alice, createBody("ocr"), 409, "service_exists"},
		{"quarantined version", alice, with(createBody("x"), "model_version", "2.0"), 409, "version_quarantined"},
		{"unknown version", alice, with(createBody("x"), "model_version", "9.0"), 404, "not_found"},
		{"no read on the model", bob, createBody("x"), 404, "not_found"},
		{"read only on the domain", carol, createBody("x"), 403, "forbidden"},
		{"no grants", mallory, createBody("x"), 404, "not_found"},
		{"unknown domain (admin)", admin, with(createBody("x"), "domain", "org.nope"), 404, "not_found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := s.Do(t, "POST", "/api/v1/services", tc.token, tc.body)
			if tc.code == "" {
				apptest.WantStatus(t, res, tc.status)
				return
			}
			apptest.WantError(t, res, tc.status, tc.code)
		})
	}

	// ---- read ----
	names := func(token string) []string {
		out := []string{}
		for _, sv := range apptest.Decode[[]services.Service](t, s.Do(t, "GET", "/api/v1/services", token, nil), http.StatusOK) {
			out = append(out, sv.Name)
		}
		return out
	}
	for who, want := range map[string][]string{alice: {"ocr", "ocr-0"}, carol: {"ocr", "ocr-0"}, mallory: {}, admin: {"ocr", "ocr-0"}} {
		if diff := cmp.Diff(want, names(who)); diff != "" {
			t.Errorf("GET /api/v1/services (-want +got):\n%s", diff)
		}
	}
	apptest.WantStatus(t, s.Do(t, "GET", "/api/v1/services/ocr", carol, nil), http.StatusOK)
	apptest.WantError(t, s.Do(t, "GET", "/api/v1/services/ocr", mallory, nil), 404, "not_found")
	apptest.WantError(t, s.Do(t, "GET", "/api/v1/services/nope", alice, nil), 404, "not_found")
	apptest.WantError(t, s.Do(t, "GET", "/api/v1/services/NOPE", alice, nil), 404, "not_found")

	// ---- changes need all on the service's domain ----
	for _, op := range []string{"start", "stop"} {
		apptest.WantError(t, s.Do(t, "POST", "/api/v1/services/ocr/"+op, carol, nil), 403, "forbidden")
		apptest.WantError(t, s.Do(t, "POST", "/api/v1/services/ocr/"+op, mallory, nil), 404, "not_found")
	}
	apptest.WantError(t, s.Do(t, "POST", "/api/v1/services/ocr/scale", carol, map[string]int{"replicas": 2}), 403, "forbidden")
	apptest.WantError(t, s.Do(t, "DELETE", "/api/v1/services/ocr", carol, nil), 403, "forbidden")

	// ---- lifecycle ----
	state := func(res apptest.Response) string {
		t.Helper()
		sv := apptest.Decode[services.Service](t, res, http.StatusOK)
		return sv.DesiredState + "/" + sv.State
	}
	if got := state(s.Do(t, "POST", "/api/v1/services/ocr/start", alice, nil)); got != "running/starting" {
		t.Errorf("after start: %s, want running/starting", got)
	}
	if got := state(s.Do(t, "POST", "/api/v1/services/ocr/start", alice, nil)); got != "running/starting" {
		t.Errorf("after a second start: %s, want running/starting", got)
	}
	apptest.WantError(t, s.Do(t, "DELETE", "/api/v1/services/ocr", alice, nil), 409, "service_running")
	sv := apptest.Decode[services.Service](t, s.Do(t, "POST", "/api/v1/services/ocr/scale", alice, map[string]int{"replicas": 3}), http.StatusOK)
	if sv.Replicas != 3 {
		t.Errorf("after scale: replicas %d, want 3", sv.Replicas)
	}
	apptest.WantError(t, s.Do(t, "POST", "/api/v1/services/ocr/scale", alice, map[string]int{"replicas": 65}), 400, "invalid_limits")
	apptest.WantError(t, s.Do(t, "POST", "/api/v1/services/ocr/scale", alice, map[string]any{}), 400, "invalid_limits")
	if got := state(s.Do(t, "POST", "/api/v1/services/ocr/stop", alice, nil)); got != "stopped/stopping" {
		t.Errorf("after stop: %s, want stopped/stopping", got)
	}
	apptest.WantError(t, s.Do(t, "POST", "/api/v1/services/ocr/start", alice, nil), 409, "invalid_state")
	apptest.WantError(t, s.Do(t, "DELETE", "/api/v1/services/ocr", alice, nil), 409, "service_running")
	// The supervisor's part: the last worker has gone.
	s.InTx(t, func(ctx context.Context, tx store.Tx) error {
		return tx.Services().SetServiceState(ctx, "ocr", string(services.Stopped), "", sv.UpdatedAt)
	})
	apptest.WantStatus(t, s.Do(t, "DELETE", "/api/v1/services/ocr", alice, nil), http.StatusNoContent)
	apptest.WantError(t, s.Do(t, "GET", "/api/v1/services/ocr", alice, nil), 404, "not_found")
	apptest.WantError(t, s.Do(t, "DELETE", "/api/v1/services/ocr", alice, nil), 404, "not_found")

	// ---- every change was recorded, once ----
	recs := s.AuditRecords(t, store.AuditQuery{})
	for action, n := range map[string]int{
		services.ActionCreate: 1, services.ActionStart: 1, services.ActionScale: 1,
		services.ActionStop: 1, services.ActionDelete: 1,
	} {
		got := apptest.CountAudit(recs, func(r store.AuditRecord) bool {
			return r.Action == action && r.TargetKind == "model-service" && r.TargetDomain == "org.ops" &&
				r.TargetID == "ocr" && r.Outcome == "success"
		})
		if got != n {
			t.Errorf("%d %s records of ocr, want %d", got, action, n)
		}
	}
	// Refused requests are recorded as denials (by authz, through the queue).
	s.WaitAuditRecords(t, "the denied service requests", func(recs []store.AuditRecord) bool {
		return apptest.CountAudit(recs, func(r store.AuditRecord) bool {
			return r.Action == "access.deny" && r.TargetKind == "model-service"
		}) > 0
	})
}
