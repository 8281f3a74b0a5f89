package authz_test

import (
	"crypto/rand"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/rampart-ml/rampart/internal/app/apptest"
	"github.com/rampart-ml/rampart/internal/authz"
	"github.com/rampart-ml/rampart/internal/config"
)

// env is a running server (real TLS, SQLite, middleware chain and
// authz.Service, as app.go builds them) whose admin has changed the
// generated password.
type env struct {
	*apptest.Server
	admin subject
}

// subject is a signed-in user or service account.
type subject struct {
	ID, Name string
	Token    string // access token
}

// start starts a server with cheap password hashing and a source rate
// limit high enough for the many logins from 127.0.0.1, and signs the
// admin in.
func start(t *testing.T) *env {
	t.Helper()
	s := apptest.Start(t, apptest.FastHashing, func(c *config.Config) {
		c.Identity.BruteForce.Source.Burst = 100_000
	})
	// Cleanups run last-registered first: drop the client's idle
	// connections before the server shuts down, or graceful shutdown waits
	// for a dialled but unused connection.
	t.Cleanup(s.Client.CloseIdleConnections)
	tok := s.Login(t, "admin", s.AdminPassword)
	pw := newPassword()
	wantStatus(t, s.Do(t, "POST", "/api/v1/me/password", tok.AccessToken,
		map[string]string{"current_password": s.AdminPassword, "new_password": pw}), http.StatusNoContent)
	e := &env{Server: s}
	e.admin = subject{Name: "admin", Token: s.Login(t, "admin", pw).AccessToken}
	e.admin.ID = decode[struct{ ID string }](t, s.Do(t, "GET", "/api/v1/me", e.admin.Token, nil), http.StatusOK).ID
	return e
}

// newUser creates a local account through the admin API, changes its
// generated password and signs it in.
func (e *env) newUser(t *testing.T, name string) subject {
	t.Helper()
	created := decode[struct {
		ID              string `json:"id"`
		InitialPassword string `json:"initial_password"`
	}](t, e.Do(t, "POST", "/api/v1/accounts", e.admin.Token, map[string]any{"name": name}), http.StatusCreated)
	first := e.Login(t, name, created.InitialPassword)
	pw := newPassword()
	wantStatus(t, e.Do(t, "POST", "/api/v1/me/password", first.AccessToken,
		map[string]string{"current_password": created.InitialPassword, "new_password": pw}), http.StatusNoContent)
	return subject{ID: created.ID, Name: name, Token: e.Login(t, name, pw).AccessToken}
}

// newServiceAccount creates a service account owned by the admin and gets
// it a token with the client-credentials grant.
func (e *env) newServiceAccount(t *testing.T, name string) subject {
	t.Helper()
	created := decode[struct {
		ID           string `json:"id"`
		ClientSecret string `json:"client_secret"`
	}](t, e.Do(t, "POST", "/api/v1/service-accounts", e.admin.Token, map[string]any{"name": name}), http.StatusCreated)
	req, err := http.NewRequest("POST", e.URL+"/oauth/token",
		strings.NewReader(url.Values{"grant_type": {"client_credentials"}}.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(created.ID), url.QueryEscape(created.ClientSecret))
	res, err := e.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(b, &tok); err != nil || res.StatusCode != http.StatusOK || tok.AccessToken == "" {
		t.Fatalf("client credentials for %s: %d %s", created.ID, res.StatusCode, b)
	}
	return subject{ID: created.ID, Name: name, Token: tok.AccessToken}
}

// createDomains creates each domain as the admin.
func (e *env) createDomains(t *testing.T, names ...string) {
	t.Helper()
	for _, n := range names {
		wantStatus(t, e.Do(t, "POST", "/api/v1/domains", e.admin.Token, map[string]string{"name": n}), http.StatusCreated)
	}
}

// grant gives sub privilege on domain as the admin and returns the grant.
func (e *env) grant(t *testing.T, sub subject, kind, domain, privilege string) authz.Grant {
	t.Helper()
	return e.grantAs(t, e.admin, sub, kind, domain, privilege)
}

// grantAs makes the grant as granter, which must succeed.
func (e *env) grantAs(t *testing.T, granter, sub subject, kind, domain, privilege string) authz.Grant {
	t.Helper()
	g := decode[authz.Grant](t, e.postGrant(t, granter, kind, sub.ID, domain, privilege), http.StatusCreated)
	if g.ID == "" || g.SubjectKind != kind || g.SubjectID != sub.ID || g.Domain != domain || g.Privilege != privilege {
		t.Fatalf("created grant %+v, want %s %s %s on %s", g, kind, sub.ID, privilege, domain)
	}
	return g
}

// postGrant tries POST /api/v1/grants as granter.
func (e *env) postGrant(t *testing.T, granter subject, kind, subjectID, domain, privilege string) apptest.Response {
	t.Helper()
	return e.Do(t, "POST", "/api/v1/grants", granter.Token, map[string]string{
		"subject_kind": kind, "subject_id": subjectID, "domain": domain, "privilege": privilege,
	})
}

// revoke deletes grant id as who and checks the status.
func (e *env) revoke(t *testing.T, who subject, id string, status int) {
	t.Helper()
	wantStatus(t, e.Do(t, "DELETE", "/api/v1/grants/"+url.PathEscape(id), who.Token, nil), status)
}

// newPassword is a strong password no test reuses.
func newPassword() string { return "pw " + strings.ToLower(rand.Text()) }

var wantStatus = apptest.WantStatus

var wantError = apptest.WantError

func decode[T any](t *testing.T, res apptest.Response, status int) T {
	t.Helper()
	return apptest.Decode[T](t, res, status)
}
