package services

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/rampart-ml/rampart/internal/access"
	"github.com/rampart-ml/rampart/internal/audit"
	"github.com/rampart-ml/rampart/internal/authz"
	"github.com/rampart-ml/rampart/internal/httpapi"
	"github.com/rampart-ml/rampart/internal/principal"
	"github.com/rampart-ml/rampart/internal/store"
)

// Audit actions of model services.
const (
	ActionCreate = "service.create"
	ActionStart  = "service.start"
	ActionStop   = "service.stop"
	ActionScale  = "service.scale"
	ActionDelete = "service.delete"
	ActionFail   = "service.fail" // recorded by Reporter

	auditKind       = string(access.ModelService)
	bodyLimit int64 = 4 << 10
)

// errNoRecorder: nothing may change unrecorded, so a missing recorder
// refuses every change (503) rather than lets it pass.
var errNoRecorder = fmt.Errorf("services: no audit recorder configured: %w", audit.ErrWrite)

// Controller is what the supervisor offers the API: Reconcile(name) is
// called after each committed change of service name (including its
// deletion), so the supervisor compares the stored desired state with
// what runs. It must not block: queue the name and return.
type Controller interface {
	Reconcile(name string)
}

// Options configure an API.
type Options struct {
	Store store.Store
	Authz *authz.Service
	// Recorder writes the audit record of every change; without one every
	// change is refused with 503.
	Recorder *audit.Recorder
	// Controller is told of every change; nil until a supervisor exists
	// (services then stay in "starting" after start).
	Controller Controller
	Now        func() time.Time
}

// API serves /api/v1/services.
type API struct {
	opt Options
}

// NewAPI returns an API.
func NewAPI(o Options) *API {
	if o.Now == nil {
		o.Now = time.Now
	}
	return &API{opt: o}
}

// Mount registers the routes. Every route is open to authenticated
// callers; the handlers decide per service (and per model).
func (a *API) Mount(api *httpapi.Server) {
	for _, rt := range []httpapi.Route{
		{Pattern: "POST /api/v1/services", MaxBodyBytes: bodyLimit, Handler: a.create},
		{Pattern: "GET /api/v1/services", Handler: a.list},
		{Pattern: "GET /api/v1/services/{name}", Handler: a.get},
		{Pattern: "POST /api/v1/services/{name}/start", MaxBodyBytes: bodyLimit, Handler: a.start},
		{Pattern: "POST /api/v1/services/{name}/stop", MaxBodyBytes: bodyLimit, Handler: a.stop},
		{Pattern: "POST /api/v1/services/{name}/scale", MaxBodyBytes: bodyLimit, Handler: a.scale},
		{Pattern: "DELETE /api/v1/services/{name}", Handler: a.delete},
	} {
		rt.Access = httpapi.Authenticated
		api.Handle(rt)
	}
}

// Limits is the wire form of a replica's limits.
type Limits struct {
	MemoryBytes   int64 `json:"memory_bytes"`
	Threads       int   `json:"threads"`
	MaxConcurrent int   `json:"max_concurrent"`
}

// Service is the wire form of a service.
type Service struct {
	Name         string    `json:"name"`
	Domain       string    `json:"domain"`
	ModelID      string    `json:"model_id"`
	ModelVersion string    `json:"model_version"`
	Replicas     int       `json:"replicas"`
	Limits       Limits    `json:"limits"`
	TimeoutMS    int64     `json:"timeout_ms"`
	DesiredState string    `json:"desired_state"`
	State        string    `json:"state"`
	StateReason  string    `json:"state_reason,omitempty"`
	CreatedAt    time.Time `json:"created_at"`
	UpdatedAt    time.Time `json:"updated_at"`
}

func view(s store.Service) Service {
	return Service{
		Name: s.Name, Domain: s.Domain, ModelID: s.ModelID, ModelVersion: s.ModelVersion,
		Replicas: s.Spec.Replicas, TimeoutMS: s.Spec.TimeoutMS,
		Limits:       Limits{MemoryBytes: s.Spec.MemoryBytes, Threads: s.Spec.Threads, MaxConcurrent: s.Spec.MaxConcurrent},
		DesiredState: s.DesiredState, State: s.State, StateReason: s.StateReason,
		CreatedAt: s.CreatedAt, UpdatedAt: s.UpdatedAt,
	}
}

// CreateRequest is the body of POST /api/v1/services. Absent numbers take
// their defaults (see DefaultSpec); present ones are checked, zero too.
type CreateRequest struct {
	Name         string         `json:"name"`
	Domain       string         `json:"domain"`
	ModelID      string         `json:"model_id"`
	ModelVersion string         `json:"model_version"`
	Replicas     *int           `json:"replicas,omitempty"`
	Limits       *LimitsRequest `json:"limits,omitempty"`
	TimeoutMS    *int64         `json:"timeout_ms,omitempty"`
}

// LimitsRequest is the limits part of a CreateRequest.
type LimitsRequest struct {
	MemoryBytes   *int64 `json:"memory_bytes,omitempty"`
	Threads       *int   `json:"threads,omitempty"`
	MaxConcurrent *int   `json:"max_concurrent,omitempty"`
}

// ScaleRequest is the body of POST /api/v1/services/{name}/scale.
type ScaleRequest struct {
	Replicas *int `json:"replicas"`
}

func (in CreateRequest) spec() store.ServiceSpec {
	s := DefaultSpec()
	setIf(&s.Replicas, in.Replicas)
	setIf(&s.TimeoutMS, in.TimeoutMS)
	if l := in.Limits; l != nil {
		setIf(&s.MemoryBytes, l.MemoryBytes)
		setIf(&s.Threads, l.Threads)
		setIf(&s.MaxConcurrent, l.MaxConcurrent)
	}
	return s
}

func setIf[T any](dst *T, v *T) {
	if v != nil {
		*dst = *v
	}
}

func badRequest(code string, err error) error {
	return httpapi.Error(http.StatusBadRequest, code, err.Error(), nil)
}

// targetOf is the access-control target of a service in domain ("*" in
// the store is "no domain" to access).
func targetOf(name, domain string) access.Target {
	if domain == access.Wildcard {
		domain = ""
	}
	return access.Target{Kind: access.ModelService, Domain: domain, ID: name}
}

func entry(action string, s store.Service) audit.Entry {
	return audit.Entry{Action: action, Target: audit.Target{Kind: auditKind, Domain: s.Domain, ID: s.Name}}
}

func principalOf(r *http.Request) principal.Principal {
	p, _ := principal.FromContext(r.Context())
	return p
}

var errNotFound = httpapi.Error(http.StatusNotFound, "not_found", "model-service not found", nil)

func (a *API) create(w http.ResponseWriter, r *http.Request) error {
	var in CreateRequest
	if err := httpapi.DecodeJSON(r, &in); err != nil {
		return err
	}
	if err := ValidateName(in.Name); err != nil {
		return badRequest("invalid_name", err)
	}
	if in.Domain == "" {
		return badRequest("invalid_domain", errors.New(`domain is required: a domain name, or "*" for a service without one`))
	}
	if in.Domain != access.Wildcard {
		if err := access.ValidateDomain(in.Domain); err != nil {
			return badRequest("invalid_domain", err)
		}
	}
	modelDomain, _, err := access.SplitModelID(in.ModelID)
	if err != nil {
		return badRequest("invalid_model_id", err)
	}
	if in.ModelVersion == "" || len(in.ModelVersion) > 64 {
		return badRequest("invalid_version", errors.New("model_version is required (at most 64 bytes)"))
	}
	spec := in.spec()
	if err := ValidateSpec(spec); err != nil {
		return badRequest("invalid_limits", err)
	}
	ctx := r.Context()
	p := principalOf(r)
	// Both privileges: all on where the service goes, read on what it
	// deploys (otherwise a service would be a way to use a model one may
	// not see).
	if err := a.opt.Authz.Require(ctx, p, targetOf(in.Name, in.Domain), access.All); err != nil {
		return err
	}
	if err := a.opt.Authz.Require(ctx, p, access.Target{Kind: access.Model, Domain: modelDomain, ID: in.ModelID}, access.Read); err != nil {
		return err
	}
	if a.opt.Recorder == nil {
		return errNoRecorder
	}
	now := a.opt.Now().UTC()
	s := store.Service{
		Name: in.Name, Domain: in.Domain, ModelID: in.ModelID, ModelVersion: in.ModelVersion, Spec: spec,
		DesiredState: store.ServiceStopped, State: string(Created), CreatedBy: p.ID, CreatedAt: now, UpdatedAt: now,
	}
	err = a.opt.Store.InTx(ctx, func(tx store.Tx) error {
		if err := usableVersion(ctx, tx, s); err != nil {
			return err
		}
		if err := tx.Services().CreateService(ctx, s); err != nil {
			switch {
			case errors.Is(err, store.ErrConflict):
				return httpapi.Error(http.StatusConflict, "service_exists", "a service called "+s.Name+" exists already", nil)
			case errors.Is(err, store.ErrNotFound): // the version was there a moment ago: the domain
				return httpapi.Error(http.StatusNotFound, "not_found", "domain not found", nil)
			}
			return err
		}
		return a.opt.Recorder.Record(ctx, tx, entry(ActionCreate, s))
	})
	if err != nil {
		return err
	}
	a.reconcile(s.Name)
	httpapi.WriteJSON(w, http.StatusCreated, view(s))
	return nil
}

// usableVersion refuses a model version that does not exist or is
// quarantined (its bytes no longer matched their digests).
func usableVersion(ctx context.Context, tx store.Tx, s store.Service) error {
	v, err := tx.Models().ModelVersion(ctx, s.ModelID, s.ModelVersion)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return httpapi.Error(http.StatusNotFound, "not_found", "model version not found", nil)
	case err != nil:
		return err
	case v.State != store.VersionActive:
		return httpapi.Error(http.StatusConflict, "version_quarantined",
			fmt.Sprintf("version %s of %s is %s and cannot be deployed", s.ModelVersion, s.ModelID, v.State), nil)
	}
	return nil
}

func (a *API) list(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	var all []store.Service
	if err := a.opt.Store.InTx(ctx, func(tx store.Tx) error {
		var err error
		all, err = tx.Services().ListServices(ctx)
		return err
	}); err != nil {
		return err
	}
	p := principalOf(r)
	out := []Service{}
	for _, s := range all {
		// Allowed, not Require: a service left out of a listing is no
		// denied request.
		ok, err := a.opt.Authz.Allowed(ctx, p, targetOf(s.Name, s.Domain), access.Read)
		if err != nil {
			return err
		}
		if ok {
			out = append(out, view(s))
		}
	}
	httpapi.WriteJSON(w, http.StatusOK, out)
	return nil
}

// lookup reads service name and requires want on it: 404 for a service
// that does not exist and for one the caller may not read, alike.
func (a *API) lookup(r *http.Request, want access.Privilege) (store.Service, error) {
	name := r.PathValue("name")
	if ValidateName(name) != nil {
		return store.Service{}, errNotFound
	}
	ctx := r.Context()
	var s store.Service
	err := a.opt.Store.InTx(ctx, func(tx store.Tx) error {
		var err error
		s, err = tx.Services().ServiceByName(ctx, name)
		return err
	})
	switch {
	case errors.Is(err, store.ErrNotFound):
		return store.Service{}, errNotFound
	case err != nil:
		return store.Service{}, err
	}
	if err := a.opt.Authz.Require(ctx, principalOf(r), targetOf(s.Name, s.Domain), want); err != nil {
		return store.Service{}, err
	}
	return s, nil
}

func (a *API) get(w http.ResponseWriter, r *http.Request) error {
	s, err := a.lookup(r, access.Read)
	if err != nil {
		return err
	}
	httpapi.WriteJSON(w, http.StatusOK, view(s))
	return nil
}

// changeFunc changes s in tx and says whether anything changed (a no-op
// is neither recorded nor reconciled).
type changeFunc func(ctx context.Context, tx store.Tx, s *store.Service, now time.Time) (changed bool, err error)

// change runs fn on service {name} after checking the caller holds all on
// it, records action when something changed, and tells the controller.
func (a *API) change(r *http.Request, action string, fn changeFunc) (store.Service, error) {
	s, err := a.lookup(r, access.All)
	if err != nil {
		return store.Service{}, err
	}
	if a.opt.Recorder == nil {
		return store.Service{}, errNoRecorder
	}
	ctx := r.Context()
	changed := false
	err = a.opt.Store.InTx(ctx, func(tx store.Tx) error {
		// Read again: the state may have moved since lookup. Name and
		// domain cannot (a trigger keeps them), so the check still holds.
		var err error
		if s, err = tx.Services().ServiceByName(ctx, s.Name); err != nil {
			return err
		}
		if changed, err = fn(ctx, tx, &s, a.opt.Now().UTC()); err != nil || !changed {
			return err
		}
		return a.opt.Recorder.Record(ctx, tx, entry(action, s))
	})
	switch {
	case errors.Is(err, store.ErrNotFound): // deleted in between
		return store.Service{}, errNotFound
	case err != nil:
		return store.Service{}, err
	}
	if changed {
		a.reconcile(s.Name)
	}
	return s, nil
}

func (a *API) reconcile(name string) {
	if a.opt.Controller != nil {
		a.opt.Controller.Reconcile(name)
	}
}

func (a *API) start(w http.ResponseWriter, r *http.Request) error {
	s, err := a.change(r, ActionStart, func(ctx context.Context, tx store.Tx, s *store.Service, now time.Time) (bool, error) {
		st := State(s.State)
		if st == Starting || st == Ready {
			return false, nil // running already: starting twice is no error
		}
		to, err := Next(st, Start)
		if err != nil {
			return false, httpapi.Error(http.StatusConflict, "invalid_state", "the service is "+s.State+"; start it once it has stopped", nil)
		}
		if err := usableVersion(ctx, tx, *s); err != nil {
			return false, err
		}
		return true, setState(ctx, tx, s, store.ServiceRunning, to, now)
	})
	if err != nil {
		return err
	}
	httpapi.WriteJSON(w, http.StatusOK, view(s))
	return nil
}

func (a *API) stop(w http.ResponseWriter, r *http.Request) error {
	s, err := a.change(r, ActionStop, func(ctx context.Context, tx store.Tx, s *store.Service, now time.Time) (bool, error) {
		st := State(s.State)
		if s.DesiredState == store.ServiceStopped && (st == Created || st == Stopping || st == Stopped || st == Failed) {
			return false, nil // nothing runs, or it is on its way down
		}
		to, err := Next(st, Stop)
		if err != nil {
			// Desired running while stopped or created cannot be
			// reached through the API; correct the desired state only.
			to = st
		}
		return true, setState(ctx, tx, s, store.ServiceStopped, to, now)
	})
	if err != nil {
		return err
	}
	httpapi.WriteJSON(w, http.StatusOK, view(s))
	return nil
}

// setState sets the desired and actual state of s (clearing the reason).
func setState(ctx context.Context, tx store.Tx, s *store.Service, desired string, to State, now time.Time) error {
	if err := tx.Services().SetServiceDesired(ctx, s.Name, desired, now); err != nil {
		return err
	}
	if err := tx.Services().SetServiceState(ctx, s.Name, string(to), "", now); err != nil {
		return err
	}
	s.DesiredState, s.State, s.StateReason, s.UpdatedAt = desired, string(to), "", now
	return nil
}

func (a *API) scale(w http.ResponseWriter, r *http.Request) error {
	var in ScaleRequest
	if err := httpapi.DecodeJSON(r, &in); err != nil {
		return err
	}
	if in.Replicas == nil || *in.Replicas < 0 || *in.Replicas > MaxReplicas {
		return badRequest("invalid_limits", fmt.Errorf("%w: replicas is required: 0 to %d", ErrInvalid, MaxReplicas))
	}
	s, err := a.change(r, ActionScale, func(ctx context.Context, tx store.Tx, s *store.Service, now time.Time) (bool, error) {
		if s.Spec.Replicas == *in.Replicas {
			return false, nil
		}
		s.Spec.Replicas, s.UpdatedAt = *in.Replicas, now
		return true, tx.Services().UpdateServiceSpec(ctx, s.Name, s.Spec, now)
	})
	if err != nil {
		return err
	}
	httpapi.WriteJSON(w, http.StatusOK, view(s))
	return nil
}

func (a *API) delete(w http.ResponseWriter, r *http.Request) error {
	_, err := a.change(r, ActionDelete, func(ctx context.Context, tx store.Tx, s *store.Service, _ time.Time) (bool, error) {
		if !State(s.State).Deletable() {
			return false, httpapi.Error(http.StatusConflict, "service_running",
				"the service is "+s.State+"; stop it before deleting it", nil)
		}
		return true, tx.Services().DeleteService(ctx, s.Name)
	})
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
