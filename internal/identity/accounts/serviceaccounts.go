package accounts

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/rampart-ml/rampart/internal/audit"
	"github.com/rampart-ml/rampart/internal/httpapi"
	"github.com/rampart-ml/rampart/internal/identity"
	"github.com/rampart-ml/rampart/internal/principal"
	"github.com/rampart-ml/rampart/internal/store"
)

// Limits on what one user can make the server store.
const (
	maxServiceAccountsPerOwner = 100
	maxSecretsPerAccount       = 10 // valid (unexpired) ones
	maxKeysPerAccount          = 10
	maxSecretOverlap           = 30 * 24 * time.Hour
	minSecretLifetime          = time.Minute
	maxSecretLifetime          = 10 * 365 * 24 * time.Hour
	// clientSecretPrefix marks Rampart client secrets so secret scanners
	// can find leaked ones.
	clientSecretPrefix = "rsa_"
)

// ServiceAccount is a machine identity as its owner and admins see it. ID
// is its OAuth client_id.
type ServiceAccount struct {
	ID          string     `json:"id"`
	Name        string     `json:"name"`
	Description string     `json:"description"`
	OwnerID     string     `json:"owner_id"`
	Disabled    bool       `json:"disabled"`
	ExpiresAt   *time.Time `json:"expires_at,omitempty"`
	CreatedAt   time.Time  `json:"created_at"`
}

func serviceAccountView(sa store.ServiceAccount) ServiceAccount {
	return ServiceAccount{
		ID: sa.ID, Name: sa.Name, Description: sa.Description, OwnerID: sa.OwnerID, Disabled: sa.Disabled,
		ExpiresAt: optTime(sa.ExpiresAt), CreatedAt: sa.CreatedAt.UTC(),
	}
}

// ServiceAccountList answers GET /api/v1/service-accounts.
type ServiceAccountList struct {
	ServiceAccounts []ServiceAccount `json:"service_accounts"`
}

// listServiceAccounts lists every service account for admins, and the
// caller's own for everyone else.
func (s *Service) listServiceAccounts(w http.ResponseWriter, r *http.Request) error {
	p := caller(r)
	ctx := r.Context()
	var all []store.ServiceAccount
	err := s.opt.Store.InTx(ctx, func(tx store.Tx) error {
		var err error
		all, err = tx.ServiceAccounts().ListServiceAccounts(ctx)
		return err
	})
	if err != nil {
		return fmt.Errorf("list service accounts: %w", err)
	}
	out := ServiceAccountList{ServiceAccounts: []ServiceAccount{}}
	for _, sa := range all {
		if p.Admin || sa.OwnerID == p.ID {
			out.ServiceAccounts = append(out.ServiceAccounts, serviceAccountView(sa))
		}
	}
	httpapi.WriteJSON(w, http.StatusOK, out)
	return nil
}

// loadServiceAccount returns the service account named by the path's {id}
// if the caller may manage it: its owner or an admin. For anyone else it
// does not exist.
func (s *Service) loadServiceAccount(r *http.Request) (store.ServiceAccount, error) {
	id := r.PathValue("id")
	if !validPathID(id) || !strings.HasPrefix(id, identity.ServiceAccountIDPrefix) {
		return store.ServiceAccount{}, notFound("service account")
	}
	ctx := r.Context()
	var sa store.ServiceAccount
	err := s.opt.Store.InTx(ctx, func(tx store.Tx) error {
		var err error
		sa, err = tx.ServiceAccounts().ServiceAccountByID(ctx, id)
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return store.ServiceAccount{}, notFound("service account")
	}
	if err != nil {
		return store.ServiceAccount{}, fmt.Errorf("load service account %s: %w", id, err)
	}
	if p := caller(r); !p.Admin && sa.OwnerID != p.ID {
		return store.ServiceAccount{}, notFound("service account")
	}
	return sa, nil
}

func (s *Service) getServiceAccount(w http.ResponseWriter, r *http.Request) error {
	sa, err := s.loadServiceAccount(r)
	if err != nil {
		return err
	}
	httpapi.WriteJSON(w, http.StatusOK, serviceAccountView(sa))
	return nil
}

// CreateServiceAccountRequest is the body of POST /api/v1/service-accounts.
type CreateServiceAccountRequest struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	// ExpiresAt (RFC 3339) ends the service account; absent means never.
	ExpiresAt string `json:"expires_at,omitempty"`
}

// CreatedServiceAccount answers POST /api/v1/service-accounts. The client
// secret is shown only here.
type CreatedServiceAccount struct {
	ServiceAccount
	ClientSecret   string `json:"client_secret"`
	ClientSecretID string `json:"client_secret_id"`
}

// createServiceAccount makes a service account owned by the caller, with
// a first client secret.
func (s *Service) createServiceAccount(w http.ResponseWriter, r *http.Request) error {
	p := caller(r)
	if p.Kind != principal.User {
		return httpapi.Error(http.StatusForbidden, "not_a_user", "service accounts cannot create service accounts", nil)
	}
	var req CreateServiceAccountRequest
	if err := httpapi.DecodeJSON(r, &req); err != nil {
		return err
	}
	if err := validateName("name", req.Name); err != nil {
		return err
	}
	if err := validateDescription(req.Description); err != nil {
		return err
	}
	now := s.now().UTC()
	var exp time.Time
	if req.ExpiresAt != "" {
		var err error
		if exp, err = parseFutureTime("expires_at", req.ExpiresAt, now); err != nil {
			return err
		}
	}
	sa := store.ServiceAccount{
		ID: identity.ServiceAccountIDPrefix + randomHex(16), Name: req.Name, Description: req.Description,
		OwnerID: p.ID, ExpiresAt: exp, CreatedAt: now.Truncate(time.Second),
	}
	secret, cs := newClientSecret(sa.ID, now, time.Time{})
	ctx := r.Context()
	err := s.opt.Store.InTx(ctx, func(tx store.Tx) error {
		if !p.Admin {
			n, err := ownsServiceAccounts(ctx, tx, p.ID)
			if err != nil {
				return err
			}
			if n >= maxServiceAccountsPerOwner {
				return httpapi.Error(http.StatusConflict, "limit_reached",
					fmt.Sprintf("an account may own at most %d service accounts", maxServiceAccountsPerOwner), nil)
			}
		}
		if err := tx.ServiceAccounts().CreateServiceAccount(ctx, sa); err != nil {
			return err
		}
		if err := tx.ServiceAccounts().AddClientSecret(ctx, cs); err != nil {
			return err
		}
		if err := s.opt.Recorder.Record(ctx, tx, subjectTarget("service-account.create", sa.ID)); err != nil {
			return err
		}
		return s.opt.Recorder.Record(ctx, tx, secretRecord("client-secret.create", cs))
	})
	switch {
	case errors.Is(err, store.ErrConflict):
		return httpapi.Error(http.StatusConflict, "name_taken", "a service account with this name already exists", nil)
	case errors.Is(err, store.ErrNotFound):
		// The owner is not a local account (a federated user).
		return httpapi.Error(http.StatusForbidden, "not_a_local_account", "only accounts managed by Rampart can own service accounts", nil)
	case err != nil:
		return fmt.Errorf("create service account: %w", err)
	}
	httpapi.WriteJSON(w, http.StatusCreated, CreatedServiceAccount{
		ServiceAccount: serviceAccountView(sa), ClientSecret: secret, ClientSecretID: cs.ID,
	})
	return nil
}

// UpdateServiceAccountRequest is the body of PATCH
// /api/v1/service-accounts/{id}; absent fields stay as they are.
type UpdateServiceAccountRequest struct {
	Disabled    *bool   `json:"disabled,omitempty"`
	Description *string `json:"description,omitempty"`
	// ExpiresAt: an RFC 3339 time, or null for "never".
	ExpiresAt nullableString `json:"expires_at"`
	// OwnerID gives the service account to another account (admins only).
	OwnerID *string `json:"owner_id,omitempty"`
}

func (s *Service) updateServiceAccount(w http.ResponseWriter, r *http.Request) error {
	sa, err := s.loadServiceAccount(r)
	if err != nil {
		return err
	}
	var req UpdateServiceAccountRequest
	if err := httpapi.DecodeJSON(r, &req); err != nil {
		return err
	}
	if req.Description != nil {
		if err := validateDescription(*req.Description); err != nil {
			return err
		}
	}
	var exp time.Time
	if req.ExpiresAt.Set && !req.ExpiresAt.Null {
		if exp, err = parseFutureTime("expires_at", req.ExpiresAt.Value, s.now()); err != nil {
			return err
		}
	}
	if req.OwnerID != nil && !caller(r).Admin {
		return httpapi.Error(http.StatusForbidden, "forbidden", "only admins can give a service account to another owner", nil)
	}
	ctx := r.Context()
	err = s.opt.Store.InTx(ctx, func(tx store.Tx) error {
		cur, err := tx.ServiceAccounts().ServiceAccountByID(ctx, sa.ID)
		if err != nil {
			return err
		}
		before := cur
		if req.Disabled != nil {
			cur.Disabled = *req.Disabled
		}
		if req.Description != nil {
			cur.Description = *req.Description
		}
		if req.ExpiresAt.Set {
			cur.ExpiresAt = exp
		}
		if req.OwnerID != nil {
			owner, err := tx.Accounts().AccountByID(ctx, *req.OwnerID)
			if errors.Is(err, store.ErrNotFound) || (err == nil && owner.Anonymized) {
				return invalid("owner_id", "must be the id of an existing account")
			}
			if err != nil {
				return err
			}
			cur.OwnerID = owner.ID
		}
		sa = cur
		if err := tx.ServiceAccounts().UpdateServiceAccount(ctx, cur); err != nil {
			return err
		}
		var ch fieldChanges
		ch.add("disabled", cur.Disabled != before.Disabled)
		ch.add("description", cur.Description != before.Description)
		ch.add("expires_at", !cur.ExpiresAt.Equal(before.ExpiresAt))
		ch.add("owner_id", cur.OwnerID != before.OwnerID)
		e := subjectTarget("service-account.update", sa.ID)
		e.Reason = ch.String()
		return s.opt.Recorder.Record(ctx, tx, e)
	})
	if errors.Is(err, store.ErrNotFound) {
		return notFound("service account")
	}
	if err != nil {
		return fmt.Errorf("update service account %s: %w", sa.ID, err)
	}
	if sa.Disabled {
		if err := s.endSessionsAfter(ctx, sa.ID, "service_account_disabled"); err != nil {
			return err
		}
	}
	s.opt.Directory.Invalidate(sa.ID)
	httpapi.WriteJSON(w, http.StatusOK, serviceAccountView(sa))
	return nil
}

// deleteServiceAccount deletes a service account. Its pseudonym is kept:
// a machine is no data subject, and auditors go on resolving its records.
func (s *Service) deleteServiceAccount(w http.ResponseWriter, r *http.Request) error {
	sa, err := s.loadServiceAccount(r)
	if err != nil {
		return err
	}
	ctx := r.Context()
	if err := s.endSessions(ctx, sa.ID, "service_account_delete"); err != nil {
		return err
	}
	err = s.opt.Store.InTx(ctx, func(tx store.Tx) error {
		if _, err := tx.Grants().DeleteGrantsOfSubject(ctx, "service-account", sa.ID); err != nil {
			return err
		}
		if err := tx.ServiceAccounts().DeleteServiceAccount(ctx, sa.ID); err != nil {
			return err
		}
		return s.opt.Recorder.Record(ctx, tx, subjectTarget("service-account.delete", sa.ID))
	})
	if errors.Is(err, store.ErrNotFound) {
		return notFound("service account")
	}
	if err != nil {
		return fmt.Errorf("delete service account %s: %w", sa.ID, err)
	}
	s.opt.Directory.Invalidate(sa.ID)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// ---- client secrets ----

// newClientSecret makes a 256-bit secret; only its SHA-256 is stored.
func newClientSecret(serviceAccountID string, now, exp time.Time) (string, store.ClientSecret) {
	var b [32]byte
	_, _ = rand.Read(b[:])
	secret := clientSecretPrefix + base64.RawURLEncoding.EncodeToString(b[:])
	h := sha256.Sum256([]byte(secret))
	return secret, store.ClientSecret{
		ID: randomHex(8), ServiceAccountID: serviceAccountID, Hash: h[:], CreatedAt: now, ExpiresAt: exp,
	}
}

// secretRecord is the audit entry of an action on a client secret; the
// target names the service account and the secret's id, never the secret.
func secretRecord(action string, cs store.ClientSecret) audit.Entry {
	return audit.Entry{Action: action, Target: audit.Target{Kind: "client-secret", ID: cs.ServiceAccountID + "/" + cs.ID}}
}

// ClientSecret describes a secret without revealing it; Secret is set only
// in the response that created it.
type ClientSecret struct {
	ID        string     `json:"id"`
	Secret    string     `json:"secret,omitempty"`
	CreatedAt time.Time  `json:"created_at"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
}

func secretView(cs store.ClientSecret) ClientSecret {
	return ClientSecret{ID: cs.ID, CreatedAt: cs.CreatedAt.UTC(), ExpiresAt: optTime(cs.ExpiresAt)}
}

// SecretList answers GET /api/v1/service-accounts/{id}/secrets.
type SecretList struct {
	Secrets []ClientSecret `json:"secrets"`
}

func (s *Service) listSecrets(w http.ResponseWriter, r *http.Request) error {
	sa, err := s.loadServiceAccount(r)
	if err != nil {
		return err
	}
	ctx := r.Context()
	var all []store.ClientSecret
	err = s.opt.Store.InTx(ctx, func(tx store.Tx) error {
		var err error
		all, err = tx.ServiceAccounts().ClientSecrets(ctx, sa.ID)
		return err
	})
	if err != nil {
		return fmt.Errorf("list secrets of %s: %w", sa.ID, err)
	}
	out := SecretList{Secrets: []ClientSecret{}}
	for _, cs := range all {
		out.Secrets = append(out.Secrets, secretView(cs))
	}
	httpapi.WriteJSON(w, http.StatusOK, out)
	return nil
}

// RotateSecretRequest is the body of POST .../secrets.
type RotateSecretRequest struct {
	// Overlap is how long the existing secrets keep working ("1h"); "0s"
	// (the default) ends them at once.
	Overlap string `json:"overlap,omitempty"`
	// ExpiresIn limits the new secret's life ("2160h"); absent means never.
	ExpiresIn string `json:"expires_in,omitempty"`
}

// rotateSecret adds a new secret and lets the existing ones expire after
// the overlap, so clients can switch without downtime.
func (s *Service) rotateSecret(w http.ResponseWriter, r *http.Request) error {
	sa, err := s.loadServiceAccount(r)
	if err != nil {
		return err
	}
	var req RotateSecretRequest
	if r.ContentLength != 0 {
		if err := httpapi.DecodeJSON(r, &req); err != nil {
			return err
		}
	}
	var overlap time.Duration
	if req.Overlap != "" {
		if overlap, err = parseDuration("overlap", req.Overlap, 0, maxSecretOverlap); err != nil {
			return err
		}
	}
	now := s.now().UTC()
	var exp time.Time
	if req.ExpiresIn != "" {
		d, err := parseDuration("expires_in", req.ExpiresIn, minSecretLifetime, maxSecretLifetime)
		if err != nil {
			return err
		}
		exp = now.Add(d)
	}
	secret, cs := newClientSecret(sa.ID, now, exp)
	ctx := r.Context()
	err = s.opt.Store.InTx(ctx, func(tx store.Tx) error {
		if err := tx.ServiceAccounts().ExpireClientSecrets(ctx, sa.ID, now.Add(overlap)); err != nil {
			return err
		}
		all, err := tx.ServiceAccounts().ClientSecrets(ctx, sa.ID)
		if err != nil {
			return err
		}
		valid := 0
		for _, old := range all {
			if old.ExpiresAt.IsZero() || now.Before(old.ExpiresAt) {
				valid++
				continue
			}
			// Expired secrets are useless: drop them while here.
			if err := tx.ServiceAccounts().DeleteClientSecret(ctx, sa.ID, old.ID); err != nil {
				return err
			}
			e := secretRecord("client-secret.delete", old)
			e.Reason = "expired"
			if err := s.opt.Recorder.Record(ctx, tx, e); err != nil {
				return err
			}
		}
		if valid >= maxSecretsPerAccount {
			return httpapi.Error(http.StatusConflict, "limit_reached", fmt.Sprintf(
				"a service account may have at most %d valid secrets; rotate with a shorter overlap or delete some", maxSecretsPerAccount), nil)
		}
		if err := tx.ServiceAccounts().AddClientSecret(ctx, cs); err != nil {
			return err
		}
		return s.opt.Recorder.Record(ctx, tx, secretRecord("client-secret.create", cs))
	})
	if errors.Is(err, store.ErrNotFound) {
		return notFound("service account")
	}
	if err != nil {
		return fmt.Errorf("rotate secret of %s: %w", sa.ID, err)
	}
	out := secretView(cs)
	out.Secret = secret
	httpapi.WriteJSON(w, http.StatusCreated, out)
	return nil
}

func (s *Service) deleteSecret(w http.ResponseWriter, r *http.Request) error {
	sa, err := s.loadServiceAccount(r)
	if err != nil {
		return err
	}
	id := r.PathValue("secretID")
	if !validPathID(id) {
		return notFound("secret")
	}
	ctx := r.Context()
	err = s.opt.Store.InTx(ctx, func(tx store.Tx) error {
		if err := tx.ServiceAccounts().DeleteClientSecret(ctx, sa.ID, id); err != nil {
			return err
		}
		return s.opt.Recorder.Record(ctx, tx, secretRecord("client-secret.delete", store.ClientSecret{ID: id, ServiceAccountID: sa.ID}))
	})
	if errors.Is(err, store.ErrNotFound) {
		return notFound("secret")
	}
	if err != nil {
		return fmt.Errorf("delete secret %s of %s: %w", id, sa.ID, err)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
