// Package authn is the one authentication step every protected request
// goes through. It accepts Rampart's own access tokens, tokens from trusted
// external OIDC issuers and mTLS client certificates (mapped to service
// accounts), and produces one principal.Principal.
//
// Identity comes only from verified credentials: never from a header a
// client can set (such as Kubeflow's kubeflow-userid). Privileges are not
// decided here; the principal carries none.
package authn

import (
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/rampart-ml/rampart/internal/httpapi"
	"github.com/rampart-ml/rampart/internal/identity"
	"github.com/rampart-ml/rampart/internal/identity/provider"
	"github.com/rampart-ml/rampart/internal/identity/signingkeys"
	"github.com/rampart-ml/rampart/internal/principal"
)

// MaxTokenBytes bounds a bearer token; longer ones are refused unparsed.
const MaxTokenBytes = 8 << 10

// clockSkew tolerated on nbf/iat from other replicas' clocks.
const clockSkew = time.Minute

// FederatedVerifier verifies tokens from external issuers; ok=false means
// the token is not from one of them. A refusal of a token that is from one
// of them is reported through Rejected.
type FederatedVerifier interface {
	Verify(ctx context.Context, raw string) (p principal.Principal, ok bool, err error)
}

// Options configure an Authenticator.
type Options struct {
	Issuer      string
	Keys        *signingkeys.Ring
	Revocations *identity.Revocations
	Directory   *identity.Directory
	// Federated is optional.
	Federated FederatedVerifier
	// Rejected reports whether a Federated error is a refusal of the
	// token (401) rather than a technical failure (503).
	Rejected func(error) bool
	// ClientCerts maps verified TLS client certificates to service
	// accounts (the certificate's common name is the service account id).
	ClientCerts bool
	Now         func() time.Time
}

// Authenticator implements httpapi.Authenticator.
type Authenticator struct {
	opt Options

	mu   sync.RWMutex
	keys map[string]*ecdsa.PublicKey

	verified verifiedCache
}

var _ httpapi.Authenticator = (*Authenticator)(nil)

// New returns an Authenticator.
func New(o Options) *Authenticator {
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Authenticator{opt: o, keys: make(map[string]*ecdsa.PublicKey)}
}

// passwordChangeRoutes are the only routes a user who must change their
// password may use.
var passwordChangeRoutes = []string{"GET /api/v1/me", "POST /api/v1/me/password"}

// Authenticate implements httpapi.Authenticator.
func (a *Authenticator) Authenticate(r *http.Request) (principal.Principal, bool, error) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return a.clientCert(r)
	}
	scheme, raw, _ := strings.Cut(h, " ")
	if !strings.EqualFold(scheme, "Bearer") || raw == "" {
		return principal.Principal{}, false, refuse("the Authorization header must be \"Bearer <token>\"")
	}
	if len(raw) > MaxTokenBytes {
		return principal.Principal{}, false, refuse("bearer token is too large")
	}
	s, err := a.VerifyToken(r.Context(), raw)
	if err != nil {
		return principal.Principal{}, false, err
	}
	if s.MustChangePassword && !slices.Contains(passwordChangeRoutes, r.Pattern) {
		return principal.Principal{}, false, httpapi.Error(http.StatusForbidden, "password_change_required",
			"you must change your password first (POST /api/v1/me/password)", nil)
	}
	return s.Principal, true, nil
}

// claims are the registered claims Rampart checks.
type claims struct {
	Issuer    string   `json:"iss"`
	Subject   string   `json:"sub"`
	Audience  audience `json:"aud"`
	Expiry    int64    `json:"exp"`
	NotBefore int64    `json:"nbf"`
	IssuedAt  int64    `json:"iat"`
	ID        string   `json:"jti"`
}

// audience accepts the string and array forms of "aud".
type audience []string

func (a *audience) UnmarshalJSON(b []byte) error {
	var one string
	if json.Unmarshal(b, &one) == nil {
		*a = audience{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return err
	}
	*a = many
	return nil
}

// VerifyToken checks a bearer token and resolves its subject. Refusals are
// *httpapi.HTTPError with status 401 (or 403); other errors are technical.
func (a *Authenticator) VerifyToken(ctx context.Context, raw string) (identity.Subject, error) {
	c, ours, err := a.signedClaims(ctx, raw)
	if err != nil {
		return identity.Subject{}, err
	}
	if !ours {
		return a.federated(ctx, raw)
	}
	now := a.opt.Now()
	switch {
	case c.Issuer != a.opt.Issuer:
		return identity.Subject{}, refuse("bearer token has the wrong issuer")
	case !slices.Contains(c.Audience, provider.APIAudience):
		return identity.Subject{}, refuse("bearer token is not meant for this API (audience)")
	case c.Expiry == 0 || !now.Before(time.Unix(c.Expiry, 0)):
		return identity.Subject{}, refuse("bearer token has expired")
	case c.NotBefore != 0 && now.Add(clockSkew).Before(time.Unix(c.NotBefore, 0)),
		c.IssuedAt != 0 && now.Add(clockSkew).Before(time.Unix(c.IssuedAt, 0)):
		return identity.Subject{}, refuse("bearer token is not valid yet")
	case c.Subject == "" || !provider.ValidTokenID(c.ID):
		// ID tokens carry no jti: they are not access tokens.
		return identity.Subject{}, refuse("bearer token is not an access token")
	}
	revoked, err := a.opt.Revocations.Revoked(ctx, c.ID, provider.SessionOf(c.ID))
	if err != nil {
		return identity.Subject{}, err
	}
	if revoked {
		return identity.Subject{}, refuse("bearer token has been revoked")
	}
	s, err := a.opt.Directory.Lookup(ctx, c.Subject)
	if errors.Is(err, identity.ErrInactive) {
		return identity.Subject{}, refuse("the token's account is disabled or no longer exists")
	}
	return s, err
}

// signedClaims returns the claims of a token signed by one of Rampart's
// keys (ours=false: not signed by one of them). Only the signature check
// is remembered (see verifiedCache): claims, revocation and the account
// are checked on every use by the caller.
func (a *Authenticator) signedClaims(ctx context.Context, raw string) (claims, bool, error) {
	sum := sha256.Sum256([]byte(raw))
	if v, ok := a.verified.get(sum); ok {
		// The key must still be one of ours, as it is for an uncached token.
		if pub, err := a.key(ctx, v.kid); err == nil && pub != nil && pub.Equal(v.pub) {
			return v.claims, true, nil
		}
	}
	// Only Rampart's algorithm for its own keys; external issuers are
	// checked against their own allow-lists by the federated verifier.
	jws, err := jose.ParseSigned(raw, []jose.SignatureAlgorithm{signingkeys.Algorithm, jose.RS256, jose.PS256, jose.EdDSA, jose.ES384})
	if err != nil || len(jws.Signatures) != 1 {
		return claims{}, false, refuse("bearer token is malformed or uses an algorithm that is not allowed")
	}
	hdr := jws.Signatures[0].Header
	pub, err := a.key(ctx, hdr.KeyID)
	if err != nil {
		return claims{}, false, err
	}
	if pub == nil || hdr.Algorithm != signingkeys.Algorithm {
		return claims{}, false, nil
	}
	payload, err := jws.Verify(pub)
	if err != nil {
		return claims{}, false, refuse("bearer token signature is invalid")
	}
	var c claims
	if err := json.Unmarshal(payload, &c); err != nil {
		return claims{}, false, refuse("bearer token claims are malformed")
	}
	if c.Expiry != 0 && a.opt.Now().Before(time.Unix(c.Expiry, 0)) {
		a.verified.put(sum, verifiedToken{claims: c, kid: hdr.KeyID, pub: pub})
	}
	return c, true, nil
}

func (a *Authenticator) federated(ctx context.Context, raw string) (identity.Subject, error) {
	if a.opt.Federated == nil {
		return identity.Subject{}, refuse("bearer token is from an unknown issuer or key")
	}
	p, ok, err := a.opt.Federated.Verify(ctx, raw)
	switch {
	case err != nil && a.opt.Rejected != nil && a.opt.Rejected(err):
		return identity.Subject{}, httpapi.Error(http.StatusUnauthorized, "invalid_token", err.Error(), nil)
	case err != nil:
		return identity.Subject{}, err
	case !ok:
		return identity.Subject{}, refuse("bearer token is from an unknown issuer or key")
	}
	return identity.Subject{Principal: p}, nil
}

// key returns Rampart's public key kid, or nil if it is not one of ours.
// An unknown kid asks the signing-key ring, which holds the keys in memory
// (a rotation in this process is seen at once) and rereads the store at
// most every 30 s, so tokens with made-up kids cost no store reads.
func (a *Authenticator) key(ctx context.Context, kid string) (*ecdsa.PublicKey, error) {
	a.mu.RLock()
	k, ok := a.keys[kid]
	a.mu.RUnlock()
	if ok || kid == "" {
		return k, nil
	}
	published, err := a.opt.Keys.Published(ctx)
	if err != nil {
		return nil, err
	}
	keys := make(map[string]*ecdsa.PublicKey, len(published))
	for _, p := range published {
		keys[p.ID] = &p.Private.PublicKey
	}
	a.mu.Lock()
	a.keys = keys
	a.mu.Unlock()
	return keys[kid], nil
}

// clientCert maps a verified client certificate to a service account.
func (a *Authenticator) clientCert(r *http.Request) (principal.Principal, bool, error) {
	if !a.opt.ClientCerts || r.TLS == nil || len(r.TLS.VerifiedChains) == 0 {
		return principal.Principal{}, false, nil
	}
	id := r.TLS.VerifiedChains[0][0].Subject.CommonName
	if !strings.HasPrefix(id, identity.ServiceAccountIDPrefix) {
		return principal.Principal{}, false, refuse("client certificate common name is not a service account id")
	}
	s, err := a.opt.Directory.Lookup(r.Context(), id)
	if errors.Is(err, identity.ErrInactive) {
		return principal.Principal{}, false, refuse("the certificate's service account is disabled or no longer exists")
	}
	if err != nil {
		return principal.Principal{}, false, err
	}
	return s.Principal, true, nil
}

func refuse(msg string) error {
	return httpapi.Error(http.StatusUnauthorized, "invalid_token", msg, nil)
}
