package main

// End-to-end test of rampart model keys: the built binary against a real
// server started with apptest.

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rampart-ml/rampart/internal/modelsign"
)

// TestModelKeysCommands walks one key through add, list, revoke and
// delete; each step depends on the ones before.
func TestModelKeysCommands(t *testing.T) {
	t.Parallel()
	s := startIdentityServer(t)
	creds := credsPath(t)
	s.passwordLogin(t, creds)
	rampart := func(t *testing.T, code int, args ...string) (stdout, stderr string) {
		t.Helper()
		got, stdout, stderr := runRampart(t, nil, append(args, "--credentials", creds)...)
		wantNoCrash(t, stderr)
		if got != code {
			t.Fatalf("rampart %s: exit %d, want %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), got, code, stdout, stderr)
		}
		return stdout, stderr
	}
	rampart(t, 0, "domains", "create", "com.acme")

	dir := t.TempDir()
	writeKey := func(name string, pub any) string {
		t.Helper()
		der, err := x509.MarshalPKIXPublicKey(pub)
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id, err := modelsign.KeyID(ec.Public())
	if err != nil {
		t.Fatal(err)
	}
	ecFile := writeKey("ec.pem", ec.Public())
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	rsaFile := writeKey("rsa.pem", &rsaKey.PublicKey)

	// Add; the command line is checked before the server is asked.
	stdout, _ := rampart(t, 0, "model", "keys", "add", "--domain", "com.acme", "--key", ecFile,
		"--description", "release key", "--not-after", "2099-01-01T00:00:00Z")
	wantContains(t, "keys add", stdout, "Added signer key "+id+" (ecdsa-p256) for com.acme")
	_, stderr := rampart(t, 1, "model", "keys", "add", "--domain", "com.acme", "--key", ecFile)
	wantContains(t, "keys add (again)", stderr, "(key_exists)")
	_, stderr = rampart(t, 1, "model", "keys", "add", "--domain", "com.acme", "--key", rsaFile)
	wantContains(t, "keys add (rsa)", stderr, "(unsupported_key)")
	_, stderr = rampart(t, 1, "model", "keys", "add", "--domain", "org.other", "--key", ecFile)
	wantContains(t, "keys add (unknown domain)", stderr, "(not_found)")
	rampart(t, 2, "model", "keys", "add", "--key", ecFile)
	rampart(t, 2, "model", "keys", "add", "--domain", "com.acme")
	rampart(t, 2, "model", "keys", "add", "--domain", "com.acme", "--key", ecFile, "--not-after", "tomorrow")

	// List: as a table, filtered, as JSON.
	stdout, _ = rampart(t, 0, "model", "keys", "list")
	wantContains(t, "keys list", stdout, "ID", "ALGORITHM", id, "com.acme", "ecdsa-p256", "2099-01-01T00:00:00Z", "release key")
	stdout, _ = rampart(t, 0, "model", "keys", "list", "--domain", "*")
	wantContains(t, "keys list --domain *", stdout, "No signer keys.")
	stdout, _ = rampart(t, 0, "model", "keys", "list", "--domain", "com.acme", "--json")
	var keys []struct{ ID, Domain, Algorithm string }
	if err := json.Unmarshal([]byte(stdout), &keys); err != nil || len(keys) != 1 || keys[0].ID != id {
		t.Errorf("keys list --json: %v, want the one key %s\n%s", err, id, stdout)
	}

	// Delete needs a revoked key; revoke works once.
	_, stderr = rampart(t, 1, "model", "keys", "delete", id)
	wantContains(t, "keys delete (not revoked)", stderr, "(key_not_revoked)")
	stdout, _ = rampart(t, 0, "model", "keys", "revoke", id)
	wantContains(t, "keys revoke", stdout, "Revoked signer key "+id)
	_, stderr = rampart(t, 1, "model", "keys", "revoke", id)
	wantContains(t, "keys revoke (again)", stderr, "(key_revoked)")
	stdout, _ = rampart(t, 0, "model", "keys", "delete", id)
	wantContains(t, "keys delete", stdout, "Deleted signer key "+id)
	stdout, _ = rampart(t, 0, "model", "keys", "list")
	wantContains(t, "keys list (empty)", stdout, "No signer keys.")

	// The server saw every change.
	admin := s.Login(t, s.user, s.password)
	res := s.Do(t, http.MethodGet, "/api/v1/signer-keys", admin.AccessToken, nil)
	if res.StatusCode != http.StatusOK || strings.TrimSpace(string(res.Body)) != "[]" {
		t.Errorf("GET /api/v1/signer-keys after delete: %d %s", res.StatusCode, res.Body)
	}
	stdout, _ = rampart(t, 0, "model", "keys", "--help")
	wantContains(t, "keys --help", stdout, "add", "list", "revoke", "delete")
}
