// Package benchserver starts a real `rampart serve` from a built binary
// for the benchmark programs (bench/inference, bench/onboard) and talks to
// its HTTP API as an operator would.
package benchserver

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
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
