package provider_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/rampart-ml/rampart/internal/identity/jwttest"
	"github.com/rampart-ml/rampart/internal/identity/provider"
	"github.com/rampart-ml/rampart/internal/store"
)

// Bad input: every refusal is a precise 4xx, never a 500 and never a
// token.

// baseClaims are valid access-token claims for sub.
func (e *env) baseClaims(sub string) map[string]any {
	now := time.Now()
	return map[string]any{
		"iss": e.URL, "sub": sub, "aud": []string{provider.APIAudience},
		"exp": now.Add(5 * time.Minute).Unix(), "iat": now.Unix(), "nbf": now.Unix(),
		"jti": "forged." + strings.ToLower(rand.Text()), "client_id": provider.CLIClientID,
	}
}

var with = jwttest.With

var b64 = jwttest.Segment

// signWith signs payload with any key and algorithm, with kid in the header.
var signWith = jwttest.Sign

func TestForgedAndInvalidTokensRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	alice := e.createUser(t, "alice", userPassword)
	disabled := e.createUser(t, "dora", userPassword, func(a *store.Account) { a.Disabled = true })
	k, err := e.Keys.Signing(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	base := e.baseClaims(alice.ID)
	now := time.Now()
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)

	// The public key in every form an attacker might feed HMAC.
	pubDER, _ := x509.MarshalPKIXPublicKey(&k.Private.PublicKey)
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	pubJWK, _ := json.Marshal(jose.JSONWebKey{Key: &k.Private.PublicKey, KeyID: k.ID, Algorithm: "ES256", Use: "sig"})
	ecdh, _ := k.Private.PublicKey.ECDH()

	valid := e.sign(t, base)
	parts := strings.Split(valid, ".")

	cases := []struct {
		name  string
		token string
		want  int
	}{
		{"control: valid claims, real key", valid, http.StatusOK},
		{"control: nbf within the clock skew", e.sign(t, with(base, "nbf", now.Add(30*time.Second).Unix())), http.StatusOK},
		{"control: audience array containing rampart", e.sign(t, with(base, "aud", []string{"other", "rampart"})), http.StatusOK},
		{"control: audience as a string", e.sign(t, with(base, "aud", "rampart")), http.StatusOK},

		{"expired", e.sign(t, with(base, "exp", now.Add(-time.Second).Unix())), http.StatusUnauthorized},
		{"expired long ago", e.sign(t, with(base, "exp", 1)), http.StatusUnauthorized},
		{"no exp", e.sign(t, with(base, "exp", nil)), http.StatusUnauthorized},
		{"exp as a string", e.sign(t, with(base, "exp", "9999999999")), http.StatusUnauthorized},
		{"nbf in the future", e.sign(t, with(base, "nbf", now.Add(2*time.Minute).Unix())), http.StatusUnauthorized},
		{"iat in the future", e.sign(t, with(base, "iat", now.Add(2*time.Minute).Unix())), http.StatusUnauthorized},
		{"wrong audience", e.sign(t, with(base, "aud", []string{"kubeflow"})), http.StatusUnauthorized},
		{"audience is the CLI client", e.sign(t, with(base, "aud", provider.CLIClientID)), http.StatusUnauthorized},
		{"no audience", e.sign(t, with(base, "aud", nil)), http.StatusUnauthorized},
		{"audience of wrong type", e.sign(t, with(base, "aud", 42)), http.StatusUnauthorized},
		{"wrong issuer", e.sign(t, with(base, "iss", "https://evil.example")), http.StatusUnauthorized},
		{"issuer with trailing slash", e.sign(t, with(base, "iss", e.URL+"/")), http.StatusUnauthorized},
		{"no issuer", e.sign(t, with(base, "iss", nil)), http.StatusUnauthorized},
		{"no jti (ID token shape)", e.sign(t, with(base, "jti", nil)), http.StatusUnauthorized},
		{"jti without a dot", e.sign(t, with(base, "jti", "abc")), http.StatusUnauthorized},
		{"no subject", e.sign(t, with(base, "sub", nil)), http.StatusUnauthorized},
		{"unknown subject", e.sign(t, with(base, "sub", "u-nobody")), http.StatusUnauthorized},
		{"disabled subject", e.sign(t, with(base, "sub", disabled.ID)), http.StatusUnauthorized},
		{"unknown service account", e.sign(t, with(base, "sub", "sa-nobody")), http.StatusUnauthorized},

		{"alg none", b64(map[string]string{"alg": "none", "typ": "JWT", "kid": k.ID}) + "." + b64(base) + ".", http.StatusUnauthorized},
		{"alg none, no dot", b64(map[string]string{"alg": "none"}) + "." + b64(base), http.StatusUnauthorized},
		{"alg None", b64(map[string]string{"alg": "None", "kid": k.ID}) + "." + b64(base) + ".", http.StatusUnauthorized},
		{"HS256 with the public key (DER)", signWith(t, jose.HS256, pubDER, k.ID, base), http.StatusUnauthorized},
		{"HS256 with the public key (PEM)", signWith(t, jose.HS256, pubPEM, k.ID, base), http.StatusUnauthorized},
		{"HS256 with the public JWK", signWith(t, jose.HS256, pubJWK, k.ID, base), http.StatusUnauthorized},
		{"HS256 with the raw point", signWith(t, jose.HS256, ecdh.Bytes(), k.ID, base), http.StatusUnauthorized},
		{"unknown kid", signWith(t, jose.ES256, other, "no-such-key", base), http.StatusUnauthorized},
		{"real kid, other key", signWith(t, jose.ES256, other, k.ID, base), http.StatusUnauthorized},
		{"no kid, other key", signWith(t, jose.ES256, other, "", base), http.StatusUnauthorized},
		{"no kid, real key", signWith(t, jose.ES256, k.Private, "", base), http.StatusUnauthorized},
		{"ES384 header on the real key id", parts[0][:0] + b64(map[string]string{"alg": "ES384", "kid": k.ID}) + "." + parts[1] + "." + parts[2], http.StatusUnauthorized},

		{"tampered payload (admin subject)", parts[0] + "." + b64(with(base, "sub", e.Owner.ID)) + "." + parts[2], http.StatusUnauthorized},
		{"tampered payload (longer expiry)", parts[0] + "." + b64(with(base, "exp", now.Add(24*time.Hour).Unix())) + "." + parts[2], http.StatusUnauthorized},
		{"tampered header", b64(map[string]string{"alg": "ES256", "kid": k.ID, "typ": "at+jwt"}) + "." + parts[1] + "." + parts[2], http.StatusUnauthorized},
		{"no signature", parts[0] + "." + parts[1] + ".", http.StatusUnauthorized},
		{"truncated signature", parts[0] + "." + parts[1] + "." + parts[2][:20], http.StatusUnauthorized},
		{"signature of another token", parts[0] + "." + parts[1] + "." + strings.Split(e.sign(t, base), ".")[2][:10] + parts[2][10:], http.StatusUnauthorized},
		{"two parts", parts[0] + "." + parts[1], http.StatusUnauthorized},
		{"four parts", valid + ".x", http.StatusUnauthorized},
		{"garbage", "not a token", http.StatusUnauthorized},
		{"empty JSON object", "{}", http.StatusUnauthorized},
		{"JSON serialization with no signatures", `{"payload":"` + parts[1] + `","signatures":[]}`, http.StatusUnauthorized},
		{"payload not JSON", parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte("hello")) + "." + parts[2], http.StatusUnauthorized},
		{"too large", e.sign(t, with(base, "pad", strings.Repeat("x", 10_000))), http.StatusUnauthorized},
	}
	for _, c := range cases {
		r := e.getWithToken(t, mePath, c.token)
		if r.Status != c.want {
			t.Errorf("%s: %d %s, want %d", c.name, r.Status, r.Body, c.want)
			continue
		}
		if c.want == http.StatusUnauthorized && !strings.Contains(r.Header.Get("WWW-Authenticate"), "Bearer") {
			t.Errorf("%s: 401 without a Bearer challenge", c.name)
		}
	}
}

func TestAuthorizationHeaderForms(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.createUser(t, "alice", userPassword)
	tok := e.apiLogin(t, "alice", userPassword)
	cases := []struct {
		header string
		want   int
	}{
		{"Bearer " + tok.AccessToken, http.StatusOK},
		{"bearer " + tok.AccessToken, http.StatusOK},
		{"Bearer", http.StatusUnauthorized},
		{"Bearer ", http.StatusUnauthorized},
		{"Bearer  " + tok.AccessToken, http.StatusOK}, // RFC 6750: 1*SP
		{"Basic " + base64.StdEncoding.EncodeToString([]byte("alice:"+userPassword)), http.StatusUnauthorized},
		{"Token " + tok.AccessToken, http.StatusUnauthorized},
		{tok.AccessToken, http.StatusUnauthorized},
		// Larger than the token limit but under the header limit.
		{"Bearer " + strings.Repeat("A", 20_000), http.StatusUnauthorized},
		// Over the server's header limit: net/http refuses it.
		{"Bearer " + strings.Repeat("A", 100_000), http.StatusRequestHeaderFieldsTooLarge},
		{"Bearer " + strings.Repeat("A", 2<<20), http.StatusRequestHeaderFieldsTooLarge},
	}
	for _, c := range cases {
		req, _ := http.NewRequest(http.MethodGet, e.URL+mePath, nil)
		req.Header.Set("Authorization", c.header)
		if r := e.do(t, nil, req); r.Status != c.want {
			t.Errorf("Authorization %.30q (%d bytes): %d %.200s, want %d", c.header, len(c.header), r.Status, r.Body, c.want)
		}
	}
	// No credentials at all.
	if r := e.get(t, nil, mePath); r.Status != http.StatusUnauthorized {
		t.Errorf("no Authorization: %d", r.Status)
	}
}

func TestIDTokenIsNotABearerToken(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.createUser(t, "alice", userPassword)
	for name, tok := range map[string]tokens{"code flow": e.codeFlow(t, "alice", userPassword), "api login": e.apiLogin(t, "alice", userPassword)} {
		if st := e.meStatus(t, tok.IDToken); st != http.StatusUnauthorized {
			t.Errorf("%s ID token as bearer: %d, want 401", name, st)
		}
		if st := e.meStatus(t, tok.RefreshToken); st != http.StatusUnauthorized {
			t.Errorf("%s refresh token as bearer: %d, want 401", name, st)
		}
	}
}

func TestTokensOfDisabledOrDeletedUsers(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	saID, secret := e.createServiceAccount(t, "gateway")
	cases := []struct {
		name   string
		change func(t *testing.T, id string)
	}{
		{"disabled", func(t *testing.T, id string) {
			e.updateAccount(t, id, func(a *store.Account) { a.Disabled = true })
		}},
		{"anonymized", func(t *testing.T, id string) {
			e.updateAccount(t, id, func(a *store.Account) { a.Anonymized, a.Disabled = true, true })
		}},
		{"deleted", func(t *testing.T, id string) { e.deleteAccount(t, id) }},
	}
	for _, c := range cases {
		name := "user-" + c.name
		u := e.createUser(t, name, userPassword)
		tok := e.codeFlow(t, name, userPassword)
		if st := e.meStatus(t, tok.AccessToken); st != http.StatusOK {
			t.Fatalf("%s: token before the change: %d", c.name, st)
		}
		c.change(t, u.ID)
		if st := e.meStatus(t, tok.AccessToken); st != http.StatusUnauthorized {
			t.Errorf("%s: access token: %d, want 401", c.name, st)
		}
		if r := e.refresh(t, tok.RefreshToken); r.Status != http.StatusBadRequest || r.oauthError() != "invalid_grant" {
			t.Errorf("%s: refresh: %d %s, want 400 invalid_grant", c.name, r.Status, r.Body)
		}
		if got := introspect(t, e, saID, secret, tok.AccessToken); got.Active {
			t.Errorf("%s: introspection says active", c.name)
		}
		if r := e.getWithToken(t, "/oauth/userinfo", tok.AccessToken); r.Status == http.StatusOK || r.Status >= 500 {
			t.Errorf("%s: userinfo: %d %s", c.name, r.Status, r.Body)
		}
		if r := e.postJSON(t, "/api/v1/login", map[string]string{"username": name, "password": userPassword}); r.Status != http.StatusUnauthorized {
			t.Errorf("%s: api login: %d %s, want 401", c.name, r.Status, r.Body)
		}
	}
}

// A user disabled between the login page and the code exchange gets no
// tokens.
func TestDisabledBetweenLoginAndExchange(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	u := e.createUser(t, "alice", userPassword)
	p := newPKCE()
	code := e.authorizeCode(t, "alice", userPassword, p)
	e.updateAccount(t, u.ID, func(a *store.Account) { a.Disabled = true })
	if r := e.exchangeCode(t, code, p.verifier); r.Status == http.StatusOK || r.Status >= 500 {
		t.Errorf("exchange for a disabled user: %d %s", r.Status, r.Body)
	}
}

func TestPKCERefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.createUser(t, "alice", userPassword)

	cases := []struct {
		name, verifier, wantErr string
	}{
		{"wrong verifier", newPKCE().verifier, "invalid_grant"},
		{"verifier is the challenge", "", "invalid_grant"}, // filled below
		{"missing verifier", "", "invalid_request"},
	}
	for i, c := range cases {
		p := newPKCE()
		if i == 1 {
			c.verifier = p.challenge
		}
		code := e.authorizeCode(t, "alice", userPassword, p)
		r := e.exchangeCode(t, code, c.verifier)
		if r.Status != http.StatusBadRequest || r.oauthError() != c.wantErr {
			t.Errorf("%s: %d %s, want 400 %s", c.name, r.Status, r.Body, c.wantErr)
		}
	}

	// The code is bound to its redirect_uri and its client, too.
	p := newPKCE()
	code := e.authorizeCode(t, "alice", userPassword, p)
	r := e.tokenRequest(t, url.Values{
		"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {"http://127.0.0.1:1/callback"},
		"code_verifier": {p.verifier}, "client_id": {provider.CLIClientID},
	}, "", "")
	if r.Status != http.StatusBadRequest || r.oauthError() != "invalid_grant" {
		t.Errorf("other redirect_uri at exchange: %d %s, want invalid_grant", r.Status, r.Body)
	}
	saID, secret := e.createServiceAccount(t, "robot")
	r = e.tokenRequest(t, url.Values{
		"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {loopbackRedirect}, "code_verifier": {p.verifier},
	}, saID, secret)
	if r.Status == http.StatusOK || r.Status >= 500 {
		t.Errorf("another client exchanging the code: %d %s", r.Status, r.Body)
	}
}

// Authorization requests without S256 PKCE never reach the login page;
// the error goes to the (registered) redirect URI.
func TestAuthorizeRequiresS256(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	p := newPKCE()
	cases := []struct {
		name string
		mod  func(url.Values)
	}{
		{"no code_challenge", func(q url.Values) { q.Del("code_challenge"); q.Del("code_challenge_method") }},
		{"plain method", func(q url.Values) { q.Set("code_challenge_method", "plain"); q.Set("code_challenge", p.verifier) }},
		{"method omitted (plain by default)", func(q url.Values) { q.Del("code_challenge_method") }},
		{"unknown method", func(q url.Values) { q.Set("code_challenge_method", "S512") }},
		{"challenge without method", func(q url.Values) { q.Del("code_challenge_method") }},
		{"implicit flow", func(q url.Values) { q.Set("response_type", "token") }},
		{"id_token response", func(q url.Values) { q.Set("response_type", "id_token") }},
		{"prompt=none", func(q url.Values) { q.Set("prompt", "none") }},
		{"no scope", func(q url.Values) { q.Del("scope") }},
	}
	for _, c := range cases {
		q := authorizeQuery(p, "s1")
		c.mod(q)
		r := e.get(t, nil, "/oauth/authorize?"+q.Encode())
		if r.Status >= 500 {
			t.Errorf("%s: %d %s", c.name, r.Status, r.Body)
			continue
		}
		loc, _ := url.Parse(r.Header.Get("Location"))
		if r.Status != http.StatusFound && r.Status != http.StatusBadRequest {
			t.Errorf("%s: %d %s, want a redirect with an error or 400", c.name, r.Status, r.Body)
			continue
		}
		if loc != nil && strings.HasPrefix(loc.Path, "/oauth/login") {
			t.Errorf("%s: sent to the login page", c.name)
			continue
		}
		if r.Status == http.StatusFound {
			// The error goes back to the registered loopback redirect,
			// in the query or (for token response types) the fragment.
			got := loc.Scheme + "://" + loc.Host + loc.Path
			params := loc.Query()
			if loc.Fragment != "" {
				params, _ = url.ParseQuery(loc.Fragment)
			}
			if got != loopbackRedirect || params.Get("error") == "" || params.Get("code") != "" ||
				params.Get("access_token") != "" || params.Get("id_token") != "" {
				t.Errorf("%s: redirected to %s, want %s with an error", c.name, loc, loopbackRedirect)
			}
		}
	}
}

// An unregistered redirect URI is refused on the server's own page: the
// browser is never sent to it.
func TestAuthorizeRefusesUnregisteredRedirect(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	p := newPKCE()
	for _, uri := range []string{
		"http://evil.example/callback",
		"https://evil.example/callback",
		"http://127.0.0.1/other",
		"http://127.0.0.1:53682/other",
		"http://127.0.0.1/callback/",
		"http://127.0.0.1/CALLBACK",
		"http://127.0.0.1/callback?next=http://evil.example",
		"http://127.0.0.1/callback/../other",
		"http://127.0.0.1.evil.example/callback",
		"http://localhost.evil.example/callback",
		"http://localhost@evil.example/callback",
		"http://evil.example#@127.0.0.1/callback",
		"http://127.1/callback",
		"http://0x7f000001/callback",
		"//evil.example/callback",
		"/callback",
		"javascript:alert(1)//127.0.0.1/callback",
		"rampart://127.0.0.1/callback",
		"http://[::ffff:7f00:1]x/callback",
		"http://%31%32%37.0.0.1/callback",
	} {
		q := authorizeQuery(p, "s1")
		q.Set("redirect_uri", uri)
		r := e.get(t, nil, "/oauth/authorize?"+q.Encode())
		if r.Status != http.StatusBadRequest || r.Header.Get("Location") != "" {
			t.Errorf("redirect_uri %s: %d Location %q, want 400 without redirect", uri, r.Status, r.Header.Get("Location"))
		}
	}
	// Unknown or missing client: no redirect either.
	for _, client := range []string{"evil", "", "sa-nobody"} {
		q := authorizeQuery(p, "s1")
		q.Set("client_id", client)
		r := e.get(t, nil, "/oauth/authorize?"+q.Encode())
		if r.Status != http.StatusBadRequest || r.Header.Get("Location") != "" {
			t.Errorf("client_id %q: %d Location %q, want 400 without redirect", client, r.Status, r.Header.Get("Location"))
		}
	}
	// Service accounts have no redirect URIs and no code grant.
	saID, _ := e.createServiceAccount(t, "robot")
	q := authorizeQuery(p, "s1")
	q.Set("client_id", saID)
	if r := e.get(t, nil, "/oauth/authorize?"+q.Encode()); r.Status != http.StatusBadRequest || r.Header.Get("Location") != "" {
		t.Errorf("service account at /authorize: %d Location %q", r.Status, r.Header.Get("Location"))
	}
	// Any port and the other loopback forms are fine (RFC 8252 7.3).
	for _, uri := range []string{"http://127.0.0.1:1/callback", "http://[::1]:65535/callback", "http://localhost:8080/callback"} {
		q := authorizeQuery(p, "s1")
		q.Set("redirect_uri", uri)
		loc := e.location(t, e.get(t, nil, "/oauth/authorize?"+q.Encode()))
		if loc.Path != "/oauth/login" {
			t.Errorf("redirect_uri %s: sent to %s, want the login page", uri, loc)
		}
	}
}

func TestOversizedCredentials(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.createUser(t, "alice", userPassword)
	huge := strings.Repeat("p", 512<<10)
	for name, body := range map[string]map[string]string{
		"huge password": {"username": "alice", "password": huge},
		"huge username": {"username": huge, "password": userPassword},
		"huge otp":      {"username": "alice", "password": userPassword, "otp": huge},
	} {
		start := time.Now()
		r := e.postJSON(t, "/api/v1/login", body)
		if r.Status != http.StatusUnauthorized {
			t.Errorf("%s: %d %.200s, want 401", name, r.Status, r.Body)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("%s took %v", name, d)
		}
	}
	// Over the request body limit.
	if r := e.postJSON(t, "/api/v1/login", map[string]string{"username": "alice", "password": strings.Repeat("p", 2<<20)}); r.Status != http.StatusRequestEntityTooLarge {
		t.Errorf("body over the limit: %d %.200s, want 413", r.Status, r.Body)
	}
	// The right password still works: nothing was locked by the above.
	e.apiLogin(t, "alice", userPassword)

	// Huge values at the protocol endpoints.
	if r := e.refresh(t, "rt_"+strings.Repeat("A", 100_000)); r.Status != http.StatusBadRequest || r.oauthError() != "invalid_grant" {
		t.Errorf("huge refresh token: %d %.200s", r.Status, r.Body)
	}
	saID, secret := e.createServiceAccount(t, "gateway")
	if got := introspect(t, e, saID, secret, strings.Repeat("A", 100_000)); got.Active {
		t.Error("huge token introspected as active")
	}
	if r := revoke(t, e, strings.Repeat("A", 100_000), ""); r.Status != http.StatusOK {
		t.Errorf("revoking a huge token: %d %.200s", r.Status, r.Body)
	}
	browser := e.newClient(true)
	id := e.startAuthorize(t, browser, authorizeQuery(newPKCE(), "s"))
	start := time.Now()
	if r := e.submitLogin(t, browser, id, "alice", huge); r.Status != http.StatusUnauthorized {
		t.Errorf("login page with a huge password: %d", r.Status)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("login page with a huge password took %v", d)
	}
}

func TestLoginCSRF(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.createUser(t, "alice", userPassword)
	browser := e.newClient(true)
	id := e.startAuthorize(t, browser, authorizeQuery(newPKCE(), "s"))
	page := e.get(t, browser, "/oauth/login?authRequestID="+url.QueryEscape(id))
	csrf := formCSRF(t, page)
	form := func(token string) url.Values {
		v := url.Values{"authRequestID": {id}, "username": {"alice"}, "password": {userPassword}}
		if token != "" {
			v.Set("csrf", token)
		}
		return v
	}
	cookieless := e.newClient(false)
	cases := []struct {
		name   string
		client *http.Client
		form   url.Values
	}{
		{"no cookie, field copied from the page", cookieless, form(csrf)},
		{"no cookie, no field", cookieless, form("")},
		{"cookie, no field", browser, form("")},
		{"cookie, wrong field", browser, form("x" + csrf)},
	}
	for _, c := range cases {
		r := e.postForm(t, c.client, "/oauth/login", c.form, "", "")
		if r.Status != http.StatusForbidden {
			t.Errorf("%s: %d, want 403", c.name, r.Status)
		}
	}
	// None of that logged the request in.
	if r := e.get(t, browser, "/oauth/authorize/callback?id="+url.QueryEscape(id)); strings.Contains(r.Header.Get("Location"), "code=") {
		t.Fatalf("callback after refused logins issued a code: %s", r.Header.Get("Location"))
	}

	// The device page checks the same way.
	r := e.postForm(t, cookieless, "/oauth/device", url.Values{
		"csrf": {csrf}, "user_code": {"BCDF-GHJK"}, "username": {"alice"}, "password": {userPassword}, "action": {"approve"},
	}, "", "")
	if r.Status != http.StatusForbidden {
		t.Errorf("device page without cookie: %d, want 403", r.Status)
	}
}

func TestLoginPageRefusals(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.createUser(t, "alice", userPassword)
	e.createUser(t, "dora", userPassword, func(a *store.Account) { a.Disabled = true })

	if r := e.get(t, nil, "/oauth/login?authRequestID=nope"); r.Status != http.StatusBadRequest {
		t.Errorf("login page for an unknown request: %d", r.Status)
	}
	if r := e.get(t, nil, "/oauth/authorize/callback?id=nope"); r.Status != http.StatusBadRequest || r.Header.Get("Location") != "" {
		t.Errorf("callback for an unknown request: %d %q", r.Status, r.Header.Get("Location"))
	}
	for name, creds := range map[string][2]string{
		"wrong password": {"alice", "wrong"}, "unknown user": {"nobody", userPassword}, "disabled user": {"dora", userPassword},
	} {
		browser := e.newClient(true)
		id := e.startAuthorize(t, browser, authorizeQuery(newPKCE(), "s"))
		if r := e.submitLogin(t, browser, id, creds[0], creds[1]); r.Status != http.StatusUnauthorized {
			t.Errorf("%s: %d, want 401", name, r.Status)
		}
		// The callback does not hand out a code for an unauthenticated request.
		r := e.get(t, browser, "/oauth/authorize/callback?id="+url.QueryEscape(id))
		if loc := r.Header.Get("Location"); strings.Contains(loc, "code=") || r.Status >= 500 {
			t.Errorf("%s: callback answered %d %q", name, r.Status, loc)
		}
	}
	// A completed request cannot be logged into again (by someone else).
	browser := e.newClient(true)
	id := e.startAuthorize(t, browser, authorizeQuery(newPKCE(), "s"))
	e.location(t, e.submitLogin(t, browser, id, "alice", userPassword))
	if r := e.submitLogin(t, browser, id, "alice", userPassword); r.Status != http.StatusBadRequest {
		t.Errorf("second login to one request: %d, want 400", r.Status)
	}
}

// Unknown clients and grants at the token endpoint are client errors.
func TestTokenEndpointRefusals(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	cases := []struct {
		name string
		form url.Values
	}{
		{"no grant type", url.Values{"client_id": {provider.CLIClientID}}},
		{"password grant", url.Values{"grant_type": {"password"}, "username": {"owner"}, "password": {userPassword}, "client_id": {provider.CLIClientID}}},
		{"implicit", url.Values{"grant_type": {"implicit"}, "client_id": {provider.CLIClientID}}},
		{"unknown code", url.Values{"grant_type": {"authorization_code"}, "code": {"nope"}, "client_id": {provider.CLIClientID}, "code_verifier": {"x"}, "redirect_uri": {loopbackRedirect}}},
		{"code for unknown client", url.Values{"grant_type": {"authorization_code"}, "code": {"nope"}, "client_id": {"evil"}}},
		{"refresh, unknown token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"rt_nope"}, "client_id": {provider.CLIClientID}}},
		{"refresh, unknown client", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"rt_nope"}, "client_id": {"evil"}}},
		{"client credentials for the public client", url.Values{"grant_type": {"client_credentials"}, "client_id": {provider.CLIClientID}}},
		{"jwt bearer with garbage", url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:jwt-bearer"}, "assertion": {"x.y.z"}}},
		{"token exchange", url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:token-exchange"}, "client_id": {provider.CLIClientID}}},
	}
	for _, c := range cases {
		r := e.tokenRequest(t, c.form, "", "")
		if r.Status < 400 || r.Status >= 500 || r.oauthError() == "" {
			t.Errorf("%s: %d %s, want a 4xx OAuth error", c.name, r.Status, r.Body)
		}
	}
}

func TestLoginPageHardening(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	browser := e.newClient(true)
	id := e.startAuthorize(t, browser, authorizeQuery(newPKCE(), "s"))
	for _, path := range []string{"/oauth/login?authRequestID=" + url.QueryEscape(id), "/oauth/device"} {
		r := e.get(t, browser, path)
		if r.Status != http.StatusOK {
			t.Fatalf("%s: %d", path, r.Status)
		}
		if h := r.Header; h.Get("X-Frame-Options") != "DENY" || !strings.Contains(h.Get("Content-Security-Policy"), "frame-ancestors 'none'") ||
			h.Get("Cache-Control") != "no-store" {
			t.Errorf("%s: headers %v", path, h)
		}
		var csrf *http.Cookie
		for _, c := range (&http.Response{Header: r.Header}).Cookies() {
			if c.Name == "rampart_csrf" {
				csrf = c
			}
		}
		if csrf == nil || !csrf.HttpOnly || !csrf.Secure || csrf.SameSite != http.SameSiteStrictMode || csrf.Value == "" {
			t.Errorf("%s: CSRF cookie %+v", path, csrf)
		}
	}
	// What the user typed is shown back escaped.
	evil := `"><script>alert(1)</script>`
	r := e.submitLogin(t, browser, id, evil, "wrong")
	if r.Status != http.StatusUnauthorized || strings.Contains(string(r.Body), "<script>") {
		t.Errorf("login page echoes markup: %d %s", r.Status, r.Body)
	}
	if r := e.get(t, nil, "/oauth/device?user_code="+url.QueryEscape(evil)); strings.Contains(string(r.Body), "<script>") {
		t.Errorf("device page echoes markup: %s", r.Body)
	}
}

// The public CLI client cannot revoke a service account's token.
func TestRevokeServiceAccountTokenByOtherClient(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	saID, secret := e.createServiceAccount(t, "robot")
	other, otherSecret := e.createServiceAccount(t, "other")
	tok := mustTokens(t, e.clientCredentials(t, saID, secret))
	if r := revoke(t, e, tok.AccessToken, ""); r.Status == http.StatusOK || r.Status >= 500 {
		t.Errorf("CLI revoking a service account token: %d %s", r.Status, r.Body)
	}
	if r := e.postForm(t, nil, "/oauth/revoke", url.Values{"token": {tok.AccessToken}}, other, otherSecret); r.Status == http.StatusOK || r.Status >= 500 {
		t.Errorf("another service account revoking the token: %d %s", r.Status, r.Body)
	}
	if st := e.meStatus(t, tok.AccessToken); st != http.StatusOK {
		t.Errorf("token after foreign revocation attempts: %d, want 200", st)
	}
}

// Pending logins, device codes and sessions end on the provider's clock.
func TestExpiry(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	offset := time.Duration(0)
	now := func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		return time.Now().Add(offset)
	}
	advance := func(d time.Duration) {
		mu.Lock()
		offset += d
		mu.Unlock()
	}
	e := newEnv(t, func(c *envConfig) {
		c.provider = func(o *provider.Options) { o.Now, o.SessionLifetime = now, time.Hour }
	})
	e.createUser(t, "alice", userPassword)

	tok := e.apiLogin(t, "alice", userPassword)
	browser := e.newClient(true)
	id := e.startAuthorize(t, browser, authorizeQuery(newPKCE(), "s"))
	page := e.get(t, browser, "/oauth/login?authRequestID="+url.QueryEscape(id))
	d := e.startDevice(t)

	advance(pendingTTL + time.Minute)
	if r := e.get(t, browser, "/oauth/login?authRequestID="+url.QueryEscape(id)); r.Status != http.StatusBadRequest {
		t.Errorf("login page of an expired request: %d", r.Status)
	}
	r := e.postForm(t, browser, "/oauth/login", url.Values{
		"csrf": {formCSRF(t, page)}, "authRequestID": {id}, "username": {"alice"}, "password": {userPassword},
	}, "", "")
	if r.Status != http.StatusBadRequest {
		t.Errorf("login to an expired request: %d", r.Status)
	}
	if r := e.decideDevice(t, d.UserCode, "alice", userPassword, "approve"); r.Status != http.StatusBadRequest {
		t.Errorf("approving an expired device code: %d", r.Status)
	}
	if r := e.pollDevice(t, d.DeviceCode); r.Status == http.StatusOK || r.Status >= 500 {
		t.Errorf("polling an expired device code: %d %s", r.Status, r.Body)
	}

	// Within the session's lifetime a refresh works; after it, not.
	next := mustTokens(t, e.refresh(t, tok.RefreshToken))
	advance(time.Hour)
	if r := e.refresh(t, next.RefreshToken); r.Status != http.StatusBadRequest || r.oauthError() != "invalid_grant" {
		t.Errorf("refresh after the session ended: %d %s, want invalid_grant", r.Status, r.Body)
	}
}

// pendingTTL is how long a pending login or device code lives.
const pendingTTL = 10 * time.Minute

// Junk at every public endpoint is a client error, never a server error.
func TestNoServerErrorsOnJunk(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	saID, secret := e.createServiceAccount(t, "robot")
	paths := []string{
		"/.well-known/openid-configuration", "/oauth/authorize", "/oauth/authorize/callback", "/oauth/token",
		"/oauth/introspect", "/oauth/userinfo", "/oauth/revoke", "/oauth/logout", "/oauth/keys",
		"/oauth/device_authorization", "/oauth/login", "/oauth/device", "/api/v1/login",
	}
	bodies := []string{
		"", "=", "&&&", "%zz", "a=%00", "client_id=" + provider.CLIClientID, "grant_type=%ff&client_id=",
		"client_id=evil&token=x&id_token_hint=x.y.z&post_logout_redirect_uri=javascript:x",
		"id=" + strings.Repeat("x", 5000), `{"username":1}`, "\x00\x01\x02",
		"client_id=rampart-cli&client_id=sa-x&grant_type=refresh_token&grant_type=client_credentials",
	}
	for _, path := range paths {
		for _, method := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete} {
			for i, body := range bodies {
				target := e.URL + path
				var rd *strings.Reader
				if method == http.MethodGet {
					target += "?" + body
					rd = strings.NewReader("")
				} else {
					rd = strings.NewReader(body)
				}
				req, err := http.NewRequest(method, target, rd)
				if err != nil {
					continue // not even a valid URL
				}
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				if i%3 == 1 {
					req.SetBasicAuth(saID, secret)
				}
				if i%3 == 2 {
					req.Header.Set("Authorization", "Bearer x.y.z")
				}
				if r := e.do(t, nil, req); r.Status >= 500 {
					t.Errorf("%s %s body %.40q: %d %.200s", method, path, body, r.Status, r.Body)
				}
			}
		}
	}
}
