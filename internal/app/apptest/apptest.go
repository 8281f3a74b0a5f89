// Package apptest starts a real Rampart server (TLS, SQLite, the whole
// middleware chain) on a loopback port for tests in other packages, and
// logs users in through the real API.
package apptest

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rampart-ml/rampart/internal/app"
	"github.com/rampart-ml/rampart/internal/config"
	"github.com/rampart-ml/rampart/internal/datadir"
	"github.com/rampart-ml/rampart/internal/identity/password"
	"github.com/rampart-ml/rampart/internal/pki"
	"github.com/rampart-ml/rampart/internal/store"
	"github.com/rampart-ml/rampart/internal/store/sqlite"
)

// Server is a running test server.
type Server struct {
	App           *app.App
	URL           string
	DataDir       string
	Client        *http.Client // trusts the server's CA
	AdminPassword string       // the generated initial admin password
}

// FastHashing makes password hashing cheap and drops the response-time
// floor, for tests that log in many times. Brute-force counting stays on.
func FastHashing(c *config.Config) {
	c.Identity.Argon2 = password.Params{MemoryKiB: 1024, Time: 1, Threads: 1}
	c.Identity.AllowWeakHashing = true
	c.Identity.BruteForce.Timing.Min = 0
}

// HashWorkers turns on the password hash worker processes; the test
// package's TestMain must call hashworker.Main first.
func HashWorkers(c *config.Config) { c.Identity.HashProcesses = true }

// Start starts a server with the default (secure) configuration changed
// by each mutate; it is stopped when the test ends.
func Start(t testing.TB, mutate ...func(*config.Config)) *Server {
	t.Helper()
	return StartWith(t, nil, mutate...)
}

// StartWith is Start with app options (fault injection).
func StartWith(t testing.TB, opts []app.Option, mutate ...func(*config.Config)) *Server {
	t.Helper()
	cfg := config.Default()
	cfg.DataDir = filepath.Join(t.TempDir(), "data")
	cfg.Listen = "127.0.0.1:0"
	cfg.HTTP.ShutdownTimeout = 5 * time.Second
	// A test binary cannot be re-executed as a hash worker unless its
	// TestMain calls hashworker.Main; HashWorkers turns them on.
	cfg.Identity.HashProcesses = false
	for _, m := range mutate {
		m(&cfg)
	}
	ctx, cancel := context.WithCancel(context.Background())
	a, err := app.New(ctx, cfg, slog.New(slog.DiscardHandler), opts...)
	if err != nil {
		cancel()
		t.Fatalf("start server: %v", err)
	}
	served := make(chan error, 1)
	go func() { served <- a.Serve(ctx) }()
	s := &Server{App: a, URL: a.URL(), DataDir: cfg.DataDir, Client: &http.Client{Timeout: 30 * time.Second}}
	t.Cleanup(func() {
		// Connections dialled but never used count as active, not idle,
		// and would hold graceful shutdown for its whole timeout.
		s.Client.CloseIdleConnections()
		cancel()
		<-served
		_ = a.Close()
	})
	if ca := a.CAFile(); ca != "" {
		pool, err := pki.CertPool(ca)
		if err != nil {
			t.Fatal(err)
		}
		s.Client.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}
	}
	if f := a.AdminPasswordFile(); f != "" {
		b, err := os.ReadFile(f) // #nosec G304 -- the server's own data directory
		if err != nil {
			t.Fatal(err)
		}
		s.AdminPassword = strings.TrimSpace(string(b))
	}
	return s
}

// Tokens is an OAuth token response.
type Tokens struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	IDToken      string `json:"id_token"`
	ExpiresIn    int    `json:"expires_in"`
}

// Login logs in through POST /api/v1/login and fails the test on error.
func (s *Server) Login(t testing.TB, user, pw string) Tokens {
	t.Helper()
	res := s.Do(t, "POST", "/api/v1/login", "", map[string]string{"username": user, "password": pw})
	if res.StatusCode != http.StatusOK {
		t.Fatalf("login %s: %d %s", user, res.StatusCode, res.Body)
	}
	var tok Tokens
	if err := json.Unmarshal(res.Body, &tok); err != nil {
		t.Fatal(err)
	}
	return tok
}

// Response is a read response.
type Response struct {
	StatusCode int
	Header     http.Header
	Body       []byte
}

// Do sends a JSON request (body nil for none) with an optional bearer
// token and returns the whole response.
func (s *Server) Do(t testing.TB, method, path, token string, body any) Response {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, s.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := s.Client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return Response{StatusCode: res.StatusCode, Header: res.Header, Body: b}
}

// WantStatus fails the test unless res has status want.
func WantStatus(t testing.TB, res Response, want int) {
	t.Helper()
	if res.StatusCode != want {
		t.Fatalf("status %d, want %d: %s", res.StatusCode, want, res.Body)
	}
}

// WantError checks an error response: its status and the code of its
// {"error","code"} body; it returns the message.
func WantError(t testing.TB, res Response, status int, code string) string {
	t.Helper()
	e := Decode[struct{ Error, Code string }](t, res, status)
	if e.Code != code || e.Error == "" {
		t.Fatalf("error %q (code %q), want code %q", e.Error, e.Code, code)
	}
	return e.Error
}

// Decode checks res's status and decodes its JSON body.
func Decode[T any](t testing.TB, res Response, status int) T {
	t.Helper()
	WantStatus(t, res, status)
	var v T
	if err := json.Unmarshal(res.Body, &v); err != nil {
		t.Fatalf("decode %s: %v", res.Body, err)
	}
	return v
}

// InTx runs fn in a transaction on a second connection to the running
// server's database (SQLite takes one writer at a time, so it is safe
// next to the server): for tests that read what no API shows, such as
// the audit records an action wrote, or set up what no API offers yet.
// The server caches principals for up to a second (identity.Directory),
// so a change to an account is seen at once only if the account has not
// made an authenticated request in the last second.
func (s *Server) InTx(t testing.TB, fn func(ctx context.Context, tx store.Tx) error) {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(s.DataDir, datadir.DatabaseFile))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.InTx(ctx, func(tx store.Tx) error { return fn(ctx, tx) }); err != nil {
		t.Fatal(err)
	}
}

// MakeAuditor gives the account id the auditor role directly in the
// store. Call it before the account's first authenticated request (see
// InTx).
func (s *Server) MakeAuditor(t testing.TB, id string) {
	t.Helper()
	s.InTx(t, func(ctx context.Context, tx store.Tx) error {
		a, err := tx.Accounts().AccountByID(ctx, id)
		if err != nil {
			return err
		}
		a.Auditor = true
		return tx.Accounts().UpdateAccount(ctx, a)
	})
}

// AuditRecords returns the audit records matching q (Limit 0: all of
// them), read straight from the database.
func (s *Server) AuditRecords(t testing.TB, q store.AuditQuery) []store.AuditRecord {
	t.Helper()
	all := q.Limit == 0
	if all {
		q.Limit = 1000
	}
	var out []store.AuditRecord
	s.InTx(t, func(ctx context.Context, tx store.Tx) error {
		for {
			page, err := tx.Audit().FindAuditRecords(ctx, q)
			if err != nil {
				return err
			}
			out = append(out, page...)
			if !all || len(page) < q.Limit {
				return nil
			}
			q.AfterSeq = page[len(page)-1].Seq
		}
	})
	return out
}

// WaitAuditRecords reads the whole audit log until done says it holds what
// the test waits for, and returns it; it fails the test after 10 s. Records
// submitted to the audit queue (refusals) commit shortly after the answer.
func (s *Server) WaitAuditRecords(t testing.TB, what string, done func([]store.AuditRecord) bool) []store.AuditRecord {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		recs := s.AuditRecords(t, store.AuditQuery{})
		if done(recs) {
			return recs
		}
		if time.Now().After(deadline) {
			t.Fatalf("audit log: %s not recorded within 10s", what)
		}
	}
}

// CountAudit counts the records for which match holds.
func CountAudit(recs []store.AuditRecord, match func(store.AuditRecord) bool) int {
	n := 0
	for _, r := range recs {
		if match(r) {
			n++
		}
	}
	return n
}
