package httpapi

import (
	"context"
	"log/slog"
	"net/http"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rampart-ml/rampart/internal/principal"
)

// Authenticator turns verified credentials into a Principal. ok=false means
// "not my kind of credentials"; err means a technical failure. A wrong
// credential is ok=false, never an error.
type Authenticator interface {
	Authenticate(r *http.Request) (p principal.Principal, ok bool, err error)
}

// Authorizer decides whether p may use route. It returns nil to allow, or an
// error (an *HTTPError for a precise refusal).
type Authorizer interface {
	Authorize(ctx context.Context, p principal.Principal, route *Route) error
}

// Auditor is the audit step of the chain. Handlers record the changes they
// make in the transaction that makes them; the Auditor sees the rest.
type Auditor interface {
	// AuditRequest runs before the handler of an authorised request and
	// refuses it (503) when the audit log cannot take records: nothing
	// happens unrecorded.
	AuditRequest(r *http.Request, p principal.Principal, route *Route) error
	// AuditRefusal records that authentication refused credentials (p is
	// the zero Principal) or that authorisation refused p. A non-nil error
	// (the refusal could not be recorded) is answered instead of refusal.
	AuditRefusal(r *http.Request, p principal.Principal, route *Route, refusal error) error
}

// Route is one endpoint.
type Route struct {
	// Pattern is a net/http ServeMux pattern with a method: "GET /healthz".
	Pattern string
	// Public routes skip authentication, authorisation and audit. Keep them
	// few: health, readiness, metrics, identity discovery.
	Public bool
	// Access is who may call a protected route at all; per-target checks
	// (domains, ownership) happen after it. The zero value is admins only,
	// so a route that forgets to say is closed, not open.
	Access Access
	// MaxBodyBytes overrides the server's request body limit when > 0.
	MaxBodyBytes int64
	Handler      HandlerFunc
}

// Access is the coarse, role-level rule of a route.
type Access int

const (
	// AdminOnly routes need the global admin role.
	AdminOnly Access = iota
	// Authenticated routes are open to any authenticated principal; the
	// handler checks what the principal may see or change (its own
	// account, the targets it holds grants on).
	Authenticated
	// AuditorOnly routes need the auditor role (reading the audit log,
	// resolving pseudonyms); admin alone is not enough.
	AuditorOnly
	// AdminOrAuditor routes need either role (checking the chain).
	AdminOrAuditor
)

// RoleAuthorizer enforces Route.Access. The access-control subsystem
// builds on it for per-target decisions.
type RoleAuthorizer struct{}

// Authorize implements Authorizer.
func (RoleAuthorizer) Authorize(_ context.Context, p principal.Principal, rt *Route) error {
	switch {
	case p.ID == "":
		return Error(http.StatusUnauthorized, "unauthenticated", "authentication required", nil)
	case rt.Access == Authenticated:
		return nil
	case rt.Access == AuditorOnly:
		if p.Auditor {
			return nil
		}
		return Error(http.StatusForbidden, "forbidden", "this operation needs the auditor role", nil)
	case rt.Access == AdminOrAuditor && (p.Admin || p.Auditor), rt.Access == AdminOnly && p.Admin:
		return nil
	case rt.Access == AdminOrAuditor:
		return Error(http.StatusForbidden, "forbidden", "this operation needs the admin or auditor role", nil)
	default:
		return Error(http.StatusForbidden, "forbidden", "this operation needs the admin role", nil)
	}
}

// Options configure a Server. Nil Authorizer or Auditor deny every
// non-public request; no Authenticators means every one is unauthenticated.
type Options struct {
	Logger          *slog.Logger
	MaxRequestBytes int64
	Authenticators  []Authenticator
	Authorizer      Authorizer
	Auditor         Auditor
	// Registerer receives the HTTP metrics; Gatherer serves /metrics.
	Registerer prometheus.Registerer
	Gatherer   prometheus.Gatherer
	// Ready reports whether dependencies (the store) are usable.
	Ready func(ctx context.Context) error
}

// Server routes requests through the fixed middleware chain.
type Server struct {
	mux      *http.ServeMux
	log      *slog.Logger
	maxBody  int64
	authn    []Authenticator
	authz    Authorizer
	audit    Auditor
	ready    func(ctx context.Context) error
	metrics  *metrics
	gatherer prometheus.Gatherer
	draining atomic.Bool
	handler  http.Handler
}

// New builds a server with the health, readiness and metrics routes mounted.
func New(o Options) *Server {
	s := &Server{
		mux:      http.NewServeMux(),
		log:      o.Logger,
		maxBody:  o.MaxRequestBytes,
		authn:    o.Authenticators,
		authz:    o.Authorizer,
		audit:    o.Auditor,
		ready:    o.Ready,
		metrics:  newMetrics(o.Registerer),
		gatherer: o.Gatherer,
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.authz == nil {
		s.authz = denyAll{}
	}
	if s.audit == nil {
		s.audit = denyAll{}
	}
	// The fixed middleware order (CONVENTIONS.md §9). The outer steps run for
	// every request, matched or not; the route steps are added per route in
	// Handle, because only a matched route knows whether it is Public.
	//
	//   recover → request id → log → route: body limit → authn → authz → audit → handler
	s.handler = s.recover(s.requestID(s.logRequests(s.mux)))
	s.mountHealth()
	return s
}

// Handle adds rt behind the route steps of the chain.
func (s *Server) Handle(rt Route) {
	h := s.adapt(rt.Handler)
	if !rt.Public {
		h = s.authenticate(&rt, s.authorize(&rt, s.auditRequest(&rt, h)))
	}
	s.mux.Handle(rt.Pattern, s.limitBody(&rt, h))
}

// Handler returns the root handler to serve.
func (s *Server) Handler() http.Handler { return s.handler }

// SetDraining makes /readyz fail so load balancers stop sending new work
// while in-flight requests finish.
func (s *Server) SetDraining() { s.draining.Store(true) }

// adapt turns a HandlerFunc into an http.Handler that writes its error.
func (s *Server) adapt(h HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			writeError(w, r, s.log, err)
		}
	})
}

// denyAll stands in for authorisation and audit until they are configured:
// a missing security component refuses, it never allows.
type denyAll struct{}

func (denyAll) Authorize(context.Context, principal.Principal, *Route) error {
	return Error(http.StatusForbidden, "forbidden", "access denied", nil)
}

func (denyAll) AuditRequest(*http.Request, principal.Principal, *Route) error {
	return errNoAuditor
}

func (denyAll) AuditRefusal(*http.Request, principal.Principal, *Route, error) error {
	return errNoAuditor
}

var errNoAuditor = Error(http.StatusServiceUnavailable, "audit_unavailable", "the audit log is not available; the request was not performed", nil)
