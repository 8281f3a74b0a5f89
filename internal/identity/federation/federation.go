package federation

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/coreos/go-oidc/v3/oidc"

	"github.com/rampart-ml/rampart/internal/principal"
)

const (
	// MaxTokenBytes bounds the compact JWS Verify looks at; longer strings
	// are not parsed at all.
	MaxTokenBytes = 16 << 10
	// MaxGroups and MaxGroupBytes bound the groups claim.
	MaxGroups     = 256
	MaxGroupBytes = 256

	maxSubjectBytes  = 255 // OIDC Core 2: sub is at most 255 ASCII characters
	maxNameBytes     = 256
	maxClaimName     = 128
	maxResponseBytes = 1 << 20

	// DiscoveryRetryInterval is the least time between two discovery
	// attempts for an issuer after one failed.
	DiscoveryRetryInterval = 30 * time.Second
	// KeySetMaxAge is how long a fetched JWKS is trusted before the next
	// token is checked against a fresh copy (see keySet).
	KeySetMaxAge = 10 * time.Minute
	// DefaultHTTPTimeout bounds each request to an issuer when the
	// configured client has no timeout of its own.
	DefaultHTTPTimeout = 10 * time.Second

	defaultUsernameClaim = "preferred_username"
	defaultGroupsClaim   = "groups"

	// notBeforeLeeway is go-oidc's allowance for clock skew on nbf.
	notBeforeLeeway = 5 * time.Minute
)

// defaultAlgorithms is the allow-list of an Issuer that names none.
var defaultAlgorithms = []string{oidc.RS256, oidc.ES256, oidc.PS256, oidc.EdDSA}

// asymmetricAlgorithms are the algorithms an allow-list may name.
var asymmetricAlgorithms = []string{
	oidc.RS256, oidc.RS384, oidc.RS512,
	oidc.PS256, oidc.PS384, oidc.PS512,
	oidc.ES256, oidc.ES384, oidc.ES512,
	oidc.EdDSA,
}

var issuerNameRE = regexp.MustCompile(`^[a-z0-9-]{1,32}$`)

// Issuer is one trusted external OIDC provider (from the server config).
type Issuer struct {
	// Name is a short label, [a-z0-9-]{1,32}; principal ids are
	// "<Name>:<sub>", groups "<Name>:<group>". Changing it changes every
	// federated principal id of the issuer.
	Name string
	// URL is the issuer URL exactly as in its tokens' "iss" (a trailing
	// slash matters); https unless AllowInsecureHTTP.
	URL string
	// Audience is the "aud" value tokens must contain (often the client id).
	// Required.
	Audience string
	// UsernameClaim names the claim shown as the principal's Name; default
	// "preferred_username". When it is absent or unusable, "email" and then
	// sub are used.
	UsernameClaim string
	// GroupsClaim names the claim holding the user's groups, an array of
	// strings; default "groups". Absent means no groups.
	GroupsClaim string
	// Algorithms is the allow-list of signature algorithms; default RS256,
	// ES256, PS256, EdDSA. "none" and the HMAC algorithms (HS*) are refused.
	Algorithms []string
	// CAFile optionally names a PEM bundle: when set, the issuer's TLS
	// certificate must chain to one of its certificates (and not to the
	// system roots).
	CAFile string
	// AllowInsecureHTTP permits an http:// URL and http:// JWKS. For tests
	// and an explicit operator flag only; New logs a warning.
	AllowInsecureHTTP bool
}

// Validate reports every problem with i at once, each naming its field in
// the configuration's kebab-case spelling (name, url, audience,
// username-claim, groups-claim, algorithms, ca-file).
func (i Issuer) Validate() error {
	var errs []error
	if !issuerNameRE.MatchString(i.Name) {
		errs = append(errs, fmt.Errorf("name %q: must be 1 to 32 of a-z, 0-9 and '-'", i.Name))
	}
	if err := validateIssuerURL(i.URL, i.AllowInsecureHTTP); err != nil {
		errs = append(errs, fmt.Errorf("url: %w", err))
	}
	if strings.TrimSpace(i.Audience) == "" {
		errs = append(errs, errors.New("audience: required (the client id tokens are issued to)"))
	}
	for _, c := range []struct{ field, claim string }{{"username-claim", i.UsernameClaim}, {"groups-claim", i.GroupsClaim}} {
		if len(c.claim) > maxClaimName || strings.TrimSpace(c.claim) != c.claim {
			errs = append(errs, fmt.Errorf("%s %.40q: must be a claim name of at most %d bytes without surrounding space", c.field, c.claim, maxClaimName))
		}
	}
	for _, alg := range i.Algorithms {
		switch {
		case strings.EqualFold(alg, "none"):
			errs = append(errs, fmt.Errorf("algorithms: %q refused: unsigned tokens are never accepted", alg))
		case strings.HasPrefix(strings.ToUpper(alg), "HS"):
			errs = append(errs, fmt.Errorf("algorithms: %q refused: HMAC needs a secret shared with the issuer; only public-key algorithms are supported", alg))
		case !slices.Contains(asymmetricAlgorithms, alg):
			errs = append(errs, fmt.Errorf("algorithms: %q unsupported (supported: %s)", alg, strings.Join(asymmetricAlgorithms, ", ")))
		}
	}
	if i.CAFile != "" && strings.HasPrefix(strings.ToLower(i.URL), "http://") {
		errs = append(errs, errors.New("ca-file: set, but url is not https"))
	}
	return errors.Join(errs...)
}

func validateIssuerURL(raw string, allowHTTP bool) error {
	if raw == "" {
		return errors.New("required")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("%q: %w", raw, err)
	}
	var errs []error
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && allowHTTP:
	case u.Scheme == "http":
		errs = append(errs, fmt.Errorf("%q: must be https (allow-insecure-http is for tests only)", raw))
	default:
		errs = append(errs, fmt.Errorf("%q: must be an https URL", raw))
	}
	if u.Host == "" || u.Opaque != "" {
		errs = append(errs, fmt.Errorf("%q: has no host", raw))
	}
	if u.User != nil {
		errs = append(errs, fmt.Errorf("%q: must not contain credentials", u.Redacted()))
	}
	if u.RawQuery != "" || u.ForceQuery || u.Fragment != "" {
		errs = append(errs, fmt.Errorf("%q: must have no query or fragment", raw))
	}
	return errors.Join(errs...)
}

// withDefaults returns i with its empty optional fields filled in.
func (i Issuer) withDefaults() Issuer {
	if i.UsernameClaim == "" {
		i.UsernameClaim = defaultUsernameClaim
	}
	if i.GroupsClaim == "" {
		i.GroupsClaim = defaultGroupsClaim
	}
	if len(i.Algorithms) == 0 {
		i.Algorithms = slices.Clone(defaultAlgorithms)
	} else {
		i.Algorithms = slices.Clone(i.Algorithms)
	}
	return i
}

// Options configure a Verifier.
type Options struct {
	Issuers []Issuer
	// HTTPClient is used for discovery and JWKS requests; default a client
	// with DefaultHTTPTimeout. Its Transport must be an *http.Transport (or
	// nil) when an issuer has a CAFile. A zero Timeout becomes
	// DefaultHTTPTimeout.
	HTTPClient *http.Client
	// Logger receives debug messages about rejected tokens and warnings
	// about unreachable issuers; default: discard.
	Logger *slog.Logger
	// Now is the clock for token expiry and for the discovery retry
	// interval; default time.Now.
	Now func() time.Time
}

// ErrUnavailable is wrapped by the errors of Verify for technical failures:
// an issuer's discovery document or JWKS could not be fetched.
var ErrUnavailable = errors.New("federation: issuer unavailable")

// Reason says which check a rejected token failed.
type Reason string

const (
	ReasonMalformed      Reason = "malformed"
	ReasonAlgorithm      Reason = "algorithm"
	ReasonSignature      Reason = "signature"
	ReasonAudience       Reason = "audience"
	ReasonExpired        Reason = "expired"
	ReasonNotYetValid    Reason = "not yet valid"
	ReasonMissingSubject Reason = "missing sub"
	ReasonInvalidClaim   Reason = "invalid claim"
)

// RejectedError says that a token naming a configured issuer is not
// acceptable. It never contains the token or personal data.
type RejectedError struct {
	Issuer string // the Issuer's Name
	Reason Reason
	Err    error // details without personal data; may be nil
}

func (e *RejectedError) Error() string {
	msg := fmt.Sprintf("federation: token from issuer %s rejected: %s", e.Issuer, e.Reason)
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

func (e *RejectedError) Unwrap() error { return e.Err }

// Verifier verifies tokens from the configured issuers. It is safe for
// concurrent use.
type Verifier struct {
	byURL  map[string]*issuer
	logger *slog.Logger
	now    func() time.Time
}

// New validates o and returns a Verifier. It refuses duplicate issuer names
// and URLs and reads each CAFile, but does not contact the issuers.
func New(o Options) (*Verifier, error) {
	var errs []error
	names := make(map[string]bool)
	urls := make(map[string]bool)
	for n, is := range o.Issuers {
		if err := is.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("issuer %d (%s): %w", n, is.Name, err))
		}
		if names[is.Name] {
			errs = append(errs, fmt.Errorf("issuer %d (%s): name used by an earlier issuer", n, is.Name))
		}
		if urls[is.URL] {
			errs = append(errs, fmt.Errorf("issuer %d (%s): url %q used by an earlier issuer", n, is.Name, is.URL))
		}
		names[is.Name], urls[is.URL] = true, true
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("federation: %w", errors.Join(errs...))
	}

	v := &Verifier{
		byURL:  make(map[string]*issuer, len(o.Issuers)),
		logger: o.Logger,
		now:    o.Now,
	}
	if v.logger == nil {
		v.logger = slog.New(slog.DiscardHandler)
	}
	if v.now == nil {
		v.now = time.Now
	}
	base := o.HTTPClient
	if base == nil {
		base = &http.Client{Timeout: DefaultHTTPTimeout}
	}
	for _, is := range o.Issuers {
		is = is.withDefaults()
		client, rec, err := issuerHTTPClient(base, is)
		if err != nil {
			errs = append(errs, fmt.Errorf("issuer %s: %w", is.Name, err))
			continue
		}
		if is.AllowInsecureHTTP {
			v.logger.Warn("federation: insecure HTTP allowed for issuer: tokens and keys can be forged by anyone on the network path",
				"issuer", is.Name, "url", is.URL)
		}
		v.byURL[is.URL] = &issuer{
			cfg:    is,
			client: client,
			rec:    rec,
			now:    v.now,
			logger: v.logger,
		}
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("federation: %w", errors.Join(errs...))
	}
	return v, nil
}

// issuerHTTPClient derives the client for one issuer from base: its own
// trust roots when CAFile is set, no redirect to plain http when https is
// required, a timeout, a bound on response sizes, and a record of whether
// the last request failed (see fetchRecorder).
func issuerHTTPClient(base *http.Client, is Issuer) (*http.Client, *fetchRecorder, error) {
	rt := base.Transport
	if rt == nil {
		rt = http.DefaultTransport
	}
	if is.CAFile != "" {
		pemData, err := os.ReadFile(is.CAFile)
		if err != nil {
			return nil, nil, fmt.Errorf("ca-file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pemData) {
			return nil, nil, fmt.Errorf("ca-file %s: no PEM certificate found", is.CAFile)
		}
		t, ok := rt.(*http.Transport)
		if !ok {
			return nil, nil, fmt.Errorf("ca-file: needs Options.HTTPClient.Transport to be an *http.Transport, not %T", rt)
		}
		t = t.Clone()
		if t.TLSClientConfig == nil {
			t.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
		}
		t.TLSClientConfig.RootCAs = pool
		rt = t
	}
	rec := &fetchRecorder{base: rt}
	c := &http.Client{
		Transport: rec,
		Jar:       base.Jar,
		Timeout:   base.Timeout,
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultHTTPTimeout
	}
	insecure, check := is.AllowInsecureHTTP, base.CheckRedirect
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if !insecure && req.URL.Scheme != "https" {
			return errors.New("redirect to a non-https URL refused")
		}
		if check != nil {
			return check(req, via)
		}
		if len(via) >= 10 {
			return errors.New("stopped after 10 redirects")
		}
		return nil
	}
	return c, rec, nil
}

// fetchRecorder remembers whether the last request through it failed or
// answered with an error status (redirects are overwritten by the request
// that follows them), and bounds response bodies. go-oidc reports a
// failed JWKS fetch and a signature that no key verifies as untyped errors
// of the same shape; the record tells them apart (see issuer.verify).
type fetchRecorder struct {
	base   http.RoundTripper
	failed atomic.Bool
}

func (f *fetchRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := f.base.RoundTrip(req)
	f.failed.Store(err != nil || resp.StatusCode < 200 || resp.StatusCode >= 400)
	if err != nil {
		return nil, err
	}
	resp.Body = &limitedBody{r: io.LimitReader(resp.Body, maxResponseBytes+1), c: resp.Body}
	return resp, nil
}

type limitedBody struct {
	r io.Reader
	c io.Closer
	n int64
}

func (b *limitedBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	b.n += int64(n)
	if b.n > maxResponseBytes {
		return n, fmt.Errorf("response larger than %d bytes", maxResponseBytes)
	}
	return n, err
}

func (b *limitedBody) Close() error { return b.c.Close() }

// Verify checks raw (a compact JWS). ok=false (and nil error) when the
// token's unverified "iss" is not a configured issuer, or raw cannot be
// parsed far enough to tell (so other authenticators can try it). For a
// configured issuer it returns either the principal, or a *RejectedError
// saying which check failed, or an error wrapping ErrUnavailable for
// technical failures (discovery or JWKS unreachable).
func (v *Verifier) Verify(ctx context.Context, raw string) (p principal.Principal, ok bool, err error) {
	tok, parsed := peek(raw)
	if !parsed {
		return principal.Principal{}, false, nil
	}
	is := v.byURL[tok.iss]
	if is == nil {
		return principal.Principal{}, false, nil
	}
	p, err = is.verify(ctx, raw, tok)
	if err != nil {
		// Debug only: the caller logs what it answers, and discovery
		// failures are logged once per attempt.
		if rej, isRej := errors.AsType[*RejectedError](err); isRej {
			v.logger.DebugContext(ctx, "federation: token rejected", "issuer", is.cfg.Name, "reason", string(rej.Reason))
		} else {
			v.logger.DebugContext(ctx, "federation: cannot verify token", "issuer", is.cfg.Name, "err", err)
		}
		return principal.Principal{}, true, err
	}
	return p, true, nil
}

// token is the unverified parse of a compact JWS, enough to route it.
type token struct {
	header, signature string // base64url parts, not decoded yet
	claims            map[string]json.RawMessage
	iss               string
}

// peek splits raw and decodes its payload far enough to read "iss". It
// reports false when raw is too large or cannot be parsed that far.
func peek(raw string) (*token, bool) {
	if len(raw) > MaxTokenBytes {
		return nil, false
	}
	header, rest, ok := strings.Cut(raw, ".")
	if !ok {
		return nil, false
	}
	payload, signature, ok := strings.Cut(rest, ".")
	if !ok || strings.Contains(signature, ".") {
		return nil, false
	}
	data, err := base64.RawURLEncoding.DecodeString(payload)
	if err != nil {
		return nil, false
	}
	var claims map[string]json.RawMessage
	if err := json.Unmarshal(data, &claims); err != nil {
		return nil, false
	}
	var iss string
	if err := json.Unmarshal(claims["iss"], &iss); err != nil || iss == "" {
		return nil, false
	}
	return &token{header: header, signature: signature, claims: claims, iss: iss}, true
}

// issuer is one configured issuer and its lazily discovered verifier.
type issuer struct {
	cfg    Issuer // with defaults
	client *http.Client
	rec    *fetchRecorder
	now    func() time.Time
	logger *slog.Logger

	mu       sync.Mutex
	verifier *oidc.IDTokenVerifier
	inflight chan struct{} // closed when the running discovery ends
	lastErr  error
	retryAt  time.Time
}

func (s *issuer) reject(r Reason, err error) error {
	return &RejectedError{Issuer: s.cfg.Name, Reason: r, Err: err}
}

func (s *issuer) verify(ctx context.Context, raw string, tok *token) (principal.Principal, error) {
	alg, err := headerAlgorithm(tok.header)
	if err != nil {
		return principal.Principal{}, s.reject(ReasonMalformed, err)
	}
	if !slices.Contains(s.cfg.Algorithms, alg) {
		return principal.Principal{}, s.reject(ReasonAlgorithm, fmt.Errorf("alg %s not allowed", algName(alg)))
	}
	if sig, err := base64.RawURLEncoding.DecodeString(tok.signature); err != nil || len(sig) == 0 {
		return principal.Principal{}, s.reject(ReasonMalformed, errors.New("bad signature encoding"))
	}

	vf, err := s.idTokenVerifier(ctx)
	if err != nil {
		return principal.Principal{}, err
	}
	out := new(sigOutcome)
	idt, err := vf.Verify(context.WithValue(ctx, sigOutcomeKey{}, out), raw)
	if err != nil {
		switch {
		case !out.called:
			// go-jose refused the JWS before any key was tried.
			return principal.Principal{}, s.reject(ReasonMalformed, errors.New("not a single-signature compact JWS"))
		case out.err != nil && s.technical(out.err):
			return principal.Principal{}, fmt.Errorf("%w: %s: fetch signing keys: %w", ErrUnavailable, s.cfg.Name, out.err)
		case out.err != nil:
			return principal.Principal{}, s.reject(ReasonSignature, errors.New("no key of the issuer verifies the signature"))
		}
		// The signature is good; a claim check failed.
		if te, ok := errors.AsType[*oidc.TokenExpiredError](err); ok {
			return principal.Principal{}, s.reject(ReasonExpired, fmt.Errorf("expired at %s", te.Expiry.UTC().Format(time.RFC3339)))
		}
		return principal.Principal{}, s.classifyClaims(tok.claims)
	}

	var claims map[string]json.RawMessage
	if err := idt.Claims(&claims); err != nil {
		return principal.Principal{}, s.reject(ReasonMalformed, errors.New("claims are not a JSON object"))
	}
	return s.principal(ctx, idt.Subject, claims)
}

// classifyClaims names the claim check go-oidc failed, by repeating its
// checks on the same payload (go-oidc's own errors are untyped).
func (s *issuer) classifyClaims(claims map[string]json.RawMessage) error {
	rawAud, present := claims["aud"]
	if !present {
		return s.reject(ReasonAudience, errors.New("aud missing"))
	}
	var aud audience
	if err := json.Unmarshal(rawAud, &aud); err != nil {
		return s.reject(ReasonMalformed, errors.New("aud is neither a string nor an array of strings"))
	}
	if !slices.Contains(aud, s.cfg.Audience) {
		return s.reject(ReasonAudience, fmt.Errorf("aud does not contain %q", s.cfg.Audience))
	}
	now := s.now()
	if exp, ok := numericDate(claims["exp"]); !ok || exp.Before(now) {
		return s.reject(ReasonExpired, errors.New("exp missing or past"))
	}
	if raw, present := claims["nbf"]; present {
		if nbf, ok := numericDate(raw); ok && now.Add(notBeforeLeeway).Before(nbf) {
			return s.reject(ReasonNotYetValid, fmt.Errorf("nbf %s is ahead of now by more than %v", nbf.UTC().Format(time.RFC3339), notBeforeLeeway))
		}
	}
	return s.reject(ReasonMalformed, errors.New("claims not accepted"))
}

// technical reports whether a key set error is a failure to fetch the JWKS
// rather than a signature that no key verifies.
func (s *issuer) technical(err error) bool {
	var ue *url.Error
	var ne net.Error
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) ||
		errors.As(err, &ue) || errors.As(err, &ne) || s.rec.failed.Load()
}

// principal maps verified claims.
func (s *issuer) principal(ctx context.Context, sub string, claims map[string]json.RawMessage) (principal.Principal, error) {
	if sub == "" {
		return principal.Principal{}, s.reject(ReasonMissingSubject, nil)
	}
	if !validText(sub, maxSubjectBytes) {
		return principal.Principal{}, s.reject(ReasonInvalidClaim, fmt.Errorf("sub: more than %d bytes, invalid UTF-8 or control characters", maxSubjectBytes))
	}
	return principal.Principal{
		ID:     s.cfg.Name + ":" + sub,
		Kind:   principal.User,
		Name:   s.username(sub, claims),
		Groups: s.groups(ctx, claims),
		Admin:  false, // never granted by an external IdP
	}, nil
}

func (s *issuer) username(sub string, claims map[string]json.RawMessage) string {
	for _, name := range []string{s.cfg.UsernameClaim, "email"} {
		raw, ok := claims[name]
		if !ok {
			continue
		}
		var v string
		if json.Unmarshal(raw, &v) == nil && validText(v, maxNameBytes) {
			return v
		}
	}
	return sub
}

// groups returns the groups claim, prefixed with the issuer's name, or nil
// when it is absent or unusable (see the package documentation).
func (s *issuer) groups(ctx context.Context, claims map[string]json.RawMessage) []string {
	raw, ok := claims[s.cfg.GroupsClaim]
	if !ok || string(raw) == "null" {
		return nil
	}
	ignore := func(why string) []string {
		s.logger.DebugContext(ctx, "federation: groups claim ignored", "issuer", s.cfg.Name, "claim", s.cfg.GroupsClaim, "why", why)
		return nil
	}
	var list []string
	if err := json.Unmarshal(raw, &list); err != nil {
		return ignore("not an array of strings")
	}
	if len(list) > MaxGroups {
		return ignore(fmt.Sprintf("%d groups, more than %d", len(list), MaxGroups))
	}
	out := make([]string, 0, len(list))
	seen := make(map[string]bool, len(list))
	for _, g := range list {
		if !validText(g, MaxGroupBytes) {
			return ignore(fmt.Sprintf("a group is empty, longer than %d bytes, invalid UTF-8 or has control characters", MaxGroupBytes))
		}
		if seen[g] {
			continue
		}
		seen[g] = true
		out = append(out, s.cfg.Name+":"+g)
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// validText reports whether v is non-empty, at most max bytes of valid
// UTF-8, without control characters.
func validText(v string, max int) bool {
	if v == "" || len(v) > max || !utf8.ValidString(v) {
		return false
	}
	return strings.IndexFunc(v, unicode.IsControl) < 0
}

// registeredAlgorithms are the JWS "alg" values of RFC 7518 and RFC 8037:
// only those are repeated in errors, not arbitrary header text.
var registeredAlgorithms = []string{
	"none", "HS256", "HS384", "HS512",
	"RS256", "RS384", "RS512", "PS256", "PS384", "PS512",
	"ES256", "ES384", "ES512", "ES256K", "EdDSA",
}

func algName(alg string) string {
	if slices.Contains(registeredAlgorithms, alg) {
		return strconv.Quote(alg)
	}
	return "(unregistered)"
}

// headerAlgorithm decodes a JWS protected header and returns its "alg".
func headerAlgorithm(b64 string) (string, error) {
	data, err := base64.RawURLEncoding.DecodeString(b64)
	if err != nil {
		return "", errors.New("header is not base64url")
	}
	var h map[string]json.RawMessage
	if err := json.Unmarshal(data, &h); err != nil {
		return "", errors.New("header is not a JSON object")
	}
	var alg string
	if err := json.Unmarshal(h["alg"], &alg); err != nil || alg == "" {
		return "", errors.New("header has no alg")
	}
	return alg, nil
}

// audience is "aud": a string or an array of strings.
type audience []string

func (a *audience) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*a = audience{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return err
	}
	*a = many
	return nil
}

// numericDate decodes a JSON number of seconds since the epoch.
func numericDate(raw json.RawMessage) (time.Time, bool) {
	var f float64
	if raw == nil || json.Unmarshal(raw, &f) != nil {
		return time.Time{}, false
	}
	if f < 0 || f > 1<<40 {
		return time.Time{}, false
	}
	sec := int64(f)
	return time.Unix(sec, int64((f-float64(sec))*1e9)), true
}

// idTokenVerifier returns the issuer's verifier, running discovery first if
// it has not succeeded yet. Concurrent callers share one discovery; after a
// failure none is attempted for DiscoveryRetryInterval.
func (s *issuer) idTokenVerifier(ctx context.Context) (*oidc.IDTokenVerifier, error) {
	for {
		s.mu.Lock()
		if vf := s.verifier; vf != nil {
			s.mu.Unlock()
			return vf, nil
		}
		if ch := s.inflight; ch != nil {
			s.mu.Unlock()
			select {
			case <-ch:
				continue
			case <-ctx.Done():
				return nil, fmt.Errorf("%w: %s: waiting for discovery: %w", ErrUnavailable, s.cfg.Name, ctx.Err())
			}
		}
		if now := s.now(); now.Before(s.retryAt) {
			lastErr, retryAt := s.lastErr, s.retryAt
			s.mu.Unlock()
			return nil, fmt.Errorf("%w: %s: discovery failed, next attempt in %v: %w",
				ErrUnavailable, s.cfg.Name, retryAt.Sub(now).Round(time.Second), lastErr)
		}
		ch := make(chan struct{})
		s.inflight = ch
		s.mu.Unlock()

		vf, err := s.discover(ctx)

		s.mu.Lock()
		s.inflight = nil
		switch {
		case err == nil:
			s.verifier = vf
		case ctx.Err() == nil:
			// The issuer failed, not our caller: hold off.
			s.lastErr, s.retryAt = err, s.now().Add(DiscoveryRetryInterval)
		}
		s.mu.Unlock()
		close(ch)

		if err != nil {
			s.logger.WarnContext(ctx, "federation: discovery failed", "issuer", s.cfg.Name, "url", s.cfg.URL, "err", err)
			return nil, fmt.Errorf("%w: %s: discovery: %w", ErrUnavailable, s.cfg.Name, err)
		}
		s.logger.InfoContext(ctx, "federation: issuer discovered", "issuer", s.cfg.Name, "url", s.cfg.URL)
		return vf, nil
	}
}

func (s *issuer) discover(ctx context.Context) (*oidc.IDTokenVerifier, error) {
	ctx, cancel := context.WithTimeout(ctx, s.client.Timeout)
	defer cancel()
	p, err := oidc.NewProvider(oidc.ClientContext(ctx, s.client), s.cfg.URL)
	if err != nil {
		return nil, err
	}
	var meta struct {
		JWKSURL string `json:"jwks_uri"`
	}
	if err := p.Claims(&meta); err != nil {
		return nil, fmt.Errorf("discovery document: %w", err)
	}
	if err := validateIssuerURL(meta.JWKSURL, s.cfg.AllowInsecureHTTP); err != nil {
		return nil, fmt.Errorf("discovery document: jwks_uri: %w", err)
	}
	// The key set keeps this context for its own requests (go-oidc ignores
	// its cancellation): it must not be a request's.
	remote := func() *oidc.RemoteKeySet {
		return oidc.NewRemoteKeySet(oidc.ClientContext(context.Background(), s.client), meta.JWKSURL)
	}
	return oidc.NewVerifier(s.cfg.URL, newKeySet(remote, s.now, s.technical), &oidc.Config{
		ClientID:             s.cfg.Audience,
		SupportedSigningAlgs: s.cfg.Algorithms,
		Now:                  s.now,
	}), nil
}

// sigOutcome records, for one Verify call, whether go-oidc reached the key
// set and what it answered: go-oidc flattens that error into text.
type sigOutcome struct {
	called bool
	err    error
}

type sigOutcomeKey struct{}

// keySet is go-oidc's RemoteKeySet, which fetches the JWKS on first use and
// again whenever no cached key verifies a token (an unknown kid), with two
// additions:
//
//   - it reports its outcome through the context (see sigOutcome);
//   - it trusts a fetched key set for at most KeySetMaxAge. go-oidc never
//     forgets a cached key, so a key the issuer withdrew (compromised,
//     rotated out) would verify tokens for the life of the process as long
//     as no token with another kid arrived. Past the age limit the next
//     token is checked against a freshly fetched set; when the issuer
//     cannot be reached, the old keys stay in use and the refresh is
//     retried after DiscoveryRetryInterval, so an IdP outage does not end
//     sessions whose keys are known.
type keySet struct {
	newRemote func() *oidc.RemoteKeySet
	now       func() time.Time
	technical func(error) bool

	mu         sync.Mutex
	cur        *oidc.RemoteKeySet
	since      time.Time // when cur was created
	refreshing bool
}

func newKeySet(newRemote func() *oidc.RemoteKeySet, now func() time.Time, technical func(error) bool) *keySet {
	return &keySet{newRemote: newRemote, now: now, technical: technical, cur: newRemote(), since: now()}
}

func (k *keySet) VerifySignature(ctx context.Context, jwt string) ([]byte, error) {
	payload, err := k.verify(ctx, jwt)
	if out, ok := ctx.Value(sigOutcomeKey{}).(*sigOutcome); ok {
		out.called, out.err = true, err
	}
	return payload, err
}

func (k *keySet) verify(ctx context.Context, jwt string) ([]byte, error) {
	k.mu.Lock()
	cur := k.cur
	refresh := !k.refreshing && k.now().Sub(k.since) >= KeySetMaxAge
	if refresh {
		k.refreshing = true
	}
	k.mu.Unlock()
	if !refresh {
		return cur.VerifySignature(ctx, jwt)
	}

	fresh := k.newRemote()
	payload, err := fresh.VerifySignature(ctx, jwt)
	k.mu.Lock()
	k.refreshing = false
	if err == nil || !k.technical(err) {
		// The issuer answered: its current keys are the truth.
		k.cur, k.since = fresh, k.now()
		k.mu.Unlock()
		return payload, err
	}
	// Unreachable: keep the old keys, try again a little later.
	k.since = k.now().Add(DiscoveryRetryInterval - KeySetMaxAge)
	k.mu.Unlock()
	return cur.VerifySignature(ctx, jwt)
}

var _ oidc.KeySet = (*keySet)(nil)
