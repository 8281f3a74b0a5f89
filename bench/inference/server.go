package main

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/ecdsa"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/rampart-ml/rampart/bench/internal/benchserver"
	"github.com/rampart-ml/rampart/internal/modelsign"
)

// server is a real `rampart serve` started from the built binary, set up
// through its HTTP API the way an operator would; Token is the admin's.
type server struct {
	*benchserver.Server
	// The service account the load is sent as (client_credentials).
	clientID, clientSecret string
}

// serverArgs are the flags the benchmark adds to `rampart serve`. The rate
// limits are raised far above the load (the defaults would throttle a
// benchmark, which is their job); everything else is the default.
var serverArgs = []string{"--log-level", "warn",
	"--inference-principal-rate", "1000000", "--inference-principal-burst", "1000000",
	"--inference-service-rate", "1000000", "--inference-service-burst", "1000000",
	"--access-token-lifetime", "1h"}

func startServer(ctx context.Context, binary, data string) (*server, error) {
	fmt.Fprintf(os.Stderr, "server: %s serve %s\n", binary, strings.Join(serverArgs, " "))
	bs, err := benchserver.Start(ctx, binary, data, serverArgs...)
	if err != nil {
		return nil, err
	}
	return &server{Server: bs}, nil
}

const domain = "com.bench"

// setup logs in as the admin, creates the domain, registers the signing
// key and creates a service account allowed to infer in the domain.
func (s *server) setup(key *ecdsa.PrivateKey) error {
	if err := s.SetUp(domain, key.Public()); err != nil {
		return err
	}
	out, err := s.Do("POST", "/api/v1/service-accounts", map[string]string{"name": "bench-client"}, http.StatusCreated)
	if err != nil {
		return err
	}
	var sa struct {
		ID           string `json:"id"`
		ClientSecret string `json:"client_secret"`
	}
	if err := json.Unmarshal(out, &sa); err != nil {
		return err
	}
	s.clientID, s.clientSecret = sa.ID, sa.ClientSecret
	_, err = s.Do("POST", "/api/v1/grants", map[string]string{
		"subject_kind": "service-account", "subject_id": sa.ID, "domain": domain, "privilege": "infer"}, http.StatusCreated)
	return err
}

// token gets an access token for the service account (client_credentials).
func (s *server) token() (string, error) {
	form := url.Values{"grant_type": {"client_credentials"}}
	req, err := http.NewRequest("POST", s.URL+"/oauth/token", strings.NewReader(form.Encode()))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(s.clientID, s.clientSecret)
	out, err := s.Send(req, http.StatusOK)
	if err != nil {
		return "", fmt.Errorf("client_credentials: %w", err)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(out, &tok); err != nil {
		return "", err
	}
	return tok.AccessToken, nil
}

// onboard signs a copy of the ONNX file at model with key and onboards it
// as domain.name version 1.0.
func (s *server) onboard(work, name, model string, key *ecdsa.PrivateKey) error {
	dir := filepath.Join(work, name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	b, err := os.ReadFile(model) // #nosec G304 -- a test model path
	if err != nil {
		return err
	}
	// #nosec G703 -- the benchmark's own work directory and a fixed name
	if err := os.WriteFile(filepath.Join(dir, "model.onnx"), b, 0o600); err != nil {
		return err
	}
	m, err := modelsign.DigestDirectory(dir, modelsign.Options{})
	if err != nil {
		return err
	}
	sig, err := modelsign.Sign(m, key)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, modelsign.SignatureFile), sig, 0o600); err != nil {
		return err
	}
	var archive bytes.Buffer
	tw := tar.NewWriter(&archive)
	for name, data := range map[string][]byte{"model.onnx": b, modelsign.SignatureFile: sig} {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(data)), Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		if _, err := tw.Write(data); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	req, err := http.NewRequest("PUT", s.URL+"/api/v1/models/"+domain+"."+name+"/versions/1.0", &archive)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-tar")
	req.Header.Set("Authorization", "Bearer "+s.Token)
	_, err = s.Send(req, http.StatusCreated)
	return err
}

// serviceSpec is what the benchmark gives each service.
type serviceSpec struct {
	replicas, maxConcurrent int
}

// startService creates and starts the service name over domain.name 1.0
// and waits (bounded) until it is ready.
func (s *server) startService(name string, spec serviceSpec) error {
	body := map[string]any{"name": name, "domain": domain, "model_id": domain + "." + name, "model_version": "1.0",
		"replicas": spec.replicas, "limits": map[string]any{"threads": 1, "max_concurrent": spec.maxConcurrent}}
	if _, err := s.Do("POST", "/api/v1/services", body, http.StatusCreated); err != nil {
		return err
	}
	if _, err := s.Do("POST", "/api/v1/services/"+name+"/start", map[string]any{}, http.StatusOK); err != nil {
		return err
	}
	var state string
	for range 600 {
		out, err := s.Do("GET", "/api/v1/services/"+name, nil, http.StatusOK)
		if err != nil {
			return err
		}
		var v struct {
			State       string `json:"state"`
			StateReason string `json:"state_reason"`
		}
		if err := json.Unmarshal(out, &v); err != nil {
			return err
		}
		state = v.State + " " + v.StateReason
		if v.State == "ready" {
			return nil
		}
		if v.State == "failed" {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("service %s not ready: %s", name, state)
}

// workers returns the pids of the server's descendants (the sandboxed
// workers and whatever wraps them).
func (s *server) workers() ([]int, error) {
	parents := map[int]int{}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		_, rest, ok := strings.Cut(string(b), ") ")
		f := strings.Fields(rest)
		if !ok || len(f) < 2 {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		parents[pid] = ppid
	}
	var out []int
	for pid := range parents {
		for p := parents[pid]; p > 1; p = parents[p] {
			if p == s.Cmd.Process.Pid {
				out = append(out, pid)
				break
			}
		}
	}
	return out, nil
}

// cpu is the CPU time (user + system) used so far by the server process
// and by its descendants (the workers), in seconds. On a shared, loaded
// machine CPU per request is a steadier measure of the work than
// wall-clock throughput.
func (s *server) cpu() (server, workers float64, err error) {
	server, err = benchserver.CPUSeconds(s.Cmd.Process.Pid)
	if err != nil {
		return 0, 0, err
	}
	pids, err := s.workers()
	if err != nil {
		return 0, 0, err
	}
	for _, pid := range pids {
		c, err := benchserver.CPUSeconds(pid)
		if err != nil {
			continue // gone since it was listed
		}
		workers += c
	}
	return server, workers, nil
}

// selfCPU is this process's CPU time so far, in seconds.
func selfCPU() float64 {
	var r syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &r) != nil {
		return 0
	}
	return float64(r.Utime.Nano()+r.Stime.Nano()) / 1e9
}

// perfRecord samples the server and its workers with perf (call graphs)
// for d into out; wait on the returned command. For finding where the
// time goes, not for the table.
func (s *server) perfRecord(out string, d time.Duration) (*exec.Cmd, error) {
	pids, err := s.workers()
	if err != nil {
		return nil, err
	}
	list := []string{strconv.Itoa(s.Cmd.Process.Pid)}
	for _, p := range pids {
		list = append(list, strconv.Itoa(p))
	}
	// #nosec G204 -- perf with the benchmark's own pids and file
	cmd := exec.Command("perf", "record", "-q", "-F", "499", "-g", "-o", out, "-p", strings.Join(list, ","),
		"--", "sleep", strconv.FormatFloat(d.Seconds(), 'f', 1, 64))
	cmd.Stdout, cmd.Stderr = io.Discard, os.Stderr
	return cmd, cmd.Start()
}
