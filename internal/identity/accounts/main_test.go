package accounts_test

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/rampart-ml/rampart/internal/app/apptest"
	"github.com/rampart-ml/rampart/internal/config"
)

// env is a running server whose admin has changed the generated password.
type env struct {
	*apptest.Server
	admin user
}

// user is a logged-in account.
type user struct {
	ID, Name, Password string
	Tokens             apptest.Tokens
}

// token is the user's current access token.
func (u user) token() string { return u.Tokens.AccessToken }

// start starts a server (cheap hashing, a source rate limit high enough
// for many logins from 127.0.0.1) and signs its admin in.
func start(t *testing.T) *env {
	t.Helper()
	s := apptest.Start(t, apptest.FastHashing, func(c *config.Config) {
		c.Identity.BruteForce.Source.Burst = 100_000
	})
	// Cleanups run last-registered first: close the client's idle
	// connections before the server shuts down, or a connection the
	// transport dialled but never used keeps the graceful shutdown waiting
	// for its full timeout (net/http counts it as new, not idle, for 5s).
	t.Cleanup(s.Client.CloseIdleConnections)
	tok := s.Login(t, "admin", s.AdminPassword)
	pw := newPassword()
	res := s.Do(t, "POST", "/api/v1/me/password", tok.AccessToken,
		map[string]string{"current_password": s.AdminPassword, "new_password": pw})
	wantStatus(t, res, http.StatusNoContent)
	e := &env{Server: s}
	e.admin = user{Name: "admin", Password: pw, Tokens: s.Login(t, "admin", pw)}
	e.admin.ID = decode[struct{ ID string }](t, s.Do(t, "GET", "/api/v1/me", e.admin.token(), nil), http.StatusOK).ID
	return e
}

// newUser creates an account through the admin API and signs it in with a
// password of its own (the generated one must be changed first).
func (e *env) newUser(t *testing.T, admin bool) user {
	t.Helper()
	name := "user-" + randomHex(6)
	res := e.Do(t, "POST", "/api/v1/accounts", e.admin.token(), map[string]any{"name": name, "admin": admin})
	created := decode[struct {
		ID              string `json:"id"`
		InitialPassword string `json:"initial_password"`
	}](t, res, http.StatusCreated)
	first := e.Login(t, name, created.InitialPassword)
	pw := newPassword()
	res = e.Do(t, "POST", "/api/v1/me/password", first.AccessToken,
		map[string]string{"current_password": created.InitialPassword, "new_password": pw})
	wantStatus(t, res, http.StatusNoContent)
	return user{ID: created.ID, Name: name, Password: pw, Tokens: e.Login(t, name, pw)}
}

// login tries POST /api/v1/login and returns the response.
func (e *env) login(t *testing.T, name, pw, otp string) apptest.Response {
	t.Helper()
	body := map[string]string{"username": name, "password": pw}
	if otp != "" {
		body["otp"] = otp
	}
	return e.Do(t, "POST", "/api/v1/login", "", body)
}

// tokenEndpoint posts form to /oauth/token, with HTTP basic client
// authentication when clientID is not empty.
func (e *env) tokenEndpoint(t *testing.T, form url.Values, clientID, secret string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest("POST", e.URL+"/oauth/token", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if clientID != "" {
		req.SetBasicAuth(url.QueryEscape(clientID), url.QueryEscape(secret))
	}
	res, err := e.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("token endpoint: %d %s", res.StatusCode, b)
	}
	return res.StatusCode, out
}

// clientCredentials gets an access token for a service account with a
// secret; it returns the status and the token ("" on failure).
func (e *env) clientCredentials(t *testing.T, id, secret string) (int, string) {
	t.Helper()
	status, out := e.tokenEndpoint(t, url.Values{"grant_type": {"client_credentials"}}, id, secret)
	tok, _ := out["access_token"].(string)
	return status, tok
}

// refresh exchanges a refresh token of the CLI client.
func (e *env) refresh(t *testing.T, refreshToken string) (int, map[string]any) {
	t.Helper()
	return e.tokenEndpoint(t, url.Values{
		"grant_type": {"refresh_token"}, "refresh_token": {refreshToken}, "client_id": {"rampart-cli"},
	}, "", "")
}

// newPassword is a strong password no test reuses.
func newPassword() string { return "pw " + strings.ToLower(rand.Text()) }

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

var wantStatus = apptest.WantStatus

var wantError = apptest.WantError

func decode[T any](t *testing.T, res apptest.Response, status int) T {
	t.Helper()
	return apptest.Decode[T](t, res, status)
}

// errorCode is the "code" of an error response ("" if there is none).
func errorCode(res apptest.Response) string {
	var e struct{ Code string }
	_ = json.Unmarshal(res.Body, &e)
	return e.Code
}
