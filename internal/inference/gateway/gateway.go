// Package gateway serves the KServe Open Inference Protocol v2 over REST
// (/v2/...) and gRPC (inference.GRPCInferenceService, on the same TLS
// port) in front of the supervisor's model services.
//
// Every call has passed the httpapi chain (authenticated, request id,
// log) before it gets here; the gateway then checks `infer` on the
// service's domain, applies the per-caller and per-service token buckets,
// decodes and validates the tensors against the model before any byte
// reaches a worker, samples the call into the audit log, and maps every
// failure to a precise status.
package gateway

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rampart-ml/rampart/internal/access"
	"github.com/rampart-ml/rampart/internal/audit"
	"github.com/rampart-ml/rampart/internal/authz"
	"github.com/rampart-ml/rampart/internal/httpapi"
	"github.com/rampart-ml/rampart/internal/inference"
	"github.com/rampart-ml/rampart/internal/principal"
	"github.com/rampart-ml/rampart/internal/ratelimit"
	"github.com/rampart-ml/rampart/internal/runtime/supervisor"
)

// Options configure a Gateway.
type Options struct {
	Services *supervisor.Supervisor
	Authz    *authz.Service
	Recorder *audit.Recorder
	Sampler  *audit.Sampler
	Limits   inference.Limits
	// Per-caller and per-service token buckets.
	PrincipalRate, ServiceRate ratelimit.Policy
	Registerer                 prometheus.Registerer
	ServerName, ServerVersion  string
	Now                        func() time.Time
}

// Gateway serves the v2 protocol.
type Gateway struct {
	opt        Options
	principals *ratelimit.Limiter[string]
	services   *ratelimit.Limiter[string]
	requests   *prometheus.CounterVec
	latency    *prometheus.HistogramVec
}

// New returns a Gateway.
func New(o Options) (*Gateway, error) {
	if o.Services == nil || o.Authz == nil || o.Recorder == nil || o.Sampler == nil || o.Registerer == nil {
		return nil, errors.New("gateway: services, authz, recorder, sampler and metrics registry are required")
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	pl, err := ratelimit.New[string](o.PrincipalRate)
	if err != nil {
		return nil, fmt.Errorf("gateway: per-caller rate limit: %w", err)
	}
	sl, err := ratelimit.New[string](o.ServiceRate)
	if err != nil {
		return nil, fmt.Errorf("gateway: per-service rate limit: %w", err)
	}
	g := &Gateway{opt: o, principals: pl, services: sl,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "rampart_inference_requests_total",
			Help: "Inference requests to existing model services, by protocol and status."}, []string{"service", "protocol", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "rampart_inference_request_seconds",
			Help:    "Inference request latency in the gateway (decode, validation, queue, worker, encode).",
			Buckets: prometheus.ExponentialBucketsRange(50e-6, 30, 20)}, []string{"service", "protocol"}),
	}
	o.Registerer.MustRegister(g.requests, g.latency)
	return g, nil
}

// RatePolicy turns a rate (events per second) and a burst into a token
// bucket policy; keys are bounded to max.
func RatePolicy(perSecond float64, burst, max int) ratelimit.Policy {
	refill := time.Duration(math.Max(1, float64(time.Second)/perSecond))
	return ratelimit.Policy{Burst: burst, Refill: refill, Max: max}
}

// call is one authorised inference call's context.
type call struct {
	svc      *supervisor.Service
	protocol string
	start    time.Time
}

// notFound is the answer for a service that does not exist and for one the
// caller may not see: the same, so names cannot be probed.
var notFound = httpapi.Error(http.StatusNotFound, "not_found", "model-service not found", nil)

// resolve finds service name (and checks version, when given), checks the
// caller may infer on it, and applies the rate limits.
func (g *Gateway) resolve(ctx context.Context, p principal.Principal, name, version string) (*supervisor.Service, error) {
	svc, ok := g.opt.Services.Lookup(name)
	if !ok {
		return nil, notFound
	}
	t := access.Target{Kind: access.ModelService, Domain: svc.Domain, ID: svc.Name}
	if svc.Domain == access.Wildcard {
		t.Domain = ""
	}
	if err := g.opt.Authz.Require(ctx, p, t, access.Infer); err != nil {
		return nil, err
	}
	if version != "" && version != svc.ModelVersion {
		return nil, httpapi.Error(http.StatusNotFound, "not_found",
			fmt.Sprintf("model-service %q serves version %q, not %q", svc.Name, svc.ModelVersion, version), nil)
	}
	return svc, nil
}

// admit applies the per-caller and per-service token buckets.
func (g *Gateway) admit(p principal.Principal, svc *supervisor.Service) error {
	now := g.opt.Now()
	if ok, retry := g.principals.Allow(p.ID, now); !ok {
		return rateLimited("you are sending inference requests too fast", retry)
	}
	if ok, retry := g.services.Allow(svc.Name, now); !ok {
		return rateLimited("this model service is receiving more requests than it accepts", retry)
	}
	return nil
}

// rateLimitedError is a 429 with the seconds to wait.
type rateLimitedError struct {
	*httpapi.HTTPError
	retryAfter time.Duration
}

func (e *rateLimitedError) Unwrap() error { return e.HTTPError }

func rateLimited(msg string, retry time.Duration) error {
	return &rateLimitedError{HTTPError: httpapi.Error(http.StatusTooManyRequests, "rate_limited", msg, nil), retryAfter: retry}
}

// retryAfterSeconds is the Retry-After value for d (at least 1).
func retryAfterSeconds(d time.Duration) string {
	return strconv.FormatInt(max(1, int64(math.Ceil(d.Seconds()))), 10)
}

// record samples an allowed call into the audit log; a refused record
// refuses the call (503).
func (g *Gateway) record(ctx context.Context, svc *supervisor.Service) error {
	return g.opt.Recorder.RecordAllowedInference(ctx, g.opt.Sampler,
		audit.Target{Kind: string(access.ModelService), Domain: svc.Domain, ID: svc.Name})
}

// statusClientClosedRequest is nginx's status for a request whose client
// went away; it keeps such requests out of the server's error log.
const statusClientClosedRequest = 499

// runtimeError maps the supervisor's errors to statuses.
func runtimeError(err error) error {
	switch {
	case errors.Is(err, supervisor.ErrNotReady):
		return httpapi.Error(http.StatusServiceUnavailable, "not_ready", "the model service is not ready", err)
	case errors.Is(err, supervisor.ErrWorkerDied):
		return httpapi.Error(http.StatusServiceUnavailable, "worker_died", err.Error(), err)
	case errors.Is(err, supervisor.ErrTimeout):
		return httpapi.Error(http.StatusGatewayTimeout, "timeout", err.Error(), err)
	case errors.Is(err, supervisor.ErrInvalidArgument):
		return httpapi.Error(http.StatusBadRequest, "invalid_input", err.Error(), err)
	case errors.Is(err, supervisor.ErrModel):
		return httpapi.Error(http.StatusUnprocessableEntity, "model_failed", err.Error(), err)
	case errors.Is(err, context.DeadlineExceeded):
		return httpapi.Error(http.StatusGatewayTimeout, "timeout", "the request's deadline passed before the model answered", err)
	case errors.Is(err, context.Canceled):
		// The client hung up: nobody reads this answer, and it is no
		// server failure (499, as nginx logs it).
		return httpapi.Error(statusClientClosedRequest, "client_closed_request", "the client closed the request before the model answered", err)
	}
	return err
}

// codecError maps a protocol refusal to an httpapi error.
func codecError(err error) error {
	var e *inference.Error
	if errors.As(err, &e) {
		// A request over a limit gets the code of a body over the limit,
		// whichever limit it is.
		code := "invalid_request"
		if e.Status == http.StatusRequestEntityTooLarge {
			code = "too_large"
		}
		return httpapi.Error(e.Status, code, e.Msg, err)
	}
	return err
}

// observe counts a finished call.
func (g *Gateway) observe(c *call, status int) {
	g.requests.WithLabelValues(c.svc.Name, c.protocol, strconv.Itoa(status)).Inc()
	g.latency.WithLabelValues(c.svc.Name, c.protocol).Observe(time.Since(c.start).Seconds())
}
