package main

// End-to-end tests: TestMain builds the real binary once; every test runs it
// as a real process and talks real TLS to it over loopback. The server
// listens on 127.0.0.1:0 and the tests read the address from its "listening"
// log line.

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	_ "modernc.org/sqlite" // to tamper with rampart.db in TestDatabaseFaults

	"github.com/rampart-ml/rampart/internal/pki/pkitest"
)

// rampartBin is the binary under test, built once by TestMain.
var rampartBin string

const (
	startTimeout = 15 * time.Second // from exec to the "listening" line
	exitTimeout  = 15 * time.Second // from a signal (or a refused start) to exit
)

func TestMain(m *testing.M) { os.Exit(buildAndRun(m)) }

func buildAndRun(m *testing.M) int {
	dir, err := os.MkdirTemp("", "rampart-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	rampartBin = filepath.Join(dir, "rampart")
	// -buildvcs=false: the build must not depend on git being usable here.
	build := exec.Command("go", "build", "-buildvcs=false", "-o", rampartBin, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: go build:", err)
		return 1
	}
	return m.Run()
}

// ---------------------------------------------------------------------------
// Process helper

// proc is one rampart process.
type proc struct {
	t       *testing.T
	cmd     *exec.Cmd
	stdout  *lineLog
	stderr  *lineLog
	done    chan struct{} // closed when the process has exited
	code    int           // exit code (-1 if killed by a signal); valid once done is closed
	dataDir string        // for serve
	url     string        // set by waitListening
}

// startProc starts rampart with args and env added to a clean environment.
// The process is killed in t.Cleanup if it is still running, and its output
// is logged if the test failed.
func startProc(t *testing.T, env []string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(rampartBin, args...) // #nosec G204 -- test binary
	cmd.Env = append(cleanEnv(), env...)
	p := &proc{t: t, cmd: cmd, stdout: newLineLog(), stderr: newLineLog(), done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.stdout, p.stderr
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatalf("start rampart: %v", err)
	}
	go func() {
		_ = cmd.Wait()
		p.code = cmd.ProcessState.ExitCode()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("rampart %s (exit %d)\n--- stdout:\n%s--- stderr:\n%s",
				strings.Join(args, " "), p.code, p.stdout, p.stderr)
		}
	})
	return p
}

// cleanEnv is this process's environment without RAMPART_* variables, so
// the developer's settings do not leak into the tests.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "RAMPART_") {
			env = append(env, kv)
		}
	}
	return env
}

// runRampart runs a command that is expected to exit by itself.
func runRampart(t *testing.T, env []string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	p := startProc(t, env, args...)
	code = p.wait(exitTimeout)
	return code, p.stdout.String(), p.stderr.String()
}

// startServer runs `rampart serve` on dataDir, listening on a free loopback
// port, and waits until it is listening.
func startServer(t *testing.T, dataDir string, extra ...string) *proc {
	t.Helper()
	return startServerEnv(t, nil, dataDir, extra...)
}

func startServerEnv(t *testing.T, env []string, dataDir string, extra ...string) *proc {
	t.Helper()
	p := startServing(t, env, dataDir, extra...)
	p.waitListening()
	return p
}

// startServing starts `rampart serve` without waiting for it.
func startServing(t *testing.T, env []string, dataDir string, extra ...string) *proc {
	t.Helper()
	args := append([]string{"serve", "--data-dir", dataDir, "--listen", "127.0.0.1:0"}, extra...)
	p := startProc(t, env, args...)
	p.dataDir = dataDir
	return p
}

// waitListening waits for the "listening" log line and returns its URL.
func (p *proc) waitListening() string {
	p.t.Helper()
	ok := p.waitStderr(startTimeout, func() bool {
		if e := p.findLog(func(e logEntry) bool { return e.msg() == "listening" }); e != nil {
			p.url, _ = e["url"].(string)
			return true
		}
		return false
	})
	if !ok {
		select {
		case <-p.done:
			p.t.Fatalf("rampart exited with code %d before listening", p.code)
		default:
			p.t.Fatalf("rampart did not log \"listening\" within %v", startTimeout)
		}
	}
	if p.url == "" {
		p.t.Fatal(`"listening" log line has no url`)
	}
	return p.url
}

// waitStderr waits until cond holds, re-checking whenever stderr grows.
// It returns false on timeout, or if the process exits without cond.
func (p *proc) waitStderr(timeout time.Duration, cond func() bool) bool {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		changed := p.stderr.changed()
		if cond() {
			return true
		}
		select {
		case <-changed:
		case <-p.done:
			return cond()
		case <-deadline.C:
			return false
		}
	}
}

// wait waits for the process to exit and returns its exit code.
func (p *proc) wait(timeout time.Duration) int {
	p.t.Helper()
	select {
	case <-p.done:
		return p.code
	case <-time.After(timeout):
		p.t.Fatalf("rampart did not exit within %v", timeout)
		return 0
	}
}

// stop sends sig and returns the exit code.
func (p *proc) stop(sig os.Signal) int {
	p.t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatalf("signal %v: %v", sig, err)
	}
	return p.wait(exitTimeout)
}

// stopOK stops the server with SIGTERM and fails unless it exits 0.
func (p *proc) stopOK() {
	p.t.Helper()
	if code := p.stop(syscall.SIGTERM); code != 0 {
		p.t.Fatalf("after SIGTERM: exit code %d, want 0", code)
	}
}

// addr is the server's HOST:PORT.
func (p *proc) addr() string {
	return strings.TrimPrefix(strings.TrimPrefix(p.url, "https://"), "http://")
}

// caFile is the private CA certificate clients trust.
func (p *proc) caFile() string { return filepath.Join(p.dataDir, "tls", "ca.pem") }

// roots is a pool holding the server's private CA.
func (p *proc) roots() *x509.CertPool {
	p.t.Helper()
	return poolFromFile(p.t, p.caFile())
}

// client is an HTTP client that trusts the server's private CA.
func (p *proc) client() *http.Client {
	p.t.Helper()
	return newClient(p.t, &tls.Config{RootCAs: p.roots(), MinVersion: tls.VersionTLS12})
}

// logs returns stderr's JSON log lines, parsed.
func (p *proc) logs() []logEntry {
	var out []logEntry
	for _, line := range p.stderr.lines() {
		var e logEntry
		if strings.HasPrefix(line, "{") && json.Unmarshal([]byte(line), &e) == nil {
			out = append(out, e)
		}
	}
	return out
}

func (p *proc) findLog(match func(logEntry) bool) logEntry {
	for _, e := range p.logs() {
		if match(e) {
			return e
		}
	}
	return nil
}

func (p *proc) countLogs(match func(logEntry) bool) int {
	n := 0
	for _, e := range p.logs() {
		if match(e) {
			n++
		}
	}
	return n
}

// logEntry is one slog JSON line.
type logEntry map[string]any

func (e logEntry) msg() string   { s, _ := e["msg"].(string); return s }
func (e logEntry) level() string { s, _ := e["level"].(string); return s }

func msgIs(msg string) func(logEntry) bool {
	return func(e logEntry) bool { return e.msg() == msg }
}

func msgHasPrefix(prefix string) func(logEntry) bool {
	return func(e logEntry) bool { return strings.HasPrefix(e.msg(), prefix) }
}

// lineLog collects a process's output; waiters learn of every write.
type lineLog struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	notify chan struct{} // closed and replaced on every write
}

func newLineLog() *lineLog { return &lineLog{notify: make(chan struct{})} }

func (l *lineLog) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf.Write(b)
	close(l.notify)
	l.notify = make(chan struct{})
	return len(b), nil
}

func (l *lineLog) changed() <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.notify
}

func (l *lineLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// lines returns the complete lines written so far.
func (l *lineLog) lines() []string {
	s := l.String()
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return strings.Split(s[:i], "\n")
	}
	return nil
}

// ---------------------------------------------------------------------------
// HTTP and TLS helpers

func newClient(t *testing.T, cfg *tls.Config) *http.Client {
	tr := &http.Transport{TLSClientConfig: cfg, TLSHandshakeTimeout: 5 * time.Second}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

type response struct {
	status int
	header http.Header
	body   []byte
	tls    *tls.ConnectionState
}

func get(t *testing.T, c *http.Client, url string) response {
	t.Helper()
	r, err := tryGet(c, url, nil)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return r
}

func tryGet(c *http.Client, url string, header http.Header) (response, error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return response{}, err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := c.Do(req)
	if err != nil {
		return response{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return response{}, fmt.Errorf("read body: %w", err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: body, tls: resp.TLS}, nil
}

// wantJSON checks the status, the JSON content type and the body.
func wantJSON(t *testing.T, what string, r response, status int, body any) {
	t.Helper()
	if r.status != status {
		t.Errorf("%s: status %d, want %d; body %s", what, r.status, status, r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("%s: Content-Type %q, want application/json", what, ct)
	}
	if body == nil {
		return
	}
	var got map[string]string
	if err := json.Unmarshal(r.body, &got); err != nil {
		t.Errorf("%s: body %q is not a JSON object of strings: %v", what, r.body, err)
		return
	}
	if diff := cmp.Diff(body, got); diff != "" {
		t.Errorf("%s: body (-want +got):\n%s", what, diff)
	}
}

// wantErrorBody checks that r is a JSON {"error": "...", "code": "..."}.
func wantErrorBody(t *testing.T, what string, r response) {
	t.Helper()
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("%s: Content-Type %q, want application/json", what, ct)
	}
	var got map[string]any
	if err := json.Unmarshal(r.body, &got); err != nil {
		t.Errorf("%s: body %q is not JSON: %v", what, r.body, err)
		return
	}
	for _, k := range []string{"error", "code"} {
		if s, _ := got[k].(string); s == "" {
			t.Errorf("%s: body %s lacks a non-empty %q", what, r.body, k)
		}
	}
}

func poolFromFile(t *testing.T, file string) *x509.CertPool {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		t.Fatalf("%s holds no PEM certificate", file)
	}
	return pool
}

func writeFile(t *testing.T, path string, data []byte, mode os.FileMode) string {
	t.Helper()
	if err := os.WriteFile(path, data, mode); err != nil {
		t.Fatal(err)
	}
	return path
}

// ---------------------------------------------------------------------------
// Data directory helpers

// freshDataDir is a path under t.TempDir() that does not exist yet.
func freshDataDir(t *testing.T) string { return filepath.Join(t.TempDir(), "data") }

// initializedDataDir is a data directory after one clean start and stop.
func initializedDataDir(t *testing.T) string {
	t.Helper()
	dir := freshDataDir(t)
	startServer(t, dir).stopOK()
	return dir
}

func wantMode(t *testing.T, path string, want fs.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Errorf("%v", err)
		return
	}
	if got := fi.Mode().Perm(); got != want {
		t.Errorf("%s: mode %04o, want %04o", path, got, want)
	}
}

func wantNotExist(t *testing.T, path string) {
	t.Helper()
	if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("%s exists (or cannot be checked: %v); want it not created", path, err)
	}
}

// refuseToServe runs `rampart serve` on dataDir expecting it to refuse to
// start: a non-zero exit, soon, with an error message (not a crash) that
// mentions every one of want. It returns stderr.
func refuseToServe(t *testing.T, env []string, dataDir string, want ...string) string {
	t.Helper()
	code, _, stderr := runRampart(t, env, "serve", "--data-dir", dataDir, "--listen", "127.0.0.1:0")
	if code == 0 {
		t.Error("exit code 0, want non-zero")
	}
	wantNoCrash(t, stderr)
	if strings.Contains(stderr, `"msg":"listening"`) {
		t.Error("the server started listening")
	}
	wantContains(t, "stderr", stderr, want...)
	return stderr
}

// wantNoCrash fails if stderr shows a Go panic or fatal error: a refused
// start must be an error message, never a crash (whose exit code 2 would
// also pass for a usage error).
func wantNoCrash(t *testing.T, stderr string) {
	t.Helper()
	for _, sign := range []string{"panic: ", "fatal error: ", "goroutine 1 ["} {
		if strings.Contains(stderr, sign) {
			t.Errorf("rampart crashed instead of reporting an error:\n%s", stderr)
			return
		}
	}
}

func wantContains(t *testing.T, what, s string, subs ...string) {
	t.Helper()
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			t.Errorf("%s does not mention %q:\n%s", what, sub, s)
		}
	}
}

// ---------------------------------------------------------------------------
// Tests

// TestFirstStart covers a first start on an empty data directory: what it
// serves, what it writes (and with which modes), what it tells the operator,
// and what it refuses on the wire.
func TestFirstStart(t *testing.T) {
	t.Parallel()
	dir := freshDataDir(t)
	s := startServer(t, dir)
	if !strings.HasPrefix(s.url, "https://127.0.0.1:") {
		t.Fatalf("listening url %q, want https://127.0.0.1:PORT", s.url)
	}
	c := s.client()

	wantJSON(t, "GET /healthz", get(t, c, s.url+"/healthz"), http.StatusOK, map[string]string{"status": "ok"})
	wantJSON(t, "GET /readyz", get(t, c, s.url+"/readyz"), http.StatusOK, map[string]string{"status": "ready"})

	m := get(t, c, s.url+"/metrics")
	if m.status != http.StatusOK {
		t.Errorf("GET /metrics: status %d", m.status)
	}
	wantContains(t, "/metrics", string(m.body),
		`rampart_http_requests_total{code="200",method="GET",route="GET /healthz"} 1`,
		"rampart_build_info{")

	t.Run("not found", func(t *testing.T) {
		r := get(t, c, s.url+"/no/such/endpoint")
		if r.status != http.StatusNotFound {
			t.Errorf("GET /no/such/endpoint: status %d, want 404", r.status)
		}
		wantErrorBody(t, "GET /no/such/endpoint", r)
	})
	t.Run("protected path", func(t *testing.T) {
		r := get(t, c, s.url+"/api/v1/anything")
		if r.status != http.StatusNotFound && r.status != http.StatusUnauthorized {
			t.Errorf("GET /api/v1/anything: status %d, want 404 or 401; body %s", r.status, r.body)
		}
		wantErrorBody(t, "GET /api/v1/anything", r)
	})

	t.Run("files", func(t *testing.T) {
		wantMode(t, dir, 0o700)
		wantMode(t, filepath.Join(dir, "tls"), 0o700)
		for _, f := range []string{"initial-admin-password", "rampart.db", "tls/ca-key.pem", "tls/server-key.pem"} {
			wantMode(t, filepath.Join(dir, f), 0o600)
		}
		pw := readPassword(t, dir)
		if len(pw) < 20 {
			t.Errorf("initial admin password has %d characters, want at least 20", len(pw))
		}
		if strings.Contains(s.stderr.String(), pw) {
			t.Error("stderr (the logs) contains the admin password")
		}
		if strings.Contains(s.stdout.String(), pw) {
			t.Error("stdout (the banner) contains the admin password")
		}
		if n := s.countLogs(msgHasPrefix("created the admin account")); n != 1 {
			t.Errorf(`%d "created the admin account" log lines, want 1`, n)
		}
	})

	t.Run("banner", func(t *testing.T) {
		wantContains(t, "stdout banner", s.stdout.String(),
			s.url, s.caFile(), filepath.Join(dir, "initial-admin-password"))
	})

	t.Run("plain HTTP on the TLS port", func(t *testing.T) {
		conn, err := net.DialTimeout("tcp", s.addr(), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.WriteString(conn, "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(conn)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("server neither answered nor closed a plain HTTP connection (read %q)", got)
		}
		if len(got) > 0 && !bytes.HasPrefix(got, []byte("HTTP/1.0 400 ")) && !bytes.HasPrefix(got, []byte("HTTP/1.1 400 ")) {
			t.Errorf("plain HTTP request answered with %q, want a 400 or nothing", got)
		}
		if bytes.Contains(got, []byte(`"status"`)) {
			t.Errorf("plain HTTP request was served: %q", got)
		}
	})

	t.Run("TLS versions and ciphers", func(t *testing.T) {
		dial := func(cfg *tls.Config) (*tls.Conn, error) {
			cfg.RootCAs = s.roots()
			return tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", s.addr(), cfg)
		}
		conn, err := dial(&tls.Config{MinVersion: tls.VersionTLS12, MaxVersion: tls.VersionTLS12})
		if err != nil {
			t.Fatalf("TLS 1.2 refused: %v", err)
		}
		_ = conn.Close()
		// Refused for its version, not merely for want of a common cipher
		// suite (TLS 1.1 has no AEAD suites).
		if conn, err := dial(&tls.Config{MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11}); err == nil {
			_ = conn.Close()
			t.Errorf("TLS 1.1 handshake succeeded (version %x), want it refused", conn.ConnectionState().Version)
		} else if !strings.Contains(err.Error(), "protocol version") {
			t.Errorf("TLS 1.1 handshake failed with %q, want a protocol version alert", err)
		}
		cbc := &tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{
			tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA}}
		if conn, err := dial(cbc); err == nil {
			_ = conn.Close()
			t.Errorf("TLS 1.2 with a CBC (non-AEAD) cipher suite succeeded (%s), want it refused",
				tls.CipherSuiteName(conn.ConnectionState().CipherSuite))
		}
	})

	s.stopOK()
}

func readPassword(t *testing.T, dir string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "initial-admin-password"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(data))
}

// TestRestartKeepsState stops a server with SIGTERM and starts it again on
// the same data directory: the CA, the admin account and its password file
// are kept, not recreated.
func TestRestartKeepsState(t *testing.T) {
	t.Parallel()
	dir := freshDataDir(t)
	first := startServer(t, dir)
	caBefore, err := os.ReadFile(first.caFile())
	if err != nil {
		t.Fatal(err)
	}
	pwBefore := readPassword(t, dir)
	oldClient := first.client() // trusts the first start's CA
	first.stopOK()
	if first.findLog(msgIs("stopped")) == nil {
		t.Error(`no "stopped" log line after SIGTERM`)
	}

	second := startServer(t, dir)
	caAfter, err := os.ReadFile(second.caFile())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(caBefore, caAfter) {
		t.Error("ca.pem changed across a restart; clients would have to trust a new CA")
	}
	if got := readPassword(t, dir); got != pwBefore {
		t.Error("initial-admin-password changed across a restart")
	}
	if n := second.countLogs(msgHasPrefix("created the admin account")); n != 0 {
		t.Errorf(`second start logged "created the admin account" %d times, want 0`, n)
	}
	// A client configured from the first start still connects.
	wantJSON(t, "GET /healthz after restart", get(t, oldClient, second.url+"/healthz"), http.StatusOK, map[string]string{"status": "ok"})
	second.stopOK()
}

// TestSecondServerOnSameDataDirIsRefused: the data directory lock keeps a
// second server out, quickly, while the first one goes on serving.
func TestSecondServerOnSameDataDirIsRefused(t *testing.T) {
	t.Parallel()
	dir := freshDataDir(t)
	first := startServer(t, dir)
	pw := readPassword(t, dir)

	start := time.Now()
	refuseToServe(t, nil, dir, "in use by another rampart process", fmt.Sprintf("pid %d", first.cmd.Process.Pid))
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("second server took %v to give up, want it quick (not waiting for the lock)", d)
	}

	wantJSON(t, "first server GET /healthz", get(t, first.client(), first.url+"/healthz"), http.StatusOK, map[string]string{"status": "ok"})
	if got := readPassword(t, dir); got != pw {
		t.Error("the refused second server changed initial-admin-password")
	}
	first.stopOK()
}

// TestListenAddressInUse: a port held by another process is a clear error,
// reported after the data directory, store and TLS were opened, so it also
// checks that a late failure unwinds cleanly.
func TestListenAddressInUse(t *testing.T) {
	t.Parallel()
	first := startServer(t, freshDataDir(t))
	code, _, stderr := runRampart(t, nil, "serve", "--data-dir", freshDataDir(t), "--listen", first.addr())
	if code == 0 {
		t.Error("exit code 0, want non-zero")
	}
	wantNoCrash(t, stderr)
	wantContains(t, "stderr", stderr, "listen on "+first.addr(), "address already in use")
	wantJSON(t, "first server GET /healthz", get(t, first.client(), first.url+"/healthz"), http.StatusOK, map[string]string{"status": "ok"})
	first.stopOK()
}

// TestBadConfigurationChangesNothing: every configuration error exits 2,
// says what is wrong (all problems at once), and creates no data directory.
func TestBadConfigurationChangesNothing(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		args []string
		env  []string
		file string // contents of a config file passed as --config
		want []string
	}{
		{
			name: "unknown flag",
			args: []string{"--bogus-flag"},
			want: []string{"bogus-flag"},
		},
		{
			name: "several bad values",
			args: []string{"--max-request-bytes", "lots", "--read-timeout", "soon", "--listen", "nohostport"},
			want: []string{"--max-request-bytes", `"lots"`, "--read-timeout", `"soon"`, "listen", `"nohostport"`},
		},
		{
			name: "bad value in the environment",
			env:  []string{"RAMPART_READ_TIMEOUT=soon"},
			want: []string{"RAMPART_READ_TIMEOUT", `"soon"`},
		},
		{
			name: "unreadable config file",
			args: []string{"--config", "/nonexistent/rampart.yaml"},
			want: []string{"/nonexistent/rampart.yaml", "cannot read"},
		},
		{
			name: "corrupt YAML",
			file: "listen: [127.0.0.1:0\nread-timeout: {\n",
			want: []string{"not valid YAML"},
		},
		{
			name: "unknown key in the config file",
			file: "listen: 127.0.0.1:0\nlisten_address: 0.0.0.0:443\n",
			want: []string{`unknown setting "listen_address"`},
		},
		{
			name: "bad value in the config file",
			file: "read-timeout: soon\n",
			want: []string{"read-timeout", `"soon"`},
		},
		{
			name: "client CA file that holds no certificate",
			args: []string{"--client-ca", "/dev/null"},
			want: []string{"client-ca", "no PEM certificate"},
		},
		{
			name: "tls-cert without tls-key",
			args: []string{"--tls-cert", "/nonexistent/cert.pem"},
			want: []string{"tls-key", "/nonexistent/cert.pem"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tmp := t.TempDir()
			dir := filepath.Join(tmp, "data")
			args := append([]string{"serve", "--data-dir", dir, "--listen", "127.0.0.1:0"}, tc.args...)
			if tc.file != "" {
				cfg := writeFile(t, filepath.Join(tmp, "rampart.yaml"), []byte(tc.file), 0o600)
				args = append(args, "--config", cfg)
				tc.want = append(tc.want, cfg)
			}
			code, stdout, stderr := runRampart(t, tc.env, args...)
			if code != exitUsage {
				t.Errorf("exit code %d, want %d", code, exitUsage)
			}
			wantNoCrash(t, stderr)
			wantContains(t, "stderr", stderr, tc.want...)
			if strings.Contains(stderr, `"msg":"listening"`) || stdout != "" {
				t.Errorf("the server started:\nstdout: %s\nstderr: %s", stdout, stderr)
			}
			wantNotExist(t, dir)
		})
	}
}

// TestAdminPasswordFromEnvironment: RAMPART_ADMIN_PASSWORD must pass the
// password policy; a good one replaces the generated password file.
func TestAdminPasswordFromEnvironment(t *testing.T) {
	t.Parallel()
	t.Run("too short", func(t *testing.T) {
		t.Parallel()
		const pw = "Qz7shortpw" // distinctive, to spot it echoed
		dir := freshDataDir(t)
		code, stdout, stderr := runRampart(t, []string{"RAMPART_ADMIN_PASSWORD=" + pw},
			"serve", "--data-dir", dir, "--listen", "127.0.0.1:0")
		if code != exitUsage {
			t.Errorf("exit code %d, want %d", code, exitUsage)
		}
		wantNoCrash(t, stderr)
		wantContains(t, "stderr", stderr, "RAMPART_ADMIN_PASSWORD", "at least 15 characters")
		if strings.Contains(stderr+stdout, pw) {
			t.Error("the output repeats the rejected password")
		}
		wantNotExist(t, dir)
	})
	t.Run("strong", func(t *testing.T) {
		t.Parallel()
		const pw = "correct horse battery staple 42"
		dir := freshDataDir(t)
		s := startServerEnv(t, []string{"RAMPART_ADMIN_PASSWORD=" + pw}, dir)
		wantJSON(t, "GET /healthz", get(t, s.client(), s.url+"/healthz"), http.StatusOK, map[string]string{"status": "ok"})
		s.stopOK()
		wantNotExist(t, filepath.Join(dir, "initial-admin-password"))
		if strings.Contains(s.stdout.String(), "initial-admin-password") {
			t.Errorf("banner points to a password file that was not written:\n%s", s.stdout)
		}
		if s.findLog(msgHasPrefix("created the admin account")) == nil {
			t.Error(`no "created the admin account" log line`)
		}
		if strings.Contains(s.stderr.String(), pw) || strings.Contains(s.stdout.String(), pw) {
			t.Error("the output contains the admin password")
		}
	})
}

// TestInsecurePermissionsAreRefused: a data directory or key that group or
// others can read stops the server, with the chmod that fixes it.
func TestInsecurePermissionsAreRefused(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		path string // relative to the data dir; "" is the data dir itself
		mode os.FileMode
		want string
	}{
		{"data dir 0755", "", 0o755, "chmod 700"},
		{"CA key 0644", "tls/ca-key.pem", 0o644, "chmod 600"},
		{"server key 0640", "tls/server-key.pem", 0o640, "chmod 600"},
		{"password file 0604", "initial-admin-password", 0o604, "chmod 600"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := initializedDataDir(t)
			target := filepath.Join(dir, tc.path)
			if err := os.Chmod(target, tc.mode); err != nil {
				t.Fatal(err)
			}
			refuseToServe(t, nil, dir, tc.want+" "+target)
		})
	}
}

// TestDatabaseFaults: a damaged database or one from a newer Rampart stops
// the server with a message that says so.
func TestDatabaseFaults(t *testing.T) {
	t.Parallel()
	t.Run("garbage", func(t *testing.T) {
		t.Parallel()
		dir := initializedDataDir(t)
		db := filepath.Join(dir, "rampart.db")
		for _, f := range []string{db + "-wal", db + "-shm"} {
			_ = os.Remove(f)
		}
		writeFile(t, db, bytes.Repeat([]byte("this is not an SQLite database. "), 256), 0o600)
		refuseToServe(t, nil, dir, "corrupt", db)
	})
	t.Run("newer schema", func(t *testing.T) {
		t.Parallel()
		dir := initializedDataDir(t)
		db, err := sql.Open("sqlite", filepath.Join(dir, "rampart.db"))
		if err != nil {
			t.Fatal(err)
		}
		_, err = db.Exec(`INSERT INTO schema_migrations(version, applied_at) VALUES (9999, 'x')`)
		if cerr := db.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			t.Fatal(err)
		}
		refuseToServe(t, nil, dir, "newer", "upgrade")
	})
}

// TestDataDirNotCreatable: a data directory that cannot be created is a
// clear error. (Tests run as root, so a read-only parent would not stop
// writes; a regular file in the path does.)
func TestDataDirNotCreatable(t *testing.T) {
	t.Parallel()
	file := writeFile(t, filepath.Join(t.TempDir(), "file"), []byte("x"), 0o600)
	for name, dir := range map[string]string{"under a file": filepath.Join(file, "data"), "is a file": file} {
		t.Run(name, func(t *testing.T) {
			refuseToServe(t, nil, dir, "data dir", "not a directory")
		})
	}
}

// TestInsecureHTTPWarnsAtEveryStart: --insecure-http serves plain HTTP and
// says so loudly each time it starts.
func TestInsecureHTTPWarnsAtEveryStart(t *testing.T) {
	t.Parallel()
	dir := freshDataDir(t)
	plain := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{}}
	isWarning := func(e logEntry) bool { return e.level() == "WARN" && strings.Contains(e.msg(), "INSECURE") }
	for i := 1; i <= 2; i++ {
		s := startServer(t, dir, "--insecure-http")
		if !strings.HasPrefix(s.url, "http://127.0.0.1:") {
			t.Errorf("start %d: url %q, want http://127.0.0.1:PORT", i, s.url)
		}
		wantJSON(t, "GET /healthz", get(t, plain, s.url+"/healthz"), http.StatusOK, map[string]string{"status": "ok"})
		if n := s.countLogs(isWarning); n != 1 {
			t.Errorf("start %d: %d WARN lines mentioning INSECURE, want 1", i, n)
		}
		s.stopOK()
	}
	plain.CloseIdleConnections()
	wantNotExist(t, filepath.Join(dir, "tls", "ca.pem"))
}

// TestSlowClientsAreCutOff: connections that never finish their TLS
// handshake or their request headers are closed after about
// --read-header-timeout, and other clients are served meanwhile.
func TestSlowClientsAreCutOff(t *testing.T) {
	t.Parallel()
	// --read-timeout (and the default --write-timeout) are far longer, so
	// only --read-header-timeout can explain a close after about 1s: it
	// bounds the TLS handshake and the request headers.
	s := startServer(t, freshDataDir(t), "--read-header-timeout", "1s", "--read-timeout", "10s")
	roots := s.roots()

	type result struct {
		name    string
		elapsed time.Duration // from the start of the slow phase to the server's close
		err     error         // the test's own failure, not the server's close
	}
	results := make(chan result, 3)
	// untilClosed reads until the server closes conn; a read timeout (8 s)
	// means it never did.
	untilClosed := func(name string, conn net.Conn, start time.Time) {
		defer conn.Close()
		_ = conn.SetReadDeadline(start.Add(8 * time.Second))
		_, err := io.Copy(io.Discard, conn)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			results <- result{name: name, err: fmt.Errorf("server did not close the connection in %v", time.Since(start))}
			return
		}
		results <- result{name: name, elapsed: time.Since(start)}
	}
	dialTLS := func() (*tls.Conn, error) {
		return tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", s.addr(),
			&tls.Config{RootCAs: roots, NextProtos: []string{"http/1.1"}})
	}

	// 1. TCP only: never starts the TLS handshake.
	go func() {
		conn, err := net.DialTimeout("tcp", s.addr(), 5*time.Second)
		if err != nil {
			results <- result{name: "no handshake", err: err}
			return
		}
		untilClosed("no handshake", conn, time.Now())
	}()
	// 2. Handshake, then silence.
	go func() {
		conn, err := dialTLS()
		if err != nil {
			results <- result{name: "silent", err: err}
			return
		}
		untilClosed("silent", conn, time.Now())
	}()
	// 3. Handshake, then a request line and headers trickled forever.
	go func() {
		conn, err := dialTLS()
		if err != nil {
			results <- result{name: "trickle", err: err}
			return
		}
		start := time.Now()
		go func() {
			if _, err := io.WriteString(conn, "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n"); err != nil {
				return
			}
			for i := 0; i < 30; i++ {
				time.Sleep(200 * time.Millisecond)
				if _, err := fmt.Fprintf(conn, "X-Slow-%d: 1\r\n", i); err != nil {
					return // closed by the server
				}
			}
		}()
		untilClosed("trickle", conn, start)
	}()

	// Meanwhile, a well-behaved client is served.
	c := s.client()
	for i := 0; i < 5; i++ {
		wantJSON(t, "GET /healthz during slow clients", get(t, c, s.url+"/healthz"), http.StatusOK, map[string]string{"status": "ok"})
		time.Sleep(150 * time.Millisecond)
	}

	for i := 0; i < 3; i++ {
		r := <-results
		switch {
		case r.err != nil:
			t.Errorf("%s: %v", r.name, r.err)
		case r.elapsed < 500*time.Millisecond || r.elapsed > 5*time.Second:
			t.Errorf("%s: server closed the connection after %v, want about 1s (--read-header-timeout)", r.name, r.elapsed)
		default:
			t.Logf("%s: closed after %v", r.name, r.elapsed.Round(time.Millisecond))
		}
	}
	wantJSON(t, "GET /healthz after slow clients", get(t, c, s.url+"/healthz"), http.StatusOK, map[string]string{"status": "ok"})
	s.stopOK()
}

// TestHugeHeaders: request headers over 64 KiB get 431 and the server goes
// on serving; headers under the limit are fine.
func TestHugeHeaders(t *testing.T) {
	t.Parallel()
	s := startServer(t, freshDataDir(t))
	c := s.client()

	r, err := tryGet(c, s.url+"/healthz", http.Header{"X-Big": {strings.Repeat("a", 80<<10)}})
	if err != nil {
		t.Fatalf("GET with 80 KiB of headers: %v", err)
	}
	if r.status != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("GET with 80 KiB of headers: status %d, want 431", r.status)
	}
	r, err = tryGet(c, s.url+"/healthz", http.Header{"X-Big": {strings.Repeat("a", 60<<10)}})
	if err != nil {
		t.Fatalf("GET with 60 KiB of headers: %v", err)
	}
	if r.status != http.StatusOK {
		t.Errorf("GET with 60 KiB of headers: status %d, want 200", r.status)
	}
	wantJSON(t, "GET /healthz afterwards", get(t, c, s.url+"/healthz"), http.StatusOK, map[string]string{"status": "ok"})
	s.stopOK()
}

// TestSIGINTStopsGracefully: Ctrl-C is a clean stop too.
func TestSIGINTStopsGracefully(t *testing.T) {
	t.Parallel()
	s := startServer(t, freshDataDir(t))
	get(t, s.client(), s.url+"/healthz")
	if code := s.stop(syscall.SIGINT); code != 0 {
		t.Errorf("after SIGINT: exit code %d, want 0", code)
	}
	if s.findLog(msgIs("stopped")) == nil {
		t.Error(`no "stopped" log line after SIGINT`)
	}
}

// TestCommandLine covers the commands that do not serve.
func TestCommandLine(t *testing.T) {
	t.Parallel()
	t.Run("version", func(t *testing.T) {
		t.Parallel()
		code, stdout, _ := runRampart(t, nil, "version")
		if code != 0 {
			t.Errorf("exit code %d, want 0", code)
		}
		if !strings.HasPrefix(stdout, "rampart ") {
			t.Errorf("version output does not start with \"rampart \":\n%s", stdout)
		}
		wantContains(t, "version output", stdout, runtime.Version(), "modernc.org/sqlite")
	})
	t.Run("version --json", func(t *testing.T) {
		t.Parallel()
		code, stdout, _ := runRampart(t, nil, "version", "--json")
		if code != 0 {
			t.Errorf("exit code %d, want 0", code)
		}
		var info struct {
			Version   string `json:"version"`
			GoVersion string `json:"go_version"`
			Modules   []struct {
				Path    string `json:"path"`
				Version string `json:"version"`
			} `json:"modules"`
		}
		if err := json.Unmarshal([]byte(stdout), &info); err != nil {
			t.Fatalf("not JSON: %v\n%s", err, stdout)
		}
		if info.Version == "" || info.GoVersion != runtime.Version() {
			t.Errorf("version %q, go_version %q; want a version and %q", info.Version, info.GoVersion, runtime.Version())
		}
		found := false
		for _, m := range info.Modules {
			found = found || (m.Path == "modernc.org/sqlite" && m.Version != "")
		}
		if !found {
			t.Errorf("modules lack modernc.org/sqlite with a version: %+v", info.Modules)
		}
	})
	t.Run("serve --help", func(t *testing.T) {
		t.Parallel()
		code, stdout, _ := runRampart(t, nil, "serve", "--help")
		if code != 0 {
			t.Errorf("exit code %d, want 0", code)
		}
		wantContains(t, "serve --help", stdout, "RAMPART_DATA_DIR", "Precedence", "RAMPART_ADMIN_PASSWORD")
		flagAt := strings.Index(stdout, "1. a flag")
		envAt := strings.Index(stdout, "2. an environment")
		fileAt := strings.Index(stdout, "3. the --config file")
		if flagAt < 0 || !(flagAt < envAt && envAt < fileAt) {
			t.Errorf("serve --help does not give the precedence flag > environment > file:\n%s", stdout)
		}
	})
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no arguments", nil, "Usage"},
		{"unknown command", []string{"bogus"}, `unknown command "bogus"`},
		{"unknown version flag", []string{"version", "--bogus"}, "bogus"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			code, _, stderr := runRampart(t, nil, tc.args...)
			if code != exitUsage {
				t.Errorf("exit code %d, want %d", code, exitUsage)
			}
			wantNoCrash(t, stderr)
			wantContains(t, "stderr", stderr, tc.want)
		})
	}
}

// TestMutualTLS: with --client-ca, a client certificate from that CA is
// accepted, one from another CA is refused at the handshake, and a client
// without a certificate is still served (authorisation decides later).
func TestMutualTLS(t *testing.T) {
	t.Parallel()
	tmp := t.TempDir()
	clientCA := pkitest.NewCA(t, "test client CA")
	otherCA := pkitest.NewCA(t, "some other CA")
	caFile := writeFile(t, filepath.Join(tmp, "client-ca.pem"), clientCA.PEM, 0o644)
	clientTmpl := func() *x509.Certificate {
		return &x509.Certificate{Subject: pkix.Name{CommonName: "alice"}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	}
	good := clientCA.Issue(t, clientTmpl()).TLS(t)
	bad := otherCA.Issue(t, clientTmpl()).TLS(t)

	s := startServer(t, filepath.Join(tmp, "data"), "--client-ca", caFile)
	roots := s.roots()
	healthz := func(cfg *tls.Config) (response, error) {
		cfg.RootCAs = roots
		return tryGet(newClient(t, cfg), s.url+"/healthz", nil)
	}

	t.Run("trusted client certificate", func(t *testing.T) {
		r, err := healthz(&tls.Config{Certificates: []tls.Certificate{good}})
		if err != nil {
			t.Fatal(err)
		}
		wantJSON(t, "GET /healthz", r, http.StatusOK, map[string]string{"status": "ok"})
		if r.tls == nil || len(r.tls.PeerCertificates) == 0 {
			t.Error("no TLS state on the response")
		}
	})
	t.Run("certificate from another CA", func(t *testing.T) {
		// GetClientCertificate sends the certificate even though its issuer
		// is not among those the server asked for.
		r, err := healthz(&tls.Config{GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return &bad, nil
		}})
		if err == nil {
			t.Fatalf("request with an untrusted client certificate succeeded: %d %s", r.status, r.body)
		}
		if !strings.Contains(err.Error(), "certificate") {
			t.Errorf("error %q does not come from the certificate check", err)
		}
	})
	t.Run("no client certificate", func(t *testing.T) {
		r, err := healthz(&tls.Config{})
		if err != nil {
			t.Fatal(err)
		}
		wantJSON(t, "GET /healthz", r, http.StatusOK, map[string]string{"status": "ok"})
	})
	s.stopOK()
}

// TestOperatorCertificate: with --tls-cert/--tls-key the server presents the
// operator's certificate and creates no private CA.
func TestOperatorCertificate(t *testing.T) {
	t.Parallel()
	tmp := t.TempDir()
	ca := pkitest.NewCA(t, "operator CA")
	issued := ca.Issue(t, &x509.Certificate{
		Subject:     pkix.Name{CommonName: "rampart.test"},
		DNSNames:    []string{"localhost"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	certFile := writeFile(t, filepath.Join(tmp, "server.pem"), issued.Cert, 0o644)
	keyFile := writeFile(t, filepath.Join(tmp, "server-key.pem"), issued.Key, 0o600)
	dir := filepath.Join(tmp, "data")

	s := startServer(t, dir, "--tls-cert", certFile, "--tls-key", keyFile)
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	r := get(t, newClient(t, &tls.Config{RootCAs: pool}), s.url+"/healthz")
	wantJSON(t, "GET /healthz", r, http.StatusOK, map[string]string{"status": "ok"})
	if r.tls == nil || len(r.tls.PeerCertificates) == 0 {
		t.Fatal("no peer certificate")
	}
	if got, want := r.tls.PeerCertificates[0].SerialNumber, issued.TLS(t).Leaf.SerialNumber; got.Cmp(want) != 0 {
		t.Errorf("served certificate serial %x, want the operator's %x", got, want)
	}
	wantNotExist(t, filepath.Join(dir, "tls", "ca.pem"))
	wantNotExist(t, filepath.Join(dir, "tls", "ca-key.pem"))
	if strings.Contains(s.stdout.String(), "ca.pem") {
		t.Errorf("banner tells clients to trust a CA file that does not exist:\n%s", s.stdout)
	}
	s.stopOK()
}

// The server computes login password hashes in a child process of its own
// binary, at a lower scheduling priority, that dies with it; logins work
// through it, right and wrong.
func TestLoginHashWorkerProcess(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "data")
	s := startServer(t, dir, "--login-concurrency", "1")
	pw, err := os.ReadFile(filepath.Join(dir, "initial-admin-password"))
	if err != nil {
		t.Fatal(err)
	}
	c := s.client()
	login := func(password string) int {
		body := fmt.Sprintf(`{"username":"admin","password":%q}`, strings.TrimSpace(password))
		res, err := c.Post(s.url+"/api/v1/login", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	if got := login(string(pw)); got != http.StatusOK {
		t.Errorf("login with the right password: %d", got)
	}
	if got := login("a wrong password entirely"); got != http.StatusUnauthorized {
		t.Errorf("login with a wrong password: %d", got)
	}

	workers := childrenOf(t, s.cmd.Process.Pid)
	if len(workers) != 1 {
		t.Fatalf("server has %d child processes, want 1 hash worker", len(workers))
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", workers[0]))
	if err != nil {
		t.Fatal(err)
	}
	// Field 19 of /proc/PID/stat (after the parenthesised command) is nice.
	fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+2:]))
	if nice := fields[16]; nice != "10" {
		t.Errorf("hash worker nice = %s, want 10", nice)
	}
	s.stopOK()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", workers[0])); err != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("hash worker outlived the server")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// childrenOf lists the pids whose parent is pid (Linux /proc).
func childrenOf(t *testing.T, pid int) []int {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("needs /proc")
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var out []int
	for _, e := range entries {
		child, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		s := string(stat)
		fields := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
		if len(fields) > 1 && fields[1] == strconv.Itoa(pid) {
			out = append(out, child)
		}
	}
	return out
}
