package registry

// This file is the admin API of the trust policy: the signer keys trusted
// per domain and the explicit, audited exceptions to signed-only
// admission. Every change is recorded in the audit log in the
// transaction that makes it.

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/rampart-ml/rampart/internal/access"
	"github.com/rampart-ml/rampart/internal/audit"
	"github.com/rampart-ml/rampart/internal/httpapi"
	"github.com/rampart-ml/rampart/internal/modelsign"
	"github.com/rampart-ml/rampart/internal/principal"
	"github.com/rampart-ml/rampart/internal/store"
)

// Audit actions of the trust policy.
const (
	ActionSignerKeyAdd            = "signer-key.add"
	ActionSignerKeyRevoke         = "signer-key.revoke"
	ActionSignerKeyDelete         = "signer-key.delete"
	ActionUnsignedAdmission       = "unsigned-admission.set"
	auditKindSignerKey            = "signer-key"
	auditKindDomain               = "domain"
	maxDescriptionLen             = 500
	keysBodyLimit           int64 = 32 << 10
)

// errNoRecorder: nothing may change unrecorded, so a missing recorder
// refuses every change (503) rather than lets it pass.
var errNoRecorder = fmt.Errorf("registry: no audit recorder configured: %w", audit.ErrWrite)

// KeysOptions configure a KeysAPI.
type KeysOptions struct {
	Store store.Store
	// Recorder writes the audit record of every change; without one every
	// change is refused with 503.
	Recorder *audit.Recorder
	Now      func() time.Time
}

// KeysAPI serves the admin routes of the trust policy.
type KeysAPI struct {
	opt KeysOptions
	now func() time.Time
}

// NewKeysAPI returns a KeysAPI.
func NewKeysAPI(o KeysOptions) *KeysAPI {
	if o.Now == nil {
		o.Now = time.Now
	}
	return &KeysAPI{opt: o, now: o.Now}
}

// Mount registers the routes; all are for admins only (the zero Access).
func (k *KeysAPI) Mount(api *httpapi.Server) {
	for _, rt := range []httpapi.Route{
		{Pattern: "POST /api/v1/signer-keys", MaxBodyBytes: keysBodyLimit, Handler: k.addKey},
		{Pattern: "GET /api/v1/signer-keys", Handler: k.listKeys},
		{Pattern: "POST /api/v1/signer-keys/{id}/revoke", Handler: k.revokeKey},
		{Pattern: "DELETE /api/v1/signer-keys/{id}", Handler: k.deleteKey},
		{Pattern: "PUT /api/v1/domains/{name}/unsigned-admission", MaxBodyBytes: 1 << 10, Handler: k.setUnsigned},
		{Pattern: "GET /api/v1/unsigned-admission", Handler: k.listUnsigned},
	} {
		api.Handle(rt)
	}
}

// SignerKey is the wire form of a signer key.
type SignerKey struct {
	ID          string    `json:"id"`
	Domain      string    `json:"domain"`
	Algorithm   string    `json:"algorithm"`
	PublicKey   string    `json:"public_key"`
	Description string    `json:"description,omitempty"`
	NotBefore   time.Time `json:"not_before"`
	NotAfter    time.Time `json:"not_after,omitzero"`
	RevokedAt   time.Time `json:"revoked_at,omitzero"`
	CreatedAt   time.Time `json:"created_at"`
}

func keyView(k store.SignerKey) SignerKey {
	return SignerKey{ID: k.ID, Domain: k.Domain, Algorithm: k.Algorithm, PublicKey: k.PublicKey,
		Description: k.Description, NotBefore: k.NotBefore, NotAfter: k.NotAfter, RevokedAt: k.RevokedAt,
		CreatedAt: k.CreatedAt}
}

// UnsignedAdmission is the wire form of one domain's exception.
type UnsignedAdmission struct {
	Domain  string `json:"domain"`
	Allowed bool   `json:"allowed"`
}

// AddKeyRequest is the body of POST /api/v1/signer-keys.
type AddKeyRequest struct {
	Domain      string     `json:"domain"`
	PublicKey   string     `json:"public_key"`
	Description string     `json:"description"`
	NotBefore   *time.Time `json:"not_before,omitempty"`
	NotAfter    *time.Time `json:"not_after,omitempty"`
}

func (k *KeysAPI) addKey(w http.ResponseWriter, r *http.Request) error {
	var in AddKeyRequest
	if err := httpapi.DecodeJSON(r, &in); err != nil {
		return err
	}
	if err := validKeyDomain(in.Domain); err != nil {
		return err
	}
	pub, err := modelsign.ParsePublicKeyPEM([]byte(in.PublicKey))
	if errors.Is(err, modelsign.ErrUnsupportedKey) {
		return unprocessable("unsupported_key", "unsupported key type: a signer key must be ECDSA P-256, P-384, P-521 or Ed25519", err)
	}
	if err != nil {
		return unprocessable("invalid_key", "public_key must be one PEM \"PUBLIC KEY\" block (PKIX)", err)
	}
	alg, err := algorithmOf(pub)
	if err != nil {
		return unprocessable("unsupported_key", err.Error(), err)
	}
	id, err := modelsign.KeyID(pub)
	if err != nil {
		return unprocessable("unsupported_key", "unsupported key type", err)
	}
	if len(in.Description) > maxDescriptionLen {
		return unprocessable("invalid_field", fmt.Sprintf("description is longer than %d bytes", maxDescriptionLen), nil)
	}
	now := k.now().UTC()
	key := store.SignerKey{
		ID: id, Domain: in.Domain, Algorithm: alg, Description: in.Description,
		NotBefore: now, CreatedBy: principalOf(r).ID, CreatedAt: now,
	}
	// The stored PEM is the canonical form whose hash is the id, so the
	// key and its id always agree whatever whitespace the client sent.
	key.PublicKey, err = canonicalPEM(pub)
	if err != nil {
		return err
	}
	if in.NotBefore != nil {
		key.NotBefore = in.NotBefore.UTC()
	}
	if in.NotAfter != nil {
		key.NotAfter = in.NotAfter.UTC()
		if !key.NotAfter.After(key.NotBefore) {
			return unprocessable("invalid_validity", "not_after must be later than not_before", nil)
		}
	}
	ctx := r.Context()
	err = k.opt.Store.InTx(ctx, func(tx store.Tx) error {
		if err := tx.SignerKeys().AddSignerKey(ctx, key); err != nil {
			return err
		}
		return k.record(ctx, tx, keyEntry(ActionSignerKeyAdd, key))
	})
	switch {
	case errors.Is(err, store.ErrConflict):
		return httpapi.Error(http.StatusConflict, "key_exists", "this key is registered already (id "+id+")", nil)
	case errors.Is(err, store.ErrNotFound):
		return httpapi.Error(http.StatusNotFound, "not_found", "domain not found", nil)
	case err != nil:
		return err
	}
	httpapi.WriteJSON(w, http.StatusCreated, keyView(key))
	return nil
}

func (k *KeysAPI) listKeys(w http.ResponseWriter, r *http.Request) error {
	domain := r.URL.Query().Get("domain")
	ctx := r.Context()
	var keys []store.SignerKey
	if err := k.opt.Store.InTx(ctx, func(tx store.Tx) error {
		var err error
		keys, err = tx.SignerKeys().ListSignerKeys(ctx)
		return err
	}); err != nil {
		return err
	}
	out := []SignerKey{}
	for _, key := range keys {
		if domain == "" || key.Domain == domain {
			out = append(out, keyView(key))
		}
	}
	httpapi.WriteJSON(w, http.StatusOK, out)
	return nil
}

func (k *KeysAPI) revokeKey(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	ctx := r.Context()
	var key store.SignerKey
	err := k.opt.Store.InTx(ctx, func(tx store.Tx) error {
		keys := tx.SignerKeys()
		if err := keys.RevokeSignerKey(ctx, id, k.now().UTC()); err != nil {
			return err
		}
		var err error
		if key, err = keys.SignerKeyByID(ctx, id); err != nil {
			return err
		}
		return k.record(ctx, tx, keyEntry(ActionSignerKeyRevoke, key))
	})
	switch {
	case errors.Is(err, store.ErrNotFound):
		return httpapi.Error(http.StatusNotFound, "not_found", "signer key not found", nil)
	case errors.Is(err, store.ErrConflict):
		return httpapi.Error(http.StatusConflict, "key_revoked", "the key is revoked already", nil)
	case err != nil:
		return err
	}
	httpapi.WriteJSON(w, http.StatusOK, keyView(key))
	return nil
}

func (k *KeysAPI) deleteKey(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	ctx := r.Context()
	err := k.opt.Store.InTx(ctx, func(tx store.Tx) error {
		keys := tx.SignerKeys()
		// Read first: the record names the key's domain.
		key, err := keys.SignerKeyByID(ctx, id)
		if err != nil {
			return err
		}
		if err := keys.DeleteSignerKey(ctx, id); err != nil {
			return err
		}
		return k.record(ctx, tx, keyEntry(ActionSignerKeyDelete, key))
	})
	switch {
	case errors.Is(err, store.ErrNotFound):
		return httpapi.Error(http.StatusNotFound, "not_found", "signer key not found", nil)
	case errors.Is(err, store.ErrConflict):
		// Revoking first leaves a record that the key stopped being
		// trusted before it disappears from the listing.
		return httpapi.Error(http.StatusConflict, "key_not_revoked", "revoke the key before deleting it", nil)
	case err != nil:
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (k *KeysAPI) setUnsigned(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	var in struct {
		Allowed *bool `json:"allowed"`
	}
	if err := httpapi.DecodeJSON(r, &in); err != nil {
		return err
	}
	if in.Allowed == nil {
		return unprocessable("invalid_field", "allowed (true or false) is required", nil)
	}
	if access.ValidateDomain(name) != nil && name != access.Wildcard {
		return httpapi.Error(http.StatusNotFound, "not_found", "domain not found", nil)
	}
	ctx := r.Context()
	allowed := *in.Allowed
	err := k.opt.Store.InTx(ctx, func(tx store.Tx) error {
		// Turning it off for a domain that does not exist would succeed
		// silently in the store; answer 404 either way.
		if name != access.Wildcard {
			ok, err := tx.Domains().DomainExists(ctx, name)
			if err != nil {
				return err
			}
			if !ok {
				return fmt.Errorf("domain %s: %w", name, store.ErrNotFound)
			}
		}
		if err := tx.Models().SetUnsignedAllowed(ctx, name, allowed, principalOf(r).ID, k.now().UTC()); err != nil {
			return err
		}
		return k.record(ctx, tx, audit.Entry{
			Action: ActionUnsignedAdmission,
			Target: audit.Target{Kind: auditKindDomain, ID: name},
			Reason: "allowed=" + strconv.FormatBool(allowed),
		})
	})
	switch {
	case errors.Is(err, store.ErrNotFound):
		return httpapi.Error(http.StatusNotFound, "not_found", "domain not found", nil)
	case err != nil:
		return err
	}
	httpapi.WriteJSON(w, http.StatusOK, UnsignedAdmission{Domain: name, Allowed: allowed})
	return nil
}

func (k *KeysAPI) listUnsigned(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	var domains []string
	if err := k.opt.Store.InTx(ctx, func(tx store.Tx) error {
		var err error
		domains, err = tx.Models().UnsignedAllowed(ctx)
		return err
	}); err != nil {
		return err
	}
	out := make([]UnsignedAdmission, 0, len(domains))
	for _, d := range domains {
		out = append(out, UnsignedAdmission{Domain: d, Allowed: true})
	}
	httpapi.WriteJSON(w, http.StatusOK, out)
	return nil
}

// record appends e in tx, the transaction of the change it describes.
func (k *KeysAPI) record(ctx context.Context, tx store.Tx, e audit.Entry) error {
	if k.opt.Recorder == nil {
		return errNoRecorder
	}
	return k.opt.Recorder.Record(ctx, tx, e)
}

func keyEntry(action string, k store.SignerKey) audit.Entry {
	return audit.Entry{Action: action, Target: audit.Target{Kind: auditKindSignerKey, Domain: k.Domain, ID: k.ID}}
}

// validKeyDomain accepts "*" and well-formed domain names; whether the
// domain exists is the store's answer (404).
func validKeyDomain(d string) error {
	if d == access.Wildcard {
		return nil
	}
	if d == "" {
		return unprocessable("invalid_domain", `domain is required: a domain name, or "*" for models without one`, nil)
	}
	if err := access.ValidateDomain(d); err != nil {
		return unprocessable("invalid_domain", err.Error(), nil)
	}
	return nil
}

// algorithmOf names a supported key's algorithm as the store keeps it.
func algorithmOf(pub crypto.PublicKey) (string, error) {
	switch key := pub.(type) {
	case *ecdsa.PublicKey:
		switch name := key.Curve.Params().Name; name {
		case "P-256", "P-384", "P-521":
			return "ecdsa-" + strings.ToLower(strings.ReplaceAll(name, "-", "")), nil
		}
	case ed25519.PublicKey:
		return "ed25519", nil
	}
	return "", fmt.Errorf("%w (got %T)", modelsign.ErrUnsupportedKey, pub)
}

func unprocessable(code, msg string, err error) error {
	return httpapi.Error(http.StatusUnprocessableEntity, code, msg, err)
}

func principalOf(r *http.Request) principal.Principal {
	p, _ := principal.FromContext(r.Context())
	return p
}

// canonicalPEM is the PKIX PEM text of pub, the form modelsign.KeyID
// hashes.
func canonicalPEM(pub crypto.PublicKey) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", fmt.Errorf("encode public key: %w", err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})), nil
}
