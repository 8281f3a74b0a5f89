package accounts_test

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rampart-ml/rampart/internal/identity/accounts"
)

func TestAdminRoutesNeedAdmin(t *testing.T) {
	t.Parallel()
	e := start(t)
	u := e.newUser(t, false)
	for _, rt := range []struct{ method, path string }{
		{"GET", "/api/v1/accounts"},
		{"POST", "/api/v1/accounts"},
		{"GET", "/api/v1/accounts/" + e.admin.ID},
		{"PATCH", "/api/v1/accounts/" + u.ID},
		{"DELETE", "/api/v1/accounts/" + e.admin.ID},
		{"POST", "/api/v1/accounts/" + u.ID + "/password-reset"},
		{"POST", "/api/v1/accounts/" + u.ID + "/unlock"},
		{"POST", "/api/v1/signing-keys/rotate"},
	} {
		wantError(t, e.Do(t, rt.method, rt.path, u.token(), map[string]any{"admin": true}), http.StatusForbidden, "forbidden")
		wantError(t, e.Do(t, rt.method, rt.path, "", nil), http.StatusUnauthorized, "unauthenticated")
	}
	// Still not an admin.
	me := decode[accounts.Me](t, e.Do(t, "GET", "/api/v1/me", u.token(), nil), http.StatusOK)
	if me.Admin || me.Kind != "user" || me.ID != u.ID || me.Name != u.Name {
		t.Errorf("me = %+v", me)
	}
}

func TestAccountAdministration(t *testing.T) {
	t.Parallel()
	e := start(t)
	adm := e.admin.token()

	t.Run("create, read, list", func(t *testing.T) {
		t.Parallel()
		res := e.Do(t, "POST", "/api/v1/accounts", adm, map[string]any{"name": "alice", "email": "alice@example.com"})
		created := decode[accounts.CreatedAccount](t, res, http.StatusCreated)
		if created.ID == "" || created.Name != "alice" || created.Email != "alice@example.com" || created.Admin ||
			!created.MustChangePassword || created.InitialPassword == "" || created.CreatedAt.IsZero() {
			t.Errorf("created = %+v", created)
		}
		for _, forbidden := range []string{"hash", "$argon2", "totp_secret"} {
			if strings.Contains(string(res.Body), forbidden) {
				t.Errorf("create response contains %q: %s", forbidden, res.Body)
			}
		}
		got := decode[accounts.Account](t, e.Do(t, "GET", "/api/v1/accounts/"+created.ID, adm, nil), http.StatusOK)
		if got != created.Account {
			t.Errorf("GET = %+v, want %+v", got, created.Account)
		}
		res = e.Do(t, "GET", "/api/v1/accounts", adm, nil)
		list := decode[accounts.AccountList](t, res, http.StatusOK)
		var names []string
		for _, a := range list.Accounts {
			names = append(names, a.Name)
		}
		if !strings.Contains(strings.Join(names, ","), "alice") || !strings.Contains(strings.Join(names, ","), "admin") {
			t.Errorf("list = %v", names)
		}
		if strings.Contains(string(res.Body), "$argon2") || strings.Contains(string(res.Body), "hash") {
			t.Errorf("list leaks credentials: %s", res.Body)
		}
		wantError(t, e.Do(t, "POST", "/api/v1/accounts", adm, map[string]any{"name": "alice"}), http.StatusConflict, "name_taken")
	})

	t.Run("invalid input", func(t *testing.T) {
		t.Parallel()
		for _, tc := range []struct {
			name   string
			body   any
			status int
			code   string
		}{
			{"no name", map[string]any{}, 422, "invalid_field"},
			{"upper case", map[string]any{"name": "Bob"}, 422, "invalid_field"},
			{"starts with dot", map[string]any{"name": ".bob"}, 422, "invalid_field"},
			{"space", map[string]any{"name": "bob smith"}, 422, "invalid_field"},
			{"too long", map[string]any{"name": strings.Repeat("b", 65)}, 422, "invalid_field"},
			{"reserved prefix", map[string]any{"name": "deleted-0123"}, 422, "invalid_field"},
			{"bad email", map[string]any{"name": "bob", "email": "not an address"}, 422, "invalid_field"},
			{"email with name", map[string]any{"name": "bob", "email": "Bob <bob@example.com>"}, 422, "invalid_field"},
			{"email too long", map[string]any{"name": "bob", "email": strings.Repeat("b", 250) + "@example.com"}, 422, "invalid_field"},
			{"unknown field", map[string]any{"name": "bob", "role": "admin"}, 400, "malformed_json"},
			{"wrong type", map[string]any{"name": "bob", "admin": "yes"}, 400, "invalid_field"},
		} {
			res := e.Do(t, "POST", "/api/v1/accounts", adm, tc.body)
			if res.StatusCode != tc.status || errorCode(res) != tc.code {
				t.Errorf("%s: %d %s, want %d %s", tc.name, res.StatusCode, res.Body, tc.status, tc.code)
			}
		}
		// The longest allowed name works.
		wantStatus(t, e.Do(t, "POST", "/api/v1/accounts", adm, map[string]any{"name": strings.Repeat("b", 64)}), http.StatusCreated)
	})

	t.Run("unknown ids", func(t *testing.T) {
		t.Parallel()
		for _, id := range []string{"0123456789abcdef0123456789abcdef", "no%20such", strings.Repeat("a", 200)} {
			for _, rt := range []struct{ method, suffix string }{
				{"GET", ""}, {"PATCH", ""}, {"DELETE", ""}, {"POST", "/password-reset"}, {"POST", "/unlock"},
			} {
				res := e.Do(t, rt.method, "/api/v1/accounts/"+id+rt.suffix, adm, map[string]any{})
				if res.StatusCode != http.StatusNotFound {
					t.Errorf("%s %s: %d %s, want 404", rt.method, id+rt.suffix, res.StatusCode, res.Body)
				}
			}
		}
	})

	t.Run("update", func(t *testing.T) {
		t.Parallel()
		u := e.newUser(t, false)
		got := decode[accounts.Account](t, e.Do(t, "PATCH", "/api/v1/accounts/"+u.ID, adm,
			map[string]any{"email": "u@example.org", "admin": true}), http.StatusOK)
		if got.Email != "u@example.org" || !got.Admin || got.Disabled {
			t.Errorf("after PATCH: %+v", got)
		}
		// The promotion applies to the user's existing token at once.
		wantStatus(t, e.Do(t, "GET", "/api/v1/accounts", u.token(), nil), http.StatusOK)
		got = decode[accounts.Account](t, e.Do(t, "PATCH", "/api/v1/accounts/"+u.ID, adm,
			map[string]any{"email": "", "admin": false}), http.StatusOK)
		if got.Email != "" || got.Admin {
			t.Errorf("after second PATCH: %+v", got)
		}
		wantError(t, e.Do(t, "GET", "/api/v1/accounts", u.token(), nil), http.StatusForbidden, "forbidden")
		wantError(t, e.Do(t, "PATCH", "/api/v1/accounts/"+u.ID, adm, map[string]any{"email": "x"}), http.StatusUnprocessableEntity, "invalid_field")
	})

	t.Run("disable", func(t *testing.T) {
		t.Parallel()
		u := e.newUser(t, false)
		got := decode[accounts.Account](t, e.Do(t, "PATCH", "/api/v1/accounts/"+u.ID, adm, map[string]any{"disabled": true}), http.StatusOK)
		if !got.Disabled {
			t.Fatalf("after disabling: %+v", got)
		}
		wantError(t, e.Do(t, "GET", "/api/v1/me", u.token(), nil), http.StatusUnauthorized, "invalid_token")
		wantError(t, e.login(t, u.Name, u.Password, ""), http.StatusUnauthorized, "invalid_credentials")
		if status, out := e.refresh(t, u.Tokens.RefreshToken); status != http.StatusBadRequest || out["error"] != "invalid_grant" {
			t.Errorf("refresh of a disabled account: %d %v", status, out)
		}
		wantStatus(t, e.Do(t, "PATCH", "/api/v1/accounts/"+u.ID, adm, map[string]any{"disabled": false}), http.StatusOK)
		tok := e.Login(t, u.Name, u.Password)
		wantStatus(t, e.Do(t, "GET", "/api/v1/me", tok.AccessToken, nil), http.StatusOK)
	})

	t.Run("delete", func(t *testing.T) {
		t.Parallel()
		u := e.newUser(t, false)
		wantStatus(t, e.Do(t, "DELETE", "/api/v1/accounts/"+u.ID, adm, nil), http.StatusNoContent)
		wantError(t, e.Do(t, "GET", "/api/v1/me", u.token(), nil), http.StatusUnauthorized, "invalid_token")
		wantError(t, e.login(t, u.Name, u.Password, ""), http.StatusUnauthorized, "invalid_credentials")
		wantError(t, e.Do(t, "DELETE", "/api/v1/accounts/"+u.ID, adm, nil), http.StatusNotFound, "not_found")
	})

	t.Run("delete refused while owning service accounts", func(t *testing.T) {
		t.Parallel()
		u := e.newUser(t, false)
		sa := createServiceAccount(t, e, u, "svc-"+u.Name)
		msg := wantError(t, e.Do(t, "DELETE", "/api/v1/accounts/"+u.ID, adm, nil), http.StatusConflict, "owns_service_accounts")
		if !strings.Contains(msg, "service account") {
			t.Errorf("message %q", msg)
		}
		// Nothing happened: the user's session lives on.
		wantStatus(t, e.Do(t, "GET", "/api/v1/me", u.token(), nil), http.StatusOK)
		// Once the service account is given away, the account can go.
		wantStatus(t, e.Do(t, "PATCH", "/api/v1/service-accounts/"+sa.ID, adm, map[string]any{"owner_id": e.admin.ID}), http.StatusOK)
		wantStatus(t, e.Do(t, "DELETE", "/api/v1/accounts/"+u.ID, adm, nil), http.StatusNoContent)
	})

	t.Run("password reset", func(t *testing.T) {
		t.Parallel()
		u := e.newUser(t, false)
		reset := decode[accounts.PasswordReset](t, e.Do(t, "POST", "/api/v1/accounts/"+u.ID+"/password-reset", adm, nil), http.StatusOK)
		if reset.Password == "" {
			t.Fatal("no password")
		}
		wantError(t, e.Do(t, "GET", "/api/v1/me", u.token(), nil), http.StatusUnauthorized, "invalid_token")
		if status, _ := e.refresh(t, u.Tokens.RefreshToken); status != http.StatusBadRequest {
			t.Errorf("old refresh token after reset: %d", status)
		}
		wantError(t, e.login(t, u.Name, u.Password, ""), http.StatusUnauthorized, "invalid_credentials")
		tok := e.Login(t, u.Name, reset.Password)
		wantError(t, e.Do(t, "GET", "/api/v1/service-accounts", tok.AccessToken, nil), http.StatusForbidden, "password_change_required")
		got := decode[accounts.Account](t, e.Do(t, "GET", "/api/v1/accounts/"+u.ID, adm, nil), http.StatusOK)
		if !got.MustChangePassword {
			t.Error("must_change_password not set by a reset")
		}
	})

	t.Run("unlock", func(t *testing.T) {
		t.Parallel()
		u := e.newUser(t, false)
		for range 5 { // the default lockout threshold
			wantError(t, e.login(t, u.Name, "a wrong password", ""), http.StatusUnauthorized, "invalid_credentials")
		}
		wantError(t, e.login(t, u.Name, u.Password, ""), http.StatusUnauthorized, "invalid_credentials")
		got := decode[accounts.Account](t, e.Do(t, "GET", "/api/v1/accounts/"+u.ID, adm, nil), http.StatusOK)
		if !got.Lockout.Locked || got.Lockout.LockedUntil == nil || !got.Lockout.LockedUntil.After(time.Now()) {
			t.Fatalf("lockout = %+v, want locked", got.Lockout)
		}
		wantStatus(t, e.Do(t, "POST", "/api/v1/accounts/"+u.ID+"/unlock", adm, nil), http.StatusNoContent)
		got = decode[accounts.Account](t, e.Do(t, "GET", "/api/v1/accounts/"+u.ID, adm, nil), http.StatusOK)
		if got.Lockout != (accounts.Lockout{}) {
			t.Errorf("lockout after unlock = %+v", got.Lockout)
		}
		wantStatus(t, e.login(t, u.Name, u.Password, ""), http.StatusOK)
	})
}

// TestSigningKeyRotation has a server of its own: right after a rotation,
// the authentication middleware refuses tokens signed by the new key for
// up to a second (authn reloads its key set at most once a second), which
// would disturb tests sharing the server.
func TestSigningKeyRotation(t *testing.T) {
	t.Parallel()
	e := start(t)
	u := e.newUser(t, false)
	adm := e.admin.token()
	rot := decode[accounts.RotatedKey](t, e.Do(t, "POST", "/api/v1/signing-keys/rotate", adm, nil), http.StatusOK)
	if rot.KeyID == "" || !rot.SignUntil.After(time.Now()) {
		t.Fatalf("rotated = %+v", rot)
	}
	jwks := decode[struct {
		Keys []struct {
			KeyID string `json:"kid"`
		} `json:"keys"`
	}](t, e.Do(t, "GET", "/oauth/keys", "", nil), http.StatusOK)
	found := false
	for _, k := range jwks.Keys {
		found = found || k.KeyID == rot.KeyID
	}
	if !found || len(jwks.Keys) < 2 {
		t.Errorf("JWKS %+v lacks the new key %s or the old one", jwks.Keys, rot.KeyID)
	}
	// Tokens signed by the retired key keep working.
	wantStatus(t, e.Do(t, "GET", "/api/v1/me", u.token(), nil), http.StatusOK)
	// New tokens are signed by the new key and work at once.
	tok := e.Login(t, u.Name, u.Password)
	if kid := tokenKeyID(t, tok.AccessToken); kid != rot.KeyID {
		t.Errorf("new token signed by %s, want %s", kid, rot.KeyID)
	}
	wantStatus(t, e.Do(t, "GET", "/api/v1/me", tok.AccessToken, nil), http.StatusOK)
}

var b64 = base64.RawURLEncoding

// tokenKeyID returns the kid in a JWS header.
func tokenKeyID(t *testing.T, jwt string) string {
	t.Helper()
	hdr, _, _ := strings.Cut(jwt, ".")
	b, err := b64.DecodeString(hdr)
	if err != nil {
		t.Fatal(err)
	}
	var h struct {
		KeyID string `json:"kid"`
	}
	if err := json.Unmarshal(b, &h); err != nil {
		t.Fatal(err)
	}
	return h.KeyID
}

// The last enabled admin must stay: each test gets its own server, where
// the bootstrap admin is the only one.
func TestLastAdmin(t *testing.T) {
	t.Parallel()
	e := start(t)
	adm := e.admin.token()
	self := "/api/v1/accounts/" + e.admin.ID

	wantError(t, e.Do(t, "PATCH", self, adm, map[string]any{"disabled": true}), http.StatusConflict, "last_admin")
	wantError(t, e.Do(t, "PATCH", self, adm, map[string]any{"admin": false}), http.StatusConflict, "last_admin")
	wantError(t, e.Do(t, "DELETE", self, adm, nil), http.StatusConflict, "last_admin")
	wantError(t, e.Do(t, "DELETE", "/api/v1/me", adm, map[string]string{"password": e.admin.Password}), http.StatusConflict, "last_admin")
	// Other changes to the last admin are fine.
	wantStatus(t, e.Do(t, "PATCH", self, adm, map[string]any{"email": "root@example.com"}), http.StatusOK)

	// A disabled admin does not count.
	other := e.newUser(t, true)
	wantStatus(t, e.Do(t, "PATCH", "/api/v1/accounts/"+other.ID, adm, map[string]any{"disabled": true}), http.StatusOK)
	wantError(t, e.Do(t, "PATCH", self, adm, map[string]any{"admin": false}), http.StatusConflict, "last_admin")

	// With another enabled admin, the first may step down, and then the
	// second is the last.
	wantStatus(t, e.Do(t, "PATCH", "/api/v1/accounts/"+other.ID, adm, map[string]any{"disabled": false}), http.StatusOK)
	wantStatus(t, e.Do(t, "PATCH", self, adm, map[string]any{"admin": false}), http.StatusOK)
	wantError(t, e.Do(t, "GET", "/api/v1/accounts", adm, nil), http.StatusForbidden, "forbidden")
	otherTok := e.Login(t, other.Name, other.Password).AccessToken
	wantError(t, e.Do(t, "DELETE", "/api/v1/accounts/"+other.ID, otherTok, nil), http.StatusConflict, "last_admin")
	// The former admin can now delete itself.
	wantStatus(t, e.Do(t, "DELETE", "/api/v1/me", adm, map[string]string{"password": e.admin.Password}), http.StatusNoContent)
}
