// Package benchserver starts a real `rampart serve` from a built binary
// for the benchmark programs (bench/inference, bench/onboard) and talks to
// its HTTP API as an operator would.
package benchserver

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Server is a running `rampart serve` with a random admin password.
type Server struct {
	Cmd      *exec.Cmd
	Addr     string
	URL      string
	CAFile   string
	Client   *http.Client
	Password string
	// Token, once set, is sent as the bearer token by Do.
	Token string
}

// Start runs `binary serve --data-dir DATA/d --listen ADDR` plus args on a
// free loopback port and waits (at most 60 s) until /readyz answers over
// TLS with the server's own CA.
func Start(ctx context.Context, binary, data string, args ...string) (*Server, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := l.Addr().String()
	_ = l.Close()
	var pw [18]byte
	if _, err := rand.Read(pw[:]); err != nil {
		return nil, err
	}
	s := &Server{Addr: addr, URL: "https://" + addr, Password: "Bench-" + hex.EncodeToString(pw[:]),
		CAFile: filepath.Join(data, "d", "tls", "ca.pem")}
	all := append([]string{"serve", "--data-dir", filepath.Join(data, "d"), "--listen", addr}, args...)
	// #nosec G204 -- the operator-chosen server binary
	s.Cmd = exec.CommandContext(ctx, binary, all...)
	s.Cmd.Env = append(os.Environ(), "RAMPART_ADMIN_PASSWORD="+s.Password)
	s.Cmd.Stdout, s.Cmd.Stderr = io.Discard, os.Stderr
	if err := s.Cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", binary, err)
	}
	for i := 0; ; i++ {
		if i == 600 {
			s.Stop()
			return nil, errors.New("server not ready after 60 s")
		}
		time.Sleep(100 * time.Millisecond)
		pemBytes, err := os.ReadFile(s.CAFile) // #nosec G304 -- the server's data directory
		if err != nil {
			continue
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pemBytes) {
			continue
		}
		s.Client = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
		res, err := s.Client.Get(s.URL + "/readyz")
		if err != nil {
			continue
		}
		_ = res.Body.Close()
		if res.StatusCode == http.StatusOK {
			return s, nil
		}
	}
}

// Stop interrupts the server and waits for it.
func (s *Server) Stop() {
	_ = s.Cmd.Process.Signal(os.Interrupt)
	_ = s.Cmd.Wait()
}

// Do sends body as JSON with the bearer Token and wants status want.
func (s *Server) Do(method, path string, body any, want int) ([]byte, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequest(method, s.URL+path, bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	if s.Token != "" {
		req.Header.Set("Authorization", "Bearer "+s.Token)
	}
	return s.Send(req, want)
}

// Send sends req and returns the body when the status is want.
func (s *Server) Send(req *http.Request, want int) ([]byte, error) {
	res, err := s.Client.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	out, err := io.ReadAll(res.Body)
	if err != nil {
		return nil, err
	}
	if res.StatusCode != want {
		return nil, fmt.Errorf("%s %s: %d %s", req.Method, req.URL.Path, res.StatusCode, out)
	}
	return out, nil
}

// SetUp logs in as the admin (Token becomes the admin's), creates domain
// and trusts key to sign its models.
func (s *Server) SetUp(domain string, key crypto.PublicKey) error {
	out, err := s.Do("POST", "/api/v1/login", map[string]string{"username": "admin", "password": s.Password}, http.StatusOK)
	if err != nil {
		return err
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(out, &tok); err != nil {
		return err
	}
	s.Token = tok.AccessToken
	if _, err := s.Do("POST", "/api/v1/domains", map[string]string{"name": domain}, http.StatusCreated); err != nil {
		return err
	}
	der, err := x509.MarshalPKIXPublicKey(key)
	if err != nil {
		return err
	}
	pub := string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	_, err = s.Do("POST", "/api/v1/signer-keys", map[string]string{"domain": domain, "public_key": pub}, http.StatusCreated)
	return err
}

// CPUSeconds is the user + system CPU time of a process so far: on a busy
// shared machine a steadier measure of the work than wall time.
func CPUSeconds(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// Fields after the parenthesised command name; utime and stime are
	// fields 14 and 15 of the whole line, in clock ticks (USER_HZ = 100).
	_, rest, ok := strings.Cut(string(b), ") ")
	f := strings.Fields(rest)
	if !ok || len(f) < 13 {
		return 0, fmt.Errorf("unexpected /proc/%d/stat", pid)
	}
	u, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	return float64(u+st) / 100, nil
}
