package doctor

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io/fs"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/rampart-ml/rampart/internal/audit"
	"github.com/rampart-ml/rampart/internal/config"
	"github.com/rampart-ml/rampart/internal/identity/password"
	"github.com/rampart-ml/rampart/internal/runtime/sandbox"
	"github.com/rampart-ml/rampart/internal/store"
)

var now = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

// statuses maps each result's id to its status, for compact expectations.
func statuses(rs []Result) map[string]Status {
	m := map[string]Status{}
	for _, r := range rs {
		m[r.ID] = r.Status
		if r.Status != Pass && r.Fix == "" {
			panic("a " + string(r.Status) + " without a fix: " + r.ID)
		}
	}
	return m
}

func TestPermissions(t *testing.T) {
	t.Parallel()
	dir := fs.ModeDir
	tests := []struct {
		name    string
		entries []FileInfo
		want    map[string]Status
	}{
		{"default install", []FileInfo{
			{Path: ".", Mode: dir | 0o700, UID: 10},
			{Path: "keys", Mode: dir | 0o700, UID: 10},
			{Path: "keys/master.key", Mode: 0o600, UID: 10},
			{Path: "keys/audit-signing.pub.pem", Mode: 0o644, UID: 10},
			{Path: "tls/ca.pem", Mode: 0o644, UID: 10},
			{Path: "tls/ca-key.pem", Mode: 0o600, UID: 10},
		}, map[string]Status{"perm": Pass}},
		{"readable secret and open dir", []FileInfo{
			{Path: ".", Mode: dir | 0o755, UID: 10},
			{Path: "keys/master.key", Mode: 0o644, UID: 10},
			{Path: "tls/server-key.pem", Mode: 0o640, UID: 10},
			{Path: "tls/server.pem", Mode: 0o644, UID: 10},
		}, map[string]Status{"perm.datadir": Fail, "perm.keys/master.key": Fail, "perm.tls/server-key.pem": Fail}},
		{"model copies shared with workers", []FileInfo{
			{Path: "run", Mode: dir | 0o700, UID: 10},
			{Path: "run/cls-ab12", Mode: dir | 0o550, UID: 10},
			{Path: "run/cls-ab12/model.onnx", Mode: 0o440, UID: 10},
		}, map[string]Status{"perm": Pass}},
		{"run dir open to others or group-writable", []FileInfo{
			{Path: "run/cls-ab12", Mode: dir | 0o555, UID: 10},
			{Path: "run/cls-ab12/model.onnx", Mode: 0o460, UID: 10},
		}, map[string]Status{"perm.run/cls-ab12": Fail, "perm.run/cls-ab12/model.onnx": Fail}},
		{"world-writable certificate", []FileInfo{
			{Path: "tls/ca.pem", Mode: 0o666, UID: 10},
		}, map[string]Status{"perm.tls/ca.pem": Fail}},
		{"link and foreign owner", []FileInfo{
			{Path: "rampart.db", Mode: fs.ModeSymlink | 0o777, UID: 10, Symlink: true},
			{Path: "staging", Mode: dir | 0o700, UID: 0},
		}, map[string]Status{"perm.rampart.db": Fail, "perm.staging.owner": Warn}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if diff := cmp.Diff(tt.want, statuses(Permissions("/data", tt.entries, 10))); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestInitialPassword(t *testing.T) {
	t.Parallel()
	for present, want := range map[bool]Status{true: Warn, false: Pass} {
		if got := InitialPassword("/d/initial-admin-password", present).Status; got != want {
			t.Errorf("present=%t: %s, want %s", present, got, want)
		}
	}
}

func newCert(t *testing.T, key crypto.Signer, notBefore, notAfter time.Time) *x509.Certificate {
	t.Helper()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: notBefore, NotAfter: notAfter}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestCertificate(t *testing.T) {
	t.Parallel()
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p224, _ := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	rsa1024, _ := rsa.GenerateKey(rand.Reader, 1024) // #nosec G403 -- a deliberately weak key the check must flag
	day := 24 * time.Hour
	tests := []struct {
		name string
		key  crypto.Signer
		from time.Time
		to   time.Time
		want map[string]Status
	}{
		{"fresh P-256", p256, now.Add(-day), now.Add(90 * day), map[string]Status{"c.expiry": Pass, "c.key": Pass}},
		{"Ed25519", ed, now.Add(-day), now.Add(90 * day), map[string]Status{"c.expiry": Pass, "c.key": Pass}},
		{"expires in 10 days", p256, now.Add(-80 * day), now.Add(10 * day), map[string]Status{"c.expiry": Warn, "c.key": Pass}},
		{"expired", p256, now.Add(-90 * day), now.Add(-day), map[string]Status{"c.expiry": Fail, "c.key": Pass}},
		{"not yet valid", p256, now.Add(day), now.Add(90 * day), map[string]Status{"c.expiry": Fail, "c.key": Pass}},
		{"P-224", p224, now.Add(-day), now.Add(90 * day), map[string]Status{"c.expiry": Pass, "c.key": Fail}},
		{"RSA 1024", rsa1024, now.Add(-day), now.Add(90 * day), map[string]Status{"c.expiry": Pass, "c.key": Fail, "c.signature": Fail}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cert := newCert(t, tt.key, tt.from, tt.to)
			if tt.name == "RSA 1024" {
				cert.SignatureAlgorithm = x509.SHA1WithRSA // as an old certificate would be
			}
			got := statuses(Certificate("c", "cert.pem", cert, now, CertWarnBefore, "renew it"))
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestServerTLS(t *testing.T) {
	t.Parallel()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	cert := newCert(t, key, now.Add(-time.Hour), now.Add(5*24*time.Hour))
	tests := []struct {
		name  string
		state tls.ConnectionState
		want  map[string]Status
	}{
		{"TLS 1.3, cert expiring", tls.ConnectionState{Version: tls.VersionTLS13, PeerCertificates: []*x509.Certificate{cert}},
			map[string]Status{"server.tls-version": Pass, "server.cert.expiry": Warn, "server.cert.key": Pass}},
		{"TLS 1.1", tls.ConnectionState{Version: tls.VersionTLS11, PeerCertificates: []*x509.Certificate{cert}},
			map[string]Status{"server.tls-version": Fail, "server.cert.expiry": Warn, "server.cert.key": Pass}},
		{"no certificate", tls.ConnectionState{Version: tls.VersionTLS13},
			map[string]Status{"server.tls-version": Pass, "server.cert": Fail}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if diff := cmp.Diff(tt.want, statuses(ServerTLS("https://x", tt.state, now))); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestConfig(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		change  func(c *config.Config)
		loadErr error
		want    map[string]Status
	}{
		{"defaults", func(*config.Config) {}, nil, map[string]Status{"config": Pass}},
		{"invalid", func(*config.Config) {}, errors.New("listen: bad\nread-timeout: bad"), map[string]Status{"config.valid": Fail}},
		{"insecure http", func(c *config.Config) { c.TLS.InsecureHTTP = true }, nil, map[string]Status{"config.insecure-http": Fail}},
		{"weak hashing flag", func(c *config.Config) { c.Identity.AllowWeakHashing = true }, nil, map[string]Status{"config.hashing": Fail}},
		{"weak argon2", func(c *config.Config) { c.Identity.Argon2 = password.Params{MemoryKiB: 1024, Time: 1, Threads: 1} }, nil,
			map[string]Status{"config.hashing": Fail}},
		{"audit drop", func(c *config.Config) { c.Audit.QueueFull = config.QueueDrop }, nil, map[string]Status{"config.audit-queue-full": Warn}},
		{"short passwords", func(c *config.Config) { c.Identity.PasswordMinLength = 8 }, nil, map[string]Status{"config.password-min-length": Warn}},
		{"lax lockout", func(c *config.Config) {
			c.Identity.BruteForce.Account.MaxFailures = 100
			c.Identity.BruteForce.Account.PermanentAfter = 0
		}, nil, map[string]Status{"config.brute-force": Warn}},
		{"lax source limit", func(c *config.Config) { c.Identity.BruteForce.Source.Burst = 1000 }, nil, map[string]Status{"config.brute-force": Warn}},
		{"stricter is fine", func(c *config.Config) {
			c.Identity.BruteForce.Account.MaxFailures = 3
			c.Identity.PasswordMinLength = 20
		}, nil, map[string]Status{"config": Pass}},
		{"hashing in process", func(c *config.Config) { c.Identity.HashProcesses = false }, nil, map[string]Status{"config.hash-processes": Warn}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := config.Default()
			tt.change(&c)
			rs := Config(c, "test.yaml", tt.loadErr)
			if diff := cmp.Diff(tt.want, statuses(rs)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			for _, r := range rs {
				if strings.Contains(r.Message, "\n") {
					t.Errorf("%s: message spans lines: %q", r.ID, r.Message)
				}
			}
		})
	}
}

func TestSandbox(t *testing.T) {
	t.Parallel()
	yes := sandbox.Feature{Available: true, Detail: "ok"}
	no := sandbox.Feature{Detail: "not root"}
	tests := []struct {
		name string
		r    sandbox.Report
		want map[string]Status
	}{
		{"root with seccomp", sandbox.Report{Root: true, NetworkNamespace: yes, OwnIdentity: yes, Seccomp: yes},
			map[string]Status{"sandbox.network-namespace": Pass, "sandbox.seccomp": Pass, "sandbox.own-identity": Pass}},
		{"unprivileged without userns", sandbox.Report{NetworkNamespace: no, OwnIdentity: no, Seccomp: yes},
			map[string]Status{"sandbox.network-namespace": Warn, "sandbox.seccomp": Pass, "sandbox.own-identity": Warn}},
		{"not Linux", sandbox.Report{NetworkNamespace: no, OwnIdentity: no, Seccomp: no},
			map[string]Status{"sandbox.network-namespace": Warn, "sandbox.seccomp": Warn, "sandbox.own-identity": Warn}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rs := Sandbox(tt.r)
			if diff := cmp.Diff(tt.want, statuses(rs)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			for _, r := range rs {
				if r.Status == Warn && !strings.Contains(r.Message, "not root") && !strings.Contains(r.Message, no.Detail) {
					t.Errorf("%s: reason missing from %q", r.ID, r.Message)
				}
			}
		})
	}
}

func TestKeyAges(t *testing.T) {
	t.Parallel()
	day := 24 * time.Hour
	tests := []struct {
		name string
		got  Result
		want Status
	}{
		{"no signing key", SigningKeys(nil, day, now), Fail},
		{"signing key rotated", SigningKeys([]store.SigningKey{{CreatedAt: now.Add(-10 * day)}, {CreatedAt: now.Add(-time.Hour)}}, day, now), Pass},
		{"signing key stale", SigningKeys([]store.SigningKey{{CreatedAt: now.Add(-3 * day)}}, day, now), Warn},
		{"young key file", KeyFileAge("k", "master.key", now.Add(-30*day), now, "rotate"), Pass},
		{"old key file", KeyFileAge("k", "master.key", now.Add(-400*day), now, "rotate"), Warn},
	}
	for _, tt := range tests {
		if tt.got.Status != tt.want {
			t.Errorf("%s: %s (%s), want %s", tt.name, tt.got.Status, tt.got.Message, tt.want)
		}
	}
}

func TestAuditChain(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		err  error
		want Status
	}{
		{"intact", nil, Pass},
		{"edited", &audit.VerifyError{Seq: 7, Reason: "hash mismatch"}, Fail},
		{"unreadable", errors.New("disk I/O error"), Fail},
	}
	for _, tt := range tests {
		got := AuditChain(audit.Report{Records: 6}, tt.err)
		if got.Status != tt.want {
			t.Errorf("%s: %s, want %s", tt.name, got.Status, tt.want)
		}
		if tt.name == "edited" && !strings.Contains(got.Message, "record 7") {
			t.Errorf("edited: %q does not name record 7", got.Message)
		}
	}
}

func TestRegistry(t *testing.T) {
	t.Parallel()
	keys := []store.SignerKey{
		{ID: "good"},
		{ID: "revoked", RevokedAt: now.Add(-time.Hour)},
		{ID: "expired", NotAfter: now.Add(-time.Hour)},
		{ID: "later", NotAfter: now.Add(time.Hour)},
	}
	v := func(id, key string, signed bool, state string) store.ModelVersion {
		return store.ModelVersion{ModelID: id, Version: "1", Signed: signed, SignerKeyID: key, State: state}
	}
	tests := []struct {
		name     string
		unsigned []string
		versions []store.ModelVersion
		want     map[string]Status
	}{
		{"clean", nil, []store.ModelVersion{v("a", "good", true, store.VersionActive), v("b", "later", true, store.VersionActive)},
			map[string]Status{"registry.unsigned-admission": Pass, "registry.versions": Pass}},
		{"unsigned admission", []string{"com.acme", "*"}, nil,
			map[string]Status{"registry.unsigned-admission": Fail, "registry.versions": Pass}},
		{"unsigned version", nil, []store.ModelVersion{v("a", "", false, store.VersionActive)},
			map[string]Status{"registry.unsigned-admission": Pass, "registry.unsigned-versions": Warn}},
		{"quarantined", nil, []store.ModelVersion{v("a", "good", true, store.VersionQuarantined)},
			map[string]Status{"registry.unsigned-admission": Pass, "registry.quarantined": Warn}},
		{"keys no longer trusted", nil, []store.ModelVersion{
			v("a", "revoked", true, store.VersionActive), v("b", "expired", true, store.VersionActive), v("c", "gone", true, store.VersionActive)},
			map[string]Status{"registry.unsigned-admission": Pass, "registry.signer-keys": Warn}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rs := Registry(tt.unsigned, tt.versions, keys, now)
			if diff := cmp.Diff(tt.want, statuses(rs)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			for _, d := range tt.unsigned {
				if !strings.Contains(rs[0].Message, d) {
					t.Errorf("%q does not name %s", rs[0].Message, d)
				}
			}
		})
	}
}

func TestGrantsAndAdmins(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		got  Result
		want Status
	}{
		{"no grants", Grants(nil), Pass},
		{"domain grant to group", Grants([]store.Grant{{Domain: "com.acme", SubjectKind: "group", SubjectID: "staff", Privilege: "infer"}}), Pass},
		{"wildcard grant to user", Grants([]store.Grant{{Domain: "*", SubjectKind: "user", SubjectID: "u1", Privilege: "read"}}), Pass},
		{"wildcard grant to group", Grants([]store.Grant{{Domain: "*", SubjectKind: "group", SubjectID: "everyone", Privilege: "all"}}), Warn},
		{"admin with TOTP", Admins([]store.Account{{Name: "root", Admin: true, TOTPSecret: []byte{1}}, {Name: "bob"}}), Pass},
		{"admin without TOTP", Admins([]store.Account{{Name: "root", Admin: true}}), Warn},
		{"disabled admin without TOTP", Admins([]store.Account{{Name: "old", Admin: true, Disabled: true}}), Pass},
	}
	for _, tt := range tests {
		if tt.got.Status != tt.want {
			t.Errorf("%s: %s (%s), want %s", tt.name, tt.got.Status, tt.got.Message, tt.want)
		}
	}
}

func TestOutput(t *testing.T) {
	t.Parallel()
	rs := []Result{pass("a", "fine"), warn("b", "do x", "meh"), fail("c", "do y", "bad")}
	if !Failed(rs) || Failed(rs[:2]) {
		t.Error("Failed is wrong")
	}
	var text bytes.Buffer
	if err := WriteText(&text, rs); err != nil {
		t.Fatal(err)
	}
	want := "PASS a: fine\nWARN b: meh\n     fix: do x\nFAIL c: bad\n     fix: do y\n1 passed, 1 warnings, 1 failed\n"
	if diff := cmp.Diff(want, text.String()); diff != "" {
		t.Errorf("text (-want +got):\n%s", diff)
	}
	var js bytes.Buffer
	if err := WriteJSON(&js, rs); err != nil {
		t.Fatal(err)
	}
	var back []map[string]string
	if err := json.Unmarshal(js.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	wantJSON := []map[string]string{
		{"id": "a", "status": "PASS", "message": "fine", "fix": ""},
		{"id": "b", "status": "WARN", "message": "meh", "fix": "do x"},
		{"id": "c", "status": "FAIL", "message": "bad", "fix": "do y"},
	}
	if diff := cmp.Diff(wantJSON, back); diff != "" {
		t.Errorf("json (-want +got):\n%s", diff)
	}
	js.Reset()
	if err := WriteJSON(&js, nil); err != nil || strings.TrimSpace(js.String()) != "[]" {
		t.Errorf("empty: %q, %v", js.String(), err)
	}
}
