package app

// GET /api/v1/me/export: everything Rampart holds about the caller, in one
// JSON document (GDPR Art. 15 access and Art. 20 portability). It never
// holds a secret: no password hash, TOTP secret, client secret or its
// hash, token or login state. It names other people only by what the
// caller's own data already holds (a grant's domain, a record's
// pseudonyms).

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/rampart-ml/rampart/internal/audit"
	"github.com/rampart-ml/rampart/internal/authz"
	"github.com/rampart-ml/rampart/internal/httpapi"
	"github.com/rampart-ml/rampart/internal/principal"
	"github.com/rampart-ml/rampart/internal/store"
)

// Export is the answer of GET /api/v1/me/export.
type Export struct {
	ExportedAt time.Time     `json:"exported_at"`
	Subject    ExportSubject `json:"subject"`
	// Profile is nil for federated users and service accounts, which
	// have no account here.
	Profile *ExportProfile `json:"profile"`
	// ServiceAccounts are those the caller owns (for a service account:
	// itself).
	ServiceAccounts []ExportServiceAccount `json:"service_accounts"`
	// Grants are those whose grantee is the caller or a service account
	// the caller owns.
	Grants       []authz.Grant `json:"grants"`
	OwnedTargets OwnedTargets  `json:"owned_targets"`
	// AuditRecords are every record whose actor or target is the
	// caller's pseudonym, this export's own record included.
	AuditRecords []json.RawMessage `json:"audit_records"`
}

// ExportSubject says who the export is about.
type ExportSubject struct {
	ID        string `json:"id"`
	Kind      string `json:"kind"` // "user", "service-account" or "federated"
	Pseudonym string `json:"pseudonym"`
}

// ExportProfile is a local account without its credentials and login state.
type ExportProfile struct {
	Name               string    `json:"name"`
	Email              string    `json:"email"`
	Admin              bool      `json:"admin"`
	Auditor            bool      `json:"auditor"`
	Disabled           bool      `json:"disabled"`
	MustChangePassword bool      `json:"must_change_password"`
	CreatedAt          time.Time `json:"created_at"`
	HasTOTP            bool      `json:"has_totp"`
}

// ExportServiceAccount is a service account with the ids and lifetimes of
// its credentials, never their values.
type ExportServiceAccount struct {
	ID            string             `json:"id"`
	Name          string             `json:"name"`
	Description   string             `json:"description"`
	Disabled      bool               `json:"disabled"`
	ExpiresAt     *time.Time         `json:"expires_at"`
	CreatedAt     time.Time          `json:"created_at"`
	ClientSecrets []ExportCredential `json:"client_secrets"`
	ClientKeys    []ExportCredential `json:"client_keys"`
}

// ExportCredential is a client secret or key by id.
type ExportCredential struct {
	ID        string     `json:"id"`
	CreatedAt time.Time  `json:"created_at"`
	ExpiresAt *time.Time `json:"expires_at"`
}

// OwnedTargets are the targets linked to the caller.
type OwnedTargets struct {
	// Domains have no owner; they record who created them, and those the
	// caller created are listed.
	Domains []authz.Domain `json:"domains"`
	// Models and services do not exist yet (registry and services
	// issues); they will list those the caller onboarded or started.
	Models   []struct{} `json:"models"`
	Services []struct{} `json:"services"`
}

func (a *App) mountExport() {
	a.api.Handle(httpapi.Route{Pattern: "GET /api/v1/me/export", Access: httpapi.Authenticated, Handler: a.exportSelf})
}

// exportSelf answers the export. Its record ("account.export") is
// committed first, so nothing is sent unrecorded and the export lists its
// own record; the data is then read in one snapshot through the read-only
// handle, so scanning a long audit log never holds up writers.
func (a *App) exportSelf(w http.ResponseWriter, r *http.Request) error {
	p, _ := principal.FromContext(r.Context())
	ctx := r.Context()
	targetKind := subjectUser
	if p.Kind == principal.ServiceAccount {
		targetKind = subjectServiceAccount
	}
	if err := a.recorder.Write(ctx, audit.Entry{
		Action: "account.export", Target: audit.Target{Kind: targetKind}, TargetSubject: p.ID,
	}); err != nil {
		return err
	}
	var out Export
	err := a.auditReader.InTx(ctx, func(tx store.Tx) (err error) {
		out, err = a.collectExport(ctx, tx, p)
		return err
	})
	if err != nil {
		return err
	}
	httpapi.WriteJSON(w, http.StatusOK, out)
	return nil
}

// collectExport gathers what tx holds about p.
func (a *App) collectExport(ctx context.Context, tx store.Tx, p principal.Principal) (Export, error) {
	pseudonym, err := a.recorder.PseudonymOf(ctx, tx, p.ID)
	if err != nil {
		return Export{}, err
	}
	out := Export{
		ExportedAt:   time.Now().UTC(),
		Subject:      ExportSubject{ID: p.ID, Kind: subjectKindOf(p), Pseudonym: pseudonym},
		OwnedTargets: OwnedTargets{Domains: []authz.Domain{}, Models: []struct{}{}, Services: []struct{}{}},
	}
	if out.Subject.Kind == subjectUser {
		if out.Profile, err = exportProfile(ctx, tx, p.ID); err != nil {
			return Export{}, err
		}
	}
	if out.ServiceAccounts, err = exportServiceAccounts(ctx, tx, p); err != nil {
		return Export{}, err
	}
	grantees := map[string]bool{p.ID: true}
	for _, sa := range out.ServiceAccounts {
		grantees[sa.ID] = true
	}
	if out.Grants, out.OwnedTargets.Domains, err = exportAccess(ctx, tx, p.ID, grantees); err != nil {
		return Export{}, err
	}
	if out.AuditRecords, err = exportRecords(ctx, tx, pseudonym); err != nil {
		return Export{}, err
	}
	return out, nil
}

func subjectKindOf(p principal.Principal) string {
	switch {
	case p.Kind == principal.ServiceAccount:
		return subjectServiceAccount
	case isFederated(p.ID):
		return subjectFederated
	default:
		return subjectUser
	}
}

// exportProfile returns the account id without its secrets, or nil when
// there is none (a principal from a client certificate, say).
func exportProfile(ctx context.Context, tx store.Tx, id string) (*ExportProfile, error) {
	acc, err := tx.Accounts().AccountByID(ctx, id)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, nil
		}
		return nil, fmt.Errorf("export profile: %w", err)
	}
	return &ExportProfile{
		Name: acc.Name, Email: acc.Email, Admin: acc.Admin, Auditor: acc.Auditor, Disabled: acc.Disabled,
		MustChangePassword: acc.MustChangePassword, CreatedAt: acc.CreatedAt.UTC(), HasTOTP: acc.TOTPSecret != nil,
	}, nil
}

// exportServiceAccounts returns the service accounts p owns, or p itself
// when it is one.
func exportServiceAccounts(ctx context.Context, tx store.Tx, p principal.Principal) ([]ExportServiceAccount, error) {
	all, err := tx.ServiceAccounts().ListServiceAccounts(ctx)
	if err != nil {
		return nil, fmt.Errorf("export service accounts: %w", err)
	}
	out := []ExportServiceAccount{}
	for _, sa := range all {
		if sa.OwnerID != p.ID && sa.ID != p.ID {
			continue
		}
		v := ExportServiceAccount{ID: sa.ID, Name: sa.Name, Description: sa.Description, Disabled: sa.Disabled,
			ExpiresAt: optTime(sa.ExpiresAt), CreatedAt: sa.CreatedAt.UTC(),
			ClientSecrets: []ExportCredential{}, ClientKeys: []ExportCredential{}}
		secrets, err := tx.ServiceAccounts().ClientSecrets(ctx, sa.ID)
		if err != nil {
			return nil, fmt.Errorf("export client secrets: %w", err)
		}
		for _, s := range secrets {
			v.ClientSecrets = append(v.ClientSecrets, ExportCredential{ID: s.ID, CreatedAt: s.CreatedAt.UTC(), ExpiresAt: optTime(s.ExpiresAt)})
		}
		keys, err := tx.ServiceAccounts().ClientKeys(ctx, sa.ID)
		if err != nil {
			return nil, fmt.Errorf("export client keys: %w", err)
		}
		for _, k := range keys {
			v.ClientKeys = append(v.ClientKeys, ExportCredential{ID: k.ID, CreatedAt: k.CreatedAt.UTC(), ExpiresAt: optTime(k.ExpiresAt)})
		}
		out = append(out, v)
	}
	return out, nil
}

// exportAccess returns the grants to the grantees (users and service
// accounts by id; group grants are about groups, not the caller) and the
// domains id created.
func exportAccess(ctx context.Context, tx store.Tx, id string, grantees map[string]bool) ([]authz.Grant, []authz.Domain, error) {
	gs, err := tx.Grants().ListGrants(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("export grants: %w", err)
	}
	grants := []authz.Grant{}
	for _, g := range gs {
		if (g.SubjectKind == "user" || g.SubjectKind == "service-account") && grantees[g.SubjectID] {
			grants = append(grants, authz.Grant{ID: g.ID, SubjectKind: g.SubjectKind, SubjectID: g.SubjectID,
				Domain: g.Domain, Privilege: g.Privilege, CreatedAt: g.CreatedAt.UTC()})
		}
	}
	ds, err := tx.Domains().ListDomains(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("export domains: %w", err)
	}
	domains := []authz.Domain{}
	for _, d := range ds {
		if d.CreatedBy == id {
			domains = append(domains, authz.Domain{Name: d.Name, CreatedAt: d.CreatedAt.UTC()})
		}
	}
	return grants, domains, nil
}

// exportRecords returns every record whose actor or target is pseudonym.
func exportRecords(ctx context.Context, tx store.Tx, pseudonym string) ([]json.RawMessage, error) {
	out := []json.RawMessage{}
	q := store.AuditQuery{Subject: pseudonym, Limit: recordPage}
	for {
		page, err := tx.Audit().FindAuditRecords(ctx, q)
		if err != nil {
			return nil, fmt.Errorf("export audit records: %w", err)
		}
		for _, r := range page {
			out = append(out, recordLine(r))
		}
		if len(page) < q.Limit {
			return out, nil
		}
		q.AfterSeq = page[len(page)-1].Seq
	}
}

// optTime is nil for the zero time ("never").
func optTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}
