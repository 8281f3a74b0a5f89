package httpapi

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// discardWriter is a minimal ResponseWriter so the benchmarks measure the
// handlers, not a recorder's buffering.
type discardWriter struct{ h http.Header }

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (d *discardWriter) WriteHeader(int)             {}

func pong(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write([]byte(`{"status":"ok"}`))
}

func benchServe(b *testing.B, h http.Handler, path string) {
	req := httptest.NewRequest("GET", path, nil)
	req.Header.Set("Authorization", "Bearer alice-token")
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		clear(w.h)
		h.ServeHTTP(w, req)
	}
}

// BenchmarkChain compares a bare net/http handler with the same handler
// behind Rampart's full chain (public route, and protected route with
// pass-through authn/authz/audit), in one run. `make bench` reports the
// per-request overhead as a ratio in bench/README.md.
func BenchmarkChain(b *testing.B) {
	b.Run("bare", func(b *testing.B) {
		mux := http.NewServeMux()
		mux.HandleFunc("GET /ping", pong)
		benchServe(b, mux, "/ping")
	})
	newServer := func() *Server {
		reg := prometheus.NewRegistry()
		return New(Options{
			Logger:          slog.New(slog.NewJSONHandler(io.Discard, nil)),
			MaxRequestBytes: 1 << 20,
			Authenticators:  []Authenticator{bearerAlice},
			Authorizer:      allow{},
			Auditor:         allow{},
			Registerer:      reg, Gatherer: reg,
		})
	}
	handler := func(w http.ResponseWriter, r *http.Request) error { pong(w, r); return nil }
	b.Run("public", func(b *testing.B) {
		s := newServer()
		s.Handle(Route{Pattern: "GET /ping", Public: true, Handler: handler})
		benchServe(b, s.Handler(), "/ping")
	})
	b.Run("protected", func(b *testing.B) {
		s := newServer()
		s.Handle(Route{Pattern: "GET /ping", Handler: handler})
		benchServe(b, s.Handler(), "/ping")
	})
}
