package app_test

import (
	"net/http"
	"testing"

	"github.com/rampart-ml/rampart/internal/app"
	"github.com/rampart-ml/rampart/internal/app/apptest"
)

// GET /api/v1/audit/verify checks the chain of a running server; it is
// for admins only.
func TestAuditVerifyEndpoint(t *testing.T) {
	t.Parallel()
	s := apptest.Start(t, apptest.FastHashing)
	admin := s.Login(t, "admin", s.AdminPassword).AccessToken
	// The generated password must change before anything else.
	const pw = "violet-orbit-lantern-quarry-42"
	apptest.WantStatus(t, s.Do(t, "POST", "/api/v1/me/password", admin,
		map[string]string{"current_password": s.AdminPassword, "new_password": pw}), http.StatusNoContent)
	admin = s.Login(t, "admin", pw).AccessToken

	got := apptest.Decode[app.AuditVerification](t, s.Do(t, "GET", "/api/v1/audit/verify", admin, nil), http.StatusOK)
	if !got.Intact || got.KeyFingerprint == "" || got.Problem != "" {
		t.Errorf("verification of a fresh server: %+v", got)
	}
	apptest.WantStatus(t, s.Do(t, "GET", "/api/v1/audit/verify", "", nil), http.StatusUnauthorized)

	user := apptest.Decode[struct {
		ID              string `json:"id"`
		InitialPassword string `json:"initial_password"`
	}](t, s.Do(t, "POST", "/api/v1/accounts", admin, map[string]string{"name": "carol"}), http.StatusCreated)
	tok := s.Login(t, "carol", user.InitialPassword).AccessToken
	apptest.WantStatus(t, s.Do(t, "POST", "/api/v1/me/password", tok,
		map[string]string{"current_password": user.InitialPassword, "new_password": "amber-granite-meadow-falcon-77"}), http.StatusNoContent)
	tok = s.Login(t, "carol", "amber-granite-meadow-falcon-77").AccessToken
	apptest.WantStatus(t, s.Do(t, "GET", "/api/v1/audit/verify", tok, nil), http.StatusForbidden)
}
