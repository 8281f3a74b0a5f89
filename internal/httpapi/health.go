package httpapi

import (
	"context"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

func (s *Server) mountHealth() {
	s.Handle(Route{Pattern: "GET /healthz", Public: true, Handler: s.healthz})
	s.Handle(Route{Pattern: "GET /readyz", Public: true, Handler: s.readyz})
	if s.gatherer != nil {
		// Metrics carry route patterns and counts, no identities or ids.
		// They are public for scrapers; see docs/OPERATIONS.md.
		h := promhttp.HandlerFor(s.gatherer, promhttp.HandlerOpts{})
		s.Handle(Route{Pattern: "GET /metrics", Public: true, Handler: func(w http.ResponseWriter, r *http.Request) error {
			h.ServeHTTP(w, r)
			return nil
		}})
	}
}

// healthz answers while the process can serve HTTP at all.
func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) error {
	WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	return nil
}

// readyz answers 200 only when the store is open and migrated and the server
// is not shutting down. The cause of a failure is logged, not sent.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) error {
	if s.draining.Load() {
		return Error(http.StatusServiceUnavailable, "not_ready", "shutting down", nil)
	}
	if s.ready != nil {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := s.ready(ctx); err != nil {
			return Error(http.StatusServiceUnavailable, "not_ready", "state store unavailable", err)
		}
	}
	WriteJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	return nil
}
