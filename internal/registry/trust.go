// Package registry is the model registry: models, their immutable signed
// versions, the signer keys trusted per domain, and admission (see
// docs/REGISTRY.md). This file holds the trust policy: which keys may sign
// a model of a given domain.
package registry

import (
	"errors"
	"fmt"
	"time"

	"github.com/rampart-ml/rampart/internal/access"
	"github.com/rampart-ml/rampart/internal/store"
)

// Why a signature's key is not trusted for a model. Each error names the
// key; none says more than an admin listing the keys would see.
var (
	ErrKeyUnknown      = errors.New("the signing key is not registered")
	ErrKeyOtherDomain  = errors.New("the signing key is not trusted for this model's domain")
	ErrKeyRevoked      = errors.New("the signing key was revoked")
	ErrKeyExpired      = errors.New("the signing key has expired")
	ErrKeyNotYetValid  = errors.New("the signing key is not valid yet")
	errKeyPolicyDomain = errors.New("invalid model domain")
)

// Trust is the set of signer keys registered, seen from one model's
// domain at one time.
type Trust struct {
	domain string // the model's domain; "" for a model without one
	at     time.Time
	byID   map[string]store.SignerKey
}

// NewTrust returns the trust policy for a model of domain ("" for a model
// without a domain) at time at, over every registered key.
func NewTrust(keys []store.SignerKey, domain string, at time.Time) (*Trust, error) {
	if domain != "" {
		if err := access.ValidateDomain(domain); err != nil {
			return nil, fmt.Errorf("%w: %w", errKeyPolicyDomain, err)
		}
	}
	t := &Trust{domain: domain, at: at, byID: make(map[string]store.SignerKey, len(keys))}
	for _, k := range keys {
		t.byID[k.ID] = k
	}
	return t, nil
}

// Covers reports whether a key registered for keyDomain may sign a model
// of modelDomain: a key for a domain covers that domain and its
// subdomains; a key for "*" covers only models without a domain.
func Covers(keyDomain, modelDomain string) bool {
	if keyDomain == access.Wildcard {
		return modelDomain == ""
	}
	for d, ok := modelDomain, modelDomain != ""; ok; d, ok = access.Parent(d) {
		if d == keyDomain {
			return true
		}
	}
	return false
}

// Key returns the key with id if it may sign the model now, or an error
// saying why not.
func (t *Trust) Key(id string) (store.SignerKey, error) {
	k, ok := t.byID[id]
	switch {
	case !ok:
		return store.SignerKey{}, fmt.Errorf("%w (key %s)", ErrKeyUnknown, id)
	case !Covers(k.Domain, t.domain):
		return store.SignerKey{}, fmt.Errorf("%w: key %s is trusted for %q, the model is in %s", ErrKeyOtherDomain, id, k.Domain, t.describeDomain())
	case !k.RevokedAt.IsZero():
		return store.SignerKey{}, fmt.Errorf("%w (key %s, at %s)", ErrKeyRevoked, id, k.RevokedAt.UTC().Format(time.RFC3339))
	case t.at.Before(k.NotBefore):
		return store.SignerKey{}, fmt.Errorf("%w (key %s, from %s)", ErrKeyNotYetValid, id, k.NotBefore.UTC().Format(time.RFC3339))
	case !k.NotAfter.IsZero() && !t.at.Before(k.NotAfter):
		return store.SignerKey{}, fmt.Errorf("%w (key %s, at %s)", ErrKeyExpired, id, k.NotAfter.UTC().Format(time.RFC3339))
	}
	return k, nil
}

func (t *Trust) describeDomain() string {
	if t.domain == "" {
		return "no domain"
	}
	return fmt.Sprintf("%q", t.domain)
}
