package accounts_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/google/go-cmp/cmp"
	"github.com/pquerna/otp/totp"

	"github.com/rampart-ml/rampart/internal/audit"
	"github.com/rampart-ml/rampart/internal/httpapi"
	"github.com/rampart-ml/rampart/internal/identity"
	"github.com/rampart-ml/rampart/internal/identity/accounts"
	"github.com/rampart-ml/rampart/internal/identity/bruteforce"
	"github.com/rampart-ml/rampart/internal/identity/identitytest"
	"github.com/rampart-ml/rampart/internal/identity/password"
	"github.com/rampart-ml/rampart/internal/identity/signingkeys"
	"github.com/rampart-ml/rampart/internal/principal"
	"github.com/rampart-ml/rampart/internal/store"
	"github.com/rampart-ml/rampart/internal/store/sqlite"
)

// The tests in this file wire account management by hand, over a store
// whose audit log can be made to fail, behind the real middleware chain.
// Callers authenticate with "Authorization: Bearer <account id>" (the
// token layers are tested elsewhere; here, who asks is what matters).

var cheapParams = password.Params{MemoryKiB: 1024, Time: 1, Threads: 1}

// harness is account management over its own store.
type harness struct {
	URL    string
	Store  *identitytest.FailingStore
	Rec    *audit.Recorder
	Dir    *identity.Directory
	client *http.Client

	mu  sync.Mutex
	now time.Time
}

// clock is the harness's time; tests move it on to get fresh TOTP steps.
func (h *harness) clock() time.Time {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.now
}

func (h *harness) advance(d time.Duration) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.now = h.now.Add(d)
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "rampart.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	h := &harness{Store: identitytest.NewFailingStore(db), now: time.Now()}
	sealer := identitytest.NewSealer(t)
	h.Rec = identitytest.NewRecorder(t, h.Store, sealer)
	ring, err := signingkeys.New(h.Store, sealer, signingkeys.Options{MaxTokenLifetime: 5 * time.Minute, Recorder: h.Rec})
	if err != nil {
		t.Fatal(err)
	}
	bf := bruteforce.DefaultConfig()
	bf.Timing.Min = 0
	bf.Source.Burst = 10_000
	login, err := identity.NewPasswordLogin(h.Store, identity.LoginOptions{
		Params: cheapParams, BruteForce: bf, Sealer: sealer, Recorder: h.Rec, Now: h.clock,
	})
	if err != nil {
		t.Fatal(err)
	}
	h.Dir = identity.NewDirectory(h.Store, 0, nil)
	svc := accounts.New(accounts.Options{
		Store: h.Store, Login: login, Directory: h.Dir, Revocations: identity.NewRevocations(h.Store, 0, nil),
		Sealer: sealer, Keys: ring, Recorder: h.Rec, Params: cheapParams, Now: h.clock,
	})
	discard := slog.New(slog.DiscardHandler)
	api := httpapi.New(httpapi.Options{
		Logger: discard, MaxRequestBytes: 1 << 20,
		Authenticators: []httpapi.Authenticator{idAuthenticator{h.Dir}},
		Authorizer:     httpapi.RoleAuthorizer{},
		Auditor:        passAuditor{},
	})
	svc.Mount(api)
	srv := httptest.NewServer(api.Handler())
	t.Cleanup(srv.Close)
	h.URL, h.client = srv.URL, srv.Client()
	return h
}

// idAuthenticator takes the bearer token as the id of the caller.
type idAuthenticator struct{ dir *identity.Directory }

func (a idAuthenticator) Authenticate(r *http.Request) (principal.Principal, bool, error) {
	id, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		return principal.Principal{}, false, nil
	}
	s, err := a.dir.Lookup(r.Context(), id)
	if err != nil {
		return principal.Principal{}, false, httpapi.Error(http.StatusUnauthorized, "invalid_token", "unknown caller", nil)
	}
	return s.Principal, true, nil
}

// passAuditor lets every request through; the records under test are the
// handlers'.
type passAuditor struct{}

func (passAuditor) AuditRequest(*http.Request, principal.Principal, *httpapi.Route) error { return nil }
func (passAuditor) AuditRefusal(*http.Request, principal.Principal, *httpapi.Route, error) error {
	return nil
}

// addAccount stores an account with password pw directly.
func (h *harness) addAccount(t *testing.T, name, pw string, admin bool) store.Account {
	t.Helper()
	hash, err := password.Hash(pw, cheapParams)
	if err != nil {
		t.Fatal(err)
	}
	a := store.Account{ID: "u-" + randomHex(8), Name: name, Email: name + "@example.com", PasswordHash: hash, Admin: admin, CreatedAt: time.Now()}
	err = h.Store.InTx(context.Background(), func(tx store.Tx) error { return tx.Accounts().CreateAccount(context.Background(), a) })
	if err != nil {
		t.Fatal(err)
	}
	return a
}

type result struct {
	Status int
	Body   []byte
}

// do sends a JSON request as the account callerID ("" for nobody).
func (h *harness) do(t *testing.T, method, path, callerID string, body any) result {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, h.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if callerID != "" {
		req.Header.Set("Authorization", "Bearer "+callerID)
	}
	res, err := h.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return result{Status: res.StatusCode, Body: b}
}

func (r result) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("%d %s: %v", r.Status, r.Body, err)
	}
}

func (r result) code() string {
	var e struct{ Code string }
	_ = json.Unmarshal(r.Body, &e)
	return e.Code
}

// account reads an account from the store; ok is false if there is none.
func (h *harness) account(t *testing.T, id string) (store.Account, bool) {
	t.Helper()
	var a store.Account
	err := h.Store.InTx(context.Background(), func(tx store.Tx) (err error) {
		a, err = tx.Accounts().AccountByID(context.Background(), id)
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return a, false
	}
	if err != nil {
		t.Fatal(err)
	}
	return a, true
}

// recorded is a record as the tests compare it: the target's pseudonym
// resolved to the subject id ("erased" once it no longer resolves).
type recorded struct {
	Action, Outcome, Target, Reason string
}

// since returns the records after the first n, with targets resolved.
func (h *harness) since(t *testing.T, n int) []recorded {
	t.Helper()
	var out []recorded
	for _, r := range identitytest.Records(t, h.Store)[n:] {
		target := r.TargetKind + ":" + r.TargetID
		if audit.IsPseudonym(r.TargetID) {
			id, err := identitytest.Resolve(t, h.Store, h.Rec, r.TargetID)
			switch {
			case errors.Is(err, audit.ErrUnknownPseudonym):
				id = "erased"
			case err != nil:
				t.Fatal(err)
			}
			target = r.TargetKind + ":" + id
		}
		out = append(out, recorded{r.Action, r.Outcome, target, r.Reason})
	}
	return out
}

func (h *harness) count(t *testing.T) int {
	t.Helper()
	return len(identitytest.Records(t, h.Store))
}

// Every account management action writes its record, naming the accounts
// and service accounts involved by pseudonym and the changed fields by
// name; no record holds a name, e-mail, password, secret, kid or address.
func TestAccountActionsAreRecorded(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	admin := h.addAccount(t, "root", "the admin's long passphrase", true)

	// Values filled in as the steps run.
	var (
		bob struct {
			ID              string `json:"id"`
			InitialPassword string `json:"initial_password"`
		}
		bobPassword            = "a quite unusual long passphrase 42"
		totpSecret, enrollment string
		sa                     struct {
			ID             string `json:"id"`
			ClientSecret   string `json:"client_secret"`
			ClientSecretID string `json:"client_secret_id"`
		}
		newSecret struct{ ID, Secret string }
		keyID     = "bob-laptop"
		signing   struct{ Kid string }
	)
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := json.Marshal(jose.JSONWebKey{Key: &priv.PublicKey, KeyID: keyID, Algorithm: "ES256", Use: "sig"})
	if err != nil {
		t.Fatal(err)
	}
	code := func() string {
		c, err := totp.GenerateCode(totpSecret, h.clock())
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	tp, err := (&jose.JSONWebKey{Key: &priv.PublicKey}).Thumbprint(crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	thumbprint := base64.RawURLEncoding.EncodeToString(tp)
	// rec is a record of an action by the caller: a success with target
	// "kind:id" (the subject's id where the record has a pseudonym).
	rec := func(action, target, reason string) recorded { return recorded{action, "success", target, reason} }
	login := recorded{"login", "success", ":", ""}
	steps := []struct {
		name   string
		do     func() result
		status int
		after  func(r result)
		want   func() []recorded // called after the step, when its ids are known
		byBob  bool              // the actor is bob, not the admin
	}{
		{
			name: "create",
			do: func() result {
				return h.do(t, "POST", "/api/v1/accounts", admin.ID, map[string]any{"name": "bob", "email": "bob@example.com", "auditor": true})
			},
			status: http.StatusCreated, after: func(r result) { r.decode(t, &bob) },
			want: func() []recorded { return []recorded{rec("account.create", "account:"+bob.ID, "auditor")} },
		},
		{
			name: "update",
			do: func() result {
				return h.do(t, "PATCH", "/api/v1/accounts/"+bob.ID, admin.ID, map[string]any{"admin": true, "email": "b@example.org"})
			},
			status: http.StatusOK,
			want:   func() []recorded { return []recorded{rec("account.update", "account:"+bob.ID, "admin,email")} },
		},
		{
			name: "take the roles",
			do: func() result {
				return h.do(t, "PATCH", "/api/v1/accounts/"+bob.ID, admin.ID, map[string]any{"auditor": false, "admin": false})
			},
			status: http.StatusOK,
			want:   func() []recorded { return []recorded{rec("account.update", "account:"+bob.ID, "admin,auditor")} },
		},
		{
			name: "password change",
			do: func() result {
				return h.do(t, "POST", "/api/v1/me/password", bob.ID, map[string]any{"current_password": bob.InitialPassword, "new_password": bobPassword})
			},
			status: http.StatusNoContent, byBob: true,
			want: func() []recorded { return []recorded{login, rec("password.change", "account:"+bob.ID, "")} },
		},
		{
			name:   "totp enroll",
			do:     func() result { return h.do(t, "POST", "/api/v1/me/totp", bob.ID, nil) },
			status: http.StatusOK, byBob: true,
			after: func(r result) {
				var e accounts.TOTPEnrollment
				r.decode(t, &e)
				totpSecret, enrollment = e.Secret, e.Enrollment
			},
			want: func() []recorded { return []recorded{rec("totp.enroll", "account:"+bob.ID, "")} },
		},
		{
			name: "totp confirm",
			do: func() result {
				return h.do(t, "PUT", "/api/v1/me/totp", bob.ID, map[string]any{"enrollment": enrollment, "code": code(), "password": bobPassword})
			},
			status: http.StatusNoContent, byBob: true,
			want: func() []recorded { return []recorded{login, rec("totp.confirm", "account:"+bob.ID, "")} },
		},
		{
			name: "totp remove",
			do: func() result {
				h.advance(31 * time.Second) // the confirming code cannot be used again
				return h.do(t, "DELETE", "/api/v1/me/totp", bob.ID, map[string]any{"password": bobPassword, "otp": code()})
			},
			status: http.StatusNoContent, byBob: true,
			want: func() []recorded { return []recorded{login, rec("totp.remove", "account:"+bob.ID, "")} },
		},
		{
			name:   "reset password",
			do:     func() result { return h.do(t, "POST", "/api/v1/accounts/"+bob.ID+"/password-reset", admin.ID, nil) },
			status: http.StatusOK,
			want:   func() []recorded { return []recorded{rec("account.reset-password", "account:"+bob.ID, "")} },
		},
		{
			name:   "unlock",
			do:     func() result { return h.do(t, "POST", "/api/v1/accounts/"+bob.ID+"/unlock", admin.ID, nil) },
			status: http.StatusNoContent,
			want:   func() []recorded { return []recorded{rec("account.unlock", "account:"+bob.ID, "")} },
		},
		{
			name:   "signing key rotation",
			do:     func() result { return h.do(t, "POST", "/api/v1/signing-keys/rotate", admin.ID, nil) },
			status: http.StatusOK, after: func(r result) { r.decode(t, &signing) },
			want: func() []recorded { return []recorded{rec("signing-key.rotate", "signing-key:"+signing.Kid, "")} },
		},
		{
			name: "service account create",
			do: func() result {
				return h.do(t, "POST", "/api/v1/service-accounts", admin.ID, map[string]any{"name": "robot"})
			},
			status: http.StatusCreated, after: func(r result) { r.decode(t, &sa) },
			want: func() []recorded {
				return []recorded{
					rec("service-account.create", "service-account:"+sa.ID, ""),
					rec("client-secret.create", "client-secret:"+sa.ID+"/"+sa.ClientSecretID, ""),
				}
			},
		},
		{
			name: "service account update",
			do: func() result {
				return h.do(t, "PATCH", "/api/v1/service-accounts/"+sa.ID, admin.ID, map[string]any{"description": "builds"})
			},
			status: http.StatusOK,
			want: func() []recorded {
				return []recorded{rec("service-account.update", "service-account:"+sa.ID, "description")}
			},
		},
		{
			name:   "secret rotation",
			do:     func() result { return h.do(t, "POST", "/api/v1/service-accounts/"+sa.ID+"/secrets", admin.ID, nil) },
			status: http.StatusCreated, after: func(r result) { r.decode(t, &newSecret) },
			// Without an overlap the old secret ends now, and goes.
			want: func() []recorded {
				return []recorded{
					rec("client-secret.delete", "client-secret:"+sa.ID+"/"+sa.ClientSecretID, "expired"),
					rec("client-secret.create", "client-secret:"+sa.ID+"/"+newSecret.ID, ""),
				}
			},
		},
		{
			name: "secret delete",
			do: func() result {
				return h.do(t, "DELETE", "/api/v1/service-accounts/"+sa.ID+"/secrets/"+newSecret.ID, admin.ID, nil)
			},
			status: http.StatusNoContent,
			want: func() []recorded {
				return []recorded{rec("client-secret.delete", "client-secret:"+sa.ID+"/"+newSecret.ID, "")}
			},
		},
		{
			name: "key add",
			do: func() result {
				return h.do(t, "POST", "/api/v1/service-accounts/"+sa.ID+"/keys", admin.ID, map[string]any{"jwk": json.RawMessage(pub)})
			},
			status: http.StatusCreated,
			// The key is named by its thumbprint: the kid is the client's text.
			want: func() []recorded { return []recorded{rec("client-key.add", "client-key:"+sa.ID+"/"+thumbprint, "")} },
		},
		{
			name: "key delete",
			do: func() result {
				return h.do(t, "DELETE", "/api/v1/service-accounts/"+sa.ID+"/keys/"+keyID, admin.ID, nil)
			},
			status: http.StatusNoContent,
			want:   func() []recorded { return []recorded{rec("client-key.delete", "client-key:"+sa.ID+"/"+thumbprint, "")} },
		},
		{
			name:   "service account delete",
			do:     func() result { return h.do(t, "DELETE", "/api/v1/service-accounts/"+sa.ID, admin.ID, nil) },
			status: http.StatusNoContent,
			// A machine is no data subject: its pseudonym still resolves.
			want: func() []recorded { return []recorded{rec("service-account.delete", "service-account:"+sa.ID, "")} },
		},
		{
			name:   "delete",
			do:     func() result { return h.do(t, "DELETE", "/api/v1/accounts/"+bob.ID, admin.ID, nil) },
			status: http.StatusNoContent,
			want:   func() []recorded { return []recorded{rec("account.delete", "account:erased", "")} },
		},
	}
	for _, s := range steps {
		n := h.count(t)
		r := s.do()
		if r.Status != s.status {
			t.Fatalf("%s: %d %s, want %d", s.name, r.Status, r.Body, s.status)
		}
		if s.after != nil {
			s.after(r)
		}
		if diff := cmp.Diff(s.want(), h.since(t, n)); diff != "" {
			t.Errorf("%s: records (-want +got):\n%s", s.name, diff)
		}
		wantActor := admin.ID
		if s.byBob {
			wantActor = bob.ID
		}
		for _, r := range identitytest.Records(t, h.Store)[n:] {
			if r.ActorKind != audit.ActorUser || r.Source == "" || r.RequestID == "" {
				t.Errorf("%s: record %+v: want a user actor, a source pseudonym and a request id", s.name, r)
			}
			if who, err := identitytest.Resolve(t, h.Store, h.Rec, r.Actor); err != nil || who != wantActor {
				t.Errorf("%s: actor resolves to %q, %v; want %s", s.name, who, err, wantActor)
			}
		}
	}
	identitytest.CheckPrivate(t, identitytest.Records(t, h.Store), "bob", "root", "example.com", "example.org", "the admin's long",
		bobPassword, bob.InitialPassword, totpSecret, sa.ClientSecret, newSecret.Secret, keyID, "robot", "builds", "127.0.0.1")
}

// No change without its record: while the audit log refuses records,
// every change answers 503 audit_unavailable and leaves everything as it
// was.
func TestAccountChangesFailClosed(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	const bobPassword = "a quite unusual long passphrase 42"
	admin := h.addAccount(t, "root", "the admin's long passphrase", true)
	bob := h.addAccount(t, "bob", bobPassword, false)
	eve := h.addAccount(t, "eve", bobPassword, false)
	var sa struct{ ID string }
	h.do(t, "POST", "/api/v1/service-accounts", bob.ID, map[string]any{"name": "robot"}).decode(t, &sa)
	n := h.count(t)

	h.Store.SetFailing(true)
	for _, c := range []struct {
		name, method, path, caller string
		body                       any
	}{
		{"create account", "POST", "/api/v1/accounts", admin.ID, map[string]any{"name": "carol"}},
		{"update account", "PATCH", "/api/v1/accounts/" + bob.ID, admin.ID, map[string]any{"admin": true, "auditor": true}},
		{"reset password", "POST", "/api/v1/accounts/" + bob.ID + "/password-reset", admin.ID, nil},
		{"unlock", "POST", "/api/v1/accounts/" + bob.ID + "/unlock", admin.ID, nil},
		{"delete account", "DELETE", "/api/v1/accounts/" + eve.ID, admin.ID, nil},
		{"rotate signing key", "POST", "/api/v1/signing-keys/rotate", admin.ID, nil},
		{"change password", "POST", "/api/v1/me/password", bob.ID, map[string]any{"current_password": bobPassword, "new_password": "another unusual long passphrase"}},
		{"enroll totp", "POST", "/api/v1/me/totp", bob.ID, nil},
		{"delete self", "DELETE", "/api/v1/me", bob.ID, map[string]any{"password": bobPassword}},
		{"create service account", "POST", "/api/v1/service-accounts", bob.ID, map[string]any{"name": "robot2"}},
		{"update service account", "PATCH", "/api/v1/service-accounts/" + sa.ID, bob.ID, map[string]any{"disabled": true}},
		{"rotate secret", "POST", "/api/v1/service-accounts/" + sa.ID + "/secrets", bob.ID, nil},
		{"delete service account", "DELETE", "/api/v1/service-accounts/" + sa.ID, bob.ID, nil},
	} {
		if r := h.do(t, c.method, c.path, c.caller, c.body); r.Status != http.StatusServiceUnavailable || r.code() != "audit_unavailable" {
			t.Errorf("%s while the audit log fails: %d %s, want 503 audit_unavailable", c.name, r.Status, r.Body)
		}
	}
	h.Store.SetFailing(false)

	if recs := identitytest.Records(t, h.Store)[n:]; len(recs) != 0 {
		t.Errorf("records written while the log failed: %s", identitytest.Actions(recs))
	}
	if a, ok := h.account(t, bob.ID); !ok || a.Admin || a.Auditor || a.PasswordHash != bob.PasswordHash || a.Anonymized {
		t.Errorf("bob changed without a record: %+v", a)
	}
	if _, ok := h.account(t, eve.ID); !ok {
		t.Error("an account was deleted without a record")
	}
	var list accounts.AccountList
	h.do(t, "GET", "/api/v1/accounts", admin.ID, nil).decode(t, &list)
	if len(list.Accounts) != 3 {
		t.Errorf("%d accounts, want 3 (none created without a record)", len(list.Accounts))
	}
	var sas accounts.ServiceAccountList
	h.do(t, "GET", "/api/v1/service-accounts", bob.ID, nil).decode(t, &sas)
	if len(sas.ServiceAccounts) != 1 || sas.ServiceAccounts[0].Disabled {
		t.Errorf("service accounts changed without a record: %+v", sas.ServiceAccounts)
	}
	var secrets accounts.SecretList
	h.do(t, "GET", "/api/v1/service-accounts/"+sa.ID+"/secrets", bob.ID, nil).decode(t, &secrets)
	if len(secrets.Secrets) != 1 || secrets.Secrets[0].ExpiresAt != nil {
		t.Errorf("secrets changed without a record: %+v", secrets.Secrets)
	}
}

// pseudonymOf returns the current pseudonym of subject (making one if it
// has none).
func (h *harness) pseudonymOf(t *testing.T, subject string) string {
	t.Helper()
	var p string
	err := h.Store.InTx(context.Background(), func(tx store.Tx) (err error) {
		p, err = h.Rec.PseudonymOf(context.Background(), tx, subject)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// Deleting an account erases its pseudonym (GDPR Art. 17): the record of
// the deletion still carries it, but it no longer resolves, the secret is
// gone, and the chain still verifies. An account that still owns service
// accounts is anonymised instead, with the same erasure; the service
// accounts keep their pseudonyms.
func TestDeleteErasesPseudonym(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	const pw = "a quite unusual long passphrase 42"
	admin := h.addAccount(t, "root", "the admin's long passphrase", true)
	bob := h.addAccount(t, "bob", pw, false)
	carol := h.addAccount(t, "carol", pw, false)
	dave := h.addAccount(t, "dave", pw, false)
	var sa struct{ ID string }
	h.do(t, "POST", "/api/v1/service-accounts", carol.ID, map[string]any{"name": "robot"}).decode(t, &sa)
	if r := h.do(t, "PATCH", "/api/v1/accounts/"+carol.ID, admin.ID, map[string]any{"auditor": true}); r.Status != http.StatusOK {
		t.Fatalf("make carol an auditor: %d %s", r.Status, r.Body)
	}
	// A wrong password, so carol has login state to clear.
	h.do(t, "DELETE", "/api/v1/me", carol.ID, map[string]any{"password": "not carol's password at all"})
	signer := identitytest.NewSigner(t)
	identitytest.VerifyChain(t, h.Store, signer) // a checkpoint before the erasures
	pseudonyms := map[string]string{}
	for _, id := range []string{bob.ID, carol.ID, dave.ID, sa.ID} {
		pseudonyms[id] = h.pseudonymOf(t, id)
	}

	tests := []struct {
		name, subject, method, path, caller, wantAction string
		body                                            any
	}{
		{"admin deletes", bob.ID, "DELETE", "/api/v1/accounts/" + bob.ID, admin.ID, "account.delete", nil},
		{"self delete", dave.ID, "DELETE", "/api/v1/me", dave.ID, "account.delete", map[string]any{"password": pw}},
		{"self delete of an owner", carol.ID, "DELETE", "/api/v1/me", carol.ID, "account.anonymize", map[string]any{"password": pw}},
	}
	for _, tt := range tests {
		n := h.count(t)
		if r := h.do(t, tt.method, tt.path, tt.caller, tt.body); r.Status != http.StatusNoContent {
			t.Fatalf("%s: %d %s", tt.name, r.Status, r.Body)
		}
		recs := identitytest.WithAction(identitytest.Records(t, h.Store)[n:], tt.wantAction)
		if len(recs) != 1 || recs[0].TargetID != pseudonyms[tt.subject] {
			t.Fatalf("%s: %s records %+v, want one with the subject's pseudonym", tt.name, tt.wantAction, recs)
		}
		if id, err := identitytest.Resolve(t, h.Store, h.Rec, pseudonyms[tt.subject]); !errors.Is(err, audit.ErrUnknownPseudonym) {
			t.Errorf("%s: the pseudonym still resolves: %q, %v", tt.name, id, err)
		}
		_ = h.Store.InTx(context.Background(), func(tx store.Tx) error {
			if _, err := tx.Audit().PseudonymSecret(context.Background(), tt.subject); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("%s: pseudonym secret still stored: %v", tt.name, err)
			}
			return nil
		})
	}

	// carol's row stays as the owner reference, with nothing personal.
	a, ok := h.account(t, carol.ID)
	if !ok || !a.Anonymized || !a.Disabled || a.Auditor || a.Admin || a.Email != "" || strings.Contains(a.Name, "carol") || a.TOTPSecret != nil {
		t.Errorf("anonymised account %+v", a)
	}
	_ = h.Store.InTx(context.Background(), func(tx store.Tx) error {
		ls, err := tx.Accounts().LoginState(context.Background(), carol.ID)
		if err != nil || ls != (store.LoginState{}) {
			t.Errorf("anonymised account's login state %+v, %v; want none", ls, err)
		}
		return nil
	})
	// A machine is no data subject: its pseudonym outlives its owner and
	// itself.
	if r := h.do(t, "DELETE", "/api/v1/service-accounts/"+sa.ID, admin.ID, nil); r.Status != http.StatusNoContent {
		t.Fatalf("delete service account: %d %s", r.Status, r.Body)
	}
	if id, err := identitytest.Resolve(t, h.Store, h.Rec, pseudonyms[sa.ID]); err != nil || id != sa.ID {
		t.Errorf("service account pseudonym resolves to %q, %v after its deletion", id, err)
	}
	rep := identitytest.VerifyChain(t, h.Store, signer)
	if rep.Checkpoints != 2 || rep.Records == 0 {
		t.Errorf("verify report %+v", rep)
	}
	identitytest.CheckPrivate(t, identitytest.Records(t, h.Store), "bob", "carol", "dave", "root", "example.com", pw, "127.0.0.1")
}

// The auditor role is an admin's to give: it shows in the account and in
// GET /api/v1/me, and reaches the principal.
func TestAuditorRole(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	admin := h.addAccount(t, "root", "the admin's long passphrase", true)
	var created accounts.CreatedAccount
	h.do(t, "POST", "/api/v1/accounts", admin.ID, map[string]any{"name": "ann", "auditor": true}).decode(t, &created)
	if !created.Auditor || created.Admin {
		t.Fatalf("created %+v, want an auditor who is no admin", created.Account)
	}
	var me accounts.Me
	h.do(t, "GET", "/api/v1/me", created.ID, nil).decode(t, &me)
	if !me.Auditor || me.Admin {
		t.Errorf("GET /api/v1/me = %+v, want auditor", me)
	}
	// Only admins change roles, the auditor's own included.
	if r := h.do(t, "PATCH", "/api/v1/accounts/"+created.ID, created.ID, map[string]any{"admin": true}); r.Status != http.StatusForbidden {
		t.Errorf("an auditor made themself admin: %d %s", r.Status, r.Body)
	}
	var after accounts.Account
	h.do(t, "PATCH", "/api/v1/accounts/"+created.ID, admin.ID, map[string]any{"auditor": false}).decode(t, &after)
	if after.Auditor {
		t.Errorf("PATCH auditor=false: %+v", after)
	}
	h.Dir.Invalidate(created.ID)
	h.do(t, "GET", "/api/v1/me", created.ID, nil).decode(t, &me)
	if me.Auditor {
		t.Errorf("GET /api/v1/me after the role was taken = %+v", me)
	}
}
