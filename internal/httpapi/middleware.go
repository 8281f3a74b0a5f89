package httpapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"runtime/debug"
	"time"

	"github.com/rampart-ml/rampart/internal/principal"
)

// responseWriter records what was written, for logs, metrics and the
// recover step, and turns the mux's plain-text 404/405 into JSON errors.
type responseWriter struct {
	http.ResponseWriter
	r      *http.Request
	status int
	bytes  int64
	quiet  bool // swallow the mux's plain-text body after our JSON one
}

func (w *responseWriter) WriteHeader(code int) {
	if w.status != 0 {
		return
	}
	w.status = code
	if w.r.Pattern == "" && (code == http.StatusNotFound || code == http.StatusMethodNotAllowed) {
		// No route matched: the mux is writing its own error.
		w.quiet = true
		msg, errCode := "no such endpoint", "not_found"
		if code == http.StatusMethodNotAllowed {
			msg, errCode = "method not allowed on this endpoint", "method_not_allowed"
		}
		w.Header().Del("X-Content-Type-Options")
		WriteJSON(w.ResponseWriter, code, errorBody{Error: msg, Code: errCode})
		return
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *responseWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if w.quiet {
		return len(b), nil
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

// Flush lets streaming handlers (and gRPC) flush through the recorder.
func (w *responseWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap exposes the underlying writer to http.ResponseController.
func (w *responseWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// recover turns a panic into a 500 that carries the request id, logs the
// stack, and keeps the server running.
func (s *Server) recover(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rw := &responseWriter{ResponseWriter: w, r: r}
		defer func() {
			p := recover()
			if p == nil {
				return
			}
			if p == http.ErrAbortHandler { //nolint:errorlint // sentinel compared by identity, as net/http does
				panic(p) // net/http's way to abort a response silently
			}
			id := RequestID(rw.r.Context())
			s.log.LogAttrs(r.Context(), slog.LevelError, "panic in handler",
				slog.String("request_id", id), slog.String("panic", fmt.Sprint(p)),
				slog.String("stack", string(debug.Stack())))
			if rw.status == 0 {
				writeError(rw, rw.r, s.log, Error(http.StatusInternalServerError, "internal",
					"internal error (request id "+id+")", nil))
			}
		}()
		next.ServeHTTP(rw, r)
	})
}

type requestIDKey struct{}

// RequestID returns the id the server gave this request ("" outside one).
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// PeerAddr is the address of the connection's peer. Forwarded headers are
// ignored on purpose: a client could set them to dodge rate limits.
func PeerAddr(r *http.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

type clientAddrKey struct{}

// ClientAddr returns the address of the peer that sent this request ("" outside
// one): the TCP peer net/http saw, never a header a client can set. It is
// personal data: the audit log records a keyed pseudonym of it, logs never.
func ClientAddr(ctx context.Context) string {
	addr, _ := ctx.Value(clientAddrKey{}).(string)
	return addr
}

// requestID gives every request a fresh random id, in the context and the
// X-Request-Id response header. A client-sent id is ignored: it could
// collide with another request's or smuggle text into logs.
func (s *Server) requestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var b [12]byte
		_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on Linux
		id := hex.EncodeToString(b[:])
		w.Header().Set("X-Request-Id", id)
		ctx := context.WithValue(r.Context(), requestIDKey{}, id)
		r = r.WithContext(context.WithValue(ctx, clientAddrKey{}, r.RemoteAddr))
		if rw, ok := w.(*responseWriter); ok {
			rw.r = r // the mux records the matched pattern on this request
		}
		next.ServeHTTP(w, r)
	})
}

// logRequests writes one structured line per request and updates the
// metrics. It logs the route pattern and path, never bodies, tokens or
// client addresses (personal data).
func (s *Server) logRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		next.ServeHTTP(w, r)
		elapsed := time.Since(start)
		rw, _ := w.(*responseWriter)
		status, size := http.StatusOK, int64(0)
		if rw != nil {
			if rw.status != 0 {
				status = rw.status
			}
			size = rw.bytes
		}
		route := r.Pattern
		if route == "" {
			route = "unmatched"
		}
		s.metrics.observe(route, r.Method, status, elapsed)
		level := slog.LevelInfo
		if status >= 500 {
			level = slog.LevelWarn
		}
		s.log.LogAttrs(r.Context(), level, "request",
			slog.String("request_id", RequestID(r.Context())),
			slog.String("method", r.Method), slog.String("route", route), slog.String("path", r.URL.Path),
			slog.Int("status", status), slog.Int64("bytes", size), slog.Float64("duration_ms", float64(elapsed.Microseconds())/1000))
	})
}

// limitBody refuses bodies over the route's limit before anything else reads
// them: by Content-Length at once, otherwise while reading.
func (s *Server) limitBody(rt *Route, next http.Handler) http.Handler {
	limit := s.maxBody
	if rt.MaxBodyBytes > 0 {
		limit = rt.MaxBodyBytes
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > limit {
			writeError(w, r, s.log, Error(http.StatusRequestEntityTooLarge, "too_large",
				fmt.Sprintf("request body is larger than %d bytes", limit), nil))
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, limit)
		next.ServeHTTP(w, r)
	})
}

// authenticate asks each authenticator in turn; the first that recognises
// the credentials decides. No credentials → 401.
func (s *Server) authenticate(rt *Route, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for _, a := range s.authn {
			p, ok, err := a.Authenticate(r)
			var refused *HTTPError
			if errors.As(err, &refused) && refused.Status < 500 {
				// Credentials the authenticator recognised and refused
				// (expired token, revoked, disabled account).
				if auditErr := s.audit.AuditRefusal(r, principal.Principal{}, rt, refused); auditErr != nil {
					writeError(w, r, s.log, auditErr)
					return
				}
				if refused.Status == http.StatusUnauthorized {
					w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
				}
				writeError(w, r, s.log, refused)
				return
			}
			if err != nil {
				writeError(w, r, s.log, Error(http.StatusServiceUnavailable, "authn_unavailable",
					"authentication is temporarily unavailable", err))
				return
			}
			if ok {
				next.ServeHTTP(w, r.WithContext(principal.WithContext(r.Context(), p)))
				return
			}
		}
		w.Header().Set("WWW-Authenticate", `Bearer`)
		writeError(w, r, s.log, Error(http.StatusUnauthorized, "unauthenticated", "authentication required", nil))
	})
}

func (s *Server) authorize(rt *Route, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := principal.FromContext(r.Context())
		if err := s.authz.Authorize(r.Context(), p, rt); err != nil {
			if auditErr := s.audit.AuditRefusal(r, p, rt, err); auditErr != nil {
				err = auditErr
			}
			writeError(w, r, s.log, err)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (s *Server) auditRequest(rt *Route, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := principal.FromContext(r.Context())
		if err := s.audit.AuditRequest(r, p, rt); err != nil {
			writeError(w, r, s.log, err)
			return
		}
		next.ServeHTTP(w, r)
	})
}
