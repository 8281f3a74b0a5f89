package main

// rampart login: the authorization code flow with PKCE through a browser
// and a loopback redirect (RFC 8252), the device authorization grant for
// machines without a browser (RFC 8628), and a direct password login for
// scripts (POST /api/v1/login, the password read from stdin).

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync/atomic"
	"time"

	"github.com/mattn/go-isatty"
	"golang.org/x/oauth2"
)

// defaultLoginTimeout bounds the wait for the browser login.
const defaultLoginTimeout = 5 * time.Minute

// maxPasswordBytes bounds what --password-stdin reads.
const maxPasswordBytes = 4096

type loginFlags struct {
	clientFlags
	device        bool
	noBrowser     bool
	timeout       time.Duration
	passwordStdin bool
	username      string
	otp           string
}

func loginCmd(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, env func(string) (string, bool)) error {
	var f loginFlags
	fs := newFlagSet("rampart login", "rampart login --server URL [--ca-file CA] [--device | --no-browser | --username NAME --password-stdin]", stdout)
	f.register(fs)
	fs.BoolVar(&f.device, "device", false, "log in with a code approved on another device (no browser needed here)")
	fs.BoolVar(&f.noBrowser, "no-browser", false, "print the login URL but do not open a browser")
	fs.DurationVar(&f.timeout, "timeout", 0, "how long to wait for the login to be completed (default 5m; with --device, until the code expires)")
	fs.BoolVar(&f.passwordStdin, "password-stdin", false, "log in directly with --username and the password read from stdin (for scripts)")
	fs.StringVar(&f.username, "username", "", "user name, with --password-stdin")
	fs.StringVar(&f.otp, "otp", "", "one-time code from an authenticator app, with --password-stdin")
	if done, err := parseFlags(fs, args); done || err != nil {
		return err
	}
	switch {
	case f.passwordStdin && f.username == "":
		return usageError("--password-stdin needs --username")
	case !f.passwordStdin && (f.username != "" || f.otp != ""):
		return usageError("--username and --otp go with --password-stdin (the browser and --device logins ask for them on the login page)")
	case f.passwordStdin && f.device:
		return usageError("--device and --password-stdin are different ways to log in; choose one")
	case f.timeout < 0:
		return usageError("--timeout must be positive")
	}
	st, err := f.resolve(env)
	if err != nil {
		return err
	}
	var password string
	if f.passwordStdin {
		if password, err = readStdinPassword(stdin); err != nil {
			return err
		}
	}
	if st.server == "" {
		// Logging in again to the server of the stored login.
		if c, err := loadCredentials(st.credentials, stderr); err == nil {
			st.server = c.Server
			if st.caFile == "" {
				st.caFile = c.CAFile
			}
		}
	}
	if st.server == "" {
		return usageError("--server is required (or set RAMPART_SERVER)")
	}
	s, err := openSession(st, stderr)
	if err != nil {
		return err
	}

	var tok *oauth2.Token
	switch {
	case f.passwordStdin:
		if tok, err = s.passwordLogin(ctx, f.username, password, f.otp); err != nil {
			return err
		}
	case f.device:
		if tok, err = s.deviceLogin(ctx, f.timeout); err != nil {
			return err
		}
	default:
		open := !f.noBrowser && isTerminal(stdout) && !inCI(env)
		if tok, err = s.browserLogin(ctx, f.timeout, open); err != nil {
			return err
		}
	}

	c := credentials{Server: s.server, CAFile: s.caFile}
	c.setToken(tok)
	if c.RefreshToken == "" {
		fmt.Fprintln(stderr, "note: the server issued no refresh token; you will have to log in again when the access token expires")
	}
	unlock, err := lockCredentials(ctx, s.credsPath)
	if err != nil {
		return err
	}
	err = saveCredentials(s.credsPath, c)
	unlock()
	if err != nil {
		return err
	}
	s.creds = &c
	var who me
	if err := s.do(ctx, http.MethodGet, "/api/v1/me", c.AccessToken, nil, &who); err != nil {
		return fmt.Errorf("logged in, but GET /api/v1/me failed: %w", err)
	}
	fmt.Fprintf(stdout, "Logged in to %s as %s\n", s.server, who.Name)
	if who.MustChangePassword {
		fmt.Fprintln(stderr, "You must change your password before you can do anything else.")
	}
	return nil
}

// readStdinPassword reads the first line of stdin.
func readStdinPassword(stdin io.Reader) (string, error) {
	if stdin == nil {
		return "", usageError("--password-stdin: no stdin")
	}
	line, err := bufio.NewReader(io.LimitReader(stdin, maxPasswordBytes)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("--password-stdin: read stdin: %w", err)
	}
	pw := strings.TrimRight(line, "\r\n")
	if pw == "" {
		return "", usageError("--password-stdin: stdin holds no password")
	}
	return pw, nil
}

// tokenResponse is an OAuth token response (RFC 6749 section 5.1).
type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	RefreshToken string `json:"refresh_token"`
	ExpiresIn    int64  `json:"expires_in"`
}

// passwordLogin is POST /api/v1/login.
func (s *session) passwordLogin(ctx context.Context, user, pw, otp string) (*oauth2.Token, error) {
	start := time.Now()
	var tr tokenResponse
	err := s.do(ctx, http.MethodPost, "/api/v1/login", "", map[string]string{"username": user, "password": pw, "otp": otp}, &tr)
	var ae *apiError
	if errors.As(err, &ae) && ae.Code == "otp_required" && otp == "" {
		return nil, fmt.Errorf("%w: this account needs a one-time code: pass --otp CODE", err)
	}
	if err != nil {
		return nil, err
	}
	if tr.AccessToken == "" {
		return nil, errors.New("the server's login answer holds no access token")
	}
	t := &oauth2.Token{AccessToken: tr.AccessToken, TokenType: tr.TokenType, RefreshToken: tr.RefreshToken}
	if tr.ExpiresIn > 0 {
		t.Expiry = start.Add(time.Duration(tr.ExpiresIn) * time.Second)
	}
	return t, nil
}

// deviceLogin runs the device authorization grant: the user approves the
// code on the server's device page, from any browser.
func (s *session) deviceLogin(ctx context.Context, timeout time.Duration) (*oauth2.Token, error) {
	d, err := s.discover(ctx)
	if err != nil {
		return nil, err
	}
	if d.DeviceAuthorizationEndpoint == "" {
		return nil, errors.New("the server does not offer device login (no device_authorization_endpoint)")
	}
	cfg := oauthConfig(d, "")
	octx := s.oauthContext(ctx)
	da, err := cfg.DeviceAuth(octx)
	if err != nil {
		return nil, fmt.Errorf("start the device login: %w", s.oauthError(err))
	}
	fmt.Fprintf(s.stderr, "To log in, open %s in a browser on any device and enter the code.\n", da.VerificationURI)
	fmt.Fprintf(s.stderr, "Code: %s\n", da.UserCode)
	if da.VerificationURIComplete != "" {
		fmt.Fprintf(s.stderr, "(or open %s)\n", da.VerificationURIComplete)
	}
	if !da.Expiry.IsZero() {
		fmt.Fprintf(s.stderr, "Waiting for approval (the code expires in %v)...\n", time.Until(da.Expiry).Round(time.Second))
	}
	if timeout > 0 {
		var cancel context.CancelFunc
		octx, cancel = context.WithTimeout(octx, timeout)
		defer cancel()
	}
	tok, err := cfg.DeviceAccessToken(octx, da)
	var re *oauth2.RetrieveError
	switch {
	case err == nil:
		return tok, nil
	case errors.As(err, &re) && re.ErrorCode == "access_denied":
		return nil, errors.New("the login was denied on the device page")
	case errors.As(err, &re) && re.ErrorCode == "expired_token":
		return nil, errors.New("the code expired before it was approved: run rampart login --device again")
	case errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil:
		return nil, errors.New("timed out waiting for the code to be approved: run rampart login --device again")
	case ctx.Err() != nil:
		return nil, errors.New("interrupted")
	default:
		return nil, fmt.Errorf("device login: %w", s.oauthError(err))
	}
}

// callback is what the loopback redirect brought: a code or an error,
// and a channel to report the exchange's outcome on the page.
type callback struct {
	code    string
	err     error
	outcome chan error
}

// browserLogin runs the authorization code flow with PKCE: the user logs
// in on the server's page in a browser, which is redirected back to a
// one-shot listener on 127.0.0.1 with the code.
func (s *session) browserLogin(ctx context.Context, timeout time.Duration, openBrowser bool) (*oauth2.Token, error) {
	if timeout == 0 {
		timeout = defaultLoginTimeout
	}
	d, err := s.discover(ctx)
	if err != nil {
		return nil, err
	}
	if d.AuthorizationEndpoint == "" {
		return nil, errors.New("the server does not offer browser login (no authorization_endpoint): try --device")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listen for the login redirect on 127.0.0.1: %w", err)
	}
	cfg := oauthConfig(d, "http://"+ln.Addr().String()+"/callback")
	verifier := oauth2.GenerateVerifier()
	state := rand.Text()
	authURL := cfg.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier))

	results := make(chan callback, 1)
	srv := &http.Server{Handler: callbackHandler(state, results), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer func() {
		// Let the page with the outcome reach the browser, briefly.
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if srv.Shutdown(sctx) != nil {
			_ = srv.Close()
		}
	}()

	fmt.Fprintf(s.stderr, "Open this URL in your browser: %s\n", authURL)
	if openBrowser {
		if err := startBrowser(authURL); err != nil {
			fmt.Fprintf(s.stderr, "(could not open a browser: %v)\n", err)
		}
	}
	fmt.Fprintf(s.stderr, "Waiting for the login to be completed (up to %v)...\n", timeout)

	timer := time.NewTimer(timeout)
	defer timer.Stop()
	var cb callback
	select {
	case cb = <-results:
	case <-timer.C:
		return nil, fmt.Errorf("timed out after %v waiting for the login in the browser: run rampart login again", timeout)
	case <-ctx.Done():
		return nil, errors.New("interrupted")
	}
	if cb.err != nil {
		cb.outcome <- cb.err
		return nil, cb.err
	}
	tok, err := cfg.Exchange(s.oauthContext(ctx), cb.code, oauth2.VerifierOption(verifier))
	if err != nil {
		err = fmt.Errorf("exchange the authorization code: %w", s.oauthError(err))
	}
	cb.outcome <- err
	return tok, err
}

// callbackHandler serves the loopback redirect: GET /callback with the
// state this login sent. It accepts one answer; other requests, and
// answers with another state (not from this login), are refused.
func callbackHandler(state string, results chan<- callback) http.Handler {
	var taken atomic.Bool
	mux := http.NewServeMux()
	mux.HandleFunc("GET /callback", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if subtle.ConstantTimeCompare([]byte(q.Get("state")), []byte(state)) != 1 {
			callbackPage(w, http.StatusBadRequest, "Login failed", "This answer does not belong to the login in progress. Run rampart login again.")
			return
		}
		if !taken.CompareAndSwap(false, true) {
			callbackPage(w, http.StatusConflict, "Login already finished", "You can close this window.")
			return
		}
		cb := callback{code: q.Get("code"), outcome: make(chan error, 1)}
		switch {
		case q.Get("error") != "":
			cb.err = &apiError{Status: http.StatusBadRequest, Msg: q.Get("error_description"), Code: q.Get("error")}
		case cb.code == "":
			cb.err = errors.New("the server's redirect holds no authorization code")
		}
		results <- cb
		select {
		case err := <-cb.outcome:
			if err != nil {
				callbackPage(w, http.StatusOK, "Login failed", "Rampart could not log you in: "+err.Error()+". You can close this window and return to the terminal.")
				return
			}
			callbackPage(w, http.StatusOK, "Logged in", "You are logged in to Rampart. You can close this window and return to the terminal.")
		case <-r.Context().Done():
		}
	})
	return mux
}

func callbackPage(w http.ResponseWriter, status int, title, msg string) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'")
	h.Set("Referrer-Policy", "no-referrer")
	w.WriteHeader(status)
	fmt.Fprintf(w, `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Rampart – %s</title>
<style>body{font-family:sans-serif;max-width:30rem;margin:4rem auto;padding:0 1rem}</style></head>
<body><h1>%s</h1><p>%s</p></body></html>
`, html.EscapeString(title), html.EscapeString(title), html.EscapeString(msg))
}

// isTerminal reports whether w is a terminal (a browser is opened only
// for a person at one).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && (isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd()))
}

// inCI reports whether this looks like a CI job, where no browser should
// ever be started.
func inCI(env func(string) (string, bool)) bool {
	v, ok := env("CI")
	return ok && v != "" && v != "false" && v != "0"
}

// startBrowser opens url in the user's browser without waiting for it.
// url is the server's own authorization endpoint (discover checks it is
// on the server), never a file or another scheme.
func startBrowser(url string) error {
	var cmd *exec.Cmd
	switch runtime.GOOS {
	case "darwin":
		cmd = exec.Command("open", url) // #nosec G204 -- see above
	case "windows":
		cmd = exec.Command("rundll32", "url.dll,FileProtocolHandler", url) // #nosec G204 -- see above
	default:
		cmd = exec.Command("xdg-open", url) // #nosec G204 -- see above
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	go func() { _ = cmd.Wait() }()
	return nil
}
