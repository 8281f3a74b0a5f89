package registry

import (
	"errors"
	"testing"
	"time"

	"github.com/rampart-ml/rampart/internal/store"
)

func TestCovers(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		key, model string
		want       bool
	}{
		{"com.acme", "com.acme", true},
		{"com.acme", "com.acme.vision", true},
		{"com.acme", "com.acme.vision.eu", true},
		{"com.acme.vision", "com.acme", false},
		{"com.acme", "com.acmecorp", false},
		{"com.acme", "org.other", false},
		{"com.acme", "", false},
		{"*", "", true},
		{"*", "com.acme", false},
	} {
		if got := Covers(tc.key, tc.model); got != tc.want {
			t.Errorf("Covers(%q, %q) = %v, want %v", tc.key, tc.model, got, tc.want)
		}
	}
}

func TestTrustKey(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	key := func(id, domain string) store.SignerKey {
		return store.SignerKey{ID: id, Domain: domain, NotBefore: now.Add(-time.Hour)}
	}
	revoked := key("revoked", "com.acme")
	revoked.RevokedAt = now.Add(-time.Minute)
	expired := key("expired", "com.acme")
	expired.NotAfter = now
	future := key("future", "com.acme")
	future.NotBefore = now.Add(time.Hour)
	keys := []store.SignerKey{key("acme", "com.acme"), key("other", "org.other"), key("any", "*"), revoked, expired, future}

	for _, tc := range []struct {
		domain, id string
		want       error
	}{
		{"com.acme.vision", "acme", nil},
		{"com.acme.vision", "other", ErrKeyOtherDomain},
		{"com.acme.vision", "any", ErrKeyOtherDomain},
		{"", "any", nil},
		{"", "acme", ErrKeyOtherDomain},
		{"com.acme", "nope", ErrKeyUnknown},
		{"com.acme", "revoked", ErrKeyRevoked},
		{"com.acme", "expired", ErrKeyExpired},
		{"com.acme", "future", ErrKeyNotYetValid},
	} {
		tr, err := NewTrust(keys, tc.domain, now)
		if err != nil {
			t.Fatal(err)
		}
		k, err := tr.Key(tc.id)
		if !errors.Is(err, tc.want) || (err == nil && k.ID != tc.id) {
			t.Errorf("domain %q, key %s: %+v, %v; want %v", tc.domain, tc.id, k, err, tc.want)
		}
	}
	if _, err := NewTrust(keys, "Not A Domain", now); err == nil {
		t.Error("NewTrust accepted an invalid domain")
	}
}
