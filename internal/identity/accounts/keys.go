package accounts

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/rampart-ml/rampart/internal/audit"
	"github.com/rampart-ml/rampart/internal/httpapi"
	"github.com/rampart-ml/rampart/internal/store"
)

// RSA modulus bounds: below 2048 bits is breakable, above 8192 only costs
// the verifier.
const (
	minRSABits = 2048
	maxRSABits = 8192
)

// ClientKey is a public key a service account signs JWT bearer grant
// assertions (RFC 7523) with.
type ClientKey struct {
	KeyID     string          `json:"kid"`
	JWK       json.RawMessage `json:"jwk"`
	CreatedAt time.Time       `json:"created_at"`
	ExpiresAt *time.Time      `json:"expires_at,omitempty"`
}

func keyView(k store.ClientKey) ClientKey {
	return ClientKey{KeyID: k.ID, JWK: k.PublicKey, CreatedAt: k.CreatedAt.UTC(), ExpiresAt: optTime(k.ExpiresAt)}
}

// KeyList answers GET /api/v1/service-accounts/{id}/keys.
type KeyList struct {
	Keys []ClientKey `json:"keys"`
}

func (s *Service) listKeys(w http.ResponseWriter, r *http.Request) error {
	sa, err := s.loadServiceAccount(r)
	if err != nil {
		return err
	}
	ctx := r.Context()
	var all []store.ClientKey
	err = s.opt.Store.InTx(ctx, func(tx store.Tx) error {
		var err error
		all, err = tx.ServiceAccounts().ClientKeys(ctx, sa.ID)
		return err
	})
	if err != nil {
		return fmt.Errorf("list keys of %s: %w", sa.ID, err)
	}
	out := KeyList{Keys: []ClientKey{}}
	for _, k := range all {
		out.Keys = append(out.Keys, keyView(k))
	}
	httpapi.WriteJSON(w, http.StatusOK, out)
	return nil
}

// AddKeyRequest is the body of POST /api/v1/service-accounts/{id}/keys.
type AddKeyRequest struct {
	// JWK is the public key (RFC 7517). Without "kid", its RFC 7638
	// thumbprint becomes the key id.
	JWK       json.RawMessage `json:"jwk"`
	ExpiresAt string          `json:"expires_at,omitempty"`
}

func (s *Service) addKey(w http.ResponseWriter, r *http.Request) error {
	sa, err := s.loadServiceAccount(r)
	if err != nil {
		return err
	}
	var req AddKeyRequest
	if err := httpapi.DecodeJSON(r, &req); err != nil {
		return err
	}
	jwk, err := parseClientKey(req.JWK)
	if err != nil {
		return err
	}
	now := s.now().UTC()
	var exp time.Time
	if req.ExpiresAt != "" {
		if exp, err = parseFutureTime("expires_at", req.ExpiresAt, now); err != nil {
			return err
		}
	}
	pub, err := jwk.MarshalJSON()
	if err != nil {
		return fmt.Errorf("encode client key: %w", err)
	}
	k := store.ClientKey{ID: jwk.KeyID, ServiceAccountID: sa.ID, PublicKey: pub, CreatedAt: now, ExpiresAt: exp}
	ctx := r.Context()
	err = s.opt.Store.InTx(ctx, func(tx store.Tx) error {
		all, err := tx.ServiceAccounts().ClientKeys(ctx, sa.ID)
		if err != nil {
			return err
		}
		if len(all) >= maxKeysPerAccount {
			return httpapi.Error(http.StatusConflict, "limit_reached",
				fmt.Sprintf("a service account may have at most %d keys; delete one first", maxKeysPerAccount), nil)
		}
		if err := tx.ServiceAccounts().AddClientKey(ctx, k); err != nil {
			return err
		}
		return s.opt.Recorder.Record(ctx, tx, keyRecord("client-key.add", sa.ID, jwk))
	})
	switch {
	case errors.Is(err, store.ErrConflict):
		return httpapi.Error(http.StatusConflict, "kid_taken", "the service account already has a key with this kid", nil)
	case errors.Is(err, store.ErrNotFound):
		return notFound("service account")
	case err != nil:
		return fmt.Errorf("add key to %s: %w", sa.ID, err)
	}
	httpapi.WriteJSON(w, http.StatusCreated, keyView(k))
	return nil
}

func (s *Service) deleteKey(w http.ResponseWriter, r *http.Request) error {
	sa, err := s.loadServiceAccount(r)
	if err != nil {
		return err
	}
	kid := r.PathValue("kid")
	if !validKeyID(kid) {
		return notFound("key")
	}
	ctx := r.Context()
	err = s.opt.Store.InTx(ctx, func(tx store.Tx) error {
		all, err := tx.ServiceAccounts().ClientKeys(ctx, sa.ID)
		if err != nil {
			return err
		}
		i := slices.IndexFunc(all, func(k store.ClientKey) bool { return k.ID == kid })
		if i < 0 {
			return store.ErrNotFound
		}
		var jwk jose.JSONWebKey
		if err := jwk.UnmarshalJSON(all[i].PublicKey); err != nil {
			return fmt.Errorf("stored client key %s: %w", kid, err)
		}
		if err := tx.ServiceAccounts().DeleteClientKey(ctx, sa.ID, kid); err != nil {
			return err
		}
		return s.opt.Recorder.Record(ctx, tx, keyRecord("client-key.delete", sa.ID, jwk))
	})
	if errors.Is(err, store.ErrNotFound) {
		return notFound("key")
	}
	if err != nil {
		return fmt.Errorf("delete key %s of %s: %w", kid, sa.ID, err)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// keyRecord is the audit entry of an action on a client key. The target
// names the key by its RFC 7638 thumbprint, not its kid: the kid is
// whatever the client wrote, which might be personal ("alice-laptop").
func keyRecord(action, serviceAccountID string, k jose.JSONWebKey) audit.Entry {
	id := "?"
	if tp, err := k.Thumbprint(crypto.SHA256); err == nil {
		id = base64.RawURLEncoding.EncodeToString(tp)
	}
	return audit.Entry{Action: action, Target: audit.Target{Kind: "client-key", ID: serviceAccountID + "/" + id}}
}

func invalidKey(msg string) *httpapi.HTTPError {
	return httpapi.Error(http.StatusUnprocessableEntity, "invalid_key", "jwk "+msg, nil)
}

// parseClientKey checks a client's JWK and returns the public key in the
// form stored: key material, kid, "use":"sig" and the "alg" the client
// named, nothing else (no certificates, no private parts).
//
// Accepted: EC P-256 (ES256) and RSA of 2048 to 8192 bits (RS256, PS256),
// the algorithms the token endpoint verifies assertions with. Ed25519 is
// refused for now: the OpenID provider library accepts only RS256, ES256
// and PS256 assertions, so an Ed25519 key could never be used.
func parseClientKey(raw json.RawMessage) (jose.JSONWebKey, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return jose.JSONWebKey{}, invalid("jwk", "is required")
	}
	var in jose.JSONWebKey
	if err := in.UnmarshalJSON(raw); err != nil {
		return jose.JSONWebKey{}, invalidKey("is not a valid JSON Web Key (RFC 7517)")
	}
	if in.Use != "" && in.Use != "sig" {
		return jose.JSONWebKey{}, invalidKey(`"use" must be "sig"`)
	}
	var (
		pub  crypto.PublicKey
		algs []string
	)
	switch k := in.Key.(type) {
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() {
			return jose.JSONWebKey{}, invalidKey("EC keys must be on curve P-256 (ES256)")
		}
		pub, algs = k, []string{string(jose.ES256)}
	case *rsa.PublicKey:
		if n := k.N.BitLen(); n < minRSABits || n > maxRSABits {
			return jose.JSONWebKey{}, invalidKey(fmt.Sprintf("RSA keys must have %d to %d bits", minRSABits, maxRSABits))
		}
		pub, algs = k, []string{string(jose.RS256), string(jose.PS256)}
	case ed25519.PublicKey:
		return jose.JSONWebKey{}, invalidKey("Ed25519 keys are not supported yet: use EC P-256 (ES256) or RSA (RS256, PS256)")
	case *ecdsa.PrivateKey, *rsa.PrivateKey, ed25519.PrivateKey:
		return jose.JSONWebKey{}, invalidKey("is a private key: register only the public key, and keep the private key to yourself")
	case []byte:
		return jose.JSONWebKey{}, invalidKey("is a symmetric key: register a public key (EC P-256 or RSA)")
	default:
		return jose.JSONWebKey{}, invalidKey("must be an EC P-256 or RSA public key")
	}
	alg := in.Algorithm
	if alg != "" && !slices.Contains(algs, alg) {
		return jose.JSONWebKey{}, invalidKey(fmt.Sprintf("\"alg\" %q does not suit this key type (want one of %v)", alg, algs))
	}
	out := jose.JSONWebKey{Key: pub, KeyID: in.KeyID, Algorithm: alg, Use: "sig"}
	if out.KeyID == "" {
		tp, err := out.Thumbprint(crypto.SHA256)
		if err != nil {
			return jose.JSONWebKey{}, invalidKey("has no thumbprint")
		}
		out.KeyID = base64.RawURLEncoding.EncodeToString(tp)
	}
	if !validKeyID(out.KeyID) {
		return jose.JSONWebKey{}, invalidKey(fmt.Sprintf("\"kid\" must be 1 to %d characters of letters, digits and -_.~:+=", maxKeyIDLen))
	}
	return out, nil
}
