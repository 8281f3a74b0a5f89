package pki

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

const (
	// reloadInterval is how often GetCertificate stats operator files.
	reloadInterval = time.Minute
	// retryInterval is how long to wait after a failed renewal or reload
	// before trying again, so that a broken disk does not cost every
	// handshake a retry and a log line.
	retryInterval = time.Minute
)

// ErrInsecureKeyFile is returned by New when one of pki's own private key
// files can be read by group or others.
var ErrInsecureKeyFile = errors.New("pki: private key file is readable by group or others")

// Options configures the server's TLS.
type Options struct {
	// Dir holds the private CA and the server certificate
	// (DATA_DIR/tls, created 0700 by the caller). Unused with CertFile.
	Dir string
	// Hosts are the DNS names and IP addresses the server certificate is
	// issued for; "localhost", "127.0.0.1" and "::1" are always added.
	Hosts []string
	// CertFile and KeyFile name an operator-supplied certificate chain and
	// key (PEM). When set, no private CA is used.
	CertFile, KeyFile string
	// ClientCAFile, when set, turns on mutual TLS: clients that present a
	// certificate must chain to one of the CAs in this PEM bundle.
	ClientCAFile string
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger receives certificate events; nil means slog.Default().
	Logger *slog.Logger
}

// Manager holds the certificate the server presents and keeps it current.
type Manager struct {
	now func() time.Time
	log *slog.Logger

	// Private CA mode (ca != nil).
	dir   string
	ca    *authority
	hosts sanSet

	// Operator certificate mode (ca == nil).
	certFile, keyFile string

	clientCAs *x509.CertPool

	mu  sync.Mutex             // serializes renewals and reloads
	cur atomic.Pointer[served] // what GetCertificate returns
}

// served is an immutable snapshot of the certificate being served.
type served struct {
	cert     *tls.Certificate
	notAfter time.Time
	// checkAt is when GetCertificate must do more than load this snapshot:
	// renew (private CA) or stat the files (operator certificate).
	checkAt time.Time
	// certMod and keyMod are the operator files' mtimes when loaded.
	certMod, keyMod time.Time
}

// New loads or creates the certificates described by o. It fails when
// existing files are unusable in a way that needs the operator: a corrupt or
// missing CA half, a group/world-readable key, an expired operator
// certificate.
func New(o Options) (*Manager, error) {
	m := &Manager{
		now:      o.Now,
		log:      o.Logger,
		dir:      o.Dir,
		certFile: o.CertFile,
		keyFile:  o.KeyFile,
	}
	if m.now == nil {
		m.now = time.Now
	}
	if m.log == nil {
		m.log = slog.Default()
	}

	// Checked first so that a bad option creates no files.
	if o.ClientCAFile != "" {
		pool, err := CertPool(o.ClientCAFile)
		if err != nil {
			return nil, fmt.Errorf("pki: client CA: %w", err)
		}
		m.clientCAs = pool
	}

	var s *served
	var err error
	if o.CertFile != "" || o.KeyFile != "" {
		if o.CertFile == "" || o.KeyFile == "" {
			return nil, errors.New("pki: an operator certificate needs both CertFile and KeyFile")
		}
		s, err = m.loadOperator(m.now())
	} else {
		s, err = m.startPrivate(o.Hosts)
	}
	if err != nil {
		return nil, err
	}
	m.cur.Store(s)
	return m, nil
}

// Cipher suites for TLS 1.2: forward secret (ECDHE) AEADs only. TLS 1.3
// suites are not configurable and all fine.
var tls12CipherSuites = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
}

// TLSConfig returns a new server configuration. The certificate is provided
// through GetCertificate, so renewals and reloads need no restart.
func (m *Manager) TLSConfig() *tls.Config {
	cfg := &tls.Config{
		MinVersion:     tls.VersionTLS12,
		CipherSuites:   append([]uint16(nil), tls12CipherSuites...),
		NextProtos:     []string{"h2", "http/1.1"},
		GetCertificate: m.getCertificate,
		// CurvePreferences stays nil: Go's default list is good and
		// includes the post-quantum hybrid X25519MLKEM768.
	}
	if m.clientCAs != nil {
		cfg.ClientCAs = m.clientCAs
		cfg.ClientAuth = tls.VerifyClientCertIfGiven
	}
	return cfg
}

// CAFile returns the path of the private CA certificate that clients should
// trust, or "" when an operator certificate is used.
func (m *Manager) CAFile() string {
	if m.ca == nil {
		return ""
	}
	return m.ca.certPath
}

// getCertificate is on every handshake's path: normally one atomic load
// and two time comparisons.
func (m *Manager) getCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	now := m.now()
	s := m.cur.Load()
	if !now.Before(s.checkAt) {
		s = m.refresh(now)
	}
	if now.After(s.notAfter) {
		return nil, fmt.Errorf("pki: certificate expired at %s and could not be replaced", s.notAfter.UTC().Format(time.RFC3339))
	}
	return s.cert, nil
}

// refresh renews (private CA) or reloads (operator certificate) the served
// certificate. On failure it logs and keeps the current one.
func (m *Manager) refresh(now time.Time) *served {
	m.mu.Lock()
	defer m.mu.Unlock()
	old := m.cur.Load()
	if now.Before(old.checkAt) {
		return old // another handshake got here first
	}

	var next *served
	var err error
	if m.ca != nil {
		next, err = m.issueServer(now)
	} else {
		next, err = m.reloadOperator(now, old)
	}
	if err != nil {
		m.log.Error("pki: cannot replace TLS certificate; still serving the current one",
			"error", err, "not_after", old.notAfter)
		retry := *old
		retry.checkAt = now.Add(retryInterval)
		next = &retry
	}
	m.cur.Store(next)
	return next
}

// CertPool reads a PEM bundle of CA certificates, for clients and tests
// that trust Rampart's private CA (see CAFile) and for client CAs.
func CertPool(caFile string) (*x509.CertPool, error) {
	data, err := os.ReadFile(caFile) // #nosec G304 -- operator-configured path (flag or data dir), never request input
	if err != nil {
		return nil, fmt.Errorf("pki: read CA bundle: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("pki: %s contains no PEM certificates", caFile)
	}
	return pool, nil
}
