package accounts_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"
)

func TestMustChangePasswordFirst(t *testing.T) {
	t.Parallel()
	e := start(t)
	res := e.Do(t, "POST", "/api/v1/accounts", e.admin.token(), map[string]any{"name": "newbie"})
	created := decode[struct {
		InitialPassword string `json:"initial_password"`
	}](t, res, http.StatusCreated)
	tok := e.Login(t, "newbie", created.InitialPassword)

	me := decode[struct {
		MustChange bool `json:"must_change_password"`
	}](t, e.Do(t, "GET", "/api/v1/me", tok.AccessToken, nil), http.StatusOK)
	if !me.MustChange {
		t.Error("must_change_password is false for a generated password")
	}
	wantError(t, e.Do(t, "GET", "/api/v1/service-accounts", tok.AccessToken, nil), http.StatusForbidden, "password_change_required")

	pw := newPassword()
	wantStatus(t, e.Do(t, "POST", "/api/v1/me/password", tok.AccessToken,
		map[string]string{"current_password": created.InitialPassword, "new_password": pw}), http.StatusNoContent)
	tok = e.Login(t, "newbie", pw)
	me = decode[struct {
		MustChange bool `json:"must_change_password"`
	}](t, e.Do(t, "GET", "/api/v1/me", tok.AccessToken, nil), http.StatusOK)
	if me.MustChange {
		t.Error("must_change_password still set after the change")
	}
	wantStatus(t, e.Do(t, "GET", "/api/v1/service-accounts", tok.AccessToken, nil), http.StatusOK)
}

func TestChangePassword(t *testing.T) {
	t.Parallel()
	e := start(t)

	t.Run("refused", func(t *testing.T) {
		t.Parallel()
		u := e.newUser(t, false)
		for _, tc := range []struct {
			name             string
			current, newPass string
			status           int
			code             string
			rule             string // for weak_password: the rule the message names
		}{
			{"too short", u.Password, "Tr0ub4dor&3", 422, "weak_password", "too_short"},
			{"contains user name", u.Password, "my name is " + u.Name + " ok", 422, "weak_password", "contains_username"},
			{"contains product name", u.Password, "i like rampart very much", 422, "weak_password", "contains_product_name"},
			{"blocklisted", u.Password, "passwordpassword", 422, "weak_password", "blocklisted"},
			{"guessable", u.Password, "aaaaaaaaaaaaaaaaaaaa", 422, "weak_password", ""},
			{"unchanged", u.Password, u.Password, 422, "password_unchanged", ""},
			{"wrong current password", "not the password at all", newPassword(), 401, "invalid_credentials", ""},
			{"missing current password", "", newPassword(), 422, "invalid_field", ""},
			{"missing new password", u.Password, "", 422, "invalid_field", ""},
		} {
			res := e.Do(t, "POST", "/api/v1/me/password", u.token(),
				map[string]string{"current_password": tc.current, "new_password": tc.newPass})
			msg := wantError(t, res, tc.status, tc.code)
			if tc.rule != "" && !strings.Contains(msg, tc.rule) {
				t.Errorf("%s: message %q does not name rule %s", tc.name, msg, tc.rule)
			}
			if tc.newPass != "" && strings.Contains(msg, tc.newPass) {
				t.Errorf("%s: message %q echoes the password", tc.name, msg)
			}
		}
		// Unknown fields are refused.
		res := e.Do(t, "POST", "/api/v1/me/password", u.token(),
			map[string]string{"current_password": u.Password, "new_password": newPassword(), "extra": "x"})
		wantError(t, res, http.StatusBadRequest, "malformed_json")
		// Nothing changed: the password still works.
		e.Login(t, u.Name, u.Password)
	})

	t.Run("revokes sessions", func(t *testing.T) {
		t.Parallel()
		u := e.newUser(t, false)
		other := e.Login(t, u.Name, u.Password) // a second device
		pw := newPassword()
		wantStatus(t, e.Do(t, "POST", "/api/v1/me/password", u.token(),
			map[string]string{"current_password": u.Password, "new_password": pw}), http.StatusNoContent)

		for _, tok := range []string{u.Tokens.RefreshToken, other.RefreshToken} {
			status, out := e.refresh(t, tok)
			if status != http.StatusBadRequest || out["error"] != "invalid_grant" {
				t.Errorf("old refresh token: %d %v, want 400 invalid_grant", status, out)
			}
		}
		for _, tok := range []string{u.token(), other.AccessToken} {
			wantError(t, e.Do(t, "GET", "/api/v1/me", tok, nil), http.StatusUnauthorized, "invalid_token")
		}
		wantError(t, e.login(t, u.Name, u.Password, ""), http.StatusUnauthorized, "invalid_credentials")
		fresh := e.Login(t, u.Name, pw)
		if status, out := e.refresh(t, fresh.RefreshToken); status != http.StatusOK {
			t.Errorf("new refresh token: %d %v", status, out)
		}
	})
}

func TestDeleteSelf(t *testing.T) {
	t.Parallel()
	e := start(t)

	t.Run("deletes", func(t *testing.T) {
		t.Parallel()
		u := e.newUser(t, false)
		wantError(t, e.Do(t, "DELETE", "/api/v1/me", u.token(), map[string]string{"password": "wrong password here"}),
			http.StatusUnauthorized, "invalid_credentials")
		wantError(t, e.Do(t, "DELETE", "/api/v1/me", u.token(), map[string]string{}), http.StatusUnprocessableEntity, "invalid_field")
		wantStatus(t, e.Do(t, "DELETE", "/api/v1/me", u.token(), map[string]string{"password": u.Password}), http.StatusNoContent)

		wantError(t, e.Do(t, "GET", "/api/v1/accounts/"+u.ID, e.admin.token(), nil), http.StatusNotFound, "not_found")
		wantError(t, e.Do(t, "GET", "/api/v1/me", u.token(), nil), http.StatusUnauthorized, "invalid_token")
		if status, _ := e.refresh(t, u.Tokens.RefreshToken); status != http.StatusBadRequest {
			t.Errorf("refresh after delete: %d, want 400", status)
		}
		wantError(t, e.login(t, u.Name, u.Password, ""), http.StatusUnauthorized, "invalid_credentials")
	})

	t.Run("anonymizes an owner of service accounts", func(t *testing.T) {
		t.Parallel()
		u := e.newUser(t, false)
		sa := createServiceAccount(t, e, u, "owned-by-"+u.Name)

		// An admin cannot delete the account while it owns service accounts.
		msg := wantError(t, e.Do(t, "DELETE", "/api/v1/accounts/"+u.ID, e.admin.token(), nil), http.StatusConflict, "owns_service_accounts")
		if !strings.Contains(msg, "service account") {
			t.Errorf("409 message %q does not say why", msg)
		}
		// The user can: the account is anonymized and stays as the owner.
		wantStatus(t, e.Do(t, "DELETE", "/api/v1/me", u.token(), map[string]string{"password": u.Password}), http.StatusNoContent)
		got := decode[struct {
			Name       string `json:"name"`
			Email      string `json:"email"`
			Anonymized bool   `json:"anonymized"`
			Disabled   bool   `json:"disabled"`
			TOTP       bool   `json:"totp"`
		}](t, e.Do(t, "GET", "/api/v1/accounts/"+u.ID, e.admin.token(), nil), http.StatusOK)
		if got.Name != "deleted-"+u.ID || got.Email != "" || !got.Anonymized || !got.Disabled || got.TOTP {
			t.Errorf("anonymized account = %+v", got)
		}
		wantError(t, e.Do(t, "GET", "/api/v1/me", u.token(), nil), http.StatusUnauthorized, "invalid_token")
		wantError(t, e.login(t, u.Name, u.Password, ""), http.StatusUnauthorized, "invalid_credentials")
		wantError(t, e.login(t, "deleted-"+u.ID, u.Password, ""), http.StatusUnauthorized, "invalid_credentials")
		// Anonymized accounts cannot be revived.
		wantError(t, e.Do(t, "PATCH", "/api/v1/accounts/"+u.ID, e.admin.token(), map[string]any{"disabled": false}),
			http.StatusConflict, "anonymized")
		// The name is free again, and the service account still has its owner.
		wantStatus(t, e.Do(t, "POST", "/api/v1/accounts", e.admin.token(), map[string]any{"name": u.Name}), http.StatusCreated)
		owned := decode[struct {
			OwnerID string `json:"owner_id"`
		}](t, e.Do(t, "GET", "/api/v1/service-accounts/"+sa.ID, e.admin.token(), nil), http.StatusOK)
		if owned.OwnerID != u.ID {
			t.Errorf("owner = %q, want %q", owned.OwnerID, u.ID)
		}
	})
}

func TestServiceAccountPrincipalHasNoSelfService(t *testing.T) {
	t.Parallel()
	e := start(t)
	u := e.newUser(t, false)
	sa := createServiceAccount(t, e, u, "robot")
	_, tok := e.clientCredentials(t, sa.ID, sa.ClientSecret)
	for _, rt := range []struct{ method, path string }{
		{"POST", "/api/v1/me/password"},
		{"DELETE", "/api/v1/me"},
		{"POST", "/api/v1/me/totp"},
		{"PUT", "/api/v1/me/totp"},
		{"DELETE", "/api/v1/me/totp"},
		{"POST", "/api/v1/service-accounts"},
	} {
		res := e.Do(t, rt.method, rt.path, tok, map[string]string{})
		if res.StatusCode != http.StatusForbidden {
			t.Errorf("%s %s as a service account: %d %s, want 403", rt.method, rt.path, res.StatusCode, res.Body)
		}
	}
}

// totpEnrollment is the answer of POST /api/v1/me/totp.
type totpEnrollment struct {
	Secret     string `json:"secret"`
	OTPAuthURL string `json:"otpauth_url"`
	Enrollment string `json:"enrollment"`
}

// enrollTOTP turns on the second factor for u and returns the secret and
// the code used to confirm it (which is then spent). Codes for
// time.Now().Add(30*time.Second) are valid and fresh after it.
func enrollTOTP(t *testing.T, e *env, u user) (secret, spent string) {
	t.Helper()
	en := decode[totpEnrollment](t, e.Do(t, "POST", "/api/v1/me/totp", u.token(), nil), http.StatusOK)
	code := mustCode(t, en.Secret, time.Now())
	wantStatus(t, e.Do(t, "PUT", "/api/v1/me/totp", u.token(),
		map[string]string{"enrollment": en.Enrollment, "code": code, "password": u.Password}), http.StatusNoContent)
	return en.Secret, code
}

func mustCode(t *testing.T, secret string, at time.Time) string {
	t.Helper()
	c, err := totp.GenerateCode(secret, at)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestTOTP(t *testing.T) {
	t.Parallel()
	e := start(t)

	t.Run("enrollment", func(t *testing.T) {
		t.Parallel()
		u := e.newUser(t, false)
		other := e.newUser(t, false)
		en := decode[totpEnrollment](t, e.Do(t, "POST", "/api/v1/me/totp", u.token(), nil), http.StatusOK)
		if en.Secret == "" || !strings.HasPrefix(en.OTPAuthURL, "otpauth://totp/") || en.Enrollment == "" {
			t.Fatalf("enrollment = %+v", en)
		}
		code := mustCode(t, en.Secret, time.Now())
		for _, tc := range []struct {
			name   string
			tok    string
			body   map[string]string
			status int
			code   string
		}{
			{"wrong code", u.token(), map[string]string{"enrollment": en.Enrollment, "code": "000000", "password": u.Password}, 422, "invalid_otp"},
			{"tampered enrollment", u.token(), map[string]string{"enrollment": en.Enrollment + "A", "code": code, "password": u.Password}, 422, "invalid_field"},
			{"changed expiry", u.token(), map[string]string{"enrollment": "9" + en.Enrollment, "code": code, "password": u.Password}, 422, "invalid_field"},
			{"another user's enrollment", other.token(), map[string]string{"enrollment": en.Enrollment, "code": code, "password": other.Password}, 422, "invalid_field"},
			{"wrong password", u.token(), map[string]string{"enrollment": en.Enrollment, "code": code, "password": "not my password"}, 401, "invalid_credentials"},
			{"no password", u.token(), map[string]string{"enrollment": en.Enrollment, "code": code}, 422, "invalid_field"},
		} {
			res := e.Do(t, "PUT", "/api/v1/me/totp", tc.tok, tc.body)
			if got := errorCode(res); res.StatusCode != tc.status || got != tc.code {
				t.Errorf("%s: %d %s, want %d %s", tc.name, res.StatusCode, res.Body, tc.status, tc.code)
			}
		}
		wantStatus(t, e.Do(t, "PUT", "/api/v1/me/totp", u.token(),
			map[string]string{"enrollment": en.Enrollment, "code": code, "password": u.Password}), http.StatusNoContent)
		// Enabled once; a second enrollment is refused.
		wantError(t, e.Do(t, "POST", "/api/v1/me/totp", u.token(), nil), http.StatusConflict, "totp_enabled")
		got := decode[struct {
			TOTP bool `json:"totp"`
		}](t, e.Do(t, "GET", "/api/v1/accounts/"+u.ID, e.admin.token(), nil), http.StatusOK)
		if !got.TOTP {
			t.Error("admin view: totp = false after enrollment")
		}
	})

	t.Run("login needs a fresh code", func(t *testing.T) {
		t.Parallel()
		u := e.newUser(t, false)
		secret, spent := enrollTOTP(t, e, u)
		wantError(t, e.login(t, u.Name, u.Password, ""), http.StatusUnauthorized, "otp_required")
		// The code used for the enrollment is spent.
		wantError(t, e.login(t, u.Name, u.Password, spent), http.StatusUnauthorized, "invalid_credentials")
		next := mustCode(t, secret, time.Now().Add(30*time.Second))
		wantStatus(t, e.login(t, u.Name, u.Password, next), http.StatusOK)
		// A replayed code is refused.
		wantError(t, e.login(t, u.Name, u.Password, next), http.StatusUnauthorized, "invalid_credentials")
	})

	t.Run("password change needs the code; 8 characters suffice", func(t *testing.T) {
		t.Parallel()
		u := e.newUser(t, false)
		secret, _ := enrollTOTP(t, e, u)
		short := "Qz7#kLm2wX" // 10 characters: too short without a second factor
		res := e.Do(t, "POST", "/api/v1/me/password", u.token(), map[string]string{"current_password": u.Password, "new_password": short})
		wantError(t, res, http.StatusUnauthorized, "otp_required")
		res = e.Do(t, "POST", "/api/v1/me/password", u.token(), map[string]string{
			"current_password": u.Password, "new_password": short, "otp": mustCode(t, secret, time.Now().Add(30*time.Second)),
		})
		wantStatus(t, res, http.StatusNoContent)
	})

	t.Run("removal", func(t *testing.T) {
		t.Parallel()
		u := e.newUser(t, false)
		wantError(t, e.Do(t, "DELETE", "/api/v1/me/totp", u.token(), map[string]string{"password": u.Password, "otp": "123456"}),
			http.StatusConflict, "totp_not_enabled")
		secret, _ := enrollTOTP(t, e, u)
		wantError(t, e.Do(t, "DELETE", "/api/v1/me/totp", u.token(), map[string]string{"password": u.Password}),
			http.StatusUnprocessableEntity, "invalid_field")
		wantError(t, e.Do(t, "DELETE", "/api/v1/me/totp", u.token(), map[string]string{"password": u.Password, "otp": "000000"}),
			http.StatusUnauthorized, "invalid_credentials")
		next := mustCode(t, secret, time.Now().Add(30*time.Second))
		wantError(t, e.Do(t, "DELETE", "/api/v1/me/totp", u.token(), map[string]string{"password": "wrong password", "otp": next}),
			http.StatusUnauthorized, "invalid_credentials")
		wantStatus(t, e.Do(t, "DELETE", "/api/v1/me/totp", u.token(), map[string]string{"password": u.Password, "otp": next}),
			http.StatusNoContent)
		wantStatus(t, e.login(t, u.Name, u.Password, ""), http.StatusOK)
	})

	t.Run("admin removes a lost second factor", func(t *testing.T) {
		t.Parallel()
		u := e.newUser(t, false)
		enrollTOTP(t, e, u)
		wantError(t, e.Do(t, "PATCH", "/api/v1/accounts/"+u.ID, e.admin.token(), map[string]any{"totp": true}),
			http.StatusUnprocessableEntity, "invalid_field")
		wantStatus(t, e.Do(t, "PATCH", "/api/v1/accounts/"+u.ID, e.admin.token(), map[string]any{"totp": false}), http.StatusOK)
		wantStatus(t, e.login(t, u.Name, u.Password, ""), http.StatusOK)
	})
}
