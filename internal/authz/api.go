package authz

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/rampart-ml/rampart/internal/access"
	"github.com/rampart-ml/rampart/internal/audit"
	"github.com/rampart-ml/rampart/internal/httpapi"
	"github.com/rampart-ml/rampart/internal/identity"
	"github.com/rampart-ml/rampart/internal/principal"
	"github.com/rampart-ml/rampart/internal/store"
)

// Options configure a Service.
type Options struct {
	Store     store.Store
	Cache     *Cache
	Directory *identity.Directory
	// Recorder writes the audit records of domain and grant changes,
	// refused grant changes and Require's denials. It is required:
	// without one, every change and every denial is refused with 503,
	// because nothing may happen unrecorded.
	Recorder *audit.Recorder
	// DomainDeleted, if set, is called after a domain's deletion has
	// committed (the artifact store crypto-shreds the domain's data key).
	DomainDeleted func(ctx context.Context, name string)
	Now           func() time.Time
}

// Service serves domains, grants and access checks, and answers other
// subsystems' questions about targets (Require, Allowed).
type Service struct {
	opt Options
	now func() time.Time
}

// New returns a Service.
func New(o Options) *Service {
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Service{opt: o, now: o.Now}
}

// Mount registers the routes.
func (s *Service) Mount(api *httpapi.Server) {
	const body = 16 << 10
	for _, rt := range []httpapi.Route{
		{Pattern: "GET /api/v1/domains", Access: httpapi.Authenticated, Handler: s.listDomains},
		{Pattern: "POST /api/v1/domains", MaxBodyBytes: body, Handler: s.createDomain},
		{Pattern: "DELETE /api/v1/domains/{name}", Handler: s.deleteDomain},
		{Pattern: "GET /api/v1/grants", Access: httpapi.Authenticated, Handler: s.listGrants},
		{Pattern: "POST /api/v1/grants", Access: httpapi.Authenticated, MaxBodyBytes: body, Handler: s.createGrant},
		{Pattern: "DELETE /api/v1/grants/{id}", Access: httpapi.Authenticated, Handler: s.deleteGrant},
		{Pattern: "GET /api/v1/access/check", Access: httpapi.Authenticated, Handler: s.check},
	} {
		api.Handle(rt)
	}
}

// Require returns nil if p holds want on t. Otherwise it returns a 404
// when p may not even read t (so nobody learns the names of targets they
// cannot see) and a 403 when p can see t but lacks want. Every denial is
// recorded ("access.deny"); when the record cannot be taken, Require
// returns that error (503) instead.
func (s *Service) Require(ctx context.Context, p principal.Principal, t access.Target, want access.Privilege) error {
	pol, err := s.opt.Cache.Policy(ctx)
	if err != nil {
		return err
	}
	d := pol.Decide(RequesterOf(p), t, want)
	if d.Allowed {
		return nil
	}
	if err := s.submit(ctx, denialEntry(p, t, want)); err != nil {
		return err
	}
	if d.Effective >= access.Read {
		return httpapi.Error(http.StatusForbidden, "forbidden", fmt.Sprintf("this needs %s on the %s's domain", want, t.Kind), nil)
	}
	return httpapi.Error(http.StatusNotFound, "not_found", fmt.Sprintf("%s not found", t.Kind), nil)
}

// ---- domains ----

// Domain is the wire form of a domain.
type Domain struct {
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
}

func (s *Service) listDomains(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	pol, err := s.opt.Cache.Policy(ctx)
	if err != nil {
		return err
	}
	var ds []store.Domain
	if err := s.opt.Store.InTx(ctx, func(tx store.Tx) error {
		var err error
		ds, err = tx.Domains().ListDomains(ctx)
		return err
	}); err != nil {
		return err
	}
	req := requester(r)
	out := []Domain{}
	for _, d := range ds {
		// A domain's name is itself information: only those who can
		// read in it (or admins) see it.
		if eff, _ := pol.Effective(req, d.Name); req.Admin || eff >= access.Read {
			out = append(out, Domain{Name: d.Name, CreatedAt: d.CreatedAt})
		}
	}
	httpapi.WriteJSON(w, http.StatusOK, out)
	return nil
}

func (s *Service) createDomain(w http.ResponseWriter, r *http.Request) error {
	var in struct {
		Name string `json:"name"`
	}
	if err := httpapi.DecodeJSON(r, &in); err != nil {
		return err
	}
	if err := access.ValidateDomain(in.Name); err != nil {
		return httpapi.Error(http.StatusUnprocessableEntity, "invalid_domain", err.Error(), nil)
	}
	ctx := r.Context()
	d := store.Domain{Name: in.Name, CreatedBy: principalOf(r).ID, CreatedAt: s.now()}
	err := s.opt.Store.InTx(ctx, func(tx store.Tx) error {
		if err := tx.Domains().CreateDomain(ctx, d); err != nil {
			return err
		}
		return s.record(ctx, tx, domainEntry(actionDomainCreate, d.Name))
	})
	if errors.Is(err, store.ErrConflict) {
		return httpapi.Error(http.StatusConflict, "domain_exists", "a domain with this name exists", nil)
	}
	if err != nil {
		return err
	}
	s.opt.Cache.Invalidate()
	httpapi.WriteJSON(w, http.StatusCreated, Domain{Name: d.Name, CreatedAt: d.CreatedAt})
	return nil
}

func (s *Service) deleteDomain(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	if access.ValidateDomain(name) != nil {
		return httpapi.Error(http.StatusNotFound, "not_found", "domain not found", nil)
	}
	ctx := r.Context()
	err := s.opt.Store.InTx(ctx, func(tx store.Tx) error {
		if err := tx.Domains().DeleteDomain(ctx, name); err != nil {
			return err
		}
		return s.record(ctx, tx, domainEntry(actionDomainDelete, name))
	})
	switch {
	case errors.Is(err, store.ErrNotFound):
		return httpapi.Error(http.StatusNotFound, "not_found", "domain not found", nil)
	case errors.Is(err, store.ErrConflict):
		return httpapi.Error(http.StatusConflict, "domain_in_use", "the domain is still named by grants (or used by targets); revoke or move them first", nil)
	case err != nil:
		return err
	}
	s.opt.Cache.Invalidate()
	if s.opt.DomainDeleted != nil {
		s.opt.DomainDeleted(context.WithoutCancel(ctx), name)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// ---- grants ----

// Grant is the wire form of a grant.
type Grant struct {
	ID          string    `json:"id"`
	SubjectKind string    `json:"subject_kind"`
	SubjectID   string    `json:"subject_id"`
	Domain      string    `json:"domain"`
	Privilege   string    `json:"privilege"`
	CreatedAt   time.Time `json:"created_at,omitzero"`
}

func grantView(g store.Grant) Grant {
	return Grant{ID: g.ID, SubjectKind: g.SubjectKind, SubjectID: g.SubjectID, Domain: g.Domain, Privilege: g.Privilege, CreatedAt: g.CreatedAt}
}

// visible: admins see every grant; others see the grants that concern
// them (theirs and their groups') and those on domains they administer.
func visible(pol *access.Policy, req access.Requester, g store.Grant) bool {
	if req.Admin {
		return true
	}
	switch access.SubjectKind(g.SubjectKind) {
	case req.Kind:
		if g.SubjectID == req.ID {
			return true
		}
	case access.SubjectKind("group"):
		for _, gr := range req.Groups {
			if gr == g.SubjectID {
				return true
			}
		}
	}
	ag, err := toAccess(g)
	return err == nil && pol.MayGrant(req, ag) == nil
}

func (s *Service) listGrants(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	pol, err := s.opt.Cache.Policy(ctx)
	if err != nil {
		return err
	}
	var gs []store.Grant
	if err := s.opt.Store.InTx(ctx, func(tx store.Tx) error {
		var err error
		gs, err = tx.Grants().ListGrants(ctx)
		return err
	}); err != nil {
		return err
	}
	req := requester(r)
	out := []Grant{}
	for _, g := range gs {
		if visible(pol, req, g) {
			out = append(out, grantView(g))
		}
	}
	httpapi.WriteJSON(w, http.StatusOK, out)
	return nil
}

func (s *Service) createGrant(w http.ResponseWriter, r *http.Request) error {
	var in Grant
	if err := httpapi.DecodeJSON(r, &in); err != nil {
		return err
	}
	ctx := r.Context()
	priv, err := access.ParsePrivilege(in.Privilege)
	if err != nil {
		return httpapi.Error(http.StatusUnprocessableEntity, "invalid_grant", err.Error(), nil)
	}
	g := access.Grant{ID: newGrantID(), Subject: access.Subject{Kind: access.SubjectKind(in.SubjectKind), ID: in.SubjectID},
		Domain: in.Domain, Privilege: priv}
	pol, err := s.opt.Cache.Policy(ctx)
	if err != nil {
		return err
	}
	req := requester(r)
	// refuse records a refused grant and answers he, or the audit error
	// when the refusal cannot be recorded.
	refuse := func(outcome string, he *httpapi.HTTPError) error {
		if err := s.write(ctx, grantRefusal(outcome, he.Code, in.Domain, in.SubjectKind, in.Privilege)); err != nil {
			return err
		}
		return he
	}
	if err := pol.MayGrant(req, g); err != nil {
		if errors.Is(err, access.ErrInvalid) {
			return httpapi.Error(http.StatusUnprocessableEntity, "invalid_grant", err.Error(), nil)
		}
		return refuse(audit.OutcomeDenied, httpapi.Error(http.StatusForbidden, "forbidden", err.Error(), nil))
	}
	// Only after the authority check: otherwise anyone signed in could
	// tell which user and service account ids exist (422 vs 403).
	if err := s.checkSubject(ctx, g.Subject); err != nil {
		return err
	}
	if err := pol.CheckNewGrant(g); err != nil {
		switch {
		case errors.Is(err, access.ErrDuplicate):
			return refuse(audit.OutcomeFailure, httpapi.Error(http.StatusConflict, "grant_exists", err.Error(), nil))
		case errors.Is(err, access.ErrRedundant):
			return refuse(audit.OutcomeFailure, httpapi.Error(http.StatusConflict, "grant_redundant", err.Error(), nil))
		default:
			return httpapi.Error(http.StatusUnprocessableEntity, "invalid_grant", err.Error(), nil)
		}
	}
	sg := store.Grant{ID: g.ID, SubjectKind: string(g.Subject.Kind), SubjectID: g.Subject.ID, Domain: g.Domain,
		Privilege: g.Privilege.String(), CreatedBy: req.ID, CreatedAt: s.now()}
	err = s.opt.Store.InTx(ctx, func(tx store.Tx) error {
		if err := tx.Grants().CreateGrant(ctx, sg); err != nil {
			return err
		}
		return s.record(ctx, tx, grantEntry(actionGrantCreate, sg))
	})
	s.opt.Cache.Invalidate() // also after a conflict: the cache was stale
	switch {
	case errors.Is(err, store.ErrNotFound):
		return httpapi.Error(http.StatusUnprocessableEntity, "unknown_domain", "the domain does not exist; an admin creates it first", nil)
	case errors.Is(err, store.ErrConflict):
		return refuse(audit.OutcomeFailure, httpapi.Error(http.StatusConflict, "grant_exists",
			"this subject already has a grant on this domain; revoke it first", nil))
	case err != nil:
		return err
	}
	httpapi.WriteJSON(w, http.StatusCreated, grantView(sg))
	return nil
}

// checkSubject refuses grants to users and service accounts that do not
// exist (groups are names from identity providers and are not listed).
func (s *Service) checkSubject(ctx context.Context, sub access.Subject) error {
	switch sub.Kind {
	case "user", "service-account":
		got, err := s.opt.Directory.Lookup(ctx, sub.ID)
		if errors.Is(err, identity.ErrInactive) || (err == nil && string(got.Principal.Kind) != string(sub.Kind)) {
			return httpapi.Error(http.StatusUnprocessableEntity, "unknown_subject", fmt.Sprintf("no active %s with this id", sub.Kind), nil)
		}
		return err
	case "group":
		if sub.ID == "" || len(sub.ID) > 256 || strings.ContainsAny(sub.ID, "\x00\r\n") {
			return httpapi.Error(http.StatusUnprocessableEntity, "invalid_grant", "group names are 1 to 256 characters on one line", nil)
		}
		return nil
	default:
		return httpapi.Error(http.StatusUnprocessableEntity, "invalid_grant", `subject_kind must be "user", "group" or "service-account"`, nil)
	}
}

func (s *Service) deleteGrant(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	ctx := r.Context()
	pol, err := s.opt.Cache.Policy(ctx)
	if err != nil {
		return err
	}
	req := requester(r)
	notFound := httpapi.Error(http.StatusNotFound, "not_found", "grant not found", nil)
	forbidden := httpapi.Error(http.StatusForbidden, "forbidden", "revoking this grant needs all on its domain", nil)
	var g store.Grant
	err = s.opt.Store.InTx(ctx, func(tx store.Tx) error {
		var err error
		if g, err = tx.Grants().GrantByID(ctx, id); err != nil {
			return err
		}
		ag, err := toAccess(g)
		if err != nil {
			return err
		}
		if pol.MayGrant(req, ag) != nil {
			if visible(pol, req, g) {
				return forbidden
			}
			return notFound
		}
		if err := tx.Grants().DeleteGrant(ctx, id); err != nil {
			return err
		}
		return s.record(ctx, tx, grantEntry(actionGrantRevoke, g))
	})
	switch {
	case errors.Is(err, store.ErrNotFound):
		return notFound
	case errors.Is(err, forbidden):
		// Whoever can see a grant but not revoke it is refused on the
		// record; a grant they cannot see stays a plain 404.
		e := grantEntry(actionGrantRevoke, g)
		e.Outcome, e.Reason = audit.OutcomeDenied, "code=forbidden "+e.Reason
		if err := s.write(ctx, e); err != nil {
			return err
		}
		return forbidden
	case err != nil:
		return err
	}
	s.opt.Cache.Invalidate()
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// ---- check ----

// CheckResult explains a decision.
type CheckResult struct {
	Allowed   bool   `json:"allowed"`
	Effective string `json:"effective"`
	Admin     bool   `json:"admin,omitempty"`
	Grant     *Grant `json:"grant,omitempty"`
	Reason    string `json:"reason"`
}

func (s *Service) check(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	ctx := r.Context()
	self := principalOf(r)
	kind, err := access.ParseKind(q.Get("kind"))
	if err != nil {
		return httpapi.Error(http.StatusBadRequest, "invalid_request", err.Error(), nil)
	}
	want, err := access.ParsePrivilege(q.Get("privilege"))
	if err != nil || want == access.None {
		return httpapi.Error(http.StatusBadRequest, "invalid_request", "privilege must be infer, read or all", nil)
	}
	domain := q.Get("domain")
	if domain == access.Wildcard {
		// As in grants, "*" names the targets without a domain.
		domain = ""
	}
	if domain != "" {
		if err := access.ValidateDomain(domain); err != nil {
			return httpapi.Error(http.StatusBadRequest, "invalid_request", err.Error(), nil)
		}
	}
	who := self
	if id := q.Get("subject"); id != "" && id != self.ID {
		if !self.Admin {
			return httpapi.Error(http.StatusForbidden, "forbidden", "only admins may check other subjects", nil)
		}
		sub, err := s.opt.Directory.Lookup(ctx, id)
		if errors.Is(err, identity.ErrInactive) {
			return httpapi.Error(http.StatusNotFound, "not_found", "no active subject with this id", nil)
		}
		if err != nil {
			return err
		}
		who = sub.Principal
	}
	pol, err := s.opt.Cache.Policy(ctx)
	if err != nil {
		return err
	}
	d := pol.Decide(RequesterOf(who), access.Target{Kind: kind, Domain: domain}, want)
	out := CheckResult{Allowed: d.Allowed, Effective: d.Effective.String(), Admin: d.Admin, Reason: d.Reason}
	decisive := d.Grant
	if decisive == nil && !d.Admin && d.Effective > access.None {
		// Denied, but something is held: name the grant that gives it.
		_, decisive = pol.Effective(RequesterOf(who), domain)
	}
	if decisive != nil {
		g := Grant{ID: decisive.ID, SubjectKind: string(decisive.Subject.Kind), SubjectID: decisive.Subject.ID,
			Domain: decisive.Domain, Privilege: decisive.Privilege.String()}
		out.Grant = &g
	}
	httpapi.WriteJSON(w, http.StatusOK, out)
	return nil
}

// ---- helpers ----

func principalOf(r *http.Request) principal.Principal {
	p, _ := principal.FromContext(r.Context())
	return p
}

func requester(r *http.Request) access.Requester { return RequesterOf(principalOf(r)) }

func newGrantID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return "g-" + hex.EncodeToString(b[:])
}

// Allowed reports whether p holds want on t, recording nothing: for
// filtering listings, where a target left out is no denied request.
func (s *Service) Allowed(ctx context.Context, p principal.Principal, t access.Target, want access.Privilege) (bool, error) {
	pol, err := s.opt.Cache.Policy(ctx)
	if err != nil {
		return false, err
	}
	return pol.Decide(RequesterOf(p), t, want).Allowed, nil
}
