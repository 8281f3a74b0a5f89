package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/rampart-ml/rampart/internal/principal"
)

// syncBuffer is a log sink safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

type fixture struct {
	srv  *Server
	url  string
	logs *syncBuffer
}

func newFixture(t *testing.T, o Options, routes ...Route) *fixture {
	t.Helper()
	logs := &syncBuffer{}
	o.Logger = slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	if o.MaxRequestBytes == 0 {
		o.MaxRequestBytes = 1024
	}
	reg := prometheus.NewRegistry()
	o.Registerer, o.Gatherer = reg, reg
	s := New(o)
	for _, rt := range routes {
		s.Handle(rt)
	}
	ts := httptest.NewServer(s.Handler()) // a real loopback socket
	t.Cleanup(ts.Close)
	return &fixture{srv: s, url: ts.URL, logs: logs}
}

type response struct {
	status int
	header http.Header
	body   errorBody
	raw    string
}

func (f *fixture) do(t *testing.T, method, path string, body io.Reader, hdr map[string]string) response {
	t.Helper()
	req, err := http.NewRequest(method, f.url+path, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	r := response{status: res.StatusCode, header: res.Header, raw: string(raw)}
	_ = json.Unmarshal(raw, &r.body)
	return r
}

var requestIDPattern = regexp.MustCompile(`^[0-9a-f]{24}$`)

func TestHealthAndReadiness(t *testing.T) {
	t.Parallel()
	var storeErr error
	var mu sync.Mutex
	f := newFixture(t, Options{Ready: func(context.Context) error { mu.Lock(); defer mu.Unlock(); return storeErr }})

	r := f.do(t, "GET", "/healthz", nil, nil)
	if r.status != 200 || !strings.Contains(r.raw, `"ok"`) || r.header.Get("Content-Type") != "application/json" {
		t.Errorf("healthz: %d %q", r.status, r.raw)
	}
	if id := r.header.Get("X-Request-Id"); !requestIDPattern.MatchString(id) {
		t.Errorf("X-Request-Id = %q", id)
	}
	if r := f.do(t, "GET", "/readyz", nil, nil); r.status != 200 {
		t.Errorf("readyz with healthy store: %d", r.status)
	}

	mu.Lock()
	storeErr = errors.New("disk I/O error at /secret/path")
	mu.Unlock()
	r = f.do(t, "GET", "/readyz", nil, nil)
	if r.status != 503 || r.body.Code != "not_ready" || strings.Contains(r.raw, "/secret/path") {
		t.Errorf("readyz with broken store: %d %q (internal detail must not leak)", r.status, r.raw)
	}

	mu.Lock()
	storeErr = nil
	mu.Unlock()
	f.srv.SetDraining()
	if r := f.do(t, "GET", "/readyz", nil, nil); r.status != 503 {
		t.Errorf("readyz while draining: %d", r.status)
	}
	if r := f.do(t, "GET", "/healthz", nil, nil); r.status != 200 {
		t.Errorf("healthz while draining: %d", r.status)
	}
}

func TestUnmatchedRoutesAnswerJSON(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Options{})
	for _, tc := range []struct {
		method, path string
		status       int
		code         string
	}{
		{"GET", "/no/such/thing", 404, "not_found"},
		{"GET", "/../../etc/passwd", 404, "not_found"},
		{"POST", "/healthz", 405, "method_not_allowed"},
		{"DELETE", "/readyz", 405, "method_not_allowed"},
	} {
		r := f.do(t, tc.method, tc.path, nil, nil)
		if r.status != tc.status || r.body.Code != tc.code || r.header.Get("Content-Type") != "application/json" {
			t.Errorf("%s %s = %d %q, want %d %s", tc.method, tc.path, r.status, r.raw, tc.status, tc.code)
		}
		if strings.Contains(r.raw, "page not found") {
			t.Errorf("%s %s: plain-text mux body leaked: %q", tc.method, tc.path, r.raw)
		}
	}
	if r := f.do(t, "POST", "/healthz", nil, nil); !strings.Contains(r.header.Get("Allow"), "GET") {
		t.Errorf("405 without Allow header: %v", r.header)
	}
}

type authnFunc func(*http.Request) (principal.Principal, bool, error)

func (f authnFunc) Authenticate(r *http.Request) (principal.Principal, bool, error) { return f(r) }

type allow struct{}

func (allow) Authorize(context.Context, principal.Principal, *Route) error         { return nil }
func (allow) AuditRequest(*http.Request, principal.Principal, *Route) error        { return nil }
func (allow) AuditRefusal(*http.Request, principal.Principal, *Route, error) error { return nil }

// A test authenticator that accepts one fixed bearer token.
var bearerAlice = authnFunc(func(r *http.Request) (principal.Principal, bool, error) {
	if r.Header.Get("Authorization") == "Bearer alice-token" {
		return principal.Principal{ID: "alice", Kind: principal.User}, true, nil
	}
	return principal.Principal{}, false, nil
})

func whoami(w http.ResponseWriter, r *http.Request) error {
	p, ok := principal.FromContext(r.Context())
	if !ok {
		return errors.New("no principal")
	}
	WriteJSON(w, 200, map[string]string{"id": p.ID})
	return nil
}

func TestProtectedRoutesDenyByDefault(t *testing.T) {
	t.Parallel()
	route := Route{Pattern: "GET /api/v1/whoami", Handler: whoami}
	broken := authnFunc(func(*http.Request) (principal.Principal, bool, error) {
		return principal.Principal{}, false, errors.New("jwks fetch failed")
	})
	for _, tc := range []struct {
		name   string
		opts   Options
		header map[string]string
		status int
		code   string
	}{
		{"no authenticators", Options{}, map[string]string{"Authorization": "Bearer alice-token"}, 401, "unauthenticated"},
		{"no credentials", Options{Authenticators: []Authenticator{bearerAlice}, Authorizer: allow{}, Auditor: allow{}}, nil, 401, "unauthenticated"},
		{"wrong credentials", Options{Authenticators: []Authenticator{bearerAlice}, Authorizer: allow{}, Auditor: allow{}}, map[string]string{"Authorization": "Bearer mallory"}, 401, "unauthenticated"},
		{"forged identity headers", Options{Authenticators: []Authenticator{bearerAlice}, Authorizer: allow{}, Auditor: allow{}},
			map[string]string{"kubeflow-userid": "alice", "X-Remote-User": "alice", "X-Forwarded-User": "alice"}, 401, "unauthenticated"},
		{"authenticator failure", Options{Authenticators: []Authenticator{broken}}, map[string]string{"Authorization": "Bearer alice-token"}, 503, "authn_unavailable"},
		{"no authorizer", Options{Authenticators: []Authenticator{bearerAlice}, Auditor: allow{}}, map[string]string{"Authorization": "Bearer alice-token"}, 403, "forbidden"},
		// The refusal cannot be recorded without an auditor: still refused.
		{"no authorizer or auditor", Options{Authenticators: []Authenticator{bearerAlice}}, map[string]string{"Authorization": "Bearer alice-token"}, 503, "audit_unavailable"},
		{"no auditor", Options{Authenticators: []Authenticator{bearerAlice}, Authorizer: allow{}}, map[string]string{"Authorization": "Bearer alice-token"}, 503, "audit_unavailable"},
		{"all present", Options{Authenticators: []Authenticator{bearerAlice}, Authorizer: allow{}, Auditor: allow{}}, map[string]string{"Authorization": "Bearer alice-token"}, 200, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, tc.opts, route)
			r := f.do(t, "GET", "/api/v1/whoami", nil, tc.header)
			if r.status != tc.status || r.body.Code != tc.code {
				t.Fatalf("status %d %q, want %d %q", r.status, r.raw, tc.status, tc.code)
			}
			if tc.status == 401 && r.header.Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
			if tc.status == 200 && !strings.Contains(r.raw, `"alice"`) {
				t.Errorf("handler did not see the principal: %q", r.raw)
			}
			if strings.Contains(f.logs.String(), "alice-token") {
				t.Error("credentials written to the log")
			}
		})
	}
}

func TestPanicIsRecovered(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Options{},
		Route{Pattern: "GET /boom", Public: true, Handler: func(http.ResponseWriter, *http.Request) error { panic("kaboom") }},
		Route{Pattern: "GET /fail", Public: true, Handler: func(http.ResponseWriter, *http.Request) error {
			return errors.New("db password is hunter2")
		}},
	)
	r := f.do(t, "GET", "/boom", nil, nil)
	id := r.header.Get("X-Request-Id")
	if r.status != 500 || r.body.Code != "internal" || !strings.Contains(r.body.Error, id) || id == "" {
		t.Fatalf("panic: %d %q (request id %q)", r.status, r.raw, id)
	}
	logs := f.logs.String()
	if !strings.Contains(logs, `"panic":"kaboom"`) || !strings.Contains(logs, "goroutine") || !strings.Contains(logs, id) {
		t.Errorf("panic not logged with stack and request id:\n%s", logs)
	}
	if r := f.do(t, "GET", "/healthz", nil, nil); r.status != 200 {
		t.Errorf("server not serving after panic: %d", r.status)
	}
	r = f.do(t, "GET", "/fail", nil, nil)
	if r.status != 500 || strings.Contains(r.raw, "hunter2") {
		t.Errorf("internal error leaked to client: %d %q", r.status, r.raw)
	}
	if !strings.Contains(f.logs.String(), "hunter2") {
		t.Error("internal error not logged for operators")
	}
}

func TestRequestBodies(t *testing.T) {
	t.Parallel()
	type payload struct {
		Name  string `json:"name"`
		Count int    `json:"count"`
	}
	echo := Route{Pattern: "POST /echo", Public: true, Handler: func(w http.ResponseWriter, r *http.Request) error {
		var p payload
		if err := DecodeJSON(r, &p); err != nil {
			return err
		}
		WriteJSON(w, 200, p)
		return nil
	}}
	f := newFixture(t, Options{MaxRequestBytes: 64}, echo)
	json := map[string]string{"Content-Type": "application/json"}
	for _, tc := range []struct {
		name   string
		body   io.Reader
		header map[string]string
		status int
		msg    string
	}{
		{"valid", strings.NewReader(`{"name":"a","count":2}`), json, 200, ""},
		{"oversized by length", strings.NewReader(strings.Repeat("x", 65)), json, 413, "larger than 64 bytes"},
		// A reader that is not a *strings.Reader makes the client send chunked,
		// without Content-Length, so the limit must hold while reading.
		{"oversized chunked", io.MultiReader(strings.NewReader(`{"name":"`), strings.NewReader(strings.Repeat("x", 100)+`"}`)), json, 413, "larger than 64 bytes"},
		{"malformed", strings.NewReader(`{"name": }`), json, 400, "malformed JSON at byte 10"},
		{"truncated", strings.NewReader(`{"name": "a"`), json, 400, "ends in the middle"},
		{"empty", strings.NewReader(``), json, 400, "empty"},
		{"unknown field", strings.NewReader(`{"nam":"a"}`), json, 400, `unknown field "nam"`},
		{"wrong type", strings.NewReader(`{"count":"two"}`), json, 400, "field count: expected int"},
		{"two values", strings.NewReader(`{"count":1} {"count":2}`), json, 400, "single JSON value"},
		{"not an object", strings.NewReader(`[1,2]`), json, 400, "expected"},
		{"wrong content type", strings.NewReader(`{}`), map[string]string{"Content-Type": "text/plain"}, 415, "application/json"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := f.do(t, "POST", "/echo", tc.body, tc.header)
			if r.status != tc.status || !strings.Contains(r.body.Error, tc.msg) {
				t.Errorf("status %d %q, want %d containing %q", r.status, r.raw, tc.status, tc.msg)
			}
		})
	}
}

func TestMetricsByRoutePattern(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Options{})
	f.do(t, "GET", "/healthz", nil, nil)
	f.do(t, "GET", "/nope/123", nil, nil)
	f.do(t, "BREW", "/healthz", nil, nil)
	res, err := http.Get(f.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	for _, want := range []string{
		`rampart_http_requests_total{code="200",method="GET",route="GET /healthz"} 1`,
		`rampart_http_requests_total{code="404",method="GET",route="unmatched"} 1`,
		`rampart_http_requests_total{code="405",method="OTHER",route="unmatched"} 1`,
		`rampart_http_request_duration_seconds_bucket{method="GET",route="GET /healthz",le="+Inf"} 1`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if strings.Contains(string(body), "/nope/123") {
		t.Error("raw path used as a metric label")
	}
}

func TestLogLines(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Options{})
	r := f.do(t, "GET", "/healthz?token=abc", nil, map[string]string{"X-Request-Id": "forged-id", "Authorization": "Bearer secret-token"})
	if r.header.Get("X-Request-Id") == "forged-id" {
		t.Error("client-chosen request id accepted")
	}
	var line map[string]any
	for _, l := range strings.Split(strings.TrimSpace(f.logs.String()), "\n") {
		if err := json.Unmarshal([]byte(l), &line); err != nil {
			t.Fatalf("log line is not JSON: %q", l)
		}
	}
	want := map[string]any{"request_id": r.header.Get("X-Request-Id"), "method": "GET", "route": "GET /healthz", "path": "/healthz", "status": float64(200)}
	got := map[string]any{}
	for k := range want {
		got[k] = line[k]
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("log line (-want +got):\n%s", d)
	}
	if strings.Contains(f.logs.String(), "secret-token") || strings.Contains(f.logs.String(), "token=abc") {
		t.Error("credentials or query string logged")
	}
}

func FuzzDecodeJSON(f *testing.F) {
	for _, s := range []string{`{"name":"a","count":2}`, `{"name": }`, `[1]`, ``, `{"count":1e999}`, `{"a":{"b":[[[[]]]]}}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		r := httptest.NewRequest("POST", "/", bytes.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		var v struct {
			Name  string         `json:"name"`
			Count int            `json:"count"`
			Extra map[string]any `json:"extra"`
		}
		err := DecodeJSON(r, &v)
		var he *HTTPError
		if err != nil && (!errors.As(err, &he) || he.Status < 400 || he.Status > 499) {
			t.Fatalf("DecodeJSON error is not a 4xx HTTPError: %v", err)
		}
	})
}
