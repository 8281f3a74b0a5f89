package provider_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"html"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/rampart-ml/rampart/internal/audit"
	"github.com/rampart-ml/rampart/internal/httpapi"
	"github.com/rampart-ml/rampart/internal/identity"
	"github.com/rampart-ml/rampart/internal/identity/authn"
	"github.com/rampart-ml/rampart/internal/identity/bruteforce"
	"github.com/rampart-ml/rampart/internal/identity/identitytest"
	"github.com/rampart-ml/rampart/internal/identity/jwttest"
	"github.com/rampart-ml/rampart/internal/identity/password"
	"github.com/rampart-ml/rampart/internal/identity/provider"
	"github.com/rampart-ml/rampart/internal/identity/signingkeys"
	"github.com/rampart-ml/rampart/internal/principal"
	"github.com/rampart-ml/rampart/internal/secrets"
	"github.com/rampart-ml/rampart/internal/store"
	"github.com/rampart-ml/rampart/internal/store/sqlite"
)

// The harness wires the identity pieces the way internal/app does, over a
// fresh SQLite store, behind the real httpapi middleware chain on a
// loopback TLS listener. Accounts and service accounts are written to the
// store directly (account management has no API yet).

// fastParams keep password hashing cheap in tests.
var fastParams = password.Params{MemoryKiB: 1024, Time: 1, Threads: 1}

const (
	userPassword = "a long and unusual passphrase 7"
	// loopbackRedirect is a registered CLI redirect on a port the CLI
	// picked (RFC 8252 section 7.3: any port).
	loopbackRedirect = "http://127.0.0.1:53682/callback"
	mePath           = "/api/v1/me"
	// adminProbePath is a route a user who must change their password
	// may not use.
	adminProbePath = "/api/v1/probe"
)

type env struct {
	URL string
	// Store's audit log can be made to fail (SetFailing).
	Store    *identitytest.FailingStore
	Rec      *audit.Recorder
	Keys     *signingkeys.Ring
	Sealer   *secrets.Sealer
	Dir      *identity.Directory
	Rev      *identity.Revocations
	Login    *identity.PasswordLogin
	Provider *provider.Provider
	Authn    *authn.Authenticator
	// Client does not follow redirects and keeps no cookies.
	Client *http.Client
	Owner  store.Account // an account that owns the service accounts

	transport http.RoundTripper
}

type envConfig struct {
	bruteForce bruteforce.Config
	provider   func(*provider.Options)
}

func newEnv(t *testing.T, mutate ...func(*envConfig)) *env {
	t.Helper()
	ctx := context.Background()
	cfg := envConfig{bruteForce: bruteforce.DefaultConfig()}
	cfg.bruteForce.Timing.Min = 0
	cfg.bruteForce.Source.Burst = 10_000 // tests log in often from 127.0.0.1
	for _, m := range mutate {
		m(&cfg)
	}

	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "rampart.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	st := identitytest.NewFailingStore(db)
	master := make([]byte, secrets.KeySize)
	_, _ = rand.Read(master)
	sealer, err := secrets.New(master)
	if err != nil {
		t.Fatal(err)
	}
	rec := identitytest.NewRecorder(t, st, sealer)
	ring, err := signingkeys.New(st, sealer, signingkeys.Options{MaxTokenLifetime: 5 * time.Minute, Recorder: rec})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ring.Signing(ctx); err != nil {
		t.Fatal(err)
	}
	login, err := identity.NewPasswordLogin(st, identity.LoginOptions{Params: fastParams, BruteForce: cfg.bruteForce, Sealer: sealer, Recorder: rec})
	if err != nil {
		t.Fatal(err)
	}
	dir := identity.NewDirectory(st, 0, nil)
	rev := identity.NewRevocations(st, 0, nil)

	srv := httptest.NewUnstartedServer(nil)
	srv.Config.MaxHeaderBytes = 64 << 10 // as internal/app
	issuer := "https://" + srv.Listener.Addr().String()
	discard := slog.New(slog.DiscardHandler)
	po := provider.Options{
		Issuer: issuer, Store: st, Keys: ring, Login: login, Directory: dir, Revocations: rev, Sealer: sealer,
		Recorder: rec, Logger: discard,
	}
	if cfg.provider != nil {
		cfg.provider(&po)
	}
	p, err := provider.New(po)
	if err != nil {
		t.Fatal(err)
	}
	au := authn.New(authn.Options{Issuer: issuer, Keys: ring, Revocations: rev, Directory: dir})
	api := httpapi.New(httpapi.Options{
		Logger: discard, MaxRequestBytes: 1 << 20,
		Authenticators: []httpapi.Authenticator{au},
		Authorizer:     httpapi.RoleAuthorizer{},
		Auditor:        noAudit{},
	})
	p.Mount(api)
	// The probe endpoints: GET /api/v1/me as account management serves it
	// (a user who must change the password may use it) and an
	// authenticated route that such a user may not.
	whoami := func(w http.ResponseWriter, r *http.Request) error {
		pr, _ := principal.FromContext(r.Context())
		httpapi.WriteJSON(w, http.StatusOK, map[string]any{"id": pr.ID, "kind": pr.Kind, "name": pr.Name, "admin": pr.Admin})
		return nil
	}
	api.Handle(httpapi.Route{Pattern: "GET " + mePath, Access: httpapi.Authenticated, Handler: whoami})
	api.Handle(httpapi.Route{Pattern: "GET " + adminProbePath, Access: httpapi.Authenticated, Handler: whoami})
	srv.Config.Handler = api.Handler()
	srv.StartTLS()
	t.Cleanup(srv.Close)

	e := &env{
		URL: issuer, Store: st, Rec: rec, Keys: ring, Sealer: sealer, Dir: dir, Rev: rev, Login: login, Provider: p, Authn: au,
		transport: srv.Client().Transport,
	}
	e.Client = e.newClient(false)
	e.Owner = e.createUser(t, "owner", userPassword)
	return e
}

// newClient returns a client that never follows redirects, with a cookie
// jar (a browser) or without.
func (e *env) newClient(cookies bool) *http.Client {
	c := &http.Client{
		Transport:     e.transport,
		Timeout:       20 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	if cookies {
		c.Jar, _ = cookiejar.New(nil)
	}
	return c
}

func (e *env) tx(t *testing.T, fn func(ctx context.Context, tx store.Tx) error) {
	t.Helper()
	ctx := context.Background()
	if err := e.Store.InTx(ctx, func(tx store.Tx) error { return fn(ctx, tx) }); err != nil {
		t.Fatal(err)
	}
}

func (e *env) createUser(t *testing.T, name, pw string, mods ...func(*store.Account)) store.Account {
	t.Helper()
	hash, err := password.Hash(pw, fastParams)
	if err != nil {
		t.Fatal(err)
	}
	a := store.Account{ID: "u-" + strings.ToLower(rand.Text()), Name: name, PasswordHash: hash,
		Email: name + "@example.com", CreatedAt: time.Now()}
	for _, m := range mods {
		m(&a)
	}
	e.tx(t, func(ctx context.Context, tx store.Tx) error { return tx.Accounts().CreateAccount(ctx, a) })
	return a
}

// updateAccount changes an account in the store and drops the directory's
// cached entry, as account management does.
func (e *env) updateAccount(t *testing.T, id string, mod func(*store.Account)) {
	t.Helper()
	e.tx(t, func(ctx context.Context, tx store.Tx) error {
		a, err := tx.Accounts().AccountByID(ctx, id)
		if err != nil {
			return err
		}
		mod(&a)
		return tx.Accounts().UpdateAccount(ctx, a)
	})
	e.Dir.Invalidate(id)
}

func (e *env) deleteAccount(t *testing.T, id string) {
	t.Helper()
	e.tx(t, func(ctx context.Context, tx store.Tx) error { return tx.Accounts().DeleteAccount(ctx, id) })
	e.Dir.Invalidate(id)
}

// createServiceAccount makes a service account with one client secret,
// stored as its SHA-256, and returns its id (the client id) and secret.
func (e *env) createServiceAccount(t *testing.T, name string) (id, secret string) {
	t.Helper()
	id = identity.ServiceAccountIDPrefix + strings.ToLower(rand.Text())
	secret = rand.Text() + rand.Text()
	h := sha256.Sum256([]byte(secret))
	now := time.Now()
	e.tx(t, func(ctx context.Context, tx store.Tx) error {
		sa := store.ServiceAccount{ID: id, Name: name, OwnerID: e.Owner.ID, CreatedAt: now}
		if err := tx.ServiceAccounts().CreateServiceAccount(ctx, sa); err != nil {
			return err
		}
		return tx.ServiceAccounts().AddClientSecret(ctx, store.ClientSecret{
			ID: "cs-" + rand.Text(), ServiceAccountID: id, Hash: h[:], CreatedAt: now,
		})
	})
	return id, secret
}

func (e *env) updateServiceAccount(t *testing.T, id string, mod func(*store.ServiceAccount)) {
	t.Helper()
	e.tx(t, func(ctx context.Context, tx store.Tx) error {
		sa, err := tx.ServiceAccounts().ServiceAccountByID(ctx, id)
		if err != nil {
			return err
		}
		mod(&sa)
		return tx.ServiceAccounts().UpdateServiceAccount(ctx, sa)
	})
	e.Dir.Invalidate(id)
}

// ---- HTTP ----

type response struct {
	Status int
	Header http.Header
	Body   []byte
}

func (r response) json(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("response %d is not JSON (%v): %.300s", r.Status, err, r.Body)
	}
}

// oauthError returns the "error" member of an OAuth error response.
func (r response) oauthError() string {
	var b struct {
		Error string `json:"error"`
	}
	_ = json.Unmarshal(r.Body, &b)
	return b.Error
}

func (e *env) do(t *testing.T, c *http.Client, req *http.Request) response {
	t.Helper()
	if c == nil {
		c = e.Client
	}
	res, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{Status: res.StatusCode, Header: res.Header, Body: b}
}

func (e *env) get(t *testing.T, c *http.Client, pathAndQuery string) response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, e.URL+pathAndQuery, nil)
	if err != nil {
		t.Fatal(err)
	}
	return e.do(t, c, req)
}

// postForm posts form; a non-empty basicUser sends HTTP Basic client
// authentication (RFC 6749 section 2.3.1).
func (e *env) postForm(t *testing.T, c *http.Client, path string, form url.Values, basicUser, basicPass string) response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, e.URL+path, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if basicUser != "" {
		req.SetBasicAuth(url.QueryEscape(basicUser), url.QueryEscape(basicPass))
	}
	return e.do(t, c, req)
}

func (e *env) postJSON(t *testing.T, path string, body any) response {
	t.Helper()
	b, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodPost, e.URL+path, strings.NewReader(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	return e.do(t, nil, req)
}

// getWithToken calls a protected route with a bearer token.
func (e *env) getWithToken(t *testing.T, path, token string) response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, e.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	return e.do(t, nil, req)
}

// meStatus is the status of GET /api/v1/me with token.
func (e *env) meStatus(t *testing.T, token string) int {
	t.Helper()
	return e.getWithToken(t, mePath, token).Status
}

// ---- OAuth flows ----

type tokens struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	IDToken      string `json:"id_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int    `json:"expires_in"`
}

func (e *env) tokenRequest(t *testing.T, form url.Values, basicUser, basicPass string) response {
	t.Helper()
	return e.postForm(t, nil, "/oauth/token", form, basicUser, basicPass)
}

// mustTokens decodes a successful token response.
func mustTokens(t *testing.T, r response) tokens {
	t.Helper()
	if r.Status != http.StatusOK {
		t.Fatalf("token response %d: %s", r.Status, r.Body)
	}
	var tok tokens
	r.json(t, &tok)
	if tok.AccessToken == "" {
		t.Fatalf("no access token in %s", r.Body)
	}
	return tok
}

func (e *env) apiLogin(t *testing.T, name, pw string) tokens {
	t.Helper()
	return mustTokens(t, e.postJSON(t, "/api/v1/login", map[string]string{"username": name, "password": pw}))
}

func (e *env) refresh(t *testing.T, refreshToken string) response {
	t.Helper()
	return e.tokenRequest(t, url.Values{
		"grant_type": {"refresh_token"}, "refresh_token": {refreshToken}, "client_id": {provider.CLIClientID},
	}, "", "")
}

func (e *env) clientCredentials(t *testing.T, id, secret string) response {
	t.Helper()
	return e.tokenRequest(t, url.Values{"grant_type": {"client_credentials"}, "scope": {"openid"}}, id, secret)
}

// pkce is a code verifier and its S256 challenge (RFC 7636).
type pkce struct{ verifier, challenge string }

func newPKCE() pkce {
	v := strings.ReplaceAll(rand.Text()+rand.Text(), "=", "")
	sum := sha256.Sum256([]byte(v))
	return pkce{verifier: v, challenge: base64.RawURLEncoding.EncodeToString(sum[:])}
}

// authorizeQuery is a valid authorization request for the CLI.
func authorizeQuery(p pkce, state string) url.Values {
	return url.Values{
		"client_id":             {provider.CLIClientID},
		"response_type":         {"code"},
		"scope":                 {"openid offline_access profile email"},
		"redirect_uri":          {loopbackRedirect},
		"state":                 {state},
		"nonce":                 {"n-" + state},
		"code_challenge":        {p.challenge},
		"code_challenge_method": {"S256"},
	}
}

// location resolves a redirect's Location against the server URL.
func (e *env) location(t *testing.T, r response) *url.URL {
	t.Helper()
	if r.Status != http.StatusFound && r.Status != http.StatusSeeOther {
		t.Fatalf("want a redirect, got %d: %.500s", r.Status, r.Body)
	}
	base, _ := url.Parse(e.URL + "/")
	loc, err := base.Parse(r.Header.Get("Location"))
	if err != nil {
		t.Fatalf("bad Location %q: %v", r.Header.Get("Location"), err)
	}
	return loc
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]*)"`)

// formCSRF extracts the hidden CSRF field of a login or device page.
func formCSRF(t *testing.T, r response) string {
	t.Helper()
	m := csrfField.FindSubmatch(r.Body)
	if m == nil {
		t.Fatalf("no csrf field in page (%d): %.500s", r.Status, r.Body)
	}
	return html.UnescapeString(string(m[1]))
}

// startAuthorize runs /oauth/authorize and returns the auth request id the
// login page was given.
func (e *env) startAuthorize(t *testing.T, browser *http.Client, q url.Values) string {
	t.Helper()
	loc := e.location(t, e.get(t, browser, "/oauth/authorize?"+q.Encode()))
	if loc.Path != "/oauth/login" {
		t.Fatalf("authorize redirected to %s, want the login page", loc)
	}
	id := loc.Query().Get("authRequestID")
	if id == "" {
		t.Fatalf("no authRequestID in %s", loc)
	}
	return id
}

// submitLogin loads the login page (for the CSRF cookie) and posts the
// credentials; it returns the response to the POST.
func (e *env) submitLogin(t *testing.T, browser *http.Client, authRequestID, name, pw string) response {
	t.Helper()
	page := e.get(t, browser, "/oauth/login?authRequestID="+url.QueryEscape(authRequestID))
	if page.Status != http.StatusOK {
		t.Fatalf("login page: %d %.300s", page.Status, page.Body)
	}
	return e.postForm(t, browser, "/oauth/login", url.Values{
		"csrf": {formCSRF(t, page)}, "authRequestID": {authRequestID}, "username": {name}, "password": {pw},
	}, "", "")
}

// authorizeCode runs the browser part of the code flow and returns the
// code delivered to the loopback redirect.
func (e *env) authorizeCode(t *testing.T, name, pw string, p pkce) string {
	t.Helper()
	browser := e.newClient(true)
	state := strings.ToLower(rand.Text())
	id := e.startAuthorize(t, browser, authorizeQuery(p, state))
	loc := e.location(t, e.submitLogin(t, browser, id, name, pw))
	if loc.Path != "/oauth/authorize/callback" || loc.Query().Get("id") != id {
		t.Fatalf("login redirected to %s, want the authorize callback", loc)
	}
	cb := e.location(t, e.get(t, browser, loc.RequestURI()))
	if got := cb.Scheme + "://" + cb.Host + cb.Path; got != loopbackRedirect {
		t.Fatalf("callback redirected to %s, want %s", cb, loopbackRedirect)
	}
	if cb.Query().Get("state") != state {
		t.Fatalf("state %q, want %q", cb.Query().Get("state"), state)
	}
	code := cb.Query().Get("code")
	if code == "" {
		t.Fatalf("no code in %s", cb)
	}
	return code
}

func (e *env) exchangeCode(t *testing.T, code, verifier string) response {
	t.Helper()
	return e.tokenRequest(t, url.Values{
		"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {loopbackRedirect},
		"code_verifier": {verifier}, "client_id": {provider.CLIClientID},
	}, "", "")
}

// codeFlow is the whole authorization code + PKCE flow.
func (e *env) codeFlow(t *testing.T, name, pw string) tokens {
	t.Helper()
	p := newPKCE()
	return mustTokens(t, e.exchangeCode(t, e.authorizeCode(t, name, pw, p), p.verifier))
}

// ---- tokens made by hand ----

// sign signs claims with the server's current signing key (ES256), as the
// provider does.
func (e *env) sign(t *testing.T, claims map[string]any) string {
	t.Helper()
	k, err := e.Keys.Signing(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return jwttest.Sign(t, jose.ES256, k.Private, k.ID, claims)
}

// claimsOf decodes a JWT's payload without verifying it.
func claimsOf(t *testing.T, token string) map[string]any {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("not a compact JWS: %q", token)
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

// noAudit lets every request through unrecorded: these tests are about the
// provider; the audit records are tested with the real server (internal/app).
type noAudit struct{}

func (noAudit) AuditRequest(*http.Request, principal.Principal, *httpapi.Route) error { return nil }
func (noAudit) AuditRefusal(*http.Request, principal.Principal, *httpapi.Route, error) error {
	return nil
}
