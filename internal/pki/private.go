package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// File names under Options.Dir.
const (
	caCertName     = "ca.pem"
	caKeyName      = "ca-key.pem"
	serverCertName = "server.pem"
	serverKeyName  = "server-key.pem"
)

const (
	caLifetime     = 10 * 365 * 24 * time.Hour
	serverLifetime = 90 * 24 * time.Hour
	// backdate tolerates clients whose clocks run a little behind.
	backdate = 5 * time.Minute
	// caWarnBefore is how early to warn that the CA is running out:
	// replacing it means redistributing ca.pem to every client.
	caWarnBefore = 365 * 24 * time.Hour
)

// defaultHosts are always in the server certificate, for local clients.
var defaultHosts = []string{"localhost", "127.0.0.1", "::1"}

// authority is the private CA.
type authority struct {
	certPath string
	cert     *x509.Certificate
	key      crypto.Signer
	pool     *x509.CertPool // just cert, for verifying the server certificate
}

// startPrivate loads or creates the CA, then reuses the server certificate
// if it still fits or issues a new one.
func (m *Manager) startPrivate(hosts []string) (*served, error) {
	if m.dir == "" {
		return nil, errors.New("pki: Options.Dir is required for the private CA")
	}
	sans, err := parseHosts(hosts)
	if err != nil {
		return nil, err
	}
	m.hosts = sans
	now := m.now()
	if m.ca, err = loadOrCreateCA(m.dir, now, m.log); err != nil {
		return nil, err
	}

	s, err := m.loadServer(now)
	if err == nil {
		m.log.Info("pki: using existing server certificate",
			"serial", s.cert.Leaf.SerialNumber.Text(16), "not_after", s.notAfter)
		return s, nil
	}
	if errors.Is(err, ErrInsecureKeyFile) {
		return nil, err
	}
	// The server certificate is derived data: anything wrong with it, a
	// corrupt file included, is fixed by issuing a new one from the CA.
	m.log.Info("pki: issuing server certificate", "reason", err.Error())
	return m.issueServer(now)
}

func loadOrCreateCA(dir string, now time.Time, log *slog.Logger) (*authority, error) {
	certPath := filepath.Join(dir, caCertName)
	keyPath := filepath.Join(dir, caKeyName)
	certExists, err := fileExists(certPath)
	if err != nil {
		return nil, err
	}
	keyExists, err := fileExists(keyPath)
	if err != nil {
		return nil, err
	}

	// Never replace half a CA silently: clients may trust the old one.
	switch {
	case !certExists && !keyExists:
		return createCA(certPath, keyPath, now, log)
	case !keyExists:
		return nil, fmt.Errorf("pki: %s exists but %s is missing; restore it, or move %s aside to create a new CA (clients must then trust the new one)", certPath, keyPath, certPath)
	case !certExists:
		return nil, fmt.Errorf("pki: %s exists but %s is missing; restore it, or move %s aside to create a new CA (clients must then trust the new one)", keyPath, certPath, keyPath)
	}

	cert, key, err := loadKeyPair(certPath, keyPath)
	if err != nil {
		return nil, err
	}
	if !cert.IsCA {
		return nil, fmt.Errorf("pki: %s is not a CA certificate", certPath)
	}
	if now.After(cert.NotAfter) {
		return nil, fmt.Errorf("pki: private CA %s expired at %s; move %s and %s aside to create a new CA, then give clients the new %s",
			certPath, cert.NotAfter.UTC().Format(time.RFC3339), certPath, keyPath, caCertName)
	}
	if cert.NotAfter.Sub(now) < caWarnBefore {
		log.Warn("pki: private CA expires soon; plan to replace it and redistribute ca.pem",
			"file", certPath, "not_after", cert.NotAfter)
	}
	return newAuthority(certPath, cert, key), nil
}

func createCA(certPath, keyPath string, now time.Time, log *slog.Logger) (*authority, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("pki: generate CA key: %w", err)
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject: pkix.Name{
			Organization: []string{"Rampart"},
			// The suffix makes two installations' CAs distinguishable.
			CommonName: "Rampart private CA " + rand.Text()[:8],
		},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(caLifetime),
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLen:            0,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("pki: create CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("pki: parse new CA certificate: %w", err)
	}
	if err := writeKeyPair(certPath, keyPath, der, key); err != nil {
		return nil, err
	}
	log.Info("pki: created private CA", "file", certPath,
		"subject", cert.Subject.CommonName, "not_after", cert.NotAfter)
	return newAuthority(certPath, cert, key), nil
}

func newAuthority(certPath string, cert *x509.Certificate, key crypto.Signer) *authority {
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &authority{certPath: certPath, cert: cert, key: key, pool: pool}
}

// loadServer returns the server certificate on disk if it can be served as
// is; otherwise the error says why not.
func (m *Manager) loadServer(now time.Time) (*served, error) {
	cert, key, err := loadKeyPair(filepath.Join(m.dir, serverCertName), filepath.Join(m.dir, serverKeyName))
	if err != nil {
		return nil, err
	}
	if !m.hosts.matches(cert) {
		return nil, fmt.Errorf("certificate names %v differ from requested hosts %v", certNames(cert), m.hosts.names())
	}
	_, err = cert.Verify(x509.VerifyOptions{
		Roots:       m.ca.pool,
		CurrentTime: now,
		KeyUsages:   []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	if err != nil {
		return nil, fmt.Errorf("certificate does not verify against the private CA: %w", err)
	}
	s := servedFrom(cert, key)
	if !now.Before(s.checkAt) {
		return nil, fmt.Errorf("certificate is due for renewal (expires %s)", s.notAfter.UTC().Format(time.RFC3339))
	}
	return s, nil
}

// issueServer issues and writes a new server certificate.
func (m *Manager) issueServer(now time.Time) (*served, error) {
	caCert := m.ca.cert
	if !now.Before(caCert.NotAfter) {
		return nil, fmt.Errorf("pki: private CA %s expired at %s", m.ca.certPath, caCert.NotAfter.UTC().Format(time.RFC3339))
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("pki: generate server key: %w", err)
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	notAfter := now.Add(serverLifetime)
	if notAfter.After(caCert.NotAfter) {
		notAfter = caCert.NotAfter // a certificate must not outlive its issuer
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{Organization: []string{"Rampart"}, CommonName: "Rampart server"},
		NotBefore:             now.Add(-backdate),
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		DNSNames:              m.hosts.dns,
		IPAddresses:           m.hosts.ips,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, m.ca.key)
	if err != nil {
		return nil, fmt.Errorf("pki: create server certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("pki: parse new server certificate: %w", err)
	}
	err = writeKeyPair(filepath.Join(m.dir, serverCertName), filepath.Join(m.dir, serverKeyName), der, key)
	if err != nil {
		return nil, err
	}
	m.log.Info("pki: issued server certificate",
		"serial", cert.SerialNumber.Text(16), "not_after", cert.NotAfter, "hosts", m.hosts.names())
	return servedFrom(cert, key), nil
}

// servedFrom wraps a private-CA certificate, due for renewal when a third
// of its lifetime is left.
func servedFrom(cert *x509.Certificate, key crypto.Signer) *served {
	life := cert.NotAfter.Sub(cert.NotBefore)
	return &served{
		cert:     &tls.Certificate{Certificate: [][]byte{cert.Raw}, PrivateKey: key, Leaf: cert},
		notAfter: cert.NotAfter,
		checkAt:  cert.NotBefore.Add(life - life/3),
	}
}

func randomSerial() (*big.Int, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, fmt.Errorf("pki: generate serial number: %w", err)
	}
	return serial, nil
}

func fileExists(path string) (bool, error) {
	_, err := os.Stat(path)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	default:
		return false, fmt.Errorf("pki: %w", err)
	}
}

// sanSet is the normalized, deduplicated subject alternative names of the
// server certificate.
type sanSet struct {
	dns []string
	ips []net.IP
}

// parseHosts normalizes hosts plus defaultHosts. IP addresses become IP
// SANs; anything else must be a plain DNS name (no port, no wildcard).
func parseHosts(hosts []string) (sanSet, error) {
	var s sanSet
	seen := make(map[string]bool)
	var bad []string
	for _, h := range slices.Concat(hosts, defaultHosts) {
		h = strings.TrimSuffix(strings.ToLower(strings.TrimSpace(h)), ".")
		if h == "" {
			continue
		}
		ip := net.ParseIP(h)
		switch {
		case ip != nil:
			if key := ip.String(); !seen[key] {
				seen[key] = true
				s.ips = append(s.ips, ip)
			}
		case validDNSName(h):
			if !seen[h] {
				seen[h] = true
				s.dns = append(s.dns, h)
			}
		default:
			bad = append(bad, h)
		}
	}
	if len(bad) > 0 {
		return sanSet{}, fmt.Errorf("pki: invalid hosts %q: want DNS names or IP addresses, without ports", bad)
	}
	return s, nil
}

func validDNSName(h string) bool {
	if len(h) > 253 {
		return false
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
				return false
			}
		}
	}
	return true
}

// names lists the set as strings, sorted.
func (s sanSet) names() []string {
	names := slices.Clone(s.dns)
	for _, ip := range s.ips {
		names = append(names, ip.String())
	}
	slices.Sort(names)
	return names
}

// matches reports whether cert is issued for exactly these names. Exact,
// not a superset: a host removed from the configuration should stop being
// certified at the next start.
func (s sanSet) matches(cert *x509.Certificate) bool {
	return slices.Equal(s.names(), certNames(cert))
}

func certNames(cert *x509.Certificate) []string {
	var names []string
	for _, d := range cert.DNSNames {
		names = append(names, strings.ToLower(d))
	}
	for _, ip := range cert.IPAddresses {
		names = append(names, ip.String())
	}
	slices.Sort(names)
	return slices.Compact(names)
}
