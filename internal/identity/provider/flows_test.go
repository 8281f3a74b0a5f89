package provider_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/google/go-cmp/cmp"
	"github.com/pquerna/otp/totp"

	"github.com/rampart-ml/rampart/internal/identity"
	"github.com/rampart-ml/rampart/internal/identity/provider"
	"github.com/rampart-ml/rampart/internal/store"
)

// Protocol happy paths: every flow Rampart supports, end to end over HTTP.

func TestDiscovery(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := e.get(t, nil, "/.well-known/openid-configuration")
	if r.Status != http.StatusOK {
		t.Fatalf("discovery: %d %s", r.Status, r.Body)
	}
	var d struct {
		Issuer                 string   `json:"issuer"`
		AuthorizationEndpoint  string   `json:"authorization_endpoint"`
		TokenEndpoint          string   `json:"token_endpoint"`
		IntrospectionEndpoint  string   `json:"introspection_endpoint"`
		UserinfoEndpoint       string   `json:"userinfo_endpoint"`
		RevocationEndpoint     string   `json:"revocation_endpoint"`
		EndSessionEndpoint     string   `json:"end_session_endpoint"`
		DeviceEndpoint         string   `json:"device_authorization_endpoint"`
		JWKSURI                string   `json:"jwks_uri"`
		CodeChallengeMethods   []string `json:"code_challenge_methods_supported"`
		GrantTypes             []string `json:"grant_types_supported"`
		IDTokenSigningAlgs     []string `json:"id_token_signing_alg_values_supported"`
		TokenEndpointAuthMeths []string `json:"token_endpoint_auth_methods_supported"`
	}
	r.json(t, &d)
	want := map[string]string{
		"issuer":                        e.URL,
		"jwks_uri":                      e.URL + "/oauth/keys",
		"authorization_endpoint":        e.URL + "/oauth/authorize",
		"token_endpoint":                e.URL + "/oauth/token",
		"introspection_endpoint":        e.URL + "/oauth/introspect",
		"userinfo_endpoint":             e.URL + "/oauth/userinfo",
		"revocation_endpoint":           e.URL + "/oauth/revoke",
		"end_session_endpoint":          e.URL + "/oauth/logout",
		"device_authorization_endpoint": e.URL + "/oauth/device_authorization",
	}
	got := map[string]string{
		"issuer": d.Issuer, "jwks_uri": d.JWKSURI, "authorization_endpoint": d.AuthorizationEndpoint,
		"token_endpoint": d.TokenEndpoint, "introspection_endpoint": d.IntrospectionEndpoint,
		"userinfo_endpoint": d.UserinfoEndpoint, "revocation_endpoint": d.RevocationEndpoint,
		"end_session_endpoint": d.EndSessionEndpoint, "device_authorization_endpoint": d.DeviceEndpoint,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("endpoints (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"S256"}, d.CodeChallengeMethods); diff != "" {
		t.Errorf("code_challenge_methods_supported (-want +got):\n%s", diff)
	}
	for _, g := range []string{"authorization_code", "refresh_token", "client_credentials", "urn:ietf:params:oauth:grant-type:device_code"} {
		if !slices.Contains(d.GrantTypes, g) {
			t.Errorf("grant_types_supported %v lacks %s", d.GrantTypes, g)
		}
	}
	if slices.Contains(d.GrantTypes, "password") {
		t.Errorf("grant_types_supported %v offers the password grant", d.GrantTypes)
	}
	if diff := cmp.Diff([]string{"ES256"}, d.IDTokenSigningAlgs); diff != "" {
		t.Errorf("id_token_signing_alg_values_supported (-want +got):\n%s", diff)
	}
}

func TestJWKS(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := e.get(t, nil, "/oauth/keys")
	if r.Status != http.StatusOK {
		t.Fatalf("keys: %d %s", r.Status, r.Body)
	}
	var set struct {
		Keys []map[string]any `json:"keys"`
	}
	r.json(t, &set)
	k, err := e.Keys.Signing(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(set.Keys) != 1 {
		t.Fatalf("want 1 key, got %d: %s", len(set.Keys), r.Body)
	}
	key := set.Keys[0]
	for field, want := range map[string]string{"kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig", "kid": k.ID} {
		if key[field] != want {
			t.Errorf("%s = %v, want %s", field, key[field], want)
		}
	}
	// Private parts of any key type must never be published.
	for _, private := range []string{"d", "p", "q", "dp", "dq", "qi", "k"} {
		if _, ok := key[private]; ok {
			t.Errorf("JWKS publishes private member %q", private)
		}
	}
	if strings.Contains(string(r.Body), `"d"`) {
		t.Errorf("JWKS body mentions a private exponent: %s", r.Body)
	}
}

func TestAuthorizationCodeFlow(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	alice := e.createUser(t, "alice", userPassword)
	tok := e.codeFlow(t, "alice", userPassword)
	if tok.TokenType != "Bearer" || tok.RefreshToken == "" || tok.IDToken == "" || tok.ExpiresIn <= 0 {
		t.Errorf("token response: %+v", tok)
	}

	at := claimsOf(t, tok.AccessToken)
	if at["iss"] != e.URL || at["sub"] != alice.ID || !audienceHas(at["aud"], provider.APIAudience) {
		t.Errorf("access token claims: %v", at)
	}
	if jti, _ := at["jti"].(string); !provider.ValidTokenID(jti) || provider.SessionOf(jti) == "" {
		t.Errorf("access token jti %q is not a session token id", at["jti"])
	}
	id := claimsOf(t, tok.IDToken)
	if id["sub"] != alice.ID || !audienceHas(id["aud"], provider.CLIClientID) || !strings.HasPrefix(id["nonce"].(string), "n-") {
		t.Errorf("ID token claims: %v", id)
	}

	r := e.getWithToken(t, mePath, tok.AccessToken)
	if r.Status != http.StatusOK {
		t.Fatalf("GET /api/v1/me: %d %s", r.Status, r.Body)
	}
	var me map[string]any
	r.json(t, &me)
	want := map[string]any{"id": alice.ID, "kind": "user", "name": "alice", "admin": false}
	if diff := cmp.Diff(want, me); diff != "" {
		t.Errorf("me (-want +got):\n%s", diff)
	}
}

// The code is single use: a second exchange is refused and does not
// issue tokens.
func TestAuthorizationCodeIsSingleUse(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.createUser(t, "alice", userPassword)
	p := newPKCE()
	code := e.authorizeCode(t, "alice", userPassword, p)
	mustTokens(t, e.exchangeCode(t, code, p.verifier))
	r := e.exchangeCode(t, code, p.verifier)
	if r.Status != http.StatusBadRequest || r.oauthError() != "invalid_grant" {
		t.Errorf("second exchange: %d %s, want 400 invalid_grant", r.Status, r.Body)
	}
}

func TestRefreshRotationAndReuseDetection(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.createUser(t, "alice", userPassword)
	first := e.codeFlow(t, "alice", userPassword)

	second := mustTokens(t, e.refresh(t, first.RefreshToken))
	if second.RefreshToken == "" || second.RefreshToken == first.RefreshToken {
		t.Fatalf("refresh did not rotate: old %q new %q", first.RefreshToken, second.RefreshToken)
	}
	if second.AccessToken == first.AccessToken {
		t.Error("refresh returned the same access token")
	}
	if st := e.meStatus(t, second.AccessToken); st != http.StatusOK {
		t.Fatalf("refreshed access token: %d", st)
	}

	// The old refresh token again: a replay. The whole family goes.
	r := e.refresh(t, first.RefreshToken)
	if r.Status != http.StatusBadRequest || r.oauthError() != "invalid_grant" {
		t.Fatalf("reused refresh token: %d %s, want 400 invalid_grant", r.Status, r.Body)
	}
	r = e.refresh(t, second.RefreshToken)
	if r.Status != http.StatusBadRequest || r.oauthError() != "invalid_grant" {
		t.Errorf("successor after reuse: %d %s, want 400 invalid_grant", r.Status, r.Body)
	}
	for name, at := range map[string]string{"first": first.AccessToken, "second": second.AccessToken} {
		if st := e.meStatus(t, at); st != http.StatusUnauthorized {
			t.Errorf("%s access token of the revoked family: %d, want 401", name, st)
		}
	}
	// Another login of the same user is a different family and unaffected.
	other := e.apiLogin(t, "alice", userPassword)
	if st := e.meStatus(t, other.AccessToken); st != http.StatusOK {
		t.Errorf("another session of the same user: %d, want 200", st)
	}
}

func revoke(t *testing.T, e *env, token, hint string) response {
	t.Helper()
	form := url.Values{"token": {token}, "client_id": {provider.CLIClientID}}
	if hint != "" {
		form.Set("token_type_hint", hint)
	}
	return e.postForm(t, nil, "/oauth/revoke", form, "", "")
}

func TestRevokeRefreshToken(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.createUser(t, "alice", userPassword)
	for _, hint := range []string{"", "refresh_token"} {
		tok := e.codeFlow(t, "alice", userPassword)
		if r := revoke(t, e, tok.RefreshToken, hint); r.Status != http.StatusOK {
			t.Fatalf("revoke (hint %q): %d %s", hint, r.Status, r.Body)
		}
		if r := e.refresh(t, tok.RefreshToken); r.oauthError() != "invalid_grant" {
			t.Errorf("revoked refresh token (hint %q): %d %s, want invalid_grant", hint, r.Status, r.Body)
		}
		if st := e.meStatus(t, tok.AccessToken); st != http.StatusUnauthorized {
			t.Errorf("access token of a revoked family (hint %q): %d, want 401", hint, st)
		}
	}
}

func TestRevokeAccessToken(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.createUser(t, "alice", userPassword)
	tok := e.codeFlow(t, "alice", userPassword)
	if r := revoke(t, e, tok.AccessToken, "access_token"); r.Status != http.StatusOK {
		t.Fatalf("revoke: %d %s", r.Status, r.Body)
	}
	if st := e.meStatus(t, tok.AccessToken); st != http.StatusUnauthorized {
		t.Errorf("revoked access token: %d, want 401", st)
	}
	// Only that token: the session can still refresh.
	next := mustTokens(t, e.refresh(t, tok.RefreshToken))
	if st := e.meStatus(t, next.AccessToken); st != http.StatusOK {
		t.Errorf("new access token after revoking the old one: %d, want 200", st)
	}

	// RFC 7009 section 2.2: unknown or malformed tokens are answered 200.
	for _, unknown := range []string{
		"not-a-token", "rt_" + strings.Repeat("A", 50), "rt:00", "rt:" + strings.Repeat("ab", 32),
		"x.y", "cc.unknown", "a.b.c", strings.Repeat("z", 5000),
	} {
		if r := revoke(t, e, unknown, ""); r.Status != http.StatusOK {
			t.Errorf("revoke unknown token %.20q: %d %s, want 200", unknown, r.Status, r.Body)
		}
	}
	if st := e.meStatus(t, next.AccessToken); st != http.StatusOK {
		t.Errorf("unrelated access token after revoking unknown tokens: %d, want 200", st)
	}
}

// The provider's internal token ids ("rt:<sha256>" for a refresh token,
// the jti for an access token) are not tokens: sent to /oauth/revoke they
// revoke nothing.
func TestRevokeByInternalIDRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.createUser(t, "alice", userPassword)
	tok := e.codeFlow(t, "alice", userPassword)
	sum := sha256.Sum256([]byte(tok.RefreshToken))
	jti := claimsOf(t, tok.AccessToken)["jti"].(string)
	for _, id := range []string{"rt:" + hex.EncodeToString(sum[:]), jti, provider.SessionOf(jti) + ".other"} {
		if r := revoke(t, e, id, ""); r.Status != http.StatusOK {
			t.Errorf("revoke %q: %d %s, want 200", id, r.Status, r.Body)
		}
	}
	if st := e.meStatus(t, tok.AccessToken); st != http.StatusOK {
		t.Errorf("access token after revoking by internal ids: %d, want 200", st)
	}
	mustTokens(t, e.refresh(t, tok.RefreshToken))
}

// A client may not revoke another client's tokens.
func TestRevokeOtherClientsToken(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.createUser(t, "alice", userPassword)
	saID, secret := e.createServiceAccount(t, "robot")
	tok := e.codeFlow(t, "alice", userPassword)
	for _, token := range []string{tok.AccessToken, tok.RefreshToken} {
		r := e.postForm(t, nil, "/oauth/revoke", url.Values{"token": {token}}, saID, secret)
		if r.Status == http.StatusOK || r.Status >= 500 {
			t.Errorf("service account revoking the CLI's token: %d %s, want a client error", r.Status, r.Body)
		}
	}
	if st := e.meStatus(t, tok.AccessToken); st != http.StatusOK {
		t.Errorf("access token after a foreign revocation attempt: %d, want 200", st)
	}
	mustTokens(t, e.refresh(t, tok.RefreshToken))
}

type introspection struct {
	Active   bool   `json:"active"`
	Subject  string `json:"sub"`
	Username string `json:"username"`
	ClientID string `json:"client_id"`
}

func introspect(t *testing.T, e *env, clientID, secret, token string) introspection {
	t.Helper()
	r := e.postForm(t, nil, "/oauth/introspect", url.Values{"token": {token}}, clientID, secret)
	if r.Status != http.StatusOK {
		t.Fatalf("introspect: %d %s", r.Status, r.Body)
	}
	var out introspection
	r.json(t, &out)
	return out
}

func TestIntrospection(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	alice := e.createUser(t, "alice", userPassword)
	saID, secret := e.createServiceAccount(t, "gateway")
	tok := e.codeFlow(t, "alice", userPassword)

	got := introspect(t, e, saID, secret, tok.AccessToken)
	if !got.Active || got.Subject != alice.ID || got.Username != "alice" {
		t.Errorf("introspection of a live token: %+v", got)
	}
	// The service account's own client-credentials token.
	own := mustTokens(t, e.clientCredentials(t, saID, secret))
	if got := introspect(t, e, saID, secret, own.AccessToken); !got.Active || got.Subject != saID {
		t.Errorf("introspection of the service account's own token: %+v", got)
	}
	// Not access tokens: inactive.
	for name, token := range map[string]string{"id token": tok.IDToken, "refresh token": tok.RefreshToken, "garbage": "x.y.z"} {
		if got := introspect(t, e, saID, secret, token); got.Active {
			t.Errorf("introspection of %s: active", name)
		}
	}

	if r := revoke(t, e, tok.AccessToken, "access_token"); r.Status != http.StatusOK {
		t.Fatalf("revoke: %d %s", r.Status, r.Body)
	}
	if got := introspect(t, e, saID, secret, tok.AccessToken); got.Active {
		t.Errorf("introspection after revocation: %+v, want inactive", got)
	}

	// Callers must authenticate as a confidential client.
	for name, c := range map[string][2]string{"no credentials": {"", ""}, "wrong secret": {saID, "wrong"}} {
		r := e.postForm(t, nil, "/oauth/introspect", url.Values{"token": {own.AccessToken}}, c[0], c[1])
		if r.Status != http.StatusUnauthorized {
			t.Errorf("introspection with %s: %d %s, want 401", name, r.Status, r.Body)
		}
	}
	r := e.postForm(t, nil, "/oauth/introspect", url.Values{"token": {own.AccessToken}, "client_id": {provider.CLIClientID}}, "", "")
	if r.Status != http.StatusUnauthorized {
		t.Errorf("introspection by the public CLI client: %d %s, want 401", r.Status, r.Body)
	}
}

func TestUserinfo(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	alice := e.createUser(t, "alice", userPassword)
	tok := e.codeFlow(t, "alice", userPassword)
	r := e.getWithToken(t, "/oauth/userinfo", tok.AccessToken)
	if r.Status != http.StatusOK {
		t.Fatalf("userinfo: %d %s", r.Status, r.Body)
	}
	var info map[string]any
	r.json(t, &info)
	want := map[string]any{"sub": alice.ID, "preferred_username": "alice", "email": "alice@example.com"}
	if diff := cmp.Diff(want, info); diff != "" {
		t.Errorf("userinfo (-want +got):\n%s", diff)
	}

	// Refused: no token, an ID token, a revoked token.
	if r := e.get(t, nil, "/oauth/userinfo"); r.Status != http.StatusUnauthorized {
		t.Errorf("userinfo without a token: %d", r.Status)
	}
	if r := e.getWithToken(t, "/oauth/userinfo", tok.IDToken); r.Status == http.StatusOK || r.Status >= 500 {
		t.Errorf("userinfo with an ID token: %d %s", r.Status, r.Body)
	}
	revoke(t, e, tok.AccessToken, "access_token")
	if r := e.getWithToken(t, "/oauth/userinfo", tok.AccessToken); r.Status == http.StatusOK || r.Status >= 500 {
		t.Errorf("userinfo with a revoked token: %d %s", r.Status, r.Body)
	}
}

func TestEndSession(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.createUser(t, "alice", userPassword)
	tok := e.codeFlow(t, "alice", userPassword)
	other := e.apiLogin(t, "alice", userPassword)

	q := url.Values{
		"id_token_hint": {tok.IDToken}, "client_id": {provider.CLIClientID},
		"post_logout_redirect_uri": {loopbackRedirect}, "state": {"bye"},
	}
	loc := e.location(t, e.get(t, nil, "/oauth/logout?"+q.Encode()))
	if loc.Scheme+"://"+loc.Host+loc.Path != loopbackRedirect || loc.Query().Get("state") != "bye" {
		t.Errorf("logout redirected to %s", loc)
	}
	// Logout ends every session of the user (TerminateSession).
	for name, at := range map[string]string{"code flow": tok.AccessToken, "api login": other.AccessToken} {
		if st := e.meStatus(t, at); st != http.StatusUnauthorized {
			t.Errorf("%s access token after logout: %d, want 401", name, st)
		}
	}
	for name, rt := range map[string]string{"code flow": tok.RefreshToken, "api login": other.RefreshToken} {
		if r := e.refresh(t, rt); r.oauthError() != "invalid_grant" {
			t.Errorf("%s refresh token after logout: %d %s", name, r.Status, r.Body)
		}
	}

	// Unknown clients are a client error, not a server error.
	if r := e.get(t, nil, "/oauth/logout?client_id=evil&post_logout_redirect_uri="+url.QueryEscape(loopbackRedirect)); r.Status < 400 || r.Status >= 500 || r.Header.Get("Location") != "" {
		t.Errorf("logout for an unknown client: %d %s", r.Status, r.Body)
	}
	// The post-logout redirect must be registered.
	for _, bad := range []string{"http://evil.example/callback", "http://127.0.0.1/other", "https://evil.example/"} {
		q.Set("post_logout_redirect_uri", bad)
		r := e.get(t, nil, "/oauth/logout?"+q.Encode())
		if loc := r.Header.Get("Location"); r.Status < 400 || r.Status >= 500 || loc != "" {
			t.Errorf("logout to %s: %d Location %q, want a 4xx without redirect", bad, r.Status, loc)
		}
	}
}

func TestRevokeAllSessions(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	alice := e.createUser(t, "alice", userPassword)
	e.createUser(t, "bob", userPassword)
	a1, a2 := e.apiLogin(t, "alice", userPassword), e.codeFlow(t, "alice", userPassword)
	b := e.apiLogin(t, "bob", userPassword)
	n, err := e.Provider.RevokeAllSessions(context.Background(), alice.ID, "logout")
	if err != nil || n != 2 {
		t.Fatalf("RevokeAllSessions = %d, %v; want 2 sessions", n, err)
	}
	for _, tok := range []tokens{a1, a2} {
		if st := e.meStatus(t, tok.AccessToken); st != http.StatusUnauthorized {
			t.Errorf("alice's token after RevokeAllSessions: %d", st)
		}
		if r := e.refresh(t, tok.RefreshToken); r.oauthError() != "invalid_grant" {
			t.Errorf("alice's refresh after RevokeAllSessions: %d %s", r.Status, r.Body)
		}
	}
	if st := e.meStatus(t, b.AccessToken); st != http.StatusOK {
		t.Errorf("bob's token after revoking alice's sessions: %d", st)
	}
}

type deviceAuthorization struct {
	DeviceCode              string `json:"device_code"`
	UserCode                string `json:"user_code"`
	VerificationURI         string `json:"verification_uri"`
	VerificationURIComplete string `json:"verification_uri_complete"`
	ExpiresIn               int    `json:"expires_in"`
	Interval                int    `json:"interval"`
}

var userCodeShape = regexp.MustCompile(`^[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}$`)

func (e *env) startDevice(t *testing.T) deviceAuthorization {
	t.Helper()
	r := e.postForm(t, nil, "/oauth/device_authorization", url.Values{
		"client_id": {provider.CLIClientID}, "scope": {"openid offline_access"},
	}, "", "")
	if r.Status != http.StatusOK {
		t.Fatalf("device authorization: %d %s", r.Status, r.Body)
	}
	var d deviceAuthorization
	r.json(t, &d)
	if !userCodeShape.MatchString(d.UserCode) || d.DeviceCode == "" || d.VerificationURI != e.URL+"/oauth/device" ||
		d.VerificationURIComplete != e.URL+"/oauth/device?user_code="+d.UserCode || d.ExpiresIn <= 0 || d.Interval <= 0 {
		t.Fatalf("device authorization response: %+v", d)
	}
	return d
}

func (e *env) pollDevice(t *testing.T, deviceCode string) response {
	t.Helper()
	return e.tokenRequest(t, url.Values{
		"grant_type":  {"urn:ietf:params:oauth:grant-type:device_code"},
		"device_code": {deviceCode}, "client_id": {provider.CLIClientID},
	}, "", "")
}

// decideDevice loads the device page (for the CSRF cookie) and submits it.
func (e *env) decideDevice(t *testing.T, userCode, name, pw, action string) response {
	t.Helper()
	browser := e.newClient(true)
	page := e.get(t, browser, "/oauth/device?user_code="+url.QueryEscape(userCode))
	if page.Status != http.StatusOK {
		t.Fatalf("device page: %d %s", page.Status, page.Body)
	}
	return e.postForm(t, browser, "/oauth/device", url.Values{
		"csrf": {formCSRF(t, page)}, "user_code": {userCode}, "username": {name}, "password": {pw}, "action": {action},
	}, "", "")
}

func TestDeviceFlow(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	alice := e.createUser(t, "alice", userPassword)

	d := e.startDevice(t)
	if r := e.pollDevice(t, d.DeviceCode); r.Status != http.StatusBadRequest || r.oauthError() != "authorization_pending" {
		t.Fatalf("poll before approval: %d %s, want authorization_pending", r.Status, r.Body)
	}
	// A wrong password approves nothing.
	if r := e.decideDevice(t, d.UserCode, "alice", "wrong password", "approve"); r.Status != http.StatusUnauthorized {
		t.Errorf("approve with a wrong password: %d", r.Status)
	}
	if r := e.pollDevice(t, d.DeviceCode); r.oauthError() != "authorization_pending" {
		t.Fatalf("poll after a failed approval: %d %s", r.Status, r.Body)
	}
	// Typed as people do: lower case, no dash.
	typed := strings.ToLower(strings.ReplaceAll(d.UserCode, "-", ""))
	r := e.decideDevice(t, typed, "alice", userPassword, "approve")
	if r.Status != http.StatusOK || !strings.Contains(string(r.Body), "Device approved") {
		t.Fatalf("approve: %d %s", r.Status, r.Body)
	}
	tok := mustTokens(t, e.pollDevice(t, d.DeviceCode))
	if tok.RefreshToken == "" {
		t.Error("device flow with offline_access issued no refresh token")
	}
	var me map[string]any
	if r := e.getWithToken(t, mePath, tok.AccessToken); r.Status != http.StatusOK {
		t.Fatalf("device token at /api/v1/me: %d %s", r.Status, r.Body)
	} else if r.json(t, &me); me["id"] != alice.ID {
		t.Errorf("device token is for %v, want %s", me["id"], alice.ID)
	}
	mustTokens(t, e.refresh(t, tok.RefreshToken))
	// The device code is handed out once.
	if r := e.pollDevice(t, d.DeviceCode); r.Status == http.StatusOK || r.Status >= 500 {
		t.Errorf("second poll after the token: %d %s", r.Status, r.Body)
	}
	// The user code is used up.
	if r := e.decideDevice(t, d.UserCode, "alice", userPassword, "approve"); r.Status != http.StatusBadRequest {
		t.Errorf("approving a used code: %d, want 400", r.Status)
	}
}

func TestDeviceFlowDenied(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.createUser(t, "alice", userPassword)
	d := e.startDevice(t)
	r := e.decideDevice(t, d.UserCode, "alice", userPassword, "deny")
	if r.Status != http.StatusOK || !strings.Contains(string(r.Body), "denied") {
		t.Fatalf("deny: %d %s", r.Status, r.Body)
	}
	if r := e.pollDevice(t, d.DeviceCode); r.Status != http.StatusBadRequest || r.oauthError() != "access_denied" {
		t.Errorf("poll after denial: %d %s, want access_denied", r.Status, r.Body)
	}
	if r := e.decideDevice(t, d.UserCode, "alice", userPassword, "approve"); r.Status != http.StatusBadRequest {
		t.Errorf("approving a denied code: %d, want 400", r.Status)
	}
	if r := e.pollDevice(t, d.DeviceCode); r.Status == http.StatusOK || r.Status >= 500 {
		t.Errorf("poll after denial, again: %d %s", r.Status, r.Body)
	}
}

func TestDeviceFlowRefusals(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	saID, secret := e.createServiceAccount(t, "robot")
	cases := []struct {
		name       string
		form       url.Values
		user, pass string
	}{
		{"no client", url.Values{"scope": {"openid"}}, "", ""},
		{"unknown client", url.Values{"client_id": {"evil"}, "scope": {"openid"}}, "", ""},
		{"service account", url.Values{"scope": {"openid"}}, saID, secret},
	}
	for _, c := range cases {
		r := e.postForm(t, nil, "/oauth/device_authorization", c.form, c.user, c.pass)
		if r.Status < 400 || r.Status >= 500 {
			t.Errorf("%s: %d %s, want a 4xx", c.name, r.Status, r.Body)
		}
	}
	// Unknown device codes and unknown user codes.
	if r := e.pollDevice(t, "no-such-device-code"); r.Status < 400 || r.Status >= 500 {
		t.Errorf("poll unknown device code: %d %s", r.Status, r.Body)
	}
	e.createUser(t, "alice", userPassword)
	if r := e.decideDevice(t, "BCDF-GHJK", "alice", userPassword, "approve"); r.Status != http.StatusBadRequest {
		t.Errorf("approve unknown user code: %d", r.Status)
	}
}

func TestClientCredentials(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	saID, secret := e.createServiceAccount(t, "robot")
	tok := mustTokens(t, e.clientCredentials(t, saID, secret))
	if tok.RefreshToken != "" {
		t.Error("client credentials issued a refresh token")
	}
	if c := claimsOf(t, tok.AccessToken); c["sub"] != saID || !audienceHas(c["aud"], provider.APIAudience) {
		t.Errorf("claims: %v", c)
	}
	r := e.getWithToken(t, mePath, tok.AccessToken)
	var me map[string]any
	if r.Status != http.StatusOK {
		t.Fatalf("service account at /api/v1/me: %d %s", r.Status, r.Body)
	}
	r.json(t, &me)
	if me["id"] != saID || me["kind"] != "service-account" || me["name"] != "robot" {
		t.Errorf("me: %v", me)
	}
	// The client_secret_post form is not this client's method, but the
	// secret in the body must not be a way around anything either.
	r = e.tokenRequest(t, url.Values{"grant_type": {"client_credentials"}, "client_id": {saID}, "client_secret": {"wrong"}}, "", "")
	if r.Status == http.StatusOK || r.Status >= 500 {
		t.Errorf("wrong secret in the body: %d %s", r.Status, r.Body)
	}

	// Revoking its own token works; the next grant gets a fresh one.
	if r := e.postForm(t, nil, "/oauth/revoke", url.Values{"token": {tok.AccessToken}}, saID, secret); r.Status != http.StatusOK {
		t.Fatalf("revoke own token: %d %s", r.Status, r.Body)
	}
	if st := e.meStatus(t, tok.AccessToken); st != http.StatusUnauthorized {
		t.Errorf("revoked service account token: %d", st)
	}
	mustTokens(t, e.clientCredentials(t, saID, secret))
}

func TestClientCredentialsRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	saID, secret := e.createServiceAccount(t, "robot")
	tok := mustTokens(t, e.clientCredentials(t, saID, secret))
	cases := []struct{ name, id, secret string }{
		{"wrong secret", saID, "wrong"},
		{"empty secret", saID, ""},
		{"unknown service account", "sa-nobody", secret},
		{"not a service account", provider.CLIClientID, secret},
		{"long secret", saID, strings.Repeat("s", 10_000)},
		// Over the server's header limit: net/http answers 431.
		{"oversized secret", saID, strings.Repeat("s", 100_000)},
	}
	for _, c := range cases {
		r := e.clientCredentials(t, c.id, c.secret)
		if r.Status != http.StatusUnauthorized && r.Status != http.StatusBadRequest && r.Status != http.StatusRequestHeaderFieldsTooLarge {
			t.Errorf("%s: %d %s, want 400/401/431", c.name, r.Status, r.Body)
		}
		if r.Status == http.StatusOK {
			t.Errorf("%s: issued a token", c.name)
		}
	}

	// Disabled: no new tokens, and the live one stops working at once.
	e.updateServiceAccount(t, saID, func(sa *store.ServiceAccount) { sa.Disabled = true })
	if r := e.clientCredentials(t, saID, secret); r.Status != http.StatusUnauthorized || r.oauthError() != "invalid_client" {
		t.Errorf("disabled service account: %d %s, want 401 invalid_client", r.Status, r.Body)
	}
	if st := e.meStatus(t, tok.AccessToken); st != http.StatusUnauthorized {
		t.Errorf("token of a disabled service account: %d, want 401", st)
	}
}

func TestAPILogin(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	alice := e.createUser(t, "alice", userPassword)
	tok := e.apiLogin(t, "alice", userPassword)
	if tok.RefreshToken == "" || tok.IDToken == "" {
		t.Errorf("api login: %+v", tok)
	}
	if c := claimsOf(t, tok.AccessToken); c["sub"] != alice.ID || c["iss"] != e.URL {
		t.Errorf("claims: %v", c)
	}
	mustTokens(t, e.refresh(t, tok.RefreshToken))

	cases := []struct {
		name string
		body any
		want int
	}{
		{"wrong password", map[string]string{"username": "alice", "password": "wrong"}, http.StatusUnauthorized},
		{"unknown user", map[string]string{"username": "nobody", "password": userPassword}, http.StatusUnauthorized},
		{"missing password", map[string]string{"username": "alice"}, http.StatusBadRequest},
		{"unknown field", map[string]string{"username": "alice", "password": userPassword, "admin": "true"}, http.StatusBadRequest},
		{"not an object", []string{"alice"}, http.StatusBadRequest},
	}
	for _, c := range cases {
		r := e.postJSON(t, "/api/v1/login", c.body)
		if r.Status != c.want {
			t.Errorf("%s: %d %s, want %d", c.name, r.Status, r.Body, c.want)
		}
	}
}

// A user who must change the password gets tokens, but they work only for
// the password-change routes.
func TestMustChangePasswordToken(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.createUser(t, "newbie", userPassword, func(a *store.Account) { a.MustChangePassword = true })
	tok := e.apiLogin(t, "newbie", userPassword)
	if st := e.meStatus(t, tok.AccessToken); st != http.StatusOK {
		t.Errorf("GET /api/v1/me: %d, want 200", st)
	}
	r := e.getWithToken(t, adminProbePath, tok.AccessToken)
	var body struct {
		Code string `json:"code"`
	}
	r.json(t, &body)
	if r.Status != http.StatusForbidden || body.Code != "password_change_required" {
		t.Errorf("other route: %d %s, want 403 password_change_required", r.Status, r.Body)
	}
}

func audienceHas(aud any, want string) bool {
	switch a := aud.(type) {
	case string:
		return a == want
	case []any:
		for _, x := range a {
			if x == want {
				return true
			}
		}
	}
	return false
}

// addClientKey registers a public key for the JWT bearer grant (RFC 7523)
// and returns the private key.
func (e *env) addClientKey(t *testing.T, saID, kid string) *ecdsa.PrivateKey {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	jwk, err := json.Marshal(jose.JSONWebKey{Key: &priv.PublicKey, KeyID: kid, Algorithm: "ES256", Use: "sig"})
	if err != nil {
		t.Fatal(err)
	}
	e.tx(t, func(ctx context.Context, tx store.Tx) error {
		return tx.ServiceAccounts().AddClientKey(ctx, store.ClientKey{ID: kid, ServiceAccountID: saID, PublicKey: jwk, CreatedAt: time.Now()})
	})
	return priv
}

func (e *env) jwtBearer(t *testing.T, assertion string) response {
	t.Helper()
	return e.tokenRequest(t, url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:jwt-bearer"}, "assertion": {assertion}, "scope": {"openid"}}, "", "")
}

func TestJWTBearerGrant(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	saID, _ := e.createServiceAccount(t, "robot")
	key := e.addClientKey(t, saID, "k1")
	now := time.Now()
	assertion := map[string]any{"iss": saID, "sub": saID, "aud": []string{e.URL}, "iat": now.Unix(), "exp": now.Add(time.Minute).Unix(), "jti": "a1"}

	first := signWith(t, jose.ES256, key, "k1", assertion)
	tok := mustTokens(t, e.jwtBearer(t, first))
	c := claimsOf(t, tok.AccessToken)
	if c["sub"] != saID || !audienceHas(c["aud"], provider.APIAudience) {
		t.Errorf("claims: %v", c)
	}
	if st := e.meStatus(t, tok.AccessToken); st != http.StatusOK {
		t.Errorf("JWT bearer token at /api/v1/me: %d", st)
	}
	// An assertion works once (RFC 7523 section 3: jti replay).
	if r := e.jwtBearer(t, first); r.Status != http.StatusBadRequest {
		t.Errorf("replayed assertion: %d %s, want 400", r.Status, r.Body)
	}
	// The assertion does not choose the token's audience.
	tok = mustTokens(t, e.jwtBearer(t, signWith(t, jose.ES256, key, "k1", with(assertion, "aud", []string{e.URL, "kubeflow"}, "jti", "a2"))))
	if c := claimsOf(t, tok.AccessToken); audienceHas(c["aud"], "kubeflow") || audienceHas(c["aud"], e.URL) {
		t.Errorf("token audience %v taken from the assertion", c["aud"])
	}

	alice := e.createUser(t, "alice", userPassword)
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	for name, a := range map[string]string{
		"other subject":   signWith(t, jose.ES256, key, "k1", with(assertion, "sub", alice.ID)),
		"other key":       signWith(t, jose.ES256, other, "k1", assertion),
		"unknown kid":     signWith(t, jose.ES256, key, "k2", assertion),
		"wrong audience":  signWith(t, jose.ES256, key, "k1", with(assertion, "aud", []string{"https://evil.example"})),
		"expired":         signWith(t, jose.ES256, key, "k1", with(assertion, "exp", now.Add(-time.Minute).Unix())),
		"unknown issuer":  signWith(t, jose.ES256, key, "k1", with(assertion, "iss", "sa-nobody", "sub", "sa-nobody")),
		"user as issuer":  signWith(t, jose.ES256, key, "k1", with(assertion, "iss", alice.ID, "sub", alice.ID)),
		"alg none":        b64(map[string]string{"alg": "none", "kid": "k1"}) + "." + b64(assertion) + ".",
		"no jti":          signWith(t, jose.ES256, key, "k1", with(assertion, "jti", "")),
		"lives too long":  signWith(t, jose.ES256, key, "k1", with(assertion, "exp", now.Add(time.Hour).Unix(), "jti", "a3")),
		"garbage":         "x.y.z",
		"empty assertion": "",
	} {
		if r := e.jwtBearer(t, a); r.Status == http.StatusOK || r.Status >= 500 {
			t.Errorf("%s: %d %s, want a 4xx", name, r.Status, r.Body)
		}
	}
	e.updateServiceAccount(t, saID, func(sa *store.ServiceAccount) { sa.Disabled = true })
	if r := e.jwtBearer(t, signWith(t, jose.ES256, key, "k1", with(assertion, "jti", "a4"))); r.Status == http.StatusOK || r.Status >= 500 {
		t.Errorf("disabled service account: %d %s", r.Status, r.Body)
	}
}

func TestSecondFactor(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	secret, _, err := identity.NewTOTPKey("alice")
	if err != nil {
		t.Fatal(err)
	}
	e.createUser(t, "alice", userPassword, func(a *store.Account) {
		sealed, err := e.Sealer.Seal([]byte(secret), identity.TOTPSecretAD(a.ID))
		if err != nil {
			t.Fatal(err)
		}
		a.TOTPSecret = sealed
	})
	code := func(at time.Time) string {
		c, err := totp.GenerateCode(secret, at)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	login := func(otp string) response {
		return e.postJSON(t, "/api/v1/login", map[string]string{"username": "alice", "password": userPassword, "otp": otp})
	}
	var body struct {
		Code string `json:"code"`
	}
	r := login("")
	if r.json(t, &body); r.Status != http.StatusUnauthorized || body.Code != "otp_required" {
		t.Errorf("no code: %d %s, want 401 otp_required", r.Status, r.Body)
	}
	r = login("000000")
	if r.json(t, &body); r.Status != http.StatusUnauthorized || body.Code != "invalid_credentials" {
		t.Errorf("wrong code: %d %s, want 401 invalid_credentials", r.Status, r.Body)
	}
	// One step back: the code for the current step stays unused for the
	// login page below.
	previous := code(time.Now().Add(-30 * time.Second))
	tok := mustTokens(t, login(previous))
	if amr := claimsOf(t, tok.IDToken)["amr"]; !audienceHas(amr, "otp") || !audienceHas(amr, "mfa") {
		t.Errorf("ID token amr %v, want otp and mfa", amr)
	}
	if r := login(previous); r.Status != http.StatusUnauthorized {
		t.Errorf("replayed code: %d %s, want 401", r.Status, r.Body)
	}

	// The login page takes the code in the otp field.
	browser := e.newClient(true)
	id := e.startAuthorize(t, browser, authorizeQuery(newPKCE(), "s"))
	page := e.get(t, browser, "/oauth/login?authRequestID="+url.QueryEscape(id))
	r = e.postForm(t, browser, "/oauth/login", url.Values{
		"csrf": {formCSRF(t, page)}, "authRequestID": {id}, "username": {"alice"}, "password": {userPassword}, "otp": {" " + code(time.Now()) + " "},
	}, "", "")
	if loc := e.location(t, r); loc.Path != "/oauth/authorize/callback" {
		t.Errorf("login page with a code: redirected to %s", loc)
	}
}

// Concurrent exchanges of one refresh token: at most one wins, and a
// losing one counts as a replay.
func TestConcurrentRefresh(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.createUser(t, "alice", userPassword)
	tok := e.apiLogin(t, "alice", userPassword)
	const n = 6
	results := make(chan response, n)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() { results <- e.refresh(t, tok.RefreshToken) })
	}
	wg.Wait()
	close(results)
	var won []tokens
	for r := range results {
		switch {
		case r.Status == http.StatusOK:
			won = append(won, mustTokens(t, r))
		case r.Status != http.StatusBadRequest || r.oauthError() != "invalid_grant":
			t.Errorf("concurrent refresh: %d %s", r.Status, r.Body)
		}
	}
	if len(won) > 1 {
		t.Fatalf("%d concurrent exchanges of one refresh token succeeded", len(won))
	}
	// The losers were replays: the family is gone, winner included.
	for _, w := range won {
		if st := e.meStatus(t, w.AccessToken); st != http.StatusUnauthorized {
			t.Errorf("winner's access token after a replay: %d, want 401", st)
		}
	}
}
