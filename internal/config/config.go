// Package config holds the server's configuration: the Config struct with
// its secure defaults, Validate that reports every problem at once, and Load
// that fills it from flags, RAMPART_* environment variables and an optional
// YAML file (in that order of precedence).
//
// It never writes anything: a configuration that fails to load or validate
// must leave the data directory untouched.
package config

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/rampart-ml/rampart/internal/identity/bruteforce"
	"github.com/rampart-ml/rampart/internal/identity/federation"
	"github.com/rampart-ml/rampart/internal/identity/password"
)

// DefaultListen is loopback only: exposing the server is an explicit choice.
const DefaultListen = "127.0.0.1:8443"

// Config is everything `rampart serve` needs.
type Config struct {
	// ConfigFile is the YAML file the rest was read from, if any.
	ConfigFile string
	DataDir    string
	// MasterKeyFile, if set, is the operator's master key (32 bytes, 0600),
	// e.g. on a secrets mount; otherwise DATA_DIR/keys/master.key, created
	// on first start.
	MasterKeyFile string
	Listen        string
	TLS           TLS
	HTTP          HTTP
	Identity      Identity
	Audit         Audit
	Inference     Inference
	LogLevel      slog.Level
	// AdminPassword comes only from RAMPART_ADMIN_PASSWORD (never a flag or
	// file, which could leak through ps or backups). It sets the bootstrap
	// admin's password on first start.
	AdminPassword string
}

// TLS configures transport security.
type TLS struct {
	// CertFile and KeyFile select an operator certificate instead of the
	// private CA Rampart creates under DATA_DIR/tls.
	CertFile string
	KeyFile  string
	// ClientCAFile turns on mutual TLS for clients presenting certificates.
	ClientCAFile string
	// Hosts are extra names and addresses for the generated certificate.
	Hosts []string
	// InsecureHTTP serves plain HTTP. Never the default; warned at every start.
	InsecureHTTP bool
}

// HTTP bounds what one client can make the server do.
type HTTP struct {
	MaxRequestBytes   int64
	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration
	WriteTimeout      time.Duration
	IdleTimeout       time.Duration
	ShutdownTimeout   time.Duration
}

// Identity configures the built-in OpenID provider and password logins.
type Identity struct {
	// Issuer is the public base URL clients use (https://rampart.example.com);
	// "" means the listen address's URL. It is the "iss" of every token.
	Issuer              string
	AccessTokenLifetime time.Duration
	// SessionLifetime is how long a login stays alive through refresh tokens.
	SessionLifetime    time.Duration
	SigningKeyRotation time.Duration
	// PasswordMinLength applies to passwords that are the only factor;
	// accounts with TOTP may use 8.
	PasswordMinLength int
	Argon2            password.Params
	// AllowWeakHashing permits Argon2 below the OWASP minimum (tests only).
	AllowWeakHashing bool
	BruteForce       bruteforce.Config
	// HashProcesses computes login password hashes in lower-priority child
	// processes (this binary re-executed) instead of in the server.
	HashProcesses bool
	// FederationFile is a YAML list of trusted external issuers, loaded
	// into Federation.
	FederationFile string
	Federation     []federation.Issuer
}

// Default returns the secure defaults.
func Default() Config {
	return Config{
		Listen: DefaultListen,
		HTTP: HTTP{
			MaxRequestBytes:   1 << 20,
			ReadHeaderTimeout: 5 * time.Second,
			ReadTimeout:       30 * time.Second,
			WriteTimeout:      60 * time.Second,
			IdleTimeout:       120 * time.Second,
			ShutdownTimeout:   30 * time.Second,
		},
		Identity: Identity{
			AccessTokenLifetime: 5 * time.Minute,
			SessionLifetime:     24 * time.Hour,
			SigningKeyRotation:  24 * time.Hour,
			PasswordMinLength:   password.MinLength,
			Argon2:              password.DefaultParams,
			BruteForce:          bruteforce.DefaultConfig(),
			HashProcesses:       true,
		},
		Audit:     DefaultAudit(),
		Inference: DefaultInference(),
		LogLevel:  slog.LevelInfo,
	}
}

// Validate reports every problem with c at once, each naming the setting and
// saying what to change. It reads (never writes) files c refers to.
func (c Config) Validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	if c.DataDir == "" {
		add("data-dir: required; set --data-dir DIR or RAMPART_DATA_DIR")
	}
	if c.MasterKeyFile != "" && !filepath.IsAbs(c.MasterKeyFile) {
		add("master-key-file: %q must be an absolute path", c.MasterKeyFile)
	}
	if host, port, err := net.SplitHostPort(c.Listen); err != nil {
		add("listen: %q is not HOST:PORT (e.g. %s): %v", c.Listen, DefaultListen, err)
	} else {
		if _, err := strconv.ParseUint(port, 10, 16); err != nil {
			add("listen: port %q must be a number from 0 to 65535", port)
		}
		if host != "" && net.ParseIP(host) == nil && !validHostname(host) {
			add("listen: host %q is neither an IP address nor a host name", host)
		}
	}

	t := c.TLS
	if (t.CertFile == "") != (t.KeyFile == "") {
		add("tls-cert and tls-key: give both or neither")
	}
	if t.InsecureHTTP && (t.CertFile != "" || t.KeyFile != "" || t.ClientCAFile != "") {
		add("insecure-http: cannot be combined with tls-cert, tls-key or client-ca; drop one or the other")
	}
	// TLS files are parsed here, not only at use, so a bad one is refused
	// before anything is written to the data directory.
	contents := map[string][]byte{}
	for flag, f := range map[string]string{"tls-cert": t.CertFile, "tls-key": t.KeyFile, "client-ca": t.ClientCAFile} {
		if f == "" {
			continue
		}
		data, err := os.ReadFile(f) // #nosec G304 -- operator-configured path, never request input
		if err != nil {
			add("%s: cannot read %s: %v", flag, f, errors.Unwrap(err))
			continue
		}
		contents[flag] = data
	}
	if cert, key := contents["tls-cert"], contents["tls-key"]; cert != nil && key != nil {
		if _, err := tls.X509KeyPair(cert, key); err != nil {
			add("tls-cert and tls-key: not a usable PEM certificate and matching private key: %v", err)
		}
	}
	if ca, ok := contents["client-ca"]; ok && !x509.NewCertPool().AppendCertsFromPEM(ca) {
		add("client-ca: %s holds no PEM certificate", t.ClientCAFile)
	}
	for _, h := range t.Hosts {
		if net.ParseIP(h) == nil && !validHostname(h) {
			add("tls-san: %q is neither an IP address nor a host name", h)
		}
	}

	h := c.HTTP
	const minBody, maxBody = 1 << 10, 1 << 30
	if h.MaxRequestBytes < minBody || h.MaxRequestBytes > maxBody {
		add("max-request-bytes: %d is outside %d..%d", h.MaxRequestBytes, minBody, maxBody)
	}
	for flag, d := range map[string]time.Duration{
		"read-header-timeout": h.ReadHeaderTimeout, "read-timeout": h.ReadTimeout,
		"write-timeout": h.WriteTimeout, "idle-timeout": h.IdleTimeout, "shutdown-timeout": h.ShutdownTimeout,
	} {
		if d <= 0 || d > time.Hour {
			add("%s: %v must be positive and at most 1h", flag, d)
		}
	}
	if h.ReadHeaderTimeout > h.ReadTimeout {
		add("read-header-timeout: %v must not exceed read-timeout %v", h.ReadHeaderTimeout, h.ReadTimeout)
	}

	errs = append(errs, c.Identity.validate()...)
	errs = append(errs, c.Audit.validate()...)
	errs = append(errs, c.Inference.validate()...)

	if c.AdminPassword != "" {
		if err := password.CheckPolicy(c.AdminPassword, "admin"); err != nil {
			add("RAMPART_ADMIN_PASSWORD: %v; choose another passphrase, or unset it to get a random one", err)
		}
	}
	// Map iteration above is random; sort so the output is stable.
	slices.SortFunc(errs, func(a, b error) int { return strings.Compare(a.Error(), b.Error()) })
	return errors.Join(errs...)
}

// validHostname accepts DNS names: dot-separated labels of letters, digits
// and hyphens, not starting or ending with a hyphen.
func validHostname(h string) bool {
	if len(h) == 0 || len(h) > 253 {
		return false
	}
	for _, label := range strings.Split(strings.TrimSuffix(h, "."), ".") {
		if len(label) == 0 || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			if !(r == '-' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
				return false
			}
		}
	}
	return true
}

// validate checks the identity settings.
func (id Identity) validate() []error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if id.Issuer != "" {
		u, err := url.Parse(id.Issuer)
		switch {
		case err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http"):
			add("issuer: %q is not an absolute http(s) URL such as https://rampart.example.com", id.Issuer)
		case u.RawQuery != "" || u.Fragment != "" || strings.HasSuffix(u.Path, "/"):
			add("issuer: %q must have no query, fragment or trailing slash", id.Issuer)
		}
	}
	if id.AccessTokenLifetime < time.Minute || id.AccessTokenLifetime > time.Hour {
		add("access-token-lifetime: %v must be between 1m and 1h", id.AccessTokenLifetime)
	}
	if id.SessionLifetime < id.AccessTokenLifetime || id.SessionLifetime > 90*24*time.Hour {
		add("session-lifetime: %v must be at least access-token-lifetime and at most 2160h (90 days)", id.SessionLifetime)
	}
	if id.SigningKeyRotation < time.Hour || id.SigningKeyRotation > 90*24*time.Hour {
		add("signing-key-rotation: %v must be between 1h and 2160h (90 days)", id.SigningKeyRotation)
	}
	if id.PasswordMinLength < password.MinLengthFloor || id.PasswordMinLength > password.MinLengthCeiling {
		add("password-min-length: %d must be between %d and %d", id.PasswordMinLength, password.MinLengthFloor, password.MinLengthCeiling)
	}
	p := id.Argon2
	switch {
	case p.MemoryKiB == 0 || p.Time == 0 || p.Threads == 0:
		add("argon2-memory and argon2-time must be positive")
	case p.MemoryKiB > 1<<20:
		add("argon2-memory: %s is more than 1GiB per login", formatBytes(int64(p.MemoryKiB)*1024))
	case !id.AllowWeakHashing && (p.MemoryKiB < password.DefaultParams.MemoryKiB || p.Time < password.DefaultParams.Time):
		add("argon2-memory/argon2-time: %s with t=%d is below the minimum 19MiB with t=2 (OWASP); raise them", formatBytes(int64(p.MemoryKiB)*1024), p.Time)
	}
	if err := id.BruteForce.Validate(); err != nil {
		add("brute-force protection: %v", err)
	}
	names, urls := map[string]bool{}, map[string]bool{}
	for i, is := range id.Federation {
		if err := is.Validate(); err != nil {
			add("federation-file: issuer %d (%q): %v", i+1, is.Name, err)
		}
		if names[is.Name] || urls[is.URL] {
			add("federation-file: issuer %d (%q): name or issuer URL listed twice", i+1, is.Name)
		}
		names[is.Name], urls[is.URL] = true, true
	}
	if d := id.BruteForce.Hash.Duty; d < 0.05 || d > 1 {
		add("login-hash-duty: %v must be between 0.05 and 1", d)
	}
	if id.BruteForce.Account.MaxFailures < 1 {
		add("lockout-failures: must be at least 1; brute-force protection cannot be turned off")
	}
	return errs
}
