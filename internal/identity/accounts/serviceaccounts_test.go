package accounts_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/rampart-ml/rampart/internal/identity/accounts"
	"github.com/rampart-ml/rampart/internal/identity/jwttest"
)

// createServiceAccount creates a service account owned by u.
func createServiceAccount(t *testing.T, e *env, u user, name string) accounts.CreatedServiceAccount {
	t.Helper()
	res := e.Do(t, "POST", "/api/v1/service-accounts", u.token(), map[string]any{"name": name, "description": "test robot"})
	sa := decode[accounts.CreatedServiceAccount](t, res, http.StatusCreated)
	if !strings.HasPrefix(sa.ID, "sa-") || sa.Name != name || sa.OwnerID != u.ID || !strings.HasPrefix(sa.ClientSecret, "rsa_") {
		t.Fatalf("created = %+v", sa)
	}
	return sa
}

// wantSecret checks whether a client secret gets a token.
func wantSecret(t *testing.T, e *env, id, secret string, works bool) {
	t.Helper()
	status, tok := e.clientCredentials(t, id, secret)
	if got := status == http.StatusOK && tok != ""; got != works {
		t.Errorf("client_credentials with secret …%s: status %d, want working=%v", secret[len(secret)-4:], status, works)
	}
}

func TestServiceAccounts(t *testing.T) {
	t.Parallel()
	e := start(t)

	t.Run("client credentials", func(t *testing.T) {
		t.Parallel()
		u := e.newUser(t, false)
		sa := createServiceAccount(t, e, u, "cc-"+u.Name)
		status, tok := e.clientCredentials(t, sa.ID, sa.ClientSecret)
		if status != http.StatusOK {
			t.Fatalf("client_credentials: %d", status)
		}
		me := decode[accounts.Me](t, e.Do(t, "GET", "/api/v1/me", tok, nil), http.StatusOK)
		if me.Kind != "service-account" || me.ID != sa.ID || me.Name != sa.Name || me.Admin {
			t.Errorf("me = %+v", me)
		}
		wantError(t, e.Do(t, "GET", "/api/v1/accounts", tok, nil), http.StatusForbidden, "forbidden")
		// A service account sees no service accounts, not even itself.
		list := decode[accounts.ServiceAccountList](t, e.Do(t, "GET", "/api/v1/service-accounts", tok, nil), http.StatusOK)
		if len(list.ServiceAccounts) != 0 {
			t.Errorf("service account lists %+v", list)
		}
		wantSecret(t, e, sa.ID, sa.ClientSecret+"x", false)
		wantSecret(t, e, sa.ID, "rsa_"+strings.Repeat("A", 43), false)
	})

	t.Run("secret rotation", func(t *testing.T) {
		t.Parallel()
		u := e.newUser(t, false)
		sa := createServiceAccount(t, e, u, "rot-"+u.Name)
		path := "/api/v1/service-accounts/" + sa.ID + "/secrets"

		second := decode[accounts.ClientSecret](t, e.Do(t, "POST", path, u.token(), map[string]string{"overlap": "1h"}), http.StatusCreated)
		if second.Secret == "" || second.ID == "" || second.ExpiresAt != nil {
			t.Fatalf("rotated = %+v", second)
		}
		wantSecret(t, e, sa.ID, sa.ClientSecret, true)
		wantSecret(t, e, sa.ID, second.Secret, true)
		list := decode[accounts.SecretList](t, e.Do(t, "GET", path, u.token(), nil), http.StatusOK)
		if len(list.Secrets) != 2 || list.Secrets[0].ExpiresAt == nil || list.Secrets[1].ExpiresAt != nil || list.Secrets[0].Secret != "" {
			t.Errorf("secrets after overlapping rotation = %+v", list.Secrets)
		}

		third := decode[accounts.ClientSecret](t, e.Do(t, "POST", path, u.token(), map[string]string{"expires_in": "24h"}), http.StatusCreated)
		if third.ExpiresAt == nil || third.ExpiresAt.Before(time.Now().Add(23*time.Hour)) {
			t.Errorf("expires_at = %v", third.ExpiresAt)
		}
		wantSecret(t, e, sa.ID, sa.ClientSecret, false)
		wantSecret(t, e, sa.ID, second.Secret, false)
		wantSecret(t, e, sa.ID, third.Secret, true)

		wantStatus(t, e.Do(t, "DELETE", path+"/"+third.ID, u.token(), nil), http.StatusNoContent)
		wantSecret(t, e, sa.ID, third.Secret, false)
		wantError(t, e.Do(t, "DELETE", path+"/"+third.ID, u.token(), nil), http.StatusNotFound, "not_found")

		for _, body := range []map[string]string{
			{"overlap": "-1s"}, {"overlap": "soon"}, {"overlap": "9999h"},
			{"expires_in": "1s"}, {"expires_in": "100000h"}, {"expires_in": "0"},
		} {
			res := e.Do(t, "POST", path, u.token(), body)
			if res.StatusCode != http.StatusUnprocessableEntity || errorCode(res) != "invalid_field" {
				t.Errorf("rotate with %v: %d %s, want 422 invalid_field", body, res.StatusCode, res.Body)
			}
		}
		// No body: defaults (no overlap, no expiry).
		wantStatus(t, e.Do(t, "POST", path, u.token(), nil), http.StatusCreated)
	})

	t.Run("others cannot see it", func(t *testing.T) {
		t.Parallel()
		owner := e.newUser(t, false)
		other := e.newUser(t, false)
		sa := createServiceAccount(t, e, owner, "private-"+owner.Name)
		base := "/api/v1/service-accounts/" + sa.ID
		for _, rt := range []struct{ method, path string }{
			{"GET", base}, {"PATCH", base}, {"DELETE", base},
			{"GET", base + "/secrets"}, {"POST", base + "/secrets"}, {"DELETE", base + "/secrets/" + sa.ClientSecretID},
			{"GET", base + "/keys"}, {"POST", base + "/keys"}, {"DELETE", base + "/keys/k1"},
		} {
			wantError(t, e.Do(t, rt.method, rt.path, other.token(), map[string]any{}), http.StatusNotFound, "not_found")
		}
		list := decode[accounts.ServiceAccountList](t, e.Do(t, "GET", "/api/v1/service-accounts", other.token(), nil), http.StatusOK)
		for _, x := range list.ServiceAccounts {
			if x.ID == sa.ID {
				t.Error("another user lists the service account")
			}
		}
		// Nothing happened to it.
		wantSecret(t, e, sa.ID, sa.ClientSecret, true)
		// Admins see and manage every service account.
		got := decode[accounts.ServiceAccount](t, e.Do(t, "GET", base, e.admin.token(), nil), http.StatusOK)
		if got != sa.ServiceAccount {
			t.Errorf("admin GET = %+v, want %+v", got, sa.ServiceAccount)
		}
		list = decode[accounts.ServiceAccountList](t, e.Do(t, "GET", "/api/v1/service-accounts", e.admin.token(), nil), http.StatusOK)
		found := false
		for _, x := range list.ServiceAccounts {
			found = found || x.ID == sa.ID
		}
		if !found {
			t.Error("admin list lacks the service account")
		}
		// Unknown and malformed ids look the same.
		for _, id := range []string{"sa-0123456789abcdef0123456789abcdef", "not-a-service-account", "sa-%2F.."} {
			wantError(t, e.Do(t, "GET", "/api/v1/service-accounts/"+id, e.admin.token(), nil), http.StatusNotFound, "not_found")
		}
	})

	t.Run("disable and expire", func(t *testing.T) {
		t.Parallel()
		u := e.newUser(t, false)
		sa := createServiceAccount(t, e, u, "dis-"+u.Name)
		path := "/api/v1/service-accounts/" + sa.ID
		_, tok := e.clientCredentials(t, sa.ID, sa.ClientSecret)
		wantStatus(t, e.Do(t, "GET", "/api/v1/me", tok, nil), http.StatusOK)

		got := decode[accounts.ServiceAccount](t, e.Do(t, "PATCH", path, u.token(), map[string]any{"disabled": true, "description": "paused"}), http.StatusOK)
		if !got.Disabled || got.Description != "paused" {
			t.Errorf("after PATCH: %+v", got)
		}
		wantError(t, e.Do(t, "GET", "/api/v1/me", tok, nil), http.StatusUnauthorized, "invalid_token")
		wantSecret(t, e, sa.ID, sa.ClientSecret, false)
		wantStatus(t, e.Do(t, "PATCH", path, u.token(), map[string]any{"disabled": false}), http.StatusOK)
		wantSecret(t, e, sa.ID, sa.ClientSecret, true)

		exp := time.Now().Add(48 * time.Hour).UTC().Truncate(time.Second)
		got = decode[accounts.ServiceAccount](t, e.Do(t, "PATCH", path, u.token(), map[string]any{"expires_at": exp.Format(time.RFC3339)}), http.StatusOK)
		if got.ExpiresAt == nil || !got.ExpiresAt.Equal(exp) {
			t.Errorf("expires_at = %v, want %v", got.ExpiresAt, exp)
		}
		got = decode[accounts.ServiceAccount](t, e.Do(t, "PATCH", path, u.token(), map[string]any{"description": "x"}), http.StatusOK)
		if got.ExpiresAt == nil {
			t.Error("an absent expires_at cleared the expiry")
		}
		got = decode[accounts.ServiceAccount](t, e.Do(t, "PATCH", path, u.token(), map[string]any{"expires_at": nil}), http.StatusOK)
		if got.ExpiresAt != nil {
			t.Errorf("expires_at null: %v", got.ExpiresAt)
		}
		for _, body := range []map[string]any{
			{"expires_at": "2001-01-01T00:00:00Z"}, {"expires_at": "tomorrow"}, {"expires_at": 12},
			{"description": strings.Repeat("d", 1025)}, {"description": "bell\a"}, {"owner_id": u.ID}, {"name": "rename"},
		} {
			res := e.Do(t, "PATCH", path, u.token(), body)
			if res.StatusCode < 400 || res.StatusCode >= 500 {
				t.Errorf("PATCH %v: %d %s, want a 4xx", body, res.StatusCode, res.Body)
			}
		}
	})

	t.Run("create validation", func(t *testing.T) {
		t.Parallel()
		u := e.newUser(t, false)
		createServiceAccount(t, e, u, "taken-"+u.Name)
		past := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
		for _, tc := range []struct {
			name   string
			body   map[string]any
			status int
			code   string
		}{
			{"duplicate", map[string]any{"name": "taken-" + u.Name}, 409, "name_taken"},
			{"no name", map[string]any{}, 422, "invalid_field"},
			{"bad name", map[string]any{"name": "Robot!"}, 422, "invalid_field"},
			{"long name", map[string]any{"name": strings.Repeat("r", 65)}, 422, "invalid_field"},
			{"long description", map[string]any{"name": "r1", "description": strings.Repeat("d", 1025)}, 422, "invalid_field"},
			{"control character", map[string]any{"name": "r1", "description": "a\x1b[31m"}, 422, "invalid_field"},
			{"past expiry", map[string]any{"name": "r1", "expires_at": past}, 422, "invalid_field"},
			{"bad expiry", map[string]any{"name": "r1", "expires_at": "next week"}, 422, "invalid_field"},
			{"unknown field", map[string]any{"name": "r1", "owner_id": e.admin.ID}, 400, "malformed_json"},
		} {
			res := e.Do(t, "POST", "/api/v1/service-accounts", u.token(), tc.body)
			if res.StatusCode != tc.status || errorCode(res) != tc.code {
				t.Errorf("%s: %d %s, want %d %s", tc.name, res.StatusCode, res.Body, tc.status, tc.code)
			}
		}
		exp := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
		sa := decode[accounts.CreatedServiceAccount](t, e.Do(t, "POST", "/api/v1/service-accounts", u.token(),
			map[string]any{"name": "exp-" + u.Name, "expires_at": exp.Format(time.RFC3339)}), http.StatusCreated)
		if sa.ExpiresAt == nil || !sa.ExpiresAt.Equal(exp) {
			t.Errorf("expires_at = %v", sa.ExpiresAt)
		}
	})

	t.Run("delete", func(t *testing.T) {
		t.Parallel()
		u := e.newUser(t, false)
		sa := createServiceAccount(t, e, u, "del-"+u.Name)
		_, tok := e.clientCredentials(t, sa.ID, sa.ClientSecret)
		wantStatus(t, e.Do(t, "DELETE", "/api/v1/service-accounts/"+sa.ID, u.token(), nil), http.StatusNoContent)
		wantError(t, e.Do(t, "GET", "/api/v1/me", tok, nil), http.StatusUnauthorized, "invalid_token")
		wantSecret(t, e, sa.ID, sa.ClientSecret, false)
		wantError(t, e.Do(t, "GET", "/api/v1/service-accounts/"+sa.ID, u.token(), nil), http.StatusNotFound, "not_found")
		// The owner no longer owns anything and can be deleted.
		wantStatus(t, e.Do(t, "DELETE", "/api/v1/accounts/"+u.ID, e.admin.token(), nil), http.StatusNoContent)
	})
}

// publicJWK is the JSON of key's public part with kid.
func publicJWK(t *testing.T, key crypto.PublicKey, kid, alg string) json.RawMessage {
	t.Helper()
	b, err := jose.JSONWebKey{Key: key, KeyID: kid, Algorithm: alg}.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// assertion is an RFC 7523 JWT bearer grant assertion by client id.
func assertion(t *testing.T, e *env, alg jose.SignatureAlgorithm, key crypto.Signer, kid, id string) string {
	t.Helper()
	now := time.Now()
	return jwttest.Sign(t, alg, key, kid, map[string]any{
		"iss": id, "sub": id, "aud": e.URL, "iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(),
		"jti": randomHex(8),
	})
}

// jwtBearer runs the JWT bearer grant and returns the status and token.
func (e *env) jwtBearer(t *testing.T, assertion string) (int, string) {
	t.Helper()
	status, out := e.tokenEndpoint(t, url.Values{
		"grant_type": {"urn:ietf:params:oauth:grant-type:jwt-bearer"}, "assertion": {assertion},
	}, "", "")
	tok, _ := out["access_token"].(string)
	return status, tok
}

func TestClientKeys(t *testing.T) {
	t.Parallel()
	e := start(t)
	u := e.newUser(t, false)

	t.Run("refused keys", func(t *testing.T) {
		t.Parallel()
		sa := createServiceAccount(t, e, u, "keys-bad")
		path := "/api/v1/service-accounts/" + sa.ID + "/keys"
		ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
		rsa1024, _ := rsa.GenerateKey(rand.Reader, 1024)
		edPub, edPriv, _ := ed25519.GenerateKey(rand.Reader)
		for _, tc := range []struct {
			name string
			jwk  any
		}{
			{"EC private key", publicJWK(t, ec, "k", "")},
			{"Ed25519 private key", publicJWK(t, edPriv, "k", "")},
			{"symmetric key", json.RawMessage(`{"kty":"oct","k":"c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0","kid":"k"}`)},
			{"RSA 1024", publicJWK(t, &rsa1024.PublicKey, "k", "")},
			{"P-384", publicJWK(t, &p384.PublicKey, "k", "")},
			{"Ed25519 public key", publicJWK(t, edPub, "k", "")},
			{"encryption key", json.RawMessage(strings.Replace(string(publicJWK(t, &ec.PublicKey, "k", "")), "{", `{"use":"enc",`, 1))},
			{"algorithm mismatch", publicJWK(t, &ec.PublicKey, "k", "RS256")},
			{"kid with a slash", publicJWK(t, &ec.PublicKey, "a/b", "")},
			{"not a key", json.RawMessage(`{"kty":"EC","crv":"P-256","x":"AAAA","y":"AAAA"}`)},
			{"not an object", "key"},
			{"missing", nil},
		} {
			res := e.Do(t, "POST", path, u.token(), map[string]any{"jwk": tc.jwk})
			if res.StatusCode != http.StatusUnprocessableEntity {
				t.Errorf("%s: %d %s, want 422", tc.name, res.StatusCode, res.Body)
			}
		}
		list := decode[accounts.KeyList](t, e.Do(t, "GET", path, u.token(), nil), http.StatusOK)
		if len(list.Keys) != 0 {
			t.Errorf("keys stored: %+v", list.Keys)
		}
	})

	t.Run("register, list, delete", func(t *testing.T) {
		t.Parallel()
		sa := createServiceAccount(t, e, u, "keys-crud")
		path := "/api/v1/service-accounts/" + sa.ID + "/keys"
		ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		// No kid: the RFC 7638 thumbprint is used.
		k := decode[accounts.ClientKey](t, e.Do(t, "POST", path, u.token(), map[string]any{"jwk": publicJWK(t, &ec.PublicKey, "", "")}), http.StatusCreated)
		tpKey := jose.JSONWebKey{Key: &ec.PublicKey}
		tp, _ := tpKey.Thumbprint(crypto.SHA256)
		if k.KeyID != b64.EncodeToString(tp) {
			t.Errorf("kid = %q, want the thumbprint", k.KeyID)
		}
		if strings.Contains(string(k.JWK), `"d"`) {
			t.Errorf("stored JWK %s", k.JWK)
		}
		wantError(t, e.Do(t, "POST", path, u.token(), map[string]any{"jwk": publicJWK(t, &ec.PublicKey, "", "")}), http.StatusConflict, "kid_taken")
		exp := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
		k2 := decode[accounts.ClientKey](t, e.Do(t, "POST", path, u.token(),
			map[string]any{"jwk": publicJWK(t, &ec.PublicKey, "second", "ES256"), "expires_at": exp.Format(time.RFC3339)}), http.StatusCreated)
		if k2.ExpiresAt == nil || !k2.ExpiresAt.Equal(exp) {
			t.Errorf("expires_at = %v", k2.ExpiresAt)
		}
		list := decode[accounts.KeyList](t, e.Do(t, "GET", path, u.token(), nil), http.StatusOK)
		if len(list.Keys) != 2 {
			t.Fatalf("keys = %+v", list.Keys)
		}
		wantStatus(t, e.Do(t, "DELETE", path+"/"+k.KeyID, u.token(), nil), http.StatusNoContent)
		wantError(t, e.Do(t, "DELETE", path+"/"+k.KeyID, u.token(), nil), http.StatusNotFound, "not_found")
		list = decode[accounts.KeyList](t, e.Do(t, "GET", path, u.token(), nil), http.StatusOK)
		if len(list.Keys) != 1 || list.Keys[0].KeyID != "second" {
			t.Errorf("keys after delete = %+v", list.Keys)
		}
	})

	t.Run("JWT bearer grant", func(t *testing.T) {
		t.Parallel()
		sa := createServiceAccount(t, e, u, "keys-grant")
		path := "/api/v1/service-accounts/" + sa.ID + "/keys"
		ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
		wantStatus(t, e.Do(t, "POST", path, u.token(), map[string]any{"jwk": publicJWK(t, &ec.PublicKey, "ec-1", "")}), http.StatusCreated)
		wantStatus(t, e.Do(t, "POST", path, u.token(), map[string]any{"jwk": publicJWK(t, &rsaKey.PublicKey, "rsa-1", "")}), http.StatusCreated)

		for _, tc := range []struct {
			alg jose.SignatureAlgorithm
			key crypto.Signer
			kid string
		}{{jose.ES256, ec, "ec-1"}, {jose.RS256, rsaKey, "rsa-1"}, {jose.PS256, rsaKey, "rsa-1"}} {
			status, tok := e.jwtBearer(t, assertion(t, e, tc.alg, tc.key, tc.kid, sa.ID))
			if status != http.StatusOK || tok == "" {
				t.Fatalf("%s grant: %d", tc.alg, status)
			}
			// The token is for the API (audience "rampart"), whatever
			// audience the assertion named.
			me := decode[accounts.Me](t, e.Do(t, "GET", "/api/v1/me", tok, nil), http.StatusOK)
			if me.Kind != "service-account" || me.ID != sa.ID {
				t.Errorf("%s grant token: me = %+v", tc.alg, me)
			}
		}
		// Wrong key, unknown kid, another client's id.
		other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		for name, a := range map[string]string{
			"wrong key":    assertion(t, e, jose.ES256, other, "ec-1", sa.ID),
			"unknown kid":  assertion(t, e, jose.ES256, ec, "nope", sa.ID),
			"other client": assertion(t, e, jose.ES256, ec, "ec-1", "sa-0123456789abcdef0123456789abcdef"),
		} {
			if status, _ := e.jwtBearer(t, a); status == http.StatusOK {
				t.Errorf("%s: got a token", name)
			}
		}
		// A deleted key no longer works.
		wantStatus(t, e.Do(t, "DELETE", path+"/ec-1", u.token(), nil), http.StatusNoContent)
		if status, _ := e.jwtBearer(t, assertion(t, e, jose.ES256, ec, "ec-1", sa.ID)); status == http.StatusOK {
			t.Error("deleted key still gets tokens")
		}
	})
}
