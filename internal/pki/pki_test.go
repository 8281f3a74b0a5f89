package pki_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/rampart-ml/rampart/internal/pki"

	"github.com/rampart-ml/rampart/internal/pki/pkitest"
)

var discard = slog.New(slog.DiscardHandler)

// fakeClock is a settable clock, safe for use from handshake goroutines.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock { return &fakeClock{t: time.Now()} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// logBuffer collects log output from any goroutine.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (b *logBuffer) Logger() *slog.Logger { return slog.New(slog.NewTextHandler(b, nil)) }

func newManager(t *testing.T, o pki.Options) *pki.Manager {
	t.Helper()
	if o.Logger == nil {
		o.Logger = discard
	}
	m, err := pki.New(o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return m
}

// served returns the certificate the server would present now.
func served(t *testing.T, m *pki.Manager) *x509.Certificate {
	t.Helper()
	c, err := m.TLSConfig().GetCertificate(&tls.ClientHelloInfo{})
	if err != nil {
		t.Fatalf("GetCertificate: %v", err)
	}
	return c.Leaf
}

func readCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		t.Fatalf("%s: no PEM block", path)
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func clientTrusting(t *testing.T, caFile, serverName string) *tls.Config {
	t.Helper()
	pool, err := pki.CertPool(caFile)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{RootCAs: pool, ServerName: serverName, NextProtos: []string{"h2", "http/1.1"}}
}

type handshakeResult struct {
	client, server tls.ConnectionState
	err            error // from either side
}

// handshake runs one TLS handshake over loopback between a server using
// serverCfg and a client using clientCfg.
func handshake(t *testing.T, serverCfg, clientCfg *tls.Config) handshakeResult {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", serverCfg)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()

	type result struct {
		state tls.ConnectionState
		err   error
	}
	done := make(chan result, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- result{err: err}
			return
		}
		defer c.Close()
		tc := c.(*tls.Conn)
		tc.SetDeadline(time.Now().Add(10 * time.Second))
		err = tc.Handshake()
		done <- result{tc.ConnectionState(), err}
	}()

	var res handshakeResult
	conn, clientErr := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", ln.Addr().String(), clientCfg)
	if clientErr == nil {
		res.client = conn.ConnectionState()
		conn.Close()
	}
	s := <-done
	res.server = s.state
	res.err = errors.Join(clientErr, s.err)
	return res
}

func fileMode(t *testing.T, path string) os.FileMode {
	t.Helper()
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return info.Mode().Perm()
}

func TestFirstStartCreatesFilesAndRestartReuses(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	hosts := []string{"rampart.test", " LOCALHOST ", "127.0.0.1", "10.0.0.1", "Rampart.Test."}
	m := newManager(t, pki.Options{Dir: dir, Hosts: hosts})

	wantModes := map[string]os.FileMode{
		"ca.pem": 0o644, "ca-key.pem": 0o600, "server.pem": 0o644, "server-key.pem": 0o600,
	}
	gotModes := map[string]os.FileMode{}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		gotModes[e.Name()] = fileMode(t, filepath.Join(dir, e.Name()))
	}
	if diff := cmp.Diff(wantModes, gotModes); diff != "" {
		t.Errorf("files in Dir (-want +got):\n%s", diff)
	}
	if got, want := m.CAFile(), filepath.Join(dir, "ca.pem"); got != want {
		t.Errorf("CAFile() = %q, want %q", got, want)
	}

	ca := readCert(t, filepath.Join(dir, "ca.pem"))
	if !ca.IsCA || ca.MaxPathLen != 0 || !ca.MaxPathLenZero || ca.KeyUsage != x509.KeyUsageCertSign|x509.KeyUsageCRLSign {
		t.Errorf("CA: IsCA=%v MaxPathLen=%d MaxPathLenZero=%v KeyUsage=%v", ca.IsCA, ca.MaxPathLen, ca.MaxPathLenZero, ca.KeyUsage)
	}
	if !strings.HasPrefix(ca.Subject.CommonName, "Rampart private CA ") {
		t.Errorf("CA subject = %q", ca.Subject.CommonName)
	}
	if life := ca.NotAfter.Sub(ca.NotBefore); life < 9*365*24*time.Hour {
		t.Errorf("CA lifetime = %v, want about 10 years", life)
	}
	if pub, ok := ca.PublicKey.(*ecdsa.PublicKey); !ok || pub.Curve != elliptic.P256() {
		t.Errorf("CA key is %T, want ECDSA P-256", ca.PublicKey)
	}

	leaf := served(t, m)
	onDisk := readCert(t, filepath.Join(dir, "server.pem"))
	if leaf.SerialNumber.Cmp(onDisk.SerialNumber) != 0 {
		t.Errorf("served serial %x, server.pem serial %x", leaf.SerialNumber, onDisk.SerialNumber)
	}
	if diff := cmp.Diff([]x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, leaf.ExtKeyUsage); diff != "" {
		t.Errorf("ExtKeyUsage (-want +got):\n%s", diff)
	}
	if life := leaf.NotAfter.Sub(leaf.NotBefore); life < 89*24*time.Hour || life > 91*24*time.Hour {
		t.Errorf("server lifetime = %v, want about 90 days", life)
	}
	var ips []string
	for _, ip := range leaf.IPAddresses {
		ips = append(ips, ip.String())
	}
	if diff := cmp.Diff([]string{"rampart.test", "localhost"}, leaf.DNSNames); diff != "" {
		t.Errorf("DNS SANs (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"127.0.0.1", "10.0.0.1", "::1"}, ips); diff != "" {
		t.Errorf("IP SANs (-want +got):\n%s", diff)
	}

	// Second start: same CA, same server certificate.
	m2 := newManager(t, pki.Options{Dir: dir, Hosts: hosts})
	if got := readCert(t, m2.CAFile()); !got.Equal(ca) {
		t.Error("restart replaced the CA")
	}
	if got := served(t, m2); got.SerialNumber.Cmp(leaf.SerialNumber) != 0 {
		t.Errorf("restart served serial %x, want %x", got.SerialNumber, leaf.SerialNumber)
	}

	// Another installation gets a distinguishable CA.
	other := newManager(t, pki.Options{Dir: t.TempDir()})
	if got := readCert(t, other.CAFile()).Subject.CommonName; got == ca.Subject.CommonName {
		t.Errorf("two installations share CA subject %q", got)
	}
}

func TestHandshakeServerNames(t *testing.T) {
	t.Parallel()
	m := newManager(t, pki.Options{Dir: t.TempDir(), Hosts: []string{"rampart.test"}})
	tests := []struct {
		serverName string
		wantOK     bool
	}{
		{"localhost", true},
		{"127.0.0.1", true},
		{"::1", true},
		{"rampart.test", true},
		{"unlisted.test", false},
		{"10.9.8.7", false},
	}
	for _, tt := range tests {
		t.Run(tt.serverName, func(t *testing.T) {
			t.Parallel()
			res := handshake(t, m.TLSConfig(), clientTrusting(t, m.CAFile(), tt.serverName))
			if ok := res.err == nil; ok != tt.wantOK {
				t.Fatalf("handshake ok = %v, want %v (err: %v)", ok, tt.wantOK, res.err)
			}
			if !tt.wantOK {
				return
			}
			if res.client.Version != tls.VersionTLS13 {
				t.Errorf("version = %x, want TLS 1.3", res.client.Version)
			}
			if res.client.NegotiatedProtocol != "h2" {
				t.Errorf("ALPN = %q, want h2", res.client.NegotiatedProtocol)
			}
		})
	}
}

func TestProtocolVersionsAndCiphers(t *testing.T) {
	t.Parallel()
	m := newManager(t, pki.Options{Dir: t.TempDir()})
	tests := []struct {
		name        string
		client      func(*tls.Config)
		wantOK      bool
		wantVersion uint16
	}{
		{"default negotiates TLS 1.3", func(*tls.Config) {}, true, tls.VersionTLS13},
		{"TLS 1.1 refused", func(c *tls.Config) {
			c.MinVersion, c.MaxVersion = tls.VersionTLS10, tls.VersionTLS11
		}, false, 0},
		{"TLS 1.2 CBC only refused", func(c *tls.Config) {
			c.MaxVersion = tls.VersionTLS12
			c.CipherSuites = []uint16{
				tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA,
				tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA,
				tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256,
				tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA,
			}
		}, false, 0},
		{"TLS 1.2 static RSA GCM refused", func(c *tls.Config) {
			c.MaxVersion = tls.VersionTLS12
			c.CipherSuites = []uint16{tls.TLS_RSA_WITH_AES_128_GCM_SHA256}
		}, false, 0},
		{"TLS 1.2 ECDHE GCM accepted", func(c *tls.Config) {
			c.MaxVersion = tls.VersionTLS12
			c.CipherSuites = []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256}
		}, true, tls.VersionTLS12},
		{"TLS 1.2 ECDHE ChaCha20 accepted", func(c *tls.Config) {
			c.MaxVersion = tls.VersionTLS12
			c.CipherSuites = []uint16{tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256}
		}, true, tls.VersionTLS12},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			client := clientTrusting(t, m.CAFile(), "localhost")
			tt.client(client)
			res := handshake(t, m.TLSConfig(), client)
			if ok := res.err == nil; ok != tt.wantOK {
				t.Fatalf("handshake ok = %v, want %v (err: %v)", ok, tt.wantOK, res.err)
			}
			if tt.wantOK && res.client.Version != tt.wantVersion {
				t.Errorf("version = %x, want %x", res.client.Version, tt.wantVersion)
			}
		})
	}
}

func TestTLSConfig(t *testing.T) {
	t.Parallel()
	cfg := newManager(t, pki.Options{Dir: t.TempDir()}).TLSConfig()
	if cfg.MinVersion != tls.VersionTLS12 {
		t.Errorf("MinVersion = %x", cfg.MinVersion)
	}
	for _, id := range cfg.CipherSuites {
		name := tls.CipherSuiteName(id)
		if !strings.HasPrefix(name, "TLS_ECDHE_") || !(strings.Contains(name, "_GCM_") || strings.Contains(name, "CHACHA20_POLY1305")) {
			t.Errorf("cipher suite %s allowed", name)
		}
	}
	if diff := cmp.Diff([]string{"h2", "http/1.1"}, cfg.NextProtos); diff != "" {
		t.Errorf("NextProtos (-want +got):\n%s", diff)
	}
	if cfg.CurvePreferences != nil {
		t.Errorf("CurvePreferences = %v, want nil (Go defaults)", cfg.CurvePreferences)
	}
	if cfg.ClientAuth != tls.NoClientCert || cfg.ClientCAs != nil {
		t.Errorf("client auth on without ClientCAFile")
	}
}

func TestRenewal(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	clock := newClock()
	m := newManager(t, pki.Options{Dir: dir, Now: clock.Now})
	serverPEM := filepath.Join(dir, "server.pem")
	first := served(t, m)
	firstPEM, err := os.ReadFile(serverPEM)
	if err != nil {
		t.Fatal(err)
	}

	// Before 2/3 of the lifetime: same certificate, file untouched.
	clock.Advance(59 * 24 * time.Hour)
	if got := served(t, m); got.SerialNumber.Cmp(first.SerialNumber) != 0 {
		t.Fatalf("renewed early: serial %x, want %x", got.SerialNumber, first.SerialNumber)
	}
	if got, _ := os.ReadFile(serverPEM); !bytes.Equal(got, firstPEM) {
		t.Fatal("server.pem changed before renewal was due")
	}

	// Past 2/3: a new certificate, in memory and on disk.
	clock.Advance(2 * 24 * time.Hour)
	renewed := served(t, m)
	if renewed.SerialNumber.Cmp(first.SerialNumber) == 0 {
		t.Fatal("not renewed after 2/3 of the lifetime")
	}
	if onDisk := readCert(t, serverPEM); onDisk.SerialNumber.Cmp(renewed.SerialNumber) != 0 {
		t.Errorf("server.pem serial %x, served %x", onDisk.SerialNumber, renewed.SerialNumber)
	}
	if got := fileMode(t, filepath.Join(dir, "server-key.pem")); got != 0o600 {
		t.Errorf("renewed server-key.pem mode = %04o", got)
	}

	// Clients see the renewed certificate.
	client := clientTrusting(t, m.CAFile(), "localhost")
	client.Time = clock.Now
	res := handshake(t, m.TLSConfig(), client)
	if res.err != nil {
		t.Fatalf("handshake after renewal: %v", res.err)
	}
	if got := res.client.PeerCertificates[0].SerialNumber; got.Cmp(renewed.SerialNumber) != 0 {
		t.Errorf("client saw serial %x, want %x", got, renewed.SerialNumber)
	}

	// A restart keeps the renewed certificate.
	m2 := newManager(t, pki.Options{Dir: dir, Now: clock.Now})
	if got := served(t, m2); got.SerialNumber.Cmp(renewed.SerialNumber) != 0 {
		t.Errorf("restart served %x, want renewed %x", got.SerialNumber, renewed.SerialNumber)
	}
}

func TestConcurrentRenewalIssuesOnce(t *testing.T) {
	t.Parallel()
	clock := newClock()
	m := newManager(t, pki.Options{Dir: t.TempDir(), Now: clock.Now})
	first := served(t, m)
	clock.Advance(61 * 24 * time.Hour)

	cfg := m.TLSConfig()
	serials := make([]*big.Int, 16)
	var wg sync.WaitGroup
	for i := range serials {
		wg.Go(func() {
			c, err := cfg.GetCertificate(&tls.ClientHelloInfo{})
			if err != nil {
				t.Error(err)
				return
			}
			serials[i] = c.Leaf.SerialNumber
		})
	}
	wg.Wait()
	for i, s := range serials {
		if s == nil || s.Cmp(first.SerialNumber) == 0 || s.Cmp(serials[0]) != 0 {
			t.Fatalf("handshake %d got serial %x; want one new serial for all (first %x, old %x)", i, s, serials[0], first.SerialNumber)
		}
	}
}

func TestRenewalFailureKeepsServingUntilExpiry(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	clock := newClock()
	var logs logBuffer
	m := newManager(t, pki.Options{Dir: dir, Now: clock.Now, Logger: logs.Logger()})
	first := served(t, m)

	// Make writing impossible (chmod would not stop root).
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	clock.Advance(61 * 24 * time.Hour)
	if got := served(t, m); got.SerialNumber.Cmp(first.SerialNumber) != 0 {
		t.Errorf("serial %x after failed renewal, want old %x", got.SerialNumber, first.SerialNumber)
	}
	if !strings.Contains(logs.String(), "level=ERROR") {
		t.Errorf("failed renewal not logged as an error; logs:\n%s", logs.String())
	}

	clock.Advance(30 * 24 * time.Hour)
	if _, err := m.TLSConfig().GetCertificate(&tls.ClientHelloInfo{}); err == nil {
		t.Error("GetCertificate served an expired certificate")
	}
}

func TestHostsChangedAtRestart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	m1 := newManager(t, pki.Options{Dir: dir, Hosts: []string{"old.test"}})
	before := served(t, m1)
	ca := readCert(t, m1.CAFile())

	m2 := newManager(t, pki.Options{Dir: dir, Hosts: []string{"new.test", "192.0.2.7"}})
	after := served(t, m2)
	if after.SerialNumber.Cmp(before.SerialNumber) == 0 {
		t.Fatal("certificate not reissued for new hosts")
	}
	for _, h := range []string{"new.test", "192.0.2.7", "localhost"} {
		if err := after.VerifyHostname(h); err != nil {
			t.Errorf("reissued certificate: %v", err)
		}
	}
	if err := after.VerifyHostname("old.test"); err == nil {
		t.Error("reissued certificate still covers removed host old.test")
	}
	if !readCert(t, m2.CAFile()).Equal(ca) {
		t.Error("CA replaced when only hosts changed")
	}
	res := handshake(t, m2.TLSConfig(), clientTrusting(t, m2.CAFile(), "new.test"))
	if res.err != nil {
		t.Errorf("handshake for new host: %v", res.err)
	}
}

func TestInvalidHosts(t *testing.T) {
	t.Parallel()
	for _, h := range []string{"example.com:8443", "*.example.com", "bad host", "-x.test", "fe80::1%eth0"} {
		_, err := pki.New(pki.Options{Dir: t.TempDir(), Hosts: []string{h}, Logger: discard})
		if err == nil || !strings.Contains(err.Error(), "invalid hosts") {
			t.Errorf("Hosts=%q: err = %v, want invalid hosts", h, err)
		}
	}
}

func TestGroupReadableKeyRefused(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		file string
		mode os.FileMode
	}{
		{"ca-key.pem", 0o640},
		{"ca-key.pem", 0o604},
		{"server-key.pem", 0o640},
	} {
		t.Run(tt.file, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			newManager(t, pki.Options{Dir: dir})
			path := filepath.Join(dir, tt.file)
			if err := os.Chmod(path, tt.mode); err != nil {
				t.Fatal(err)
			}
			_, err := pki.New(pki.Options{Dir: dir, Logger: discard})
			if !errors.Is(err, pki.ErrInsecureKeyFile) {
				t.Fatalf("err = %v, want ErrInsecureKeyFile", err)
			}
			if want := "chmod 600 " + path; !strings.Contains(err.Error(), want) {
				t.Errorf("err = %q, want it to contain %q", err, want)
			}
		})
	}
}

func TestDamagedFiles(t *testing.T) {
	t.Parallel()
	tests := []struct {
		file    string
		damage  func(path string) error
		wantErr bool // false: the server certificate is reissued from the intact CA
	}{
		{"server.pem", corrupt, false},
		{"server-key.pem", corrupt, false},
		{"server.pem", os.Remove, false},
		{"ca.pem", corrupt, true},
		{"ca-key.pem", corrupt, true},
		{"ca.pem", os.Remove, true},
		{"ca-key.pem", os.Remove, true},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			m1 := newManager(t, pki.Options{Dir: dir})
			before := served(t, m1)
			ca := readCert(t, m1.CAFile())
			path := filepath.Join(dir, tt.file)
			if err := tt.damage(path); err != nil {
				t.Fatal(err)
			}

			m2, err := pki.New(pki.Options{Dir: dir, Logger: discard})
			if tt.wantErr {
				if err == nil || !strings.Contains(err.Error(), path) {
					t.Fatalf("err = %v, want an error naming %s", err, path)
				}
				return
			}
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			if served(t, m2).SerialNumber.Cmp(before.SerialNumber) == 0 {
				t.Error("damaged server certificate not reissued")
			}
			if !readCert(t, m2.CAFile()).Equal(ca) {
				t.Error("CA replaced")
			}
			if res := handshake(t, m2.TLSConfig(), clientTrusting(t, m2.CAFile(), "localhost")); res.err != nil {
				t.Errorf("handshake: %v", res.err)
			}
		})
	}
}

func corrupt(path string) error {
	// WriteFile keeps the existing mode.
	return os.WriteFile(path, []byte("-----BEGIN GARBAGE-----\nnot base64\n"), 0o600)
}

func serverTemplate() *x509.Certificate {
	return &x509.Certificate{
		DNSNames:    []string{"op.test"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
}

func TestOperatorCertificate(t *testing.T) {
	t.Parallel()
	ca := pkitest.NewCA(t, "operator-ca")
	opDir := t.TempDir()
	certFile, keyFile := filepath.Join(opDir, "tls.crt"), filepath.Join(opDir, "tls.key")
	ca.Issue(t, serverTemplate()).Write(t, certFile, keyFile)

	dir := t.TempDir()
	m := newManager(t, pki.Options{Dir: dir, CertFile: certFile, KeyFile: keyFile})
	if m.CAFile() != "" {
		t.Errorf("CAFile() = %q, want empty with operator certificates", m.CAFile())
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("operator mode wrote files to Dir: %v", entries)
	}
	res := handshake(t, m.TLSConfig(), clientTrusting(t, ca.File, "op.test"))
	if res.err != nil {
		t.Fatalf("handshake: %v", res.err)
	}
}

func TestOperatorCertificateErrors(t *testing.T) {
	t.Parallel()
	ca := pkitest.NewCA(t, "operator-ca")
	opDir := t.TempDir()
	good, goodKey := filepath.Join(opDir, "good.crt"), filepath.Join(opDir, "good.key")
	ca.Issue(t, serverTemplate()).Write(t, good, goodKey)
	expiredTmpl := serverTemplate()
	expiredTmpl.NotBefore = time.Now().Add(-48 * time.Hour)
	expiredTmpl.NotAfter = time.Now().Add(-time.Hour)
	expired, expiredKey := filepath.Join(opDir, "expired.crt"), filepath.Join(opDir, "expired.key")
	ca.Issue(t, expiredTmpl).Write(t, expired, expiredKey)
	mismatched := filepath.Join(opDir, "other.crt")
	if err := os.WriteFile(mismatched, ca.Issue(t, serverTemplate()).Cert, 0o644); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name              string
		certFile, keyFile string
		wantErr           string
	}{
		{"expired", expired, expiredKey, "expired at"},
		{"cert without key", good, "", "both CertFile and KeyFile"},
		{"key without cert", "", goodKey, "both CertFile and KeyFile"},
		{"missing file", filepath.Join(opDir, "missing.crt"), goodKey, "missing.crt"},
		{"key does not match", mismatched, goodKey, "other.crt"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := pki.New(pki.Options{Dir: t.TempDir(), CertFile: tt.certFile, KeyFile: tt.keyFile, Logger: discard})
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("err = %v, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}

func TestOperatorKeyReadableWarns(t *testing.T) {
	t.Parallel()
	ca := pkitest.NewCA(t, "operator-ca")
	opDir := t.TempDir()
	certFile, keyFile := filepath.Join(opDir, "tls.crt"), filepath.Join(opDir, "tls.key")
	ca.Issue(t, serverTemplate()).Write(t, certFile, keyFile)
	if err := os.Chmod(keyFile, 0o644); err != nil { // as Kubernetes mounts secrets
		t.Fatal(err)
	}
	var logs logBuffer
	newManager(t, pki.Options{CertFile: certFile, KeyFile: keyFile, Logger: logs.Logger()})
	if out := logs.String(); !strings.Contains(out, "level=WARN") || !strings.Contains(out, keyFile) {
		t.Errorf("no warning naming %s; logs:\n%s", keyFile, out)
	}
}

func TestOperatorReload(t *testing.T) {
	t.Parallel()
	ca := pkitest.NewCA(t, "operator-ca")
	opDir := t.TempDir()
	certFile, keyFile := filepath.Join(opDir, "tls.crt"), filepath.Join(opDir, "tls.key")
	ca.Issue(t, serverTemplate()).Write(t, certFile, keyFile)
	clock := newClock()
	var logs logBuffer
	m := newManager(t, pki.Options{CertFile: certFile, KeyFile: keyFile, Now: clock.Now, Logger: logs.Logger()})
	first := served(t, m)

	// rewrite replaces the files and moves their mtime forward, so the
	// change is seen even on filesystems with coarse timestamps.
	mtime := time.Now()
	rewrite := func(p pkitest.Pair) {
		p.Write(t, certFile, keyFile)
		mtime = mtime.Add(time.Hour)
		for _, f := range []string{certFile, keyFile} {
			if err := os.Chtimes(f, mtime, mtime); err != nil {
				t.Fatal(err)
			}
		}
	}

	rewrite(ca.Issue(t, serverTemplate()))
	clock.Advance(30 * time.Second)
	if got := served(t, m); got.SerialNumber.Cmp(first.SerialNumber) != 0 {
		t.Fatal("reloaded before the one-minute check")
	}
	clock.Advance(31 * time.Second)
	second := served(t, m)
	if second.SerialNumber.Cmp(first.SerialNumber) == 0 {
		t.Fatal("not reloaded after the files changed")
	}
	if res := handshake(t, m.TLSConfig(), clientTrusting(t, ca.File, "op.test")); res.err != nil {
		t.Errorf("handshake after reload: %v", res.err)
	} else if got := res.client.PeerCertificates[0].SerialNumber; got.Cmp(second.SerialNumber) != 0 {
		t.Errorf("client saw serial %x, want %x", got, second.SerialNumber)
	}

	// A broken replacement is logged and the current certificate kept.
	rewrite(pkitest.Pair{Cert: []byte("garbage"), Key: []byte("garbage")})
	clock.Advance(61 * time.Second)
	if got := served(t, m); got.SerialNumber.Cmp(second.SerialNumber) != 0 {
		t.Errorf("serial %x after failed reload, want %x", got.SerialNumber, second.SerialNumber)
	}
	if !strings.Contains(logs.String(), "level=ERROR") {
		t.Errorf("failed reload not logged; logs:\n%s", logs.String())
	}

	// Fixing the files is picked up at a later check.
	rewrite(ca.Issue(t, serverTemplate()))
	clock.Advance(61 * time.Second)
	if got := served(t, m); got.SerialNumber.Cmp(second.SerialNumber) == 0 {
		t.Error("fixed files not reloaded")
	}
}

func TestClientCA(t *testing.T) {
	t.Parallel()
	clientCA := pkitest.NewCA(t, "client-ca")
	otherCA := pkitest.NewCA(t, "other-ca")
	m := newManager(t, pki.Options{Dir: t.TempDir(), ClientCAFile: clientCA.File})
	cfg := m.TLSConfig()
	if cfg.ClientAuth != tls.VerifyClientCertIfGiven {
		t.Errorf("ClientAuth = %v, want VerifyClientCertIfGiven", cfg.ClientAuth)
	}

	clientTmpl := func() *x509.Certificate {
		return &x509.Certificate{
			Subject:     pkix.Name{CommonName: "alice"},
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		}
	}
	tests := []struct {
		name         string
		cert         *tls.Certificate
		wantOK       bool
		wantVerified bool
	}{
		{"cert from client CA", ptr(clientCA.Issue(t, clientTmpl()).TLS(t)), true, true},
		{"cert from other CA", ptr(otherCA.Issue(t, clientTmpl()).TLS(t)), false, false},
		{"no cert", nil, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			client := clientTrusting(t, m.CAFile(), "localhost")
			// GetClientCertificate sends the certificate even when its
			// issuer is not among those the server asks for.
			client.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
				if tt.cert == nil {
					return &tls.Certificate{}, nil
				}
				return tt.cert, nil
			}
			res := handshake(t, m.TLSConfig(), client)
			if ok := res.err == nil; ok != tt.wantOK {
				t.Fatalf("handshake ok = %v, want %v (err: %v)", ok, tt.wantOK, res.err)
			}
			if verified := len(res.server.VerifiedChains) > 0; verified != tt.wantVerified {
				t.Fatalf("server verified chains = %v, want %v", verified, tt.wantVerified)
			}
			if tt.wantVerified {
				if cn := res.server.VerifiedChains[0][0].Subject.CommonName; cn != "alice" {
					t.Errorf("verified client = %q, want alice", cn)
				}
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

func TestClientCAFileErrors(t *testing.T) {
	t.Parallel()
	garbage := filepath.Join(t.TempDir(), "garbage.pem")
	if err := os.WriteFile(garbage, []byte("not a certificate"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, file := range []string{garbage, filepath.Join(t.TempDir(), "missing.pem")} {
		dir := t.TempDir()
		_, err := pki.New(pki.Options{Dir: dir, ClientCAFile: file, Logger: discard})
		if err == nil || !strings.Contains(err.Error(), filepath.Base(file)) {
			t.Errorf("ClientCAFile=%s: err = %v, want an error naming the file", file, err)
		}
		if entries, _ := os.ReadDir(dir); len(entries) != 0 {
			t.Errorf("files created despite a bad ClientCAFile: %v", entries)
		}
	}
}

func TestCertPool(t *testing.T) {
	t.Parallel()
	ca := pkitest.NewCA(t, "pool-ca")
	pool, err := pki.CertPool(ca.File)
	if err != nil {
		t.Fatal(err)
	}
	p := ca.Issue(t, serverTemplate())
	leaf, err := tls.X509KeyPair(p.Cert, p.Key)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := leaf.Leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: "op.test"}); err != nil {
		t.Errorf("certificate from the pool's CA does not verify: %v", err)
	}
	if _, err := pki.CertPool(filepath.Join(t.TempDir(), "missing.pem")); err == nil {
		t.Error("CertPool of a missing file succeeded")
	}
}
