package main

// What every client subcommand (login, logout, whoami, keys) shares: the
// common flags, the HTTP client that trusts the server's CA, the calls to
// the REST API and the OpenID provider, and turning their failures into
// one-line messages. Tokens and passwords are never printed or logged here.

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/oauth2"

	"github.com/rampart-ml/rampart/internal/version"
)

// cliClientID is the public OAuth client the CLI logs in as (no secret;
// PKCE and loopback redirects instead).
const cliClientID = "rampart-cli"

// cliScopes are the scopes every login asks for: offline_access brings a
// refresh token, so a login lasts the server's session lifetime.
var cliScopes = []string{"openid", "offline_access"}

// requestTimeout bounds each HTTP request the CLI makes.
const requestTimeout = 30 * time.Second

// maxResponseBytes bounds how much of a response the CLI reads.
const maxResponseBytes = 1 << 20

// errNotLoggedIn means there is no credentials file.
var errNotLoggedIn = errors.New("not logged in")

// usageError is an error with exit code 2.
func usageError(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errUsage, fmt.Sprintf(format, args...))
}

// clientFlags are the flags every client subcommand takes.
type clientFlags struct {
	server       string
	caFile       string
	credentials  string
	insecureHTTP bool
}

func (f *clientFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.server, "server", "", "server base URL, https://HOST:PORT (env RAMPART_SERVER; default: the server of the stored login)")
	fs.StringVar(&f.caFile, "ca-file", "", "PEM CA certificate to trust in addition to the system's, such as the server's DATA_DIR/tls/ca.pem (env RAMPART_CA_FILE)")
	fs.StringVar(&f.credentials, "credentials", "", "credentials file (env RAMPART_CREDENTIALS; default $XDG_CONFIG_HOME/rampart/credentials.json or ~/.config/rampart/credentials.json)")
	fs.BoolVar(&f.insecureHTTP, "insecure-http", false, "allow an http:// server: tokens and passwords cross the network unencrypted")
}

// newFlagSet returns a flag set whose -h prints usage to stdout.
func newFlagSet(name, synopsis string, stdout io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {
		fmt.Fprintf(stdout, "Usage: %s\n\nFlags:\n", synopsis)
		fs.SetOutput(stdout)
		fs.PrintDefaults()
		fs.SetOutput(io.Discard)
	}
	return fs
}

// parseFlags parses args; done is true when -h was asked for (and the
// help printed), so the command should return nil.
func parseFlags(fs *flag.FlagSet, args []string) (done bool, err error) {
	err = fs.Parse(args)
	if errors.Is(err, flag.ErrHelp) { // fs.Usage has printed the help
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("%w: %v", errUsage, err)
	}
	if fs.NArg() > 0 {
		return false, usageError("unexpected argument %q", fs.Arg(0))
	}
	return false, nil
}

// settings are the client flags with the environment and the defaults
// applied.
type settings struct {
	server       string // normalized; "" when neither flag nor environment set it
	caFile       string
	credentials  string
	insecureHTTP bool
}

// resolve applies the environment (flags win) and the default
// credentials path.
func (f *clientFlags) resolve(env func(string) (string, bool)) (settings, error) {
	s := settings{server: f.server, caFile: f.caFile, credentials: f.credentials, insecureHTTP: f.insecureHTTP}
	if s.server == "" {
		s.server, _ = env("RAMPART_SERVER")
	}
	if s.caFile == "" {
		s.caFile, _ = env("RAMPART_CA_FILE")
	}
	if s.credentials == "" {
		s.credentials, _ = env("RAMPART_CREDENTIALS")
	}
	if s.credentials == "" {
		p, err := defaultCredentialsPath(env)
		if err != nil {
			return settings{}, err
		}
		s.credentials = p
	}
	if s.server != "" {
		u, err := normalizeServer(s.server)
		if err != nil {
			return settings{}, err
		}
		s.server = u
	}
	if s.caFile != "" {
		abs, err := filepath.Abs(s.caFile)
		if err != nil {
			return settings{}, usageError("--ca-file %s: %v", s.caFile, err)
		}
		s.caFile = abs
	}
	return s, nil
}

func defaultCredentialsPath(env func(string) (string, bool)) (string, error) {
	if dir, ok := env("XDG_CONFIG_HOME"); ok && filepath.IsAbs(dir) {
		return filepath.Join(dir, "rampart", "credentials.json"), nil
	}
	if home, ok := env("HOME"); ok && home != "" {
		return filepath.Join(home, ".config", "rampart", "credentials.json"), nil
	}
	return "", usageError("no place for the credentials file: set --credentials, RAMPART_CREDENTIALS, XDG_CONFIG_HOME or HOME")
}

// normalizeServer checks a server URL and returns it without a trailing
// slash: scheme://host[:port][/path].
func normalizeServer(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", usageError("--server %q is not a URL: %v", raw, err)
	}
	if u.Scheme != "https" && u.Scheme != "http" {
		return "", usageError("--server %q must start with https://", raw)
	}
	if u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return "", usageError("--server %q must be a base URL such as https://rampart.example:8443", raw)
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	return u.String(), nil
}

// checkScheme refuses plain HTTP unless --insecure-http, and warns when
// it is allowed.
func checkScheme(server string, insecure bool, stderr io.Writer) error {
	if !strings.HasPrefix(server, "http://") {
		return nil
	}
	if !insecure {
		return usageError("refusing the plain-HTTP server %s: tokens and passwords would cross the network unencrypted; use https:// (or --insecure-http on a network you trust)", server)
	}
	fmt.Fprintf(stderr, "WARNING: --insecure-http: talking to %s without TLS; tokens and passwords are sent unencrypted.\n", server)
	return nil
}

// session is one client command's connection to one server.
type session struct {
	server      string
	caFile      string
	credsPath   string
	creds       *credentials // nil until logged in
	http        *http.Client
	stderr      io.Writer
	insecure    bool
	discovered  *discovery
	justRefresh bool            // the access token was refreshed during this command
	ownReads    map[string]bool // request ids of this session's audit reads (audit tail)
}

// openSession builds the HTTP client for s.server (which must be set).
func openSession(s settings, stderr io.Writer) (*session, error) {
	if err := checkScheme(s.server, s.insecureHTTP, stderr); err != nil {
		return nil, err
	}
	hc, err := newHTTPClient(s.caFile)
	if err != nil {
		return nil, err
	}
	return &session{server: s.server, caFile: s.caFile, credsPath: s.credentials, http: hc, stderr: stderr, insecure: s.insecureHTTP}, nil
}

// openLoggedIn loads the stored login and builds a session for its server.
// A --server that names another server than the stored login's is refused,
// so tokens are never sent to a server that did not issue them.
func openLoggedIn(s settings, stderr io.Writer) (*session, error) {
	c, err := loadCredentials(s.credentials, stderr)
	if errors.Is(err, errNotLoggedIn) {
		return nil, fmt.Errorf("not logged in (no credentials at %s): run rampart login --server URL", s.credentials)
	}
	if err != nil {
		return nil, err
	}
	if s.server != "" && s.server != c.Server {
		return nil, fmt.Errorf("the credentials at %s are for %s, not %s: run rampart login --server %s", s.credentials, c.Server, s.server, s.server)
	}
	s.server = c.Server
	if s.caFile == "" {
		s.caFile = c.CAFile
	}
	ss, err := openSession(s, stderr)
	if err != nil {
		return nil, err
	}
	ss.creds = c
	return ss, nil
}

// newHTTPClient trusts the system roots plus caFile.
func newHTTPClient(caFile string) (*http.Client, error) {
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if caFile != "" {
		data, err := os.ReadFile(caFile) // #nosec G304 -- the CA file the user named
		if err != nil {
			return nil, usageError("--ca-file: cannot read %s: %v", caFile, unwrapPathError(err))
		}
		if !pool.AppendCertsFromPEM(data) {
			return nil, usageError("--ca-file: %s holds no PEM certificate", caFile)
		}
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	return &http.Client{Transport: userAgent{tr}, Timeout: requestTimeout}, nil
}

func unwrapPathError(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// userAgent names the CLI and its version on every request.
type userAgent struct{ next http.RoundTripper }

func (u userAgent) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("User-Agent", "rampart-cli/"+version.Version)
	return u.next.RoundTrip(r)
}

// transportError explains a failure to reach the server: an untrusted
// certificate, a plain-HTTP server on an https:// URL, a refused
// connection.
func transportError(server string, err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	var (
		unknownCA x509.UnknownAuthorityError
		hostErr   x509.HostnameError
		invalid   x509.CertificateInvalidError
		record    tls.RecordHeaderError
	)
	switch {
	case errors.As(err, &unknownCA):
		return fmt.Errorf("TLS error: the certificate of %s is signed by an authority this client does not trust; pass the server's CA certificate with --ca-file (the server prints its path when it starts: DATA_DIR/tls/ca.pem)", server)
	case errors.As(err, &hostErr):
		return fmt.Errorf("TLS error: the certificate of %s is not valid for that name (%v); use the host name the certificate was issued for", server, hostErr)
	case errors.As(err, &invalid):
		return fmt.Errorf("TLS error: the certificate of %s is not valid: %v", server, invalid)
	case errors.As(err, &record):
		return fmt.Errorf("TLS error: %s did not answer with TLS; if it runs with --insecure-http, use an http:// URL and --insecure-http", server)
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("cannot connect to %s: connection refused; is the server running?", server)
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%s did not answer in time", server)
	case errors.Is(err, context.Canceled):
		return errors.New("interrupted")
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return fmt.Errorf("cannot find the server %s: %v", server, dnsErr)
	}
	return fmt.Errorf("cannot reach %s: %v", server, err)
}

// apiError is an error response from the server: the REST API's
// {"error", "code"} body or an OAuth {"error", "error_description"}.
type apiError struct {
	Status int
	Msg    string
	Code   string
}

func (e *apiError) Error() string {
	if e.Msg == "" {
		return fmt.Sprintf("the server refused the request (%s)", e.Code)
	}
	return fmt.Sprintf("%s (%s)", e.Msg, e.Code)
}

// readAPIError builds an apiError from a non-2xx response.
func readAPIError(res *http.Response) *apiError {
	body, _ := io.ReadAll(io.LimitReader(res.Body, maxResponseBytes))
	return apiErrorFrom(res.StatusCode, res.Header.Get("Content-Type"), body)
}

func apiErrorFrom(status int, contentType string, body []byte) *apiError {
	e := &apiError{Status: status}
	if mt, _, _ := mime.ParseMediaType(contentType); mt == "application/json" {
		var b struct {
			Error       string `json:"error"`
			Code        string `json:"code"`
			Description string `json:"error_description"`
		}
		if json.Unmarshal(body, &b) == nil {
			switch {
			case b.Code != "": // REST API
				e.Msg, e.Code = b.Error, b.Code
			case b.Error != "": // OAuth
				e.Msg, e.Code = b.Description, b.Error
			}
		}
	}
	if e.Code == "" {
		e.Code = fmt.Sprintf("http_%d", status)
	}
	if e.Msg == "" {
		e.Msg = "the server answered " + strings.ToLower(http.StatusText(status))
	}
	return e
}

// oauthError turns an error from golang.org/x/oauth2 into an apiError or
// a transport error.
func (s *session) oauthError(err error) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		if re.ErrorCode != "" {
			return &apiError{Status: re.Response.StatusCode, Msg: re.ErrorDescription, Code: re.ErrorCode}
		}
		return apiErrorFrom(re.Response.StatusCode, re.Response.Header.Get("Content-Type"), re.Body)
	}
	return transportError(s.server, err)
}

// do sends a JSON request to the server (body nil for none) with an
// optional bearer token and decodes a 2xx JSON response into out (nil to
// discard it).
func (s *session) do(ctx context.Context, method, path, token string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, s.server+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := s.http.Do(req)
	if err != nil {
		return transportError(s.server, err)
	}
	defer res.Body.Close()
	if res.StatusCode < 200 || res.StatusCode > 299 {
		return readAPIError(res)
	}
	if out == nil {
		_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, maxResponseBytes))
		return nil
	}
	if err := json.NewDecoder(io.LimitReader(res.Body, maxResponseBytes)).Decode(out); err != nil {
		return fmt.Errorf("%s %s: the server's answer is not the JSON expected: %v", method, path, err)
	}
	return nil
}

// discovery is the part of the OpenID provider metadata the CLI uses.
type discovery struct {
	Issuer                      string `json:"issuer"`
	AuthorizationEndpoint       string `json:"authorization_endpoint"`
	TokenEndpoint               string `json:"token_endpoint"`
	DeviceAuthorizationEndpoint string `json:"device_authorization_endpoint"`
	RevocationEndpoint          string `json:"revocation_endpoint"`
}

// discover fetches the provider metadata. The issuer must be the server
// itself and every endpoint must be on it: the CLI sends passwords'
// results and tokens nowhere else.
func (s *session) discover(ctx context.Context) (*discovery, error) {
	if s.discovered != nil {
		return s.discovered, nil
	}
	var d discovery
	if err := s.do(ctx, http.MethodGet, "/.well-known/openid-configuration", "", nil, &d); err != nil {
		return nil, fmt.Errorf("discover the server's login endpoints: %w", err)
	}
	if strings.TrimRight(d.Issuer, "/") != s.server {
		return nil, fmt.Errorf("the server at %s says its issuer is %q; log in with --server set to the issuer", s.server, d.Issuer)
	}
	base, _ := url.Parse(s.server)
	for name, ep := range map[string]string{
		"authorization_endpoint": d.AuthorizationEndpoint, "token_endpoint": d.TokenEndpoint,
		"device_authorization_endpoint": d.DeviceAuthorizationEndpoint, "revocation_endpoint": d.RevocationEndpoint,
	} {
		if ep == "" {
			continue
		}
		u, err := url.Parse(ep)
		if err != nil || u.Scheme != base.Scheme || u.Host != base.Host {
			return nil, fmt.Errorf("the server's discovery document points %s to %q, outside %s", name, ep, s.server)
		}
	}
	if d.TokenEndpoint == "" {
		return nil, fmt.Errorf("the server's discovery document has no token_endpoint")
	}
	s.discovered = &d
	return &d, nil
}

// oauthConfig is the rampart-cli client at the discovered endpoints.
func oauthConfig(d *discovery, redirectURL string) *oauth2.Config {
	return &oauth2.Config{
		ClientID: cliClientID,
		Endpoint: oauth2.Endpoint{
			AuthURL:       d.AuthorizationEndpoint,
			TokenURL:      d.TokenEndpoint,
			DeviceAuthURL: d.DeviceAuthorizationEndpoint,
			AuthStyle:     oauth2.AuthStyleInParams, // a public client: client_id in the form, no secret
		},
		RedirectURL: redirectURL,
		Scopes:      cliScopes,
	}
}

// oauthContext makes golang.org/x/oauth2 use the session's HTTP client.
func (s *session) oauthContext(ctx context.Context) context.Context {
	return context.WithValue(ctx, oauth2.HTTPClient, s.http)
}

// me is GET /api/v1/me.
type me struct {
	ID                 string `json:"id"`
	Kind               string `json:"kind"`
	Name               string `json:"name"`
	Admin              bool   `json:"admin"`
	MustChangePassword bool   `json:"must_change_password,omitempty"`
}

// refresh replaces the access token stale (expired, or refused by the
// server) by exchanging the refresh token, and saves the new tokens. The
// server rotates refresh tokens and takes a second use of one for a
// replay that ends the session, so concurrent commands take turns under a
// lock, and a command that finds the tokens already refreshed by another
// uses those.
func (s *session) refresh(ctx context.Context, stale string) error {
	unlock, err := lockCredentials(ctx, s.credsPath)
	if err != nil {
		return err
	}
	defer unlock()
	if c, err := loadCredentials(s.credsPath, io.Discard); err == nil && c.Server == s.creds.Server {
		if c.AccessToken != stale && !c.expired(time.Now()) {
			s.creds = c
			s.justRefresh = true
			return nil
		}
		s.creds.RefreshToken = c.RefreshToken
	}
	if s.creds.RefreshToken == "" {
		return fmt.Errorf("your login has expired: run rampart login")
	}
	d, err := s.discover(ctx)
	if err != nil {
		return err
	}
	old := &oauth2.Token{RefreshToken: s.creds.RefreshToken}
	tok, err := oauthConfig(d, "").TokenSource(s.oauthContext(ctx), old).Token()
	if err != nil {
		err = s.oauthError(err)
		var ae *apiError
		if errors.As(err, &ae) && ae.Code == "invalid_grant" {
			if ae.Msg != "" {
				return fmt.Errorf("your login has expired or was revoked: %v; run rampart login", ae)
			}
			return errors.New("your login has expired or was revoked (invalid_grant): run rampart login")
		}
		return fmt.Errorf("refresh the access token: %w", err)
	}
	s.creds.setToken(tok)
	s.justRefresh = true
	return saveCredentials(s.credsPath, *s.creds)
}

// authorized calls call with a valid access token: it refreshes first
// when the stored one has expired, and once more when the server refuses
// the token (401) though it looked valid.
func (s *session) authorized(ctx context.Context, call func(token string) error) error {
	if s.creds.expired(time.Now()) {
		if err := s.refresh(ctx, s.creds.AccessToken); err != nil {
			return err
		}
	}
	err := call(s.creds.AccessToken)
	var ae *apiError
	if errors.As(err, &ae) && ae.Status == http.StatusUnauthorized && !s.justRefresh && s.creds.RefreshToken != "" {
		if rerr := s.refresh(ctx, s.creds.AccessToken); rerr != nil {
			return rerr
		}
		err = call(s.creds.AccessToken)
	}
	return err
}
