//go:build linux

package main

// End-to-end tests of model services on the real binary: real onboarding
// through the CLI, real sandboxed workers running ONNX Runtime, and faults
// made from outside (SIGKILL, SIGSTOP, a model ORT refuses, a tampered
// blob, a server restart, scaling under load). The workers are found as
// the server's children whose descriptors point into the service's run
// directory.

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/rampart-ml/rampart/internal/app/apptest"
	"github.com/rampart-ml/rampart/internal/datadir"
	"github.com/rampart-ml/rampart/internal/onnxmeta/testmodels"
	"github.com/rampart-ml/rampart/internal/registry"
	"github.com/rampart-ml/rampart/internal/runtime/supervisor"
	"github.com/rampart-ml/rampart/internal/services"
	"github.com/rampart-ml/rampart/internal/store"
)

// pollTimeout bounds every wait for the server to reach a state: generous,
// because a loaded CI machine starts ORT workers slowly.
const pollTimeout = 60 * time.Second

// servingServer is a real server with a logged-in CLI, a signing key
// registered for com.acme and PaddleOCR's classifier onboarded as
// com.acme.cls@1.0.
type servingServer struct {
	t     *testing.T
	p     *proc
	api   *apptest.Server
	creds string
	priv  string
	token string
	// infer is a client without the helpers' 10 s limit: a slow request
	// must end by the server's doing.
	infer *http.Client
}

func startServingServer(t *testing.T) *servingServer {
	t.Helper()
	dir := freshDataDir(t)
	p := startServerEnv(t, []string{"RAMPART_ADMIN_PASSWORD=" + privacyAdminPassword}, dir, fastHashingFlags...)
	s := &servingServer{t: t, p: p, api: &apptest.Server{URL: p.url, DataDir: dir, Client: p.client()},
		creds: credsPath(t)}
	s.infer = &http.Client{Transport: s.api.Client.Transport, Timeout: 2 * pollTimeout}
	code, stdout, stderr := runWithStdin(t, privacyAdminPassword+"\n", nil, "login", "--username", "admin", "--password-stdin",
		"--server", p.url, "--ca-file", p.caFile(), "--credentials", s.creds)
	if code != 0 {
		t.Fatalf("login: exit %d\n%s%s", code, stdout, stderr)
	}
	s.token = s.api.Login(t, "admin", privacyAdminPassword).AccessToken
	s.cli(t, 0, "domains", "create", "com.acme")
	priv, pub := writeKeyPair(t, "sec1")
	s.priv = priv
	s.cli(t, 0, "model", "keys", "add", "--domain", "com.acme", "--key", pub)
	cls, err := os.ReadFile(testmodels.Path(t, testmodels.OCRClassifier))
	if err != nil {
		t.Fatal(err)
	}
	s.onboard(t, "com.acme.cls", "1.0", cls)
	return s
}

// cli runs a client command with the server's credentials and wants exit
// code.
func (s *servingServer) cli(t *testing.T, code int, args ...string) (stdout, stderr string) {
	t.Helper()
	got, stdout, stderr := runRampart(t, nil, append(args, "--credentials", s.creds)...)
	wantNoCrash(t, stderr)
	if got != code {
		t.Fatalf("rampart %s: exit %d, want %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), got, code, stdout, stderr)
	}
	return stdout, stderr
}

// onboard signs a directory holding model as model.onnx and onboards it.
func (s *servingServer) onboard(t *testing.T, id, version string, model []byte) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "model")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "model.onnx"), model, 0o600)
	if code, stdout, stderr := runRampart(t, nil, "model", "sign", "--key", s.priv, dir); code != 0 {
		t.Fatalf("model sign: exit %d\n%s%s", code, stdout, stderr)
	}
	s.cli(t, 0, "model", "onboard", id, version, dir)
}

// createService creates a service and starts it.
func (s *servingServer) startService(t *testing.T, name, model, version string, extra ...string) {
	t.Helper()
	s.cli(t, 0, append([]string{"service", "create", name, "--domain", "com.acme", "--model", model, "--version", version}, extra...)...)
	s.cli(t, 0, "service", "start", name)
}

// service reads a service through the API.
func (s *servingServer) service(t *testing.T, name string) serviceView {
	t.Helper()
	return apptest.Decode[serviceView](t, s.api.Do(t, "GET", "/api/v1/services/"+name, s.token, nil), http.StatusOK)
}

// waitState polls until the service is in state want; it fails the test
// at once if the service reaches another final state.
func (s *servingServer) waitState(t *testing.T, name, want string) serviceView {
	t.Helper()
	deadline := time.Now().Add(pollTimeout)
	for {
		v := s.service(t, name)
		if v.State == want {
			return v
		}
		if v.State == "failed" || time.Now().After(deadline) {
			t.Fatalf("service %s is %s (%s), want %s", name, v.State, v.StateReason, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// inferResult is one inference answer: its status and error code.
type inferResult struct {
	status int
	code   string
	body   string
}

// inferRaw posts an OIP v2 JSON request.
func (s *servingServer) inferRaw(service string, body []byte) (inferResult, error) {
	req, err := http.NewRequest("POST", s.p.url+"/v2/models/"+service+"/infer", bytes.NewReader(body))
	if err != nil {
		return inferResult{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+s.token)
	res, err := s.infer.Do(req)
	if err != nil {
		return inferResult{}, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return inferResult{}, err
	}
	r := inferResult{status: res.StatusCode, body: string(b)}
	if res.StatusCode != http.StatusOK {
		var e struct{ Code string }
		_ = json.Unmarshal(b, &e)
		r.code = e.Code
	}
	return r, nil
}

func (s *servingServer) inferOK(t *testing.T, service string, body []byte) {
	t.Helper()
	r, err := s.inferRaw(service, body)
	if err != nil {
		t.Fatalf("infer %s: %v", service, err)
	}
	if r.status != http.StatusOK || !strings.Contains(r.body, `"outputs"`) {
		t.Fatalf("infer %s: %d %s", service, r.status, cut(r.body))
	}
}

// inferSoon retries until the service answers 200 (a restarted worker
// takes a moment) and fails the test after pollTimeout.
func (s *servingServer) inferSoon(t *testing.T, service string, body []byte) {
	t.Helper()
	deadline := time.Now().Add(pollTimeout)
	for {
		r, err := s.inferRaw(service, body)
		if err == nil && r.status == http.StatusOK {
			return
		}
		if time.Now().After(deadline) || (err == nil && r.status != http.StatusServiceUnavailable) {
			t.Fatalf("infer %s: %d %s %v", service, r.status, cut(r.body), err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func cut(s string) string {
	if len(s) > 300 {
		return s[:300] + "…"
	}
	return s
}

// clsInput is an OIP v2 request for the classifier: x FP32 [n,3,h,w],
// all zeros. A big one keeps the worker busy for a while.
func clsInput(n, h, w int) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, `{"inputs":[{"name":"x","datatype":"FP32","shape":[%d,3,%d,%d],"data":[`, n, h, w)
	b.WriteString(strings.Repeat("0,", n*3*h*w-1))
	b.WriteString(`0]}]}`)
	return []byte(b.String())
}

var smallCls = clsInput(1, 48, 192)

// metric reads a series of name for service from /metrics (0 if absent).
func (s *servingServer) metric(t *testing.T, name, service string) float64 {
	t.Helper()
	res, err := s.api.Client.Get(s.p.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	prefix := name + `{service="` + service + `"} `
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), prefix); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("metric %s: %v", sc.Text(), err)
			}
			return f
		}
	}
	return 0
}

// waitMetric polls until cond holds for the metric.
func (s *servingServer) waitMetric(t *testing.T, name, service string, cond func(float64) bool) float64 {
	t.Helper()
	deadline := time.Now().Add(pollTimeout)
	for {
		v := s.metric(t, name, service)
		if cond(v) {
			return v
		}
		if time.Now().After(deadline) {
			t.Fatalf("metric %s{service=%q} = %v: condition not met within %v", name, service, v, pollTimeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// workers are the pids of the server's worker processes serving service:
// children named rampart-worker holding a descriptor in the service's run
// directory.
func (s *servingServer) workers(t *testing.T, service string) []int {
	t.Helper()
	runDir := filepath.Join(s.p.dataDir, datadir.RunDir, service+"-")
	var out []int
	for _, pid := range childrenOf(t, s.p.cmd.Process.Pid) {
		cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil || !bytes.HasPrefix(cmdline, []byte("rampart-worker\x00")) {
			continue
		}
		fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
		if err != nil {
			continue // exited meanwhile, or not ours to look at
		}
		for _, fd := range fds {
			target, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name()))
			if err == nil && strings.HasPrefix(target, runDir) {
				out = append(out, pid)
				break
			}
		}
	}
	return out
}

// waitWorkers polls until the service has n workers, and returns them.
func (s *servingServer) waitWorkers(t *testing.T, service string, n int) []int {
	t.Helper()
	deadline := time.Now().Add(pollTimeout)
	for {
		w := s.workers(t, service)
		if len(w) == n {
			return w
		}
		if time.Now().After(deadline) {
			t.Fatalf("service %s has %d workers %v, want %d", service, len(w), w, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitGone polls until pid has exited (and was reaped).
func waitGone(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(pollTimeout)
	for {
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err != nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("process %d is still there", pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// audited waits for an audit record of action on target id.
func (s *servingServer) audited(t *testing.T, action, id string) store.AuditRecord {
	t.Helper()
	match := func(r store.AuditRecord) bool { return r.Action == action && r.TargetID == id }
	recs := s.api.WaitAuditRecords(t, action+" of "+id, func(recs []store.AuditRecord) bool {
		return apptest.CountAudit(recs, match) > 0
	})
	for _, r := range recs {
		if match(r) {
			return r
		}
	}
	panic("unreachable")
}

// TestModelServing runs the supervisor's life cycle and faults on one real
// server; each subtest has its own service, and the restart comes last.
func TestModelServing(t *testing.T) {
	t.Parallel()
	s := startServingServer(t)

	t.Run("ready and infer", func(t *testing.T) {
		start := time.Now()
		s.startService(t, "cls", "com.acme.cls", "1.0")
		s.waitState(t, "cls", "ready")
		t.Logf("start → ready: %v (two CLI runs included)", time.Since(start).Round(time.Millisecond))
		s.inferOK(t, "cls", smallCls)
		stdout, _ := s.cli(t, 0, "service", "show", "cls")
		wantContains(t, "service show", stdout, "ready")
		if n := s.metric(t, "rampart_inference_worker_seconds_count", "cls"); n < 1 {
			t.Errorf("/metrics: rampart_inference_worker_seconds_count{service=\"cls\"} = %v, want ≥ 1", n)
		}
	})

	t.Run("sandbox", func(t *testing.T) {
		if os.Geteuid() != 0 {
			t.Skip("the workers change user and network namespace only when the server runs as root")
		}
		pids := s.waitWorkers(t, "cls", 1)
		serverNet, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/net", s.p.cmd.Process.Pid))
		if err != nil {
			t.Fatal(err)
		}
		for _, pid := range pids {
			status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
			if err != nil {
				t.Fatal(err)
			}
			for _, line := range strings.Split(string(status), "\n") {
				if f := strings.Fields(line); len(f) == 5 && (f[0] == "Uid:" || f[0] == "Gid:") {
					for _, id := range f[1:] {
						if id != "65534" {
							t.Errorf("worker %d: %s, want 65534 throughout", pid, line)
							break
						}
					}
				}
			}
			net, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/net", pid))
			if err != nil {
				t.Fatal(err)
			}
			if net == serverNet {
				t.Errorf("worker %d shares the server's network namespace %s", pid, net)
			}
			env, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
			if err != nil {
				t.Fatal(err)
			}
			if len(env) != 0 {
				t.Errorf("worker %d has an environment of %d bytes, want none", pid, len(env))
			}
		}
	})

	t.Run("worker killed mid-request", func(t *testing.T) {
		s.startService(t, "crash", "com.acme.cls", "1.0", "--threads", "1")
		s.waitState(t, "crash", "ready")
		pid := s.waitWorkers(t, "crash", 1)[0]
		restarts := s.metric(t, "rampart_worker_restarts_total", "crash")
		big := clsInput(1, 960, 1920) // seconds of work for one thread
		got := make(chan inferResult, 1)
		go func() {
			r, err := s.inferRaw("crash", big)
			if err != nil {
				r.body = err.Error()
			}
			got <- r
		}()
		s.waitMetric(t, "rampart_inference_in_flight", "crash", func(v float64) bool { return v == 1 })
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		killed := time.Now()
		r := <-got
		t.Logf("kill → 503: %v", time.Since(killed).Round(time.Millisecond))
		if r.status != http.StatusServiceUnavailable || r.code != "worker_died" {
			t.Errorf("request whose worker was killed: %d %q %s, want 503 worker_died", r.status, r.code, cut(r.body))
		}
		s.waitMetric(t, "rampart_worker_restarts_total", "crash", func(v float64) bool { return v == restarts+1 })
		rec := s.audited(t, supervisor.ActionWorkerExit, "crash")
		if !strings.Contains(rec.Reason, "killed") {
			t.Errorf("%s reason %q, want it to say the worker was killed", supervisor.ActionWorkerExit, rec.Reason)
		}
		s.inferSoon(t, "crash", smallCls)
		t.Logf("kill → a replacement answers: %v", time.Since(killed).Round(time.Millisecond))
		if w := s.waitWorkers(t, "crash", 1); w[0] == pid {
			t.Errorf("the killed worker %d is still listed", pid)
		}
		s.waitState(t, "crash", "ready")
	})

	t.Run("hung worker", func(t *testing.T) {
		s.startService(t, "hang", "com.acme.cls", "1.0", "--timeout-ms", "1500")
		s.waitState(t, "hang", "ready")
		pid := s.waitWorkers(t, "hang", 1)[0]
		if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		r, err := s.inferRaw("hang", smallCls)
		if err != nil {
			t.Fatal(err)
		}
		if r.status != http.StatusGatewayTimeout || r.code != "timeout" {
			t.Errorf("request to a stopped worker: %d %q %s, want 504 timeout", r.status, r.code, cut(r.body))
		}
		if took := time.Since(start); took < 1500*time.Millisecond {
			t.Errorf("timeout after %v, before the service's 1.5s", took)
		}
		waitGone(t, pid)
		s.waitMetric(t, "rampart_worker_restarts_total", "hang", func(v float64) bool { return v == 1 })
		s.audited(t, supervisor.ActionWorkerExit, "hang")
		s.inferSoon(t, "hang", smallCls)
		s.waitState(t, "hang", "ready")
	})

	// Timeouts are the caller's doing, not crashes: more of them in a row
	// than the crash limit (5) must not fail the service.
	t.Run("slow requests do not fail the service", func(t *testing.T) {
		s.startService(t, "slow", "com.acme.cls", "1.0", "--timeout-ms", "200", "--threads", "1")
		s.waitState(t, "slow", "ready")
		big := clsInput(1, 480, 960) // about a second for one thread
		deadline := time.Now().Add(pollTimeout)
		for timeouts := 0; timeouts < 6; {
			r, err := s.inferRaw("slow", big)
			switch {
			case err != nil:
				t.Fatal(err)
			case r.status == http.StatusGatewayTimeout && r.code == "timeout":
				timeouts++
			case r.status != http.StatusServiceUnavailable || (r.code != "not_ready" && r.code != "worker_died"):
				// A request that reaches the killed worker before the
				// supervisor has seen it exit gets worker_died.
				t.Fatalf("slow request: %d %q %s, want 504 timeout (or 503 while the worker is replaced)", r.status, r.code, cut(r.body))
			}
			if v := s.service(t, "slow"); v.State == "failed" {
				t.Fatalf("the service failed after %d timeouts: %s", timeouts, v.StateReason)
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d timeouts within %v", timeouts, pollTimeout)
			}
		}
		s.inferSoon(t, "slow", smallCls)
		if v := s.service(t, "slow"); v.State != "ready" {
			t.Errorf("service after 6 timeouts: %s (%s), want ready", v.State, v.StateReason)
		}
		s.cli(t, 0, "service", "stop", "slow")
	})

	t.Run("model ORT refuses", func(t *testing.T) {
		s.onboard(t, "com.acme.bad", "1.0", testONNX("NoSuchOperator"))
		s.startService(t, "bad", "com.acme.bad", "1.0")
		deadline := time.Now().Add(pollTimeout)
		v := s.service(t, "bad")
		for v.State != "failed" {
			if time.Now().After(deadline) {
				t.Fatalf("service bad is %s (%s), want failed", v.State, v.StateReason)
			}
			time.Sleep(20 * time.Millisecond)
			v = s.service(t, "bad")
		}
		wantContains(t, "failure reason", v.StateReason, "did not start 5 times", "No Op registered for NoSuchOperator")
		attempts := s.p.countLogs(func(e logEntry) bool { return e.msg() == "model worker did not start" && e["service"] == "bad" })
		if attempts != 5 {
			t.Errorf("%d attempts to start the worker, want 5", attempts)
		}
		if rec := s.audited(t, services.ActionFail, "bad"); !strings.Contains(rec.Reason, "NoSuchOperator") {
			t.Errorf("%s reason %q, want ORT's cause", services.ActionFail, rec.Reason)
		}
		r, err := s.inferRaw("bad", smallCls)
		if err != nil || r.status != http.StatusServiceUnavailable {
			t.Errorf("infer on a failed service: %d %s %v, want 503", r.status, cut(r.body), err)
		}
		if w := s.workers(t, "bad"); len(w) != 0 {
			t.Errorf("a failed service has workers %v", w)
		}
	})

	t.Run("verify at load", func(t *testing.T) {
		model := testONNX("Identity")
		s.onboard(t, "com.acme.ident", "1.0", model)
		tamperBlob(t, s.p.dataDir, model)
		s.startService(t, "tampered", "com.acme.ident", "1.0")
		deadline := time.Now().Add(pollTimeout)
		v := s.service(t, "tampered")
		for v.State != "failed" {
			if time.Now().After(deadline) {
				t.Fatalf("service tampered is %s (%s), want failed", v.State, v.StateReason)
			}
			time.Sleep(20 * time.Millisecond)
			v = s.service(t, "tampered")
		}
		wantContains(t, "failure reason", v.StateReason, "model version not loaded")
		stdout, _ := s.cli(t, 0, "model", "show", "com.acme.ident@1.0")
		wantContains(t, "model show", stdout, "quarantined")
		if rec := s.audited(t, registry.ActionModelQuarantine, "com.acme.ident@1.0"); !strings.Contains(rec.Reason, "corrupt") {
			t.Errorf("%s reason %q, want it to say the blob is corrupt", registry.ActionModelQuarantine, rec.Reason)
		}
		r, err := s.inferRaw("tampered", []byte(`{"inputs":[{"name":"x","datatype":"FP32","shape":[1,4],"data":[1,2,3,4]}]}`))
		if err != nil || r.status != http.StatusServiceUnavailable {
			t.Errorf("infer on a tampered model: %d %s %v, want 503", r.status, cut(r.body), err)
		}
		if w := s.workers(t, "tampered"); len(w) != 0 {
			t.Errorf("a tampered model got workers %v", w)
		}
	})

	t.Run("scale under load, drain, delete", func(t *testing.T) {
		s.startService(t, "scale", "com.acme.cls", "1.0")
		s.waitState(t, "scale", "ready")
		s.waitWorkers(t, "scale", 1)

		// Two clients send requests while the service scales 1 → 2 → 1.
		stop := make(chan struct{})
		var mu sync.Mutex
		counts := map[string]int{}
		var wg sync.WaitGroup
		for range 2 {
			wg.Go(func() {
				for {
					select {
					case <-stop:
						return
					default:
					}
					r, err := s.inferRaw("scale", smallCls)
					key := strconv.Itoa(r.status) + " " + r.code
					if err != nil {
						key = err.Error()
					}
					mu.Lock()
					counts[key]++
					mu.Unlock()
				}
			})
		}
		s.cli(t, 0, "service", "scale", "scale", "--replicas", "2")
		s.waitWorkers(t, "scale", 2)
		s.waitMetric(t, "rampart_inference_worker_seconds_count", "scale", func(v float64) bool { return v > 20 })
		s.cli(t, 0, "service", "scale", "scale", "--replicas", "1")
		s.waitWorkers(t, "scale", 1)
		before := s.metric(t, "rampart_inference_worker_seconds_count", "scale")
		s.waitMetric(t, "rampart_inference_worker_seconds_count", "scale", func(v float64) bool { return v > before+20 })
		close(stop)
		wg.Wait()
		t.Logf("requests while scaling: %v", counts)
		for k, n := range counts {
			if k != "200 " && !strings.HasPrefix(k, "503 ") {
				t.Errorf("%d requests answered %q while scaling, want 200 (or 503 during the swap)", n, k)
			}
		}
		if counts["200 "] == 0 {
			t.Error("no request succeeded while scaling")
		}
		s.waitState(t, "scale", "ready")

		// Stop drains: a request in flight when stop is asked completes.
		got := make(chan inferResult, 1)
		go func() {
			r, err := s.inferRaw("scale", clsInput(1, 960, 1920))
			if err != nil {
				r.body = err.Error()
			}
			got <- r
		}()
		s.waitMetric(t, "rampart_inference_in_flight", "scale", func(v float64) bool { return v == 1 })
		s.cli(t, 0, "service", "stop", "scale")
		select {
		case r := <-got:
			t.Fatalf("the request ended (%d) before stop returned: nothing was drained", r.status)
		default:
		}
		if r := <-got; r.status != http.StatusOK {
			t.Errorf("request in flight at stop: %d %q %s, want 200", r.status, r.code, cut(r.body))
		}
		s.waitState(t, "scale", "stopped")
		if w := s.workers(t, "scale"); len(w) != 0 {
			t.Errorf("a stopped service has workers %v", w)
		}
		r, err := s.inferRaw("scale", smallCls)
		if err != nil || r.status != http.StatusServiceUnavailable {
			t.Errorf("infer on a stopped service: %d %s %v, want 503", r.status, cut(r.body), err)
		}
		s.cli(t, 0, "service", "delete", "scale")
		if n := s.metric(t, "rampart_inference_in_flight", "scale"); n != 0 {
			t.Errorf("deleted service still has in-flight series %v", n)
		}
	})

	// Last: the server restarts.
	t.Run("restart survival", func(t *testing.T) {
		runDir := filepath.Join(s.p.dataDir, datadir.RunDir)
		before := dirNames(t, runDir)
		s.p.t = t // the process helpers fail the test they run in
		stopped := time.Now()
		if code := s.p.stop(syscall.SIGTERM); code != 0 {
			t.Fatalf("server exit %d after SIGTERM", code)
		}
		s.p = startServerEnv(t, []string{"RAMPART_ADMIN_PASSWORD=" + privacyAdminPassword}, s.p.dataDir, fastHashingFlags...)
		s.api.URL = s.p.url
		s.token = s.api.Login(t, "admin", privacyAdminPassword).AccessToken
		// The stored state still says ready from the previous run until
		// the new workers are up: what counts is that inference works.
		for _, name := range []string{"cls", "crash", "hang"} {
			s.waitState(t, name, "ready")
			s.inferSoon(t, name, smallCls)
		}
		t.Logf("restart: SIGTERM → 3 services answer again: %v", time.Since(stopped).Round(time.Millisecond))
		after := dirNames(t, runDir)
		for _, name := range before {
			for _, now := range after {
				if now == name {
					t.Errorf("%s of the previous run is still in %s", name, runDir)
				}
			}
		}
		if len(after) != 3 {
			t.Errorf("%s holds %v, want one directory for each of the 3 running services", runDir, after)
		}
		if v := s.service(t, "bad"); v.State != "failed" {
			t.Errorf("failed service after the restart: %s", v.State)
		}
	})
}

func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}

// tamperBlob flips a byte in the stored (encrypted) blob of content.
func tamperBlob(t *testing.T, dataDir string, content []byte) {
	t.Helper()
	sum := sha256.Sum256(content)
	digest := hex.EncodeToString(sum[:])
	n := 0
	err := filepath.WalkDir(filepath.Join(dataDir, datadir.ArtifactsDir, "blobs"), func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Name() != digest {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		b[len(b)/2] ^= 0xff
		n++
		return os.WriteFile(p, b, 0o600)
	})
	if err != nil || n != 1 {
		t.Fatalf("tampered with %d blobs named %s: %v", n, digest, err)
	}
}

// testONNX is a valid ModelProto with one node of type op from x FP32
// [1,4] to y: ORT loads it when op is an operator it knows (Identity),
// and refuses it otherwise, while onboarding (which reads the model's
// structure, not its operators' meaning) accepts both.
func testONNX(op string) []byte {
	field := func(num protowire.Number, b []byte) []byte {
		return protowire.AppendBytes(protowire.AppendTag(nil, num, protowire.BytesType), b)
	}
	varint := func(num protowire.Number, v uint64) []byte {
		return protowire.AppendVarint(protowire.AppendTag(nil, num, protowire.VarintType), v)
	}
	join := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	valueInfo := func(name string) []byte {
		shape := join(field(1, varint(1, 1)), field(1, varint(1, 4)))
		tensorType := join(varint(1, 1), field(2, shape)) // FP32
		return join(field(1, []byte(name)), field(2, field(1, tensorType)))
	}
	node := join(field(1, []byte("x")), field(2, []byte("y")), field(4, []byte(op)))
	graph := join(field(1, node), field(2, []byte("test")), field(11, valueInfo("x")), field(12, valueInfo("y")))
	return join(
		varint(1, 8), // IR version 8
		field(2, []byte("rampart-test")),
		field(7, graph),
		field(8, join(field(1, nil), varint(2, 17)))) // opset 17
}
