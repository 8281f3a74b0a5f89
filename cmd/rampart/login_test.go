package main

// End-to-end tests of the CLI client: the built binary logs in to a real
// server (started in-process with apptest) by every flow, and the tests
// play the browser with a plain net/http client and a cookie jar.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/rampart-ml/rampart/internal/app"
	"github.com/rampart-ml/rampart/internal/app/apptest"
	"github.com/rampart-ml/rampart/internal/config"
	"github.com/rampart-ml/rampart/internal/pki/pkitest"
)

// loginTimeout bounds a whole interactive login (the device flow polls
// every 5 s).
const loginTimeout = 30 * time.Second

// idServer is a running server and the account the tests log in with.
type idServer struct {
	*apptest.Server
	caFile   string
	user     string
	password string
}

// newPassword passes the password policy (length, strength, blocklist).
const newPassword = "tidal-Quartz-lantern-9041-frost"

// startIdentityServer starts a server and, when the server has the route
// already, changes the generated admin password (the admin must, before it
// may do anything but GET /api/v1/me).
func startIdentityServer(t *testing.T, mutate ...func(*config.Config)) *idServer {
	t.Helper()
	return startIdentityServerWith(t, nil, mutate...)
}

// startIdentityServerWith is startIdentityServer with app options.
func startIdentityServerWith(t *testing.T, opts []app.Option, mutate ...func(*config.Config)) *idServer {
	t.Helper()
	s := apptest.StartWith(t, opts, append([]func(*config.Config){apptest.FastHashing}, mutate...)...)
	is := &idServer{Server: s, caFile: s.App.CAFile(), user: "admin", password: s.AdminPassword}
	if strings.HasPrefix(s.URL, "http://") {
		return is
	}
	tok := s.Login(t, "admin", s.AdminPassword)
	res := s.Do(t, http.MethodPost, "/api/v1/me/password", tok.AccessToken,
		map[string]string{"current_password": s.AdminPassword, "new_password": newPassword})
	switch res.StatusCode {
	case http.StatusOK, http.StatusNoContent:
		is.password = newPassword
	case http.StatusNotFound, http.StatusMethodNotAllowed:
		t.Log("POST /api/v1/me/password is not there yet; testing with the must-change admin")
	default:
		t.Fatalf("change the admin password: %d %s", res.StatusCode, res.Body)
	}
	return is
}

// browser is a test browser: a cookie jar and the server's CA.
func (s *idServer) browser(t *testing.T) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar, Transport: s.Client.Transport, Timeout: 15 * time.Second}
}

// credsPath is a credentials file in a directory that does not exist yet.
func credsPath(t *testing.T) string {
	return filepath.Join(t.TempDir(), "cfg", "credentials.json")
}

// clientArgs are the common flags for s with credentials at creds.
func (s *idServer) clientArgs(creds string) []string {
	args := []string{"--server", s.URL, "--credentials", creds}
	if s.caFile != "" {
		args = append(args, "--ca-file", s.caFile)
	}
	return args
}

func readCreds(t *testing.T, path string) credentials {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var c credentials
	if err := json.Unmarshal(data, &c); err != nil {
		t.Fatalf("%s: %v\n%s", path, err, data)
	}
	return c
}

// runWithStdin runs the binary with stdin, to completion.
func runWithStdin(t *testing.T, stdin string, env []string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), exitTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, rampartBin, args...) // #nosec G204 -- test binary
	cmd.Env = append(cleanEnv(), env...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("rampart %s did not exit within %v\nstderr: %s", strings.Join(args, " "), exitTimeout, errb.String())
	}
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("run rampart: %v", err)
	}
	return cmd.ProcessState.ExitCode(), out.String(), errb.String()
}

// passwordLogin logs in with --password-stdin and fails the test unless
// it works.
func (s *idServer) passwordLogin(t *testing.T, creds string, extra ...string) {
	t.Helper()
	args := append([]string{"login", "--username", s.user, "--password-stdin"}, s.clientArgs(creds)...)
	code, stdout, stderr := runWithStdin(t, s.password+"\n", nil, append(args, extra...)...)
	if code != 0 {
		t.Fatalf("login --password-stdin: exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
	}
	wantContains(t, "login stdout", stdout, "Logged in to "+s.URL+" as "+s.user)
}

// wantNoSecrets fails if out shows a token from creds or the password.
func wantNoSecrets(t *testing.T, what, out string, c credentials, password string) {
	t.Helper()
	for name, secret := range map[string]string{"access token": c.AccessToken, "refresh token": c.RefreshToken, "password": password} {
		if secret != "" && strings.Contains(out, secret) {
			t.Errorf("%s shows the %s", what, name)
		}
	}
}

var (
	authURLLine  = regexp.MustCompile(`Open this URL in your browser: (\S+)`)
	deviceCode   = regexp.MustCompile(`(?m)^Code: (\S+)$`)
	deviceURL    = regexp.MustCompile(`open (https?://\S+) in a browser`)
	csrfField    = regexp.MustCompile(`name="csrf" value="([^"]*)"`)
	requestField = regexp.MustCompile(`name="authRequestID" value="([^"]*)"`)
)

func waitMatch(t *testing.T, p *proc, re *regexp.Regexp) []string {
	t.Helper()
	var m []string
	if !p.waitStderr(loginTimeout, func() bool { m = re.FindStringSubmatch(p.stderr.String()); return m != nil }) {
		t.Fatalf("rampart printed no %q line", re)
	}
	return m
}

func readBody(t *testing.T, res *http.Response) string {
	t.Helper()
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func formField(t *testing.T, page string, re *regexp.Regexp) string {
	t.Helper()
	m := re.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no %q in the page:\n%s", re, page)
	}
	return html.UnescapeString(m[1])
}

// TestLoginBrowserPKCE: the authorization code flow with PKCE, the test
// acting as the browser, then whoami with the stored login.
func TestLoginBrowserPKCE(t *testing.T) {
	t.Parallel()
	s := startIdentityServer(t)
	creds := credsPath(t)
	p := startProc(t, nil, append([]string{"login", "--no-browser"}, s.clientArgs(creds)...)...)
	authURL := waitMatch(t, p, authURLLine)[1]

	u, err := url.Parse(authURL)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	for k, want := range map[string]string{"client_id": "rampart-cli", "response_type": "code", "code_challenge_method": "S256"} {
		if got := q.Get(k); got != want {
			t.Errorf("authorization URL: %s=%q, want %q", k, got, want)
		}
	}
	if q.Get("state") == "" || q.Get("code_challenge") == "" {
		t.Errorf("authorization URL lacks state or code_challenge: %s", authURL)
	}
	if scopes := strings.Fields(q.Get("scope")); !strings.Contains(q.Get("scope"), "offline_access") || len(scopes) != 2 {
		t.Errorf("authorization URL: scope %q, want openid offline_access", q.Get("scope"))
	}
	redirect, err := url.Parse(q.Get("redirect_uri"))
	if err != nil || redirect.Scheme != "http" || redirect.Hostname() != "127.0.0.1" || redirect.Path != "/callback" || redirect.Port() == "" {
		t.Fatalf("redirect_uri %q, want http://127.0.0.1:PORT/callback", q.Get("redirect_uri"))
	}

	// An answer with another state is refused, and the login goes on.
	forged, err := http.Get(redirect.String() + "?code=forged&state=forged")
	if err != nil {
		t.Fatal(err)
	}
	if body := readBody(t, forged); forged.StatusCode != http.StatusBadRequest {
		t.Errorf("callback with a wrong state: %d %s, want 400", forged.StatusCode, body)
	}

	b := s.browser(t)
	res, err := b.Get(authURL)
	if err != nil {
		t.Fatal(err)
	}
	page := readBody(t, res)
	if res.StatusCode != http.StatusOK || res.Request.URL.Path != "/oauth/login" {
		t.Fatalf("GET the authorization URL ended at %s with %d:\n%s", res.Request.URL, res.StatusCode, page)
	}
	form := url.Values{
		"csrf":          {formField(t, page, csrfField)},
		"authRequestID": {formField(t, page, requestField)},
		"username":      {s.user},
		"password":      {s.password},
		"otp":           {""},
	}
	res, err = b.PostForm(res.Request.URL.String(), form)
	if err != nil {
		t.Fatal(err)
	}
	page = readBody(t, res)
	if res.Request.URL.Host != redirect.Host || res.StatusCode != http.StatusOK {
		t.Fatalf("the login form ended at %s with %d, want the CLI's callback:\n%s", res.Request.URL, res.StatusCode, page)
	}
	wantContains(t, "callback page", page, "You can close this window")

	if code := p.wait(loginTimeout); code != 0 {
		t.Fatalf("login: exit %d", code)
	}
	wantContains(t, "login stdout", p.stdout.String(), "Logged in to "+s.URL+" as "+s.user)
	wantMode(t, creds, 0o600)
	wantMode(t, filepath.Dir(creds), 0o700)
	c := readCreds(t, creds)
	if c.Server != s.URL || c.AccessToken == "" || c.RefreshToken == "" || c.Expiry.Before(time.Now()) || c.CAFile != s.caFile {
		t.Errorf("credentials: server %q, CA %q, access token set %t, refresh token set %t, expiry %v",
			c.Server, c.CAFile, c.AccessToken != "", c.RefreshToken != "", c.Expiry)
	}
	wantNoSecrets(t, "login output", p.stdout.String()+p.stderr.String(), c, s.password)

	// The credentials file names the server and the CA: no flags needed.
	code, stdout, stderr := runRampart(t, nil, "whoami", "--credentials", creds)
	if code != 0 {
		t.Fatalf("whoami: exit %d\n%s", code, stderr)
	}
	wantContains(t, "whoami", stdout, "name:   "+s.user, "server: "+s.URL, "admin:  true")
	wantNoSecrets(t, "whoami output", stdout+stderr, c, s.password)
}

// TestLoginBrowserTimeout: nobody logs in; the CLI gives up after
// --timeout with a clear message.
func TestLoginBrowserTimeout(t *testing.T) {
	t.Parallel()
	s := startIdentityServer(t)
	creds := credsPath(t)
	code, _, stderr := runRampart(t, nil, append([]string{"login", "--no-browser", "--timeout", "1s"}, s.clientArgs(creds)...)...)
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	wantNoCrash(t, stderr)
	wantContains(t, "stderr", stderr, "Open this URL in your browser: ", "timed out")
	wantNotExist(t, creds)
}

// approveDevice fills in the device page as the test browser.
func (s *idServer) approveDevice(t *testing.T, verifyURL, userCode, action string) string {
	t.Helper()
	b := s.browser(t)
	res, err := b.Get(verifyURL)
	if err != nil {
		t.Fatal(err)
	}
	page := readBody(t, res)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d\n%s", verifyURL, res.StatusCode, page)
	}
	res, err = b.PostForm(verifyURL, url.Values{
		"csrf":      {formField(t, page, csrfField)},
		"user_code": {strings.ToLower(userCode)},
		"username":  {s.user},
		"password":  {s.password},
		"otp":       {""},
		"action":    {action},
	})
	if err != nil {
		t.Fatal(err)
	}
	page = readBody(t, res)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("POST the device form: %d\n%s", res.StatusCode, page)
	}
	return page
}

// TestLoginDevice: the device authorization grant, approved and denied on
// the server's device page.
func TestLoginDevice(t *testing.T) {
	t.Parallel()
	s := startIdentityServer(t)
	for _, tc := range []struct {
		action string
		code   int
		want   string
	}{
		{"approve", 0, "Logged in to " + s.URL + " as " + s.user},
		{"deny", 1, "denied"},
	} {
		t.Run(tc.action, func(t *testing.T) {
			t.Parallel()
			creds := credsPath(t)
			p := startProc(t, nil, append([]string{"login", "--device"}, s.clientArgs(creds)...)...)
			userCode := waitMatch(t, p, deviceCode)[1]
			verify := waitMatch(t, p, deviceURL)[1]
			if !strings.HasPrefix(verify, s.URL+"/oauth/device") {
				t.Errorf("verification URI %q, want %s/oauth/device", verify, s.URL)
			}
			page := s.approveDevice(t, verify, userCode, tc.action)
			if code := p.wait(loginTimeout); code != tc.code {
				t.Fatalf("login --device: exit %d, want %d\ndevice page:\n%s", code, tc.code, page)
			}
			wantNoCrash(t, p.stderr.String())
			wantContains(t, "output", p.stdout.String()+p.stderr.String(), tc.want)
			if tc.code != 0 {
				wantNotExist(t, creds)
				return
			}
			wantMode(t, creds, 0o600)
			wantNoSecrets(t, "login output", p.stdout.String()+p.stderr.String(), readCreds(t, creds), s.password)
		})
	}
}

// TestLoginPasswordStdin: the direct login for scripts, its refusals and
// its usage errors.
func TestLoginPasswordStdin(t *testing.T) {
	t.Parallel()
	s := startIdentityServer(t)

	t.Run("ok", func(t *testing.T) {
		t.Parallel()
		creds := credsPath(t)
		s.passwordLogin(t, creds)
		wantMode(t, creds, 0o600)
		c := readCreds(t, creds)
		if c.RefreshToken == "" || c.Expiry.IsZero() {
			t.Errorf("credentials lack a refresh token or expiry: refresh %t, expiry %v", c.RefreshToken != "", c.Expiry)
		}
	})
	t.Run("default credentials path", func(t *testing.T) {
		t.Parallel()
		home := t.TempDir()
		args := []string{"login", "--server", s.URL, "--ca-file", s.caFile, "--username", s.user, "--password-stdin"}
		code, _, stderr := runWithStdin(t, s.password, []string{"HOME=" + home, "XDG_CONFIG_HOME="}, args...)
		if code != 0 {
			t.Fatalf("exit %d\n%s", code, stderr)
		}
		wantMode(t, filepath.Join(home, ".config", "rampart", "credentials.json"), 0o600)
		xdg := filepath.Join(home, "xdg")
		code, _, stderr = runWithStdin(t, s.password, []string{"HOME=" + home, "XDG_CONFIG_HOME=" + xdg}, args...)
		if code != 0 {
			t.Fatalf("exit %d\n%s", code, stderr)
		}
		wantMode(t, filepath.Join(xdg, "rampart", "credentials.json"), 0o600)
		// RAMPART_SERVER and RAMPART_CA_FILE stand in for the flags.
		env := []string{"RAMPART_SERVER=" + s.URL, "RAMPART_CA_FILE=" + s.caFile, "RAMPART_CREDENTIALS=" + filepath.Join(home, "env.json")}
		code, _, stderr = runWithStdin(t, s.password, env, "login", "--username", s.user, "--password-stdin")
		if code != 0 {
			t.Fatalf("login from the environment: exit %d\n%s", code, stderr)
		}
		wantMode(t, filepath.Join(home, "env.json"), 0o600)
	})
	t.Run("wrong password", func(t *testing.T) {
		t.Parallel()
		creds := credsPath(t)
		args := append([]string{"login", "--username", s.user, "--password-stdin"}, s.clientArgs(creds)...)
		code, _, stderr := runWithStdin(t, "not the password at all\n", nil, args...)
		if code != 1 {
			t.Errorf("exit %d, want 1", code)
		}
		wantNoCrash(t, stderr)
		wantContains(t, "stderr", stderr, "rampart login: ", "(invalid_credentials)")
		wantNotExist(t, creds)
	})
	for _, tc := range []struct {
		name  string
		stdin string
		args  []string
		want  string
	}{
		{"no username", "pw\n", []string{"--password-stdin"}, "--username"},
		{"empty stdin", "", []string{"--password-stdin", "--username", "admin"}, "no password"},
		{"username without password-stdin", "", []string{"--username", "admin"}, "--password-stdin"},
		{"device and password", "pw\n", []string{"--device", "--password-stdin", "--username", "admin"}, "choose one"},
		{"password flag", "", []string{"--password", "x"}, "-password"},
		{"no server", "pw\n", []string{"--password-stdin", "--username", "admin", "--credentials", "/nonexistent/c.json"}, "--server is required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			code, _, stderr := runWithStdin(t, tc.stdin, nil, append([]string{"login"}, tc.args...)...)
			if code != exitUsage {
				t.Errorf("exit %d, want %d", code, exitUsage)
			}
			wantNoCrash(t, stderr)
			wantContains(t, "stderr", stderr, tc.want)
		})
	}
}

// TestLogoutRevokes: logout revokes the session (the refresh token no
// longer works, nor the access token) and deletes the credentials.
func TestLogoutRevokes(t *testing.T) {
	t.Parallel()
	s := startIdentityServer(t)
	creds := credsPath(t)
	s.passwordLogin(t, creds)
	before := readCreds(t, creds)
	saved, err := os.ReadFile(creds)
	if err != nil {
		t.Fatal(err)
	}

	code, stdout, stderr := runRampart(t, nil, "logout", "--credentials", creds)
	if code != 0 {
		t.Fatalf("logout: exit %d\n%s", code, stderr)
	}
	wantContains(t, "logout stdout", stdout, "Logged out of "+s.URL)
	wantNotExist(t, creds)

	res, err := s.Client.PostForm(s.URL+"/oauth/token", url.Values{
		"grant_type": {"refresh_token"}, "refresh_token": {before.RefreshToken}, "client_id": {"rampart-cli"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if body := readBody(t, res); res.StatusCode != http.StatusBadRequest || !strings.Contains(body, "invalid_grant") {
		t.Errorf("refresh after logout: %d %s, want 400 invalid_grant", res.StatusCode, body)
	}
	if r := s.Do(t, http.MethodGet, "/api/v1/me", before.AccessToken, nil); r.StatusCode != http.StatusUnauthorized {
		t.Errorf("GET /api/v1/me with the access token after logout: %d, want 401", r.StatusCode)
	}

	// The revoked login, put back and expired, cannot be refreshed.
	expired := before
	expired.Expiry = time.Now().Add(-time.Hour)
	if err := saveCredentials(creds, expired); err != nil {
		t.Fatal(err)
	}
	code, _, stderr = runRampart(t, nil, "whoami", "--credentials", creds)
	if code != 1 {
		t.Errorf("whoami with a revoked login: exit %d, want 1", code)
	}
	wantNoCrash(t, stderr)
	wantContains(t, "whoami stderr", stderr, "revoked", "rampart login")
	writeFile(t, creds, saved, 0o600)
	code, _, stderr = runRampart(t, nil, "whoami", "--credentials", creds)
	if code != 1 {
		t.Errorf("whoami with a revoked access token: exit %d, want 1", code)
	}
	wantContains(t, "whoami stderr", stderr, "rampart login")

	if err := os.Remove(creds); err != nil {
		t.Fatal(err)
	}
	code, stdout, _ = runRampart(t, nil, "logout", "--credentials", creds)
	if code != 0 || !strings.Contains(stdout, "Not logged in") {
		t.Errorf("second logout: exit %d, stdout %q; want 0 and \"Not logged in\"", code, stdout)
	}
	code, _, stderr = runRampart(t, nil, "whoami", "--credentials", creds)
	if code != 1 {
		t.Errorf("whoami when logged out: exit %d, want 1", code)
	}
	wantContains(t, "whoami stderr", stderr, "not logged in")
}

// TestWhoamiRefreshesExpiredToken: an expired access token is refreshed
// with the refresh token, and the rotated tokens are saved.
func TestWhoamiRefreshesExpiredToken(t *testing.T) {
	t.Parallel()
	s := startIdentityServer(t)
	creds := credsPath(t)
	s.passwordLogin(t, creds)
	c := readCreds(t, creds)
	c.Expiry = time.Now().Add(-time.Minute)
	if err := saveCredentials(creds, c); err != nil {
		t.Fatal(err)
	}

	code, stdout, stderr := runRampart(t, nil, "whoami", "--credentials", creds)
	if code != 0 {
		t.Fatalf("whoami: exit %d\n%s", code, stderr)
	}
	wantContains(t, "whoami", stdout, "name:   "+s.user)
	after := readCreds(t, creds)
	if after.AccessToken == c.AccessToken || after.RefreshToken == c.RefreshToken || !after.Expiry.After(time.Now()) {
		t.Errorf("after the refresh: new access token %t, new refresh token %t, expiry %v (want both new, expiry ahead)",
			after.AccessToken != c.AccessToken, after.RefreshToken != c.RefreshToken, after.Expiry)
	}
	wantMode(t, creds, 0o600)
	wantNoSecrets(t, "whoami output", stdout+stderr, after, s.password)

	// The new tokens work without another refresh.
	code, stdout, stderr = runRampart(t, nil, "whoami", "--json", "--credentials", creds)
	if code != 0 {
		t.Fatalf("whoami --json: exit %d\n%s", code, stderr)
	}
	var who struct{ Server, Name string }
	if err := json.Unmarshal([]byte(stdout), &who); err != nil || who.Name != s.user || who.Server != s.URL {
		t.Errorf("whoami --json: %q (%v)", stdout, err)
	}
	if again := readCreds(t, creds); again.RefreshToken != after.RefreshToken {
		t.Error("whoami refreshed a token that had not expired")
	}

	// Commands that find the token expired at once take turns: one
	// refreshes, the others use its tokens. (Spending the refresh token
	// twice would end the session.)
	c = readCreds(t, creds)
	c.Expiry = time.Now().Add(-time.Minute)
	if err := saveCredentials(creds, c); err != nil {
		t.Fatal(err)
	}
	var procs []*proc
	for i := 0; i < 4; i++ {
		procs = append(procs, startProc(t, nil, "whoami", "--credentials", creds))
	}
	for i, p := range procs {
		if code := p.wait(exitTimeout); code != 0 {
			t.Errorf("concurrent whoami %d: exit %d\n%s", i, code, p.stderr)
		}
	}
	if code, _, stderr := runRampart(t, nil, "whoami", "--credentials", creds); code != 0 {
		t.Errorf("whoami after the concurrent refreshes: exit %d\n%s", code, stderr)
	}

	// A --server other than the login's is refused: tokens stay with the
	// server that issued them.
	code, _, stderr = runRampart(t, nil, "whoami", "--credentials", creds, "--server", "https://elsewhere.example")
	if code != 1 {
		t.Errorf("whoami --server elsewhere: exit %d, want 1", code)
	}
	wantContains(t, "stderr", stderr, "are for "+s.URL)
}

// TestLoginRefusesPlainHTTP: http:// servers need --insecure-http, which
// warns.
func TestLoginRefusesPlainHTTP(t *testing.T) {
	t.Parallel()
	for _, cmd := range [][]string{
		{"login", "--username", "admin", "--password-stdin"},
		{"whoami"},
		{"logout"},
		{"keys", "rotate"},
	} {
		t.Run(cmd[0], func(t *testing.T) {
			t.Parallel()
			creds := filepath.Join(t.TempDir(), "c.json")
			if cmd[0] != "login" {
				if err := saveCredentials(creds, credentials{Server: "http://127.0.0.1:1", AccessToken: "x"}); err != nil {
					t.Fatal(err)
				}
			}
			code, _, stderr := runWithStdin(t, "pw\n", nil, append(cmd, "--server", "http://127.0.0.1:1", "--credentials", creds)...)
			if code != exitUsage {
				t.Errorf("exit %d, want %d", code, exitUsage)
			}
			wantNoCrash(t, stderr)
			wantContains(t, "stderr", stderr, "plain-HTTP", "--insecure-http")
		})
	}
	t.Run("allowed with --insecure-http", func(t *testing.T) {
		t.Parallel()
		s := startIdentityServer(t, func(c *config.Config) { c.TLS.InsecureHTTP = true })
		creds := credsPath(t)
		args := []string{"login", "--username", s.user, "--password-stdin", "--server", s.URL, "--credentials", creds, "--insecure-http"}
		code, stdout, stderr := runWithStdin(t, s.password, nil, args...)
		if code != 0 {
			t.Fatalf("exit %d\n%s", code, stderr)
		}
		wantContains(t, "stdout", stdout, "Logged in to "+s.URL)
		wantContains(t, "stderr", stderr, "WARNING", "unencrypted")
	})
}

// TestLoginBadCA: a server certificate from a CA the client was not told
// to trust is a clear TLS error; a CA file that is not PEM is a usage
// error.
func TestLoginBadCA(t *testing.T) {
	t.Parallel()
	s := startIdentityServer(t)
	tmp := t.TempDir()
	other := writeFile(t, filepath.Join(tmp, "other-ca.pem"), pkitest.NewCA(t, "another CA").PEM, 0o644)
	notPEM := writeFile(t, filepath.Join(tmp, "not.pem"), []byte("hello"), 0o644)
	for _, tc := range []struct {
		name string
		args []string
		code int
		want []string
	}{
		{"another CA", []string{"--ca-file", other}, 1, []string{"TLS error", "does not trust", "--ca-file"}},
		{"no CA", nil, 1, []string{"TLS error", "--ca-file"}},
		{"not PEM", []string{"--ca-file", notPEM}, exitUsage, []string{"no PEM certificate", notPEM}},
		{"missing", []string{"--ca-file", filepath.Join(tmp, "nope.pem")}, exitUsage, []string{"cannot read", "nope.pem"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			creds := filepath.Join(t.TempDir(), "c.json")
			args := append([]string{"login", "--username", s.user, "--password-stdin", "--server", s.URL, "--credentials", creds}, tc.args...)
			code, _, stderr := runWithStdin(t, s.password, nil, args...)
			if code != tc.code {
				t.Errorf("exit %d, want %d", code, tc.code)
			}
			wantNoCrash(t, stderr)
			wantContains(t, "stderr", stderr, tc.want...)
			wantNotExist(t, creds)
		})
	}
}

// TestKeysRotate: rampart keys rotate as the admin prints the new key id.
func TestKeysRotate(t *testing.T) {
	t.Parallel()
	s := startIdentityServer(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "missing subcommand"},
		{[]string{"bogus"}, `unknown subcommand "bogus"`},
	} {
		code, _, stderr := runRampart(t, nil, append([]string{"keys"}, tc.args...)...)
		if code != exitUsage {
			t.Errorf("keys %v: exit %d, want %d", tc.args, code, exitUsage)
		}
		wantContains(t, "stderr", stderr, tc.want)
	}

	creds := credsPath(t)
	s.passwordLogin(t, creds)
	code, stdout, stderr := runRampart(t, nil, "keys", "rotate", "--credentials", creds)
	wantNoCrash(t, stderr)
	if code != 0 {
		t.Fatalf("keys rotate: exit %d\n%s", code, stderr)
	}
	kid := strings.TrimSpace(stdout)
	if kid == "" || strings.ContainsAny(kid, " \n") {
		t.Fatalf("keys rotate printed %q, want the new key id", stdout)
	}
	var jwks struct {
		Keys []struct {
			KID string `json:"kid"`
		} `json:"keys"`
	}
	res := s.Do(t, http.MethodGet, "/oauth/keys", "", nil)
	if err := json.Unmarshal(res.Body, &jwks); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, k := range jwks.Keys {
		found = found || k.KID == kid
	}
	if !found {
		t.Errorf("the new key %q is not in the JWKS %s", kid, res.Body)
	}
}

// TestLoginHelp: every client command has --help, which names the
// environment variables and exits 0.
func TestLoginHelp(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"login"}, {"logout"}, {"whoami"}, {"keys", "rotate"}} {
		code, stdout, stderr := runRampart(t, nil, append(args, "--help")...)
		if code != 0 {
			t.Errorf("%v --help: exit %d\n%s", args, code, stderr)
		}
		wantContains(t, strings.Join(args, " ")+" --help", stdout, "Usage: rampart "+strings.Join(args, " "),
			"RAMPART_SERVER", "RAMPART_CA_FILE", "RAMPART_CREDENTIALS", "-insecure-http")
	}
}
