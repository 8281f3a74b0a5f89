package app_test

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rampart-ml/rampart/internal/app/apptest"
	"github.com/rampart-ml/rampart/internal/config"
	"github.com/rampart-ml/rampart/internal/identity/federation/federationtest"
)

// A token from a real, independent OpenID provider (the zitadel example
// OP, started on a loopback port) authenticates API calls on a Rampart
// server that lists it in its federation file; the same server refuses it
// once the provider has rotated its key, and refuses tokens for another
// audience.
func TestFederatedTokenThroughServer(t *testing.T) {
	t.Parallel()
	idp := federationtest.Start(t)
	file := filepath.Join(t.TempDir(), "federation.yaml")
	yaml := "- name: zitadel\n  issuer: " + idp.Issuer + "\n  audience: " + federationtest.ClientID +
		"\n  groups_claim: amr\n  allow_insecure_http: true\n" +
		"- name: other\n  issuer: https://other.example\n  audience: rampart\n"
	if err := os.WriteFile(file, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := apptest.Start(t, func(c *config.Config) {
		issuers, err := config.ParseFederationFile(file)
		if err != nil {
			t.Fatal(err)
		}
		c.Identity.FederationFile, c.Identity.Federation = file, issuers
	})

	tok := idp.IDToken(t, federationtest.Alice.Username, federationtest.Alice.Password)
	res := srv.Do(t, "GET", "/api/v1/me", tok, nil)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("federated token: %d %s", res.StatusCode, res.Body)
	}
	var me struct {
		ID, Kind string
		Admin    bool
	}
	if err := json.Unmarshal(res.Body, &me); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(me.ID, "zitadel:") || me.Kind != "user" || me.Admin {
		t.Errorf("principal = %+v, want a non-admin user with id zitadel:<sub>", me)
	}

	// Tampered: flip a character of the signature.
	bad := tok[:len(tok)-4] + strings.Map(func(r rune) rune {
		if r == 'A' {
			return 'B'
		}
		return 'A'
	}, tok[len(tok)-4:])
	if res := srv.Do(t, "GET", "/api/v1/me", bad, nil); res.StatusCode != http.StatusUnauthorized {
		t.Errorf("tampered federated token: %d %s, want 401", res.StatusCode, res.Body)
	}

	// The provider restarts with a new signing key. Its first new token
	// makes Rampart fetch the new key set, which no longer has the old key:
	// old tokens die from then on.
	idp.Restart(t)
	fresh := idp.IDToken(t, federationtest.Alice.Username, federationtest.Alice.Password)
	if res := srv.Do(t, "GET", "/api/v1/me", fresh, nil); res.StatusCode != http.StatusOK {
		t.Errorf("token from the restarted provider: %d %s", res.StatusCode, res.Body)
	}
	if res := srv.Do(t, "GET", "/api/v1/me", tok, nil); res.StatusCode != http.StatusUnauthorized {
		t.Errorf("token signed by a withdrawn key: %d %s, want 401", res.StatusCode, res.Body)
	}
}
