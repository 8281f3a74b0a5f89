package registry_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/rampart-ml/rampart/internal/app/apptest"
	"github.com/rampart-ml/rampart/internal/audit"
	"github.com/rampart-ml/rampart/internal/httpapi"
	"github.com/rampart-ml/rampart/internal/modelsign"
	"github.com/rampart-ml/rampart/internal/principal"
	"github.com/rampart-ml/rampart/internal/registry"
	"github.com/rampart-ml/rampart/internal/secrets"
	"github.com/rampart-ml/rampart/internal/store"
	"github.com/rampart-ml/rampart/internal/store/sqlite"
)

const (
	adminPassword = "violet-orbit-lantern-quarry-42"
	userPassword  = "amber-granite-meadow-falcon-77"
)

// startWithAdmin starts a server whose admin has changed the generated
// password, and returns the admin's token.
func startWithAdmin(t *testing.T) (*apptest.Server, string) {
	t.Helper()
	s := apptest.Start(t, apptest.FastHashing)
	t.Cleanup(s.Client.CloseIdleConnections)
	tok := s.Login(t, "admin", s.AdminPassword).AccessToken
	apptest.WantStatus(t, s.Do(t, "POST", "/api/v1/me/password", tok,
		map[string]string{"current_password": s.AdminPassword, "new_password": adminPassword}), http.StatusNoContent)
	return s, s.Login(t, "admin", adminPassword).AccessToken
}

// newUser creates a plain account and returns its token.
func newUser(t *testing.T, s *apptest.Server, admin, name string) string {
	t.Helper()
	created := apptest.Decode[struct {
		InitialPassword string `json:"initial_password"`
	}](t, s.Do(t, "POST", "/api/v1/accounts", admin, map[string]string{"name": name}), http.StatusCreated)
	first := s.Login(t, name, created.InitialPassword).AccessToken
	apptest.WantStatus(t, s.Do(t, "POST", "/api/v1/me/password", first,
		map[string]string{"current_password": created.InitialPassword, "new_password": userPassword}), http.StatusNoContent)
	return s.Login(t, name, userPassword).AccessToken
}

func publicPEM(t *testing.T, pub crypto.PublicKey) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

func ecdsaKey(t *testing.T, c elliptic.Curve) crypto.PublicKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(c, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k.Public()
}

func keyID(t *testing.T, pub crypto.PublicKey) string {
	t.Helper()
	id, err := modelsign.KeyID(pub)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func ids(keys []registry.SignerKey) []string {
	out := []string{}
	for _, k := range keys {
		out = append(out, k.ID)
	}
	slices.Sort(out)
	return out
}

func sorted(s ...string) []string { return slices.Sorted(slices.Values(s)) }

// One server for the whole life cycle: starting one is the slow part.
func TestSignerKeysAPI(t *testing.T) {
	t.Parallel()
	s, admin := startWithAdmin(t)
	apptest.WantStatus(t, s.Do(t, "POST", "/api/v1/domains", admin, map[string]string{"name": "com.acme"}), http.StatusCreated)

	p256, p384 := ecdsaKey(t, elliptic.P256()), ecdsaKey(t, elliptic.P384())
	edPub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	p224 := ecdsaKey(t, elliptic.P224())
	notAfter := time.Now().Add(24 * time.Hour).UTC().Truncate(time.Second)

	// ---- adding ----
	adds := []struct {
		name string
		body map[string]any
		pub  crypto.PublicKey
		alg  string
	}{
		{"p256", map[string]any{"domain": "com.acme", "public_key": publicPEM(t, p256)}, p256, "ecdsa-p256"},
		{"p384 wildcard", map[string]any{"domain": "*", "public_key": publicPEM(t, p384), "not_after": notAfter}, p384, "ecdsa-p384"},
		// Surrounding whitespace does not change the key or its id.
		{"ed25519", map[string]any{"domain": "com.acme", "public_key": "\n" + publicPEM(t, edPub) + "\n", "description": "release key"}, edPub, "ed25519"},
	}
	for _, tc := range adds {
		got := apptest.Decode[registry.SignerKey](t, s.Do(t, "POST", "/api/v1/signer-keys", admin, tc.body), http.StatusCreated)
		if got.ID != keyID(t, tc.pub) || got.Algorithm != tc.alg || got.Domain != tc.body["domain"] ||
			got.PublicKey != publicPEM(t, tc.pub) || got.NotBefore.IsZero() || !got.RevokedAt.IsZero() {
			t.Errorf("%s: added %+v", tc.name, got)
		}
		if tc.name == "p384 wildcard" && !got.NotAfter.Equal(notAfter) {
			t.Errorf("%s: not_after %v, want %v", tc.name, got.NotAfter, notAfter)
		}
	}

	// ---- refusals ----
	past := time.Now().Add(-time.Hour).UTC()
	refusals := []struct {
		name   string
		body   map[string]any
		status int
		code   string
	}{
		{"rsa", map[string]any{"domain": "com.acme", "public_key": publicPEM(t, &rsaKey.PublicKey)}, http.StatusUnprocessableEntity, "unsupported_key"},
		{"p224", map[string]any{"domain": "com.acme", "public_key": publicPEM(t, p224)}, http.StatusUnprocessableEntity, "unsupported_key"},
		{"garbage", map[string]any{"domain": "com.acme", "public_key": "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"}, http.StatusUnprocessableEntity, "invalid_key"},
		{"not pem", map[string]any{"domain": "com.acme", "public_key": "hello"}, http.StatusUnprocessableEntity, "invalid_key"},
		{"no domain", map[string]any{"public_key": publicPEM(t, ecdsaKey(t, elliptic.P256()))}, http.StatusUnprocessableEntity, "invalid_domain"},
		{"bad domain", map[string]any{"domain": "Com..Acme", "public_key": publicPEM(t, ecdsaKey(t, elliptic.P256()))}, http.StatusUnprocessableEntity, "invalid_domain"},
		{"unknown domain", map[string]any{"domain": "org.other", "public_key": publicPEM(t, ecdsaKey(t, elliptic.P256()))}, http.StatusNotFound, "not_found"},
		{"duplicate", map[string]any{"domain": "com.acme", "public_key": publicPEM(t, p256)}, http.StatusConflict, "key_exists"},
		{"duplicate other domain", map[string]any{"domain": "*", "public_key": publicPEM(t, p256)}, http.StatusConflict, "key_exists"},
		{"not_after before not_before", map[string]any{"domain": "com.acme", "public_key": publicPEM(t, ecdsaKey(t, elliptic.P256())),
			"not_before": time.Now().UTC(), "not_after": past}, http.StatusUnprocessableEntity, "invalid_validity"},
		{"not_after equals not_before", map[string]any{"domain": "com.acme", "public_key": publicPEM(t, ecdsaKey(t, elliptic.P256())),
			"not_before": past, "not_after": past}, http.StatusUnprocessableEntity, "invalid_validity"},
		{"unknown field", map[string]any{"domain": "com.acme", "public_key": publicPEM(t, ecdsaKey(t, elliptic.P256())), "trusted": true}, http.StatusBadRequest, "malformed_json"},
	}
	for _, tc := range refusals {
		msg := apptest.WantError(t, s.Do(t, "POST", "/api/v1/signer-keys", admin, tc.body), tc.status, tc.code)
		if tc.code == "unsupported_key" && !strings.Contains(msg, "P-256") {
			t.Errorf("%s: message %q does not say which keys are supported", tc.name, msg)
		}
	}

	// ---- listing ----
	list := func(query string) []string {
		t.Helper()
		return ids(apptest.Decode[[]registry.SignerKey](t, s.Do(t, "GET", "/api/v1/signer-keys"+query, admin, nil), http.StatusOK))
	}
	idP256, idP384, idEd := keyID(t, p256), keyID(t, p384), keyID(t, edPub)
	if diff := cmp.Diff(sorted(idP256, idP384, idEd), list("")); diff != "" {
		t.Errorf("all keys (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(sorted(idP256, idEd), list("?domain=com.acme")); diff != "" {
		t.Errorf("com.acme keys (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(sorted(idP384), list("?domain=*")); diff != "" {
		t.Errorf("wildcard keys (-want +got):\n%s", diff)
	}

	// ---- revoke and delete ----
	revoked := apptest.Decode[registry.SignerKey](t, s.Do(t, "POST", "/api/v1/signer-keys/"+idP256+"/revoke", admin, nil), http.StatusOK)
	if revoked.RevokedAt.IsZero() || revoked.ID != idP256 {
		t.Errorf("revoked key: %+v", revoked)
	}
	apptest.WantError(t, s.Do(t, "POST", "/api/v1/signer-keys/"+idP256+"/revoke", admin, nil), http.StatusConflict, "key_revoked")
	apptest.WantError(t, s.Do(t, "POST", "/api/v1/signer-keys/nope/revoke", admin, nil), http.StatusNotFound, "not_found")
	apptest.WantError(t, s.Do(t, "DELETE", "/api/v1/signer-keys/"+idEd, admin, nil), http.StatusConflict, "key_not_revoked")
	apptest.WantError(t, s.Do(t, "DELETE", "/api/v1/signer-keys/nope", admin, nil), http.StatusNotFound, "not_found")
	apptest.WantStatus(t, s.Do(t, "DELETE", "/api/v1/signer-keys/"+idP256, admin, nil), http.StatusNoContent)
	if diff := cmp.Diff(sorted(idP384, idEd), list("")); diff != "" {
		t.Errorf("keys after delete (-want +got):\n%s", diff)
	}

	// ---- unsigned admission ----
	unsigned := func() []registry.UnsignedAdmission {
		t.Helper()
		return apptest.Decode[[]registry.UnsignedAdmission](t, s.Do(t, "GET", "/api/v1/unsigned-admission", admin, nil), http.StatusOK)
	}
	if got := unsigned(); len(got) != 0 {
		t.Errorf("unsigned admission of a fresh server: %+v", got)
	}
	set := func(domain string, allowed bool) apptest.Response {
		return s.Do(t, "PUT", "/api/v1/domains/"+domain+"/unsigned-admission", admin, map[string]bool{"allowed": allowed})
	}
	got := apptest.Decode[registry.UnsignedAdmission](t, set("com.acme", true), http.StatusOK)
	if diff := cmp.Diff(registry.UnsignedAdmission{Domain: "com.acme", Allowed: true}, got); diff != "" {
		t.Errorf("set (-want +got):\n%s", diff)
	}
	apptest.WantStatus(t, set("*", true), http.StatusOK)
	apptest.WantStatus(t, set("com.acme", true), http.StatusOK) // idempotent
	if diff := cmp.Diff([]registry.UnsignedAdmission{{Domain: "*", Allowed: true}, {Domain: "com.acme", Allowed: true}}, unsigned()); diff != "" {
		t.Errorf("unsigned admission on (-want +got):\n%s", diff)
	}
	apptest.WantStatus(t, set("com.acme", false), http.StatusOK)
	if diff := cmp.Diff([]registry.UnsignedAdmission{{Domain: "*", Allowed: true}}, unsigned()); diff != "" {
		t.Errorf("unsigned admission off (-want +got):\n%s", diff)
	}
	apptest.WantError(t, set("org.other", true), http.StatusNotFound, "not_found")
	apptest.WantError(t, set("org.other", false), http.StatusNotFound, "not_found")
	apptest.WantError(t, s.Do(t, "PUT", "/api/v1/domains/com.acme/unsigned-admission", admin, map[string]any{}),
		http.StatusUnprocessableEntity, "invalid_field")

	// ---- only admins ----
	user := newUser(t, s, admin, "carol")
	for _, req := range []struct{ method, path string }{
		{"GET", "/api/v1/signer-keys"},
		{"POST", "/api/v1/signer-keys"},
		{"POST", "/api/v1/signer-keys/" + idEd + "/revoke"},
		{"DELETE", "/api/v1/signer-keys/" + idEd},
		{"PUT", "/api/v1/domains/com.acme/unsigned-admission"},
		{"GET", "/api/v1/unsigned-admission"},
	} {
		var body any
		if req.method == "POST" || req.method == "PUT" {
			body = map[string]any{}
		}
		apptest.WantStatus(t, s.Do(t, req.method, req.path, user, body), http.StatusForbidden)
		apptest.WantStatus(t, s.Do(t, req.method, req.path, "", body), http.StatusUnauthorized)
	}
	if diff := cmp.Diff(sorted(idP384, idEd), list("")); diff != "" {
		t.Errorf("keys after the refused requests (-want +got):\n%s", diff)
	}

	// ---- the audit records of every change, none of a refusal ----
	type rec struct{ Action, Kind, Domain, ID, Reason string }
	var recs []rec
	for _, r := range s.AuditRecords(t, store.AuditQuery{}) {
		if strings.HasPrefix(r.Action, "signer-key.") || strings.HasPrefix(r.Action, "unsigned-admission.") {
			recs = append(recs, rec{r.Action, r.TargetKind, r.TargetDomain, r.TargetID, r.Reason})
		}
	}
	want := []rec{
		{"signer-key.add", "signer-key", "com.acme", idP256, ""},
		{"signer-key.add", "signer-key", "*", idP384, ""},
		{"signer-key.add", "signer-key", "com.acme", idEd, ""},
		{"signer-key.revoke", "signer-key", "com.acme", idP256, ""},
		{"signer-key.delete", "signer-key", "com.acme", idP256, ""},
		{"unsigned-admission.set", "domain", "", "com.acme", "allowed=true"},
		{"unsigned-admission.set", "domain", "", "*", "allowed=true"},
		{"unsigned-admission.set", "domain", "", "com.acme", "allowed=true"},
		{"unsigned-admission.set", "domain", "", "com.acme", "allowed=false"},
	}
	if diff := cmp.Diff(want, recs); diff != "" {
		t.Errorf("audit records (-want +got):\n%s", diff)
	}
}

// ---- a broken audit log refuses every change ----

var errAuditDisk = errors.New("audit disk full")

// failingStore is a real store whose audit log refuses every append.
type failingStore struct{ store.Store }

func (s failingStore) InTx(ctx context.Context, fn func(tx store.Tx) error) error {
	return s.Store.InTx(ctx, func(tx store.Tx) error { return fn(failingTx{tx}) })
}

type failingTx struct{ store.Tx }

func (f failingTx) Audit() store.Audit { return failingAudit{f.Tx.Audit()} }

type failingAudit struct{ store.Audit }

func (failingAudit) AppendAuditRecord(context.Context, store.AuditRecord) error { return errAuditDisk }

// asAdmin authenticates every request as an admin; allowAll lets the
// request-level audit step pass, so only the change's own record fails.
type asAdmin struct{}

func (asAdmin) Authenticate(*http.Request) (principal.Principal, bool, error) {
	return principal.Principal{ID: "u-admin", Kind: principal.User, Admin: true}, true, nil
}

type allowAll struct{}

func (allowAll) AuditRequest(*http.Request, principal.Principal, *httpapi.Route) error { return nil }
func (allowAll) AuditRefusal(*http.Request, principal.Principal, *httpapi.Route, error) error {
	return nil
}

func TestKeysAuditFailure(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "rampart.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	sealer, err := secrets.New(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	broken := failingStore{st}
	rec, err := audit.NewRecorder(audit.RecorderOptions{Store: broken, Sealer: sealer, SourceKey: bytes.Repeat([]byte{9}, 32)})
	if err != nil {
		t.Fatal(err)
	}
	pub := ecdsaKey(t, elliptic.P256())
	id := keyID(t, pub)
	for name, opts := range map[string]registry.KeysOptions{
		"failing store": {Store: broken, Recorder: rec},
		"no recorder":   {Store: st},
	} {
		t.Run(name, func(t *testing.T) {
			api := httpapi.New(httpapi.Options{
				Logger:         slog.New(slog.DiscardHandler),
				Authenticators: []httpapi.Authenticator{asAdmin{}},
				Authorizer:     httpapi.RoleAuthorizer{},
				Auditor:        allowAll{},
			})
			registry.NewKeysAPI(opts).Mount(api)
			do := func(method, path, body string) *httptest.ResponseRecorder {
				req := httptest.NewRequestWithContext(ctx, method, path, strings.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				w := httptest.NewRecorder()
				api.Handler().ServeHTTP(w, req)
				return w
			}
			body := `{"domain":"*","public_key":` + quote(publicPEM(t, pub)) + `}`
			if w := do("POST", "/api/v1/signer-keys", body); w.Code != http.StatusServiceUnavailable {
				t.Errorf("add: %d %s, want 503", w.Code, w.Body)
			}
			if w := do("PUT", "/api/v1/domains/*/unsigned-admission", `{"allowed":true}`); w.Code != http.StatusServiceUnavailable {
				t.Errorf("unsigned admission: %d %s, want 503", w.Code, w.Body)
			}
			// Nothing changed: the change rolled back with its record.
			if err := st.InTx(ctx, func(tx store.Tx) error {
				if _, err := tx.SignerKeys().SignerKeyByID(ctx, id); !errors.Is(err, store.ErrNotFound) {
					t.Errorf("key after the refused add: %v, want ErrNotFound", err)
				}
				list, err := tx.Models().UnsignedAllowed(ctx)
				if len(list) != 0 {
					t.Errorf("unsigned admission after the refused change: %v", list)
				}
				return err
			}); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func quote(s string) string {
	return `"` + strings.ReplaceAll(s, "\n", `\n`) + `"`
}
