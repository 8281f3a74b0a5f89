// Package federationtest starts a real, independent OpenID Provider for
// tests: the zitadel example OP (github.com/zitadel/oidc/v3/example/server,
// pinned in scripts/install-oidc-example.sh), run as a child process on a
// loopback port the test picks. It scripts the provider's login with a plain
// HTTP client to obtain genuine RS256 ID tokens.
//
// What the example provider offers (v3.51.17):
//
//   - issuer http://localhost:PORT/ (trailing slash), discovery, JWKS at
//     /keys, one RS256 key generated at each start (so [Provider.Restart]
//     invalidates earlier tokens) and no key rotation otherwise;
//   - clients "web"/"secret" (code and implicit flows), "api"/"secret",
//     "native" (public); ID tokens last one hour, aud ["web"];
//   - users from a JSON file (see [User]); no groups, no custom per-user
//     claims;
//   - a code-flow ID token ([Provider.IDToken]) carries iss, sub, aud, exp,
//     iat, auth_time, amr ["pwd"], azp, client_id, at_hash, c_hash and
//     custom_claim (an object, because the flow asks for the example's
//     custom_scope), but no profile or email claims: the example asserts
//     those into ID tokens only when no access token is issued. The implicit
//     flow ([Provider.ProfileIDToken]) adds preferred_username, email,
//     email_verified, name, given_name, family_name and locale.
//
// The binary is looked up at ${RAMPART_CACHE:-$HOME/.cache/rampart}/bin.
// When it is missing the test is skipped, unless the environment variable CI
// is "true", where it fails.
//
// This package is for tests only; nothing outside _test.go files imports it.
package federationtest

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	// BinaryName is the file name scripts/install-oidc-example.sh installs.
	BinaryName = "zitadel-oidc-example"
	// InstallScript builds the binary.
	InstallScript = "scripts/install-oidc-example.sh"

	// ClientID and ClientSecret are the example's confidential web client;
	// its ID tokens have aud ["web"].
	ClientID     = "web"
	ClientSecret = "secret"
	// RedirectURI is registered for the example's clients. Nothing listens
	// there: the flow stops at the redirect and reads its Location.
	RedirectURI = "http://localhost:9999/auth/callback"

	readyTimeout  = 15 * time.Second
	startAttempts = 3
	logTailBytes  = 8 << 10
)

// User is one entry of the example provider's users file. The field names
// are the example's (storage.User); it has no groups.
type User struct {
	ID                string
	Username          string
	Password          string
	FirstName         string
	LastName          string
	Email             string
	EmailVerified     bool
	PreferredLanguage string // a BCP 47 tag such as "en"
}

// Alice is the user [Start] creates when it is given none.
var Alice = User{
	ID:                "a1b2c3-alice",
	Username:          "alice",
	Password:          "correct horse battery staple",
	FirstName:         "Alice",
	LastName:          "Example",
	Email:             "alice@example.test",
	EmailVerified:     true,
	PreferredLanguage: "en",
}

// Provider is a running example OP.
type Provider struct {
	// Issuer is the provider's issuer URL exactly as in its tokens:
	// "http://localhost:PORT/", with the trailing slash.
	Issuer string
	// Port is the TCP port it listens on (on every interface: the example
	// binds ":PORT" and cannot be told otherwise).
	Port int
	// Users are the accounts it knows.
	Users []User

	bin       string
	usersFile string
	logFile   string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
}

// BinaryPath returns where the example OP binary is expected.
func BinaryPath() (string, error) {
	cache := os.Getenv("RAMPART_CACHE")
	if cache == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("locate cache directory: %w", err)
		}
		cache = filepath.Join(home, ".cache", "rampart")
	}
	return filepath.Join(cache, "bin", BinaryName), nil
}

// Start runs the example OP with users (Alice when none are given) on a free
// loopback port and waits until its discovery document answers. The process
// is killed when the test ends.
func Start(t testing.TB, users ...User) *Provider {
	t.Helper()
	bin, err := BinaryPath()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(bin); err != nil {
		msg := fmt.Sprintf("external OIDC provider not installed (%v): run %s", err, InstallScript)
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	if len(users) == 0 {
		users = []User{Alice}
	}

	dir := t.TempDir()
	p := &Provider{
		Users:     users,
		bin:       bin,
		usersFile: filepath.Join(dir, "users.json"),
		logFile:   filepath.Join(dir, "provider.log"),
	}
	byID := make(map[string]User, len(users))
	for _, u := range users {
		if _, dup := byID[u.ID]; dup {
			t.Fatalf("federationtest: duplicate user id %q", u.ID)
		}
		byID[u.ID] = u
	}
	data, err := json.Marshal(byID) // #nosec G117 -- test users' passwords, for the test provider
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p.usersFile, data, 0o600); err != nil {
		t.Fatal(err)
	}

	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			p.logTail(t)
		}
	})

	var errs []error
	for range startAttempts {
		port, err := freePort()
		if err != nil {
			t.Fatal(err)
		}
		if err := p.launch(t, port); err != nil {
			// Most likely another process took the port between our
			// probe and the provider's bind: try another.
			errs = append(errs, err)
			continue
		}
		return p
	}
	t.Fatalf("federationtest: start example OP: %v", errors.Join(errs...))
	return nil
}

// Stop kills the provider (its issuer URL stops answering) until Restart.
func (p *Provider) Stop(t testing.TB) {
	t.Helper()
	p.stop()
}

// Restart stops the provider if it runs and starts it again on the same
// port, so with the same issuer URL but a new signing key: tokens issued
// before no longer verify.
func (p *Provider) Restart(t testing.TB) {
	t.Helper()
	p.stop()
	var err error
	// The port was ours a moment ago; retry briefly in case the kernel has
	// not released it yet.
	for attempt := 0; attempt < 10; attempt++ {
		if err = p.launch(t, p.Port); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("federationtest: restart example OP on port %d: %v", p.Port, err)
}

// KeysURL is the provider's JWKS endpoint.
func (p *Provider) KeysURL() string { return p.Issuer + "keys" }

// IDToken logs in as username with password through the authorization code
// flow of the "web" client and returns the ID token (a compact RS256 JWS).
// It carries no profile or email claims (see the package documentation).
func (p *Provider) IDToken(t testing.TB, username, password string) string {
	t.Helper()
	state := randomString(t)
	q := url.Values{
		"client_id":     {ClientID},
		"response_type": {"code"},
		"scope":         {"openid profile email custom_scope"},
		"redirect_uri":  {RedirectURI},
		"state":         {state},
	}
	final := p.login(t, q, username, password)
	got := final.Query()
	if got.Get("state") != state {
		t.Fatalf("federationtest: code flow: state mismatch in redirect (error %q)", got.Get("error"))
	}
	code := got.Get("code")
	if code == "" {
		t.Fatalf("federationtest: code flow: no code in redirect (error %q: %q)", got.Get("error"), got.Get("error_description"))
	}

	form := url.Values{
		"grant_type":   {"authorization_code"},
		"code":         {code},
		"redirect_uri": {RedirectURI},
	}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, p.Issuer+"oauth/token", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(ClientID, ClientSecret)
	resp, err := httpClient().Do(req)
	if err != nil {
		t.Fatalf("federationtest: token request: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		t.Fatalf("federationtest: token response: %v", err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("federationtest: token request: %s: %s", resp.Status, body)
	}
	var tok struct {
		IDToken string `json:"id_token"`
	}
	if err := json.Unmarshal(body, &tok); err != nil || tok.IDToken == "" {
		t.Fatalf("federationtest: token response has no id_token (%v)", err)
	}
	return tok.IDToken
}

// ProfileIDToken logs in as username with password through the implicit
// flow (response_type=id_token) of the "web" client and returns the ID
// token, which, unlike IDToken's, carries preferred_username, email and the
// other profile claims.
func (p *Provider) ProfileIDToken(t testing.TB, username, password string) string {
	t.Helper()
	state, nonce := randomString(t), randomString(t)
	q := url.Values{
		"client_id":     {ClientID},
		"response_type": {"id_token"},
		"scope":         {"openid profile email"},
		"redirect_uri":  {RedirectURI},
		"state":         {state},
		"nonce":         {nonce},
	}
	final := p.login(t, q, username, password)
	got, err := url.ParseQuery(final.Fragment)
	if err != nil {
		t.Fatalf("federationtest: implicit flow: bad fragment: %v", err)
	}
	if got.Get("state") != state {
		t.Fatalf("federationtest: implicit flow: state mismatch in redirect (error %q)", got.Get("error"))
	}
	tok := got.Get("id_token")
	if tok == "" {
		t.Fatalf("federationtest: implicit flow: no id_token in redirect (error %q: %q)", got.Get("error"), got.Get("error_description"))
	}
	return tok
}

// login runs the example's authorize endpoint with q, submits its login
// form and returns the final redirect to RedirectURI.
func (p *Provider) login(t testing.TB, q url.Values, username, password string) *url.URL {
	t.Helper()
	// GET /auth → 302 /login/username?authRequestID=X
	loc := p.redirect(t, http.MethodGet, p.Issuer+"auth?"+q.Encode(), nil)
	id := loc.Query().Get("authRequestID")
	if id == "" {
		t.Fatalf("federationtest: authorize: no authRequestID in redirect to %s (error %q: %q)",
			loc.Redacted(), loc.Query().Get("error"), loc.Query().Get("error_description"))
	}
	// POST /login/username → 302 /auth/callback?id=X (200 with the form
	// again when the credentials are wrong).
	form := url.Values{"username": {username}, "password": {password}, "id": {id}}
	loc = p.redirect(t, http.MethodPost, p.Issuer+"login/username", form)
	// GET /auth/callback?id=X → 302 RedirectURI?code=… (or #id_token=…)
	loc = p.redirect(t, http.MethodGet, loc.String(), nil)
	if !strings.HasPrefix(loc.String(), RedirectURI) {
		t.Fatalf("federationtest: callback redirected to %s, want %s", loc.Redacted(), RedirectURI)
	}
	return loc
}

// redirect makes one request that must answer with a redirect, and returns
// its resolved Location.
func (p *Provider) redirect(t testing.TB, method, target string, form url.Values) *url.URL {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(t.Context(), method, target, body)
	if err != nil {
		t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := httpClient().Do(req)
	if err != nil {
		t.Fatalf("federationtest: %s %s: %v", method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusFound && resp.StatusCode != http.StatusSeeOther {
		if req.URL.Path == "/login/username" && resp.StatusCode == http.StatusOK {
			t.Fatalf("federationtest: login as %q refused (wrong user name or password?)", form.Get("username"))
		}
		t.Fatalf("federationtest: %s %s: %s, want a redirect", method, req.URL.Path, resp.Status)
	}
	loc, err := resp.Location()
	if err != nil {
		t.Fatalf("federationtest: %s %s: %v", method, req.URL.Path, err)
	}
	return loc
}

// launch starts the binary on port and waits until it serves its discovery
// document with the expected issuer. On failure the process is gone.
func (p *Provider) launch(t testing.TB, port int) error {
	t.Helper()
	logf, err := os.OpenFile(p.logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close() // the child has its own descriptor
	fmt.Fprintf(logf, "--- federationtest: starting on port %d\n", port)

	cmd := exec.Command(p.bin) // #nosec G204 -- the test provider binary from our own cache
	cmd.Env = append(os.Environ(),
		"USERS_FILE="+p.usersFile,
		"PORT="+strconv.Itoa(port),
		"REDIRECT_URI="+RedirectURI,
	)
	cmd.Stdout = logf
	cmd.Stderr = logf
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", p.bin, err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	p.mu.Lock()
	p.cmd, p.done = cmd, done
	p.Port = port
	p.Issuer = "http://localhost:" + strconv.Itoa(port) + "/"
	p.mu.Unlock()

	if err := p.waitReady(t, done); err != nil {
		p.stop()
		return err
	}
	return nil
}

func (p *Provider) waitReady(t testing.TB, done <-chan struct{}) error {
	deadline := time.Now().Add(readyTimeout)
	wellKnown := p.Issuer + ".well-known/openid-configuration"
	client := &http.Client{Timeout: time.Second}
	var lastErr error
	for time.Now().Before(deadline) {
		select {
		case <-done:
			return fmt.Errorf("provider exited during start-up (port %d taken?)", p.Port)
		case <-t.Context().Done():
			return t.Context().Err()
		default:
		}
		lastErr = p.discoveryAnswers(t, client, wellKnown)
		if lastErr == nil {
			// Make sure the answer came from our process, not from
			// something else that held the port while ours failed to bind.
			select {
			case <-done:
				return fmt.Errorf("provider exited during start-up (port %d taken?)", p.Port)
			case <-time.After(20 * time.Millisecond):
				return nil
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("provider not ready after %v: %w", readyTimeout, lastErr)
}

func (p *Provider) discoveryAnswers(t testing.TB, client *http.Client, wellKnown string) error {
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, wellKnown, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("discovery: %s", resp.Status)
	}
	var doc struct {
		Issuer string `json:"issuer"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&doc); err != nil {
		return fmt.Errorf("discovery: %w", err)
	}
	if doc.Issuer != p.Issuer {
		return fmt.Errorf("discovery: issuer %q, want %q", doc.Issuer, p.Issuer)
	}
	return nil
}

func (p *Provider) stop() {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.cmd, p.done = nil, nil
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill()
	<-done
}

func (p *Provider) logTail(t testing.TB) {
	data, err := os.ReadFile(p.logFile)
	if err != nil {
		return
	}
	if len(data) > logTailBytes {
		data = data[len(data)-logTailBytes:]
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			data = data[i+1:]
		}
	}
	t.Logf("federationtest: last lines of the example OP's log:\n%s", data)
}

// freePort asks the kernel for a free loopback port. The provider binds it
// a moment later; Start retries if someone else took it meanwhile.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("pick a free port: %w", err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	if err := l.Close(); err != nil {
		return 0, err
	}
	return port, nil
}

// httpClient does not follow redirects: the flows read each Location.
func httpClient() *http.Client {
	return &http.Client{
		Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

func randomString(t testing.TB) string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}
