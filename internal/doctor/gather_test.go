package doctor

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/rampart-ml/rampart/internal/runtime/sandbox"
)

func fakeSandbox() sandbox.Report {
	yes := sandbox.Feature{Available: true, Detail: "fake"}
	return sandbox.Report{Root: true, NetworkNamespace: yes, OwnIdentity: yes, Seccomp: yes}
}

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}

// pick returns the statuses of the results whose ids are in ids.
func pick(rs []Result, ids ...string) map[string]Status {
	all := statuses(rs)
	out := map[string]Status{}
	for _, id := range ids {
		if s, ok := all[id]; ok {
			out[id] = s
		}
	}
	return out
}

func TestRunConfigFile(t *testing.T) {
	t.Parallel()
	tmp := t.TempDir()
	data := filepath.Join(tmp, "data")
	if err := os.Mkdir(data, 0o700); err != nil {
		t.Fatal(err)
	}
	// An operator certificate that expires in ten days.
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	cert := newCert(t, key, time.Now().Add(-time.Hour), time.Now().Add(10*24*time.Hour))
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile := filepath.Join(tmp, "cert.pem"), filepath.Join(tmp, "key.pem")
	writeFile(t, certFile, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw})))
	writeFile(t, keyFile, string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})))

	tests := []struct {
		name   string
		config string
		env    map[string]string
		want   map[string]Status
	}{
		{"insecure http and dropped audit records",
			"data-dir: " + data + "\ninsecure-http: true\naudit-queue-full: drop\n", nil,
			map[string]Status{"config.insecure-http": Fail, "config.audit-queue-full": Warn, "perm": Pass, "keys.master": Fail, "store": Fail}},
		{"operator certificate expiring",
			"data-dir: " + data + "\ntls-cert: " + certFile + "\ntls-key: " + keyFile + "\n", nil,
			map[string]Status{"config": Pass, "tls.operator-cert.expiry": Warn, "tls.operator-cert.key": Pass, "perm": Pass}},
		{"environment overrides",
			"data-dir: " + data + "\n", map[string]string{"RAMPART_PASSWORD_MIN_LENGTH": "10"},
			map[string]Status{"config.password-min-length": Warn, "tls.ca": Fail, "perm": Pass}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			file := filepath.Join(tmp, "rampart"+string(rune('a'+i))+".yaml")
			writeFile(t, file, tt.config)
			rs := Run(context.Background(), Options{
				ConfigFile: file,
				Env:        func(k string) (string, bool) { v, ok := tt.env[k]; return v, ok },
				Sandbox:    fakeSandbox,
			})
			ids := make([]string, 0, len(tt.want))
			for id := range tt.want {
				ids = append(ids, id)
			}
			if diff := cmp.Diff(tt.want, pick(rs, ids...)); diff != "" {
				t.Errorf("(-want +got):\n%s\nall: %+v", diff, rs)
			}
		})
	}
}

func TestRunServer(t *testing.T) {
	t.Parallel()
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" {
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close) // after the parallel subtests
	ca := filepath.Join(t.TempDir(), "ca.pem")
	writeFile(t, ca, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})))
	tests := []struct {
		name, url, ca string
		want          map[string]Status
	}{
		{"verified", srv.URL, ca, map[string]Status{"server.healthz": Pass, "server.tls-version": Pass, "server.cert.expiry": Pass}},
		{"unknown CA", srv.URL, "", map[string]Status{"server.healthz": Fail}},
		{"plain HTTP", "http://127.0.0.1:1", "", map[string]Status{"server.tls": Fail}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rs := Run(context.Background(), Options{Server: tt.url, CAFile: tt.ca, Sandbox: fakeSandbox})
			if diff := cmp.Diff(tt.want, pick(rs, "server.healthz", "server.tls-version", "server.cert.expiry", "server.tls")); diff != "" {
				t.Errorf("(-want +got):\n%s\nall: %+v", diff, rs)
			}
		})
	}
}
