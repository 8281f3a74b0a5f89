package pki

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"time"
)

// loadOperator loads the operator's certificate and key. A key file that
// group or others can read is only a warning here: Kubernetes mounts
// secrets 0644 by default, and the operator owns these files.
func (m *Manager) loadOperator(now time.Time) (*served, error) {
	// Stat before reading: if the files change in between, the next check
	// sees a newer mtime and loads them again.
	certInfo, err := os.Stat(m.certFile)
	if err != nil {
		return nil, fmt.Errorf("pki: certificate: %w", err)
	}
	keyInfo, err := os.Stat(m.keyFile)
	if err != nil {
		return nil, fmt.Errorf("pki: key: %w", err)
	}
	if keyInfo.Mode().Perm()&0o077 != 0 {
		m.log.Warn("pki: TLS key file is readable by group or others",
			"file", m.keyFile, "mode", fmt.Sprintf("%04o", uint32(keyInfo.Mode().Perm())))
	}

	pair, err := tls.LoadX509KeyPair(m.certFile, m.keyFile)
	if err != nil {
		return nil, fmt.Errorf("pki: load certificate %s with key %s: %w", m.certFile, m.keyFile, err)
	}
	if pair.Leaf == nil { // only with GODEBUG=x509keypairleaf=0
		if pair.Leaf, err = x509.ParseCertificate(pair.Certificate[0]); err != nil {
			return nil, fmt.Errorf("pki: parse %s: %w", m.certFile, err)
		}
	}
	if now.After(pair.Leaf.NotAfter) {
		return nil, fmt.Errorf("pki: certificate %s expired at %s", m.certFile, pair.Leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	return &served{
		cert:     &pair,
		notAfter: pair.Leaf.NotAfter,
		checkAt:  now.Add(reloadInterval),
		certMod:  certInfo.ModTime(),
		keyMod:   keyInfo.ModTime(),
	}, nil
}

// reloadOperator loads the files again if either mtime changed since old
// was loaded; otherwise it only schedules the next check.
func (m *Manager) reloadOperator(now time.Time, old *served) (*served, error) {
	certInfo, err := os.Stat(m.certFile)
	if err != nil {
		return nil, fmt.Errorf("pki: certificate: %w", err)
	}
	keyInfo, err := os.Stat(m.keyFile)
	if err != nil {
		return nil, fmt.Errorf("pki: key: %w", err)
	}
	if certInfo.ModTime().Equal(old.certMod) && keyInfo.ModTime().Equal(old.keyMod) {
		next := *old
		next.checkAt = now.Add(reloadInterval)
		return &next, nil
	}
	s, err := m.loadOperator(now)
	if err != nil {
		return nil, err
	}
	m.log.Info("pki: reloaded TLS certificate", "file", m.certFile,
		"serial", s.cert.Leaf.SerialNumber.Text(16), "not_after", s.notAfter)
	return s, nil
}
