package config

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func envMap(m map[string]string) Env {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func writeFile(t *testing.T, name, data string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadPrecedence(t *testing.T) {
	t.Parallel()
	file := writeFile(t, "rampart.yaml", `
data-dir: /from/file
listen: 127.0.0.1:1111
log-level: debug
max-request-bytes: 2MiB
tls-san: [rampart.example, 10.0.0.1]
read-timeout: 40s
`)
	env := envMap(map[string]string{
		"RAMPART_CONFIG":         file,
		"RAMPART_LISTEN":         "127.0.0.1:2222",
		"RAMPART_READ_TIMEOUT":   "50s",
		"RAMPART_ADMIN_PASSWORD": "a perfectly long passphrase",
	})
	got, err := Load([]string{"--listen", "127.0.0.1:3333"}, env, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := Default()
	want.ConfigFile = file
	want.DataDir = "/from/file"              // file only
	want.Listen = "127.0.0.1:3333"           // flag beats env beats file
	want.HTTP.ReadTimeout = 50 * time.Second // env beats file
	want.LogLevel = slog.LevelDebug
	want.HTTP.MaxRequestBytes = 2 << 20
	want.TLS.Hosts = []string{"rampart.example", "10.0.0.1"}
	want.AdminPassword = "a perfectly long passphrase"
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("config (-want +got):\n%s", d)
	}
}

func TestLoadDefaults(t *testing.T) {
	t.Parallel()
	got, err := Load([]string{"--data-dir", "/d"}, envMap(nil), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got.Listen != "127.0.0.1:8443" || got.TLS.InsecureHTTP || got.HTTP.MaxRequestBytes != 1<<20 {
		t.Errorf("insecure or unexpected defaults: %+v", got)
	}
	if _, err := Load([]string{"--data-dir", "/d", "--insecure-http"}, envMap(nil), nil); err != nil {
		t.Errorf("boolean flag without value: %v", err)
	}
}

// Every problem must be reported at once, each naming its setting.
func TestLoadReportsAllProblems(t *testing.T) {
	t.Parallel()
	badFile := writeFile(t, "bad.yaml", "listen: [unclosed\n")
	unknownKeys := writeFile(t, "unknown.yaml", "data-dir: /d\nlisten-addr: x\nadmin-password: nope\ntls-san: {a: b}\n")
	for _, tc := range []struct {
		name string
		args []string
		env  map[string]string
		want []string
	}{
		{
			name: "many flag values",
			args: []string{"--listen", "nonsense", "--max-request-bytes", "lots", "--read-timeout", "soon", "--log-level", "loud", "--tls-cert", "/nope.pem"},
			want: []string{"--max-request-bytes", "--read-timeout", "--log-level", "listen:", "tls-cert: cannot read", "data-dir: required"},
		},
		{
			name: "validation after parse",
			args: []string{"--listen", "nonsense", "--tls-cert", "/nonexistent/cert.pem", "--idle-timeout", "0s", "--tls-san", "bad_name!"},
			want: []string{"data-dir: required", "listen:", "tls-cert and tls-key", "tls-cert: cannot read", "idle-timeout", "tls-san"},
		},
		{
			name: "unknown flag",
			args: []string{"--data-dir", "/d", "--no-such-flag"},
			want: []string{"no-such-flag", "--help"},
		},
		{
			name: "stray argument",
			args: []string{"--data-dir", "/d", "extra"},
			want: []string{`unexpected argument "extra"`},
		},
		{
			name: "env values are named by variable",
			args: []string{"--data-dir", "/d"},
			env:  map[string]string{"RAMPART_WRITE_TIMEOUT": "fast", "RAMPART_INSECURE_HTTP": "maybe"},
			want: []string{"RAMPART_WRITE_TIMEOUT", "RAMPART_INSECURE_HTTP"},
		},
		{
			name: "weak admin password",
			args: []string{"--data-dir", "/d"},
			env:  map[string]string{"RAMPART_ADMIN_PASSWORD": "admin"},
			want: []string{"RAMPART_ADMIN_PASSWORD", "at least 15"},
		},
		{
			name: "admin password equal to user name",
			args: []string{"--data-dir", "/d"},
			env:  map[string]string{"RAMPART_ADMIN_PASSWORD": "adminadminadminadmin"},
			want: []string{"user name"},
		},
		{
			name: "insecure with tls",
			args: []string{"--data-dir", "/d", "--insecure-http", "--client-ca", "/x"},
			want: []string{"insecure-http: cannot be combined"},
		},
		{name: "missing config file", args: []string{"--config", "/nonexistent.yaml"}, want: []string{"cannot read /nonexistent.yaml"}},
		{name: "corrupt config file", args: []string{"--config", badFile}, want: []string{"not valid YAML"}},
		{name: "unknown keys", args: []string{"--config", unknownKeys}, want: []string{`unknown setting "listen-addr"`, `unknown setting "admin-password"`, "tls-san: must be a value or a list"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := Load(tc.args, envMap(tc.env), nil)
			if err == nil {
				t.Fatal("Load succeeded")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not mention %q:\n%v", w, err)
				}
			}
			if strings.Contains(err.Error(), "adminadminadminadmin") {
				t.Error("error echoes the password")
			}
		})
	}
}

func TestHelp(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	if _, err := Load([]string{"--help"}, envMap(nil), &out); !errors.Is(err, ErrHelp) {
		t.Fatalf("err = %v, want ErrHelp", err)
	}
	for _, w := range []string{"--data-dir", "RAMPART_DATA_DIR", "Precedence", "default 127.0.0.1:8443", "default 1MiB", "--insecure-http\n"} {
		if !strings.Contains(out.String(), w) {
			t.Errorf("help lacks %q", w)
		}
	}
}

func TestParseBytes(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]int64{"1024": 1024, "512KiB": 512 << 10, "1MiB": 1 << 20, "2 GiB": 2 << 30, "7B": 7} {
		if got, err := parseBytes(in); err != nil || got != want {
			t.Errorf("parseBytes(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "-1", "1TB", "MiB", "99999999999999999999GiB", "1.5MiB"} {
		if _, err := parseBytes(in); err == nil {
			t.Errorf("parseBytes(%q) succeeded", in)
		}
	}
}

func FuzzParseYAML(f *testing.F) {
	f.Add([]byte("data-dir: /d\nlisten: 127.0.0.1:1\ntls-san: [a, b]\n"))
	f.Add([]byte("listen: [unclosed\n"))
	f.Add([]byte("a: &a [*a, *a]\n"))
	f.Add([]byte("tls-san: {a: b}\n"))
	opts := options(new(Config))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := parseYAML(data, opts)
		if err != nil {
			return
		}
		for k := range m {
			if k == "config" {
				t.Fatal("config file may not name another config file")
			}
		}
	})
}

func TestIdentityOptions(t *testing.T) {
	t.Parallel()
	env := func(string) (string, bool) { return "", false }
	base := []string{"--data-dir", t.TempDir()}
	c, err := Load(append(base, "--issuer", "https://rampart.example.com", "--access-token-lifetime", "10m",
		"--password-min-length", "20", "--argon2-memory", "64MiB", "--argon2-time", "3", "--lockout-failures", "3",
		"--login-burst", "5"), env, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	id := c.Identity
	if id.Issuer != "https://rampart.example.com" || id.AccessTokenLifetime != 10*time.Minute || id.PasswordMinLength != 20 ||
		id.Argon2.MemoryKiB != 64*1024 || id.Argon2.Time != 3 || id.BruteForce.Account.MaxFailures != 3 || id.BruteForce.Source.Burst != 5 {
		t.Errorf("identity settings not applied: %+v", id)
	}
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--issuer", "ftp://x"}, "issuer:"},
		{[]string{"--issuer", "https://x/"}, "trailing slash"},
		{[]string{"--access-token-lifetime", "2h"}, "access-token-lifetime"},
		{[]string{"--session-lifetime", "1m"}, "session-lifetime"},
		{[]string{"--password-min-length", "7"}, "password-min-length"},
		{[]string{"--argon2-memory", "1MiB"}, "below the minimum"},
		{[]string{"--lockout-failures", "0"}, "cannot be turned off"},
	} {
		_, err := Load(append(base, tt.args...), env, io.Discard)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%v: error %v, want it to mention %q", tt.args, err, tt.want)
		}
	}
	// Weak hashing is possible only with the explicit insecure flag.
	if _, err := Load(append(base, "--argon2-memory", "1MiB", "--argon2-time", "1", "--insecure-weak-password-hashing"), env, io.Discard); err != nil {
		t.Errorf("weak hashing with the insecure flag: %v", err)
	}
}

func TestFederationFile(t *testing.T) {
	t.Parallel()
	env := func(string) (string, bool) { return "", false }
	write := func(body string) string {
		p := filepath.Join(t.TempDir(), "fed.yaml")
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("- name: corp\n  issuer: https://login.corp.example\n  audience: rampart\n  algorithms: [RS256]\n")
	c, err := Load([]string{"--data-dir", t.TempDir(), "--federation-file", good}, env, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Identity.Federation) != 1 || c.Identity.Federation[0].URL != "https://login.corp.example" || c.Identity.Federation[0].Audience != "rampart" {
		t.Errorf("federation = %+v", c.Identity.Federation)
	}
	for _, tt := range []struct{ body, want string }{
		{"- name: corp\n  issuer: https://x.example\n  audience: a\n  colour: red\n", "colour"},
		{"- name: corp\n  issuer: https://x.example\n  audience: a\n  algorithms: [HS256]\n", "HS256"},
		{"- name: corp\n  issuer: http://x.example\n  audience: a\n", "https"},
		{"- name: corp\n  issuer: https://x.example\n", "audience"},
		{"- name: a\n  issuer: https://x.example\n  audience: a\n- name: a\n  issuer: https://y.example\n  audience: a\n", "twice"},
		{"name: corp\n", "list"},
	} {
		_, err := Load([]string{"--data-dir", t.TempDir(), "--federation-file", write(tt.body)}, env, io.Discard)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: error %v, want it to mention %q", tt.body, err, tt.want)
		}
	}
}

func TestAuditOptions(t *testing.T) {
	t.Parallel()
	env := func(string) (string, bool) { return "", false }
	base := []string{"--data-dir", t.TempDir()}
	c, err := Load(base, env, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.Audit != DefaultAudit() || c.Audit.QueueFull != QueueRefuse || c.Audit.InferenceSampleRate != 0.01 {
		t.Errorf("audit defaults = %+v", c.Audit)
	}
	file := filepath.Join(t.TempDir(), "audit.jsonl")
	c, err = Load(append(base, "--audit-checkpoint-records", "50", "--audit-checkpoint-interval", "10s",
		"--audit-file", file, "--audit-stdout", "--audit-queue-size", "500", "--audit-queue-full", "drop",
		"--audit-inference-sample-rate", "0.5", "--audit-retention", "720h"), env, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	want := Audit{CheckpointRecords: 50, CheckpointInterval: 10 * time.Second, File: file, Stdout: true,
		QueueSize: 500, QueueFull: QueueDrop, InferenceSampleRate: 0.5, Retention: 720 * time.Hour}
	if c.Audit != want {
		t.Errorf("audit settings = %+v, want %+v", c.Audit, want)
	}
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--audit-checkpoint-records", "0"}, "audit-checkpoint-records"},
		{[]string{"--audit-checkpoint-interval", "10ms"}, "audit-checkpoint-interval"},
		{[]string{"--audit-file", "relative.jsonl"}, "absolute"},
		{[]string{"--audit-queue-size", "5"}, "audit-queue-size"},
		{[]string{"--audit-queue-full", "block"}, "audit-queue-full"},
		{[]string{"--audit-inference-sample-rate", "1.5"}, "audit-inference-sample-rate"},
		{[]string{"--audit-inference-sample-rate", "lots"}, "not a number"},
		{[]string{"--audit-retention", "1h"}, "audit-retention"},
	} {
		_, err := Load(append(base, tt.args...), env, io.Discard)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%v: error %v, want it to mention %q", tt.args, err, tt.want)
		}
	}
}

func TestInferenceOptions(t *testing.T) {
	t.Parallel()
	env := func(k string) (string, bool) {
		if k == "RAMPART_ONNXRUNTIME_LIB" {
			return "/opt/ort/libonnxruntime.so.1", true
		}
		return "", false
	}
	base := []string{"--data-dir", t.TempDir()}
	c, err := Load(append(base, "--inference-max-request-bytes", "8MiB", "--inference-max-elements", "1000",
		"--inference-principal-rate", "50.5", "--inference-principal-burst", "7", "--inference-service-rate", "100",
		"--inference-service-burst", "9", "--worker-user", "1000:1000"), env, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	want := Inference{MaxRequestBytes: 8 << 20, MaxElements: 1000, PrincipalRate: 50.5, PrincipalBurst: 7,
		ServiceRate: 100, ServiceBurst: 9, RuntimeLibrary: "/opt/ort/libonnxruntime.so.1", WorkerUser: "1000:1000"}
	if c.Inference != want {
		t.Errorf("inference settings = %+v, want %+v", c.Inference, want)
	}
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--inference-max-request-bytes", "10"}, "inference-max-request-bytes"},
		{[]string{"--inference-max-elements", "0"}, "inference-max-elements"},
		{[]string{"--inference-principal-rate", "0"}, "inference-principal-rate"},
		{[]string{"--inference-service-burst", "0"}, "inference-service-burst"},
		{[]string{"--onnxruntime-lib", "lib.so"}, "absolute"},
		{[]string{"--worker-user", "0:0"}, "never run as root"},
		{[]string{"--worker-user", "nobody"}, "UID:GID"},
	} {
		_, err := Load(append(base, tt.args...), func(string) (string, bool) { return "", false }, io.Discard)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%v: error %v, want it to mention %q", tt.args, err, tt.want)
		}
	}
}
