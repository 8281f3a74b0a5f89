// Package accounts is account management over the REST API: the signed-in
// user's own account (/api/v1/me: password, second factor, deletion), user
// administration, service accounts and their credentials, and signing-key
// rotation.
//
// It never returns or logs a password hash, a TOTP secret or a stored
// client secret; generated secrets are shown exactly once, in the response
// that created them. It never reveals another user's service account: to
// anyone but its owner and admins, it does not exist (404).
//
// Every change is audited in the transaction that makes it, with one
// Recorder.Record call next to the change: a change that cannot be
// recorded is rolled back and answered 503. Records name accounts and
// service accounts by id (the recorder turns them into pseudonyms) and
// say which fields changed, never their values.
package accounts

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/rampart-ml/rampart/internal/audit"
	"github.com/rampart-ml/rampart/internal/httpapi"
	"github.com/rampart-ml/rampart/internal/identity"
	"github.com/rampart-ml/rampart/internal/identity/bruteforce"
	"github.com/rampart-ml/rampart/internal/identity/password"
	"github.com/rampart-ml/rampart/internal/identity/provider"
	"github.com/rampart-ml/rampart/internal/identity/signingkeys"
	"github.com/rampart-ml/rampart/internal/principal"
	"github.com/rampart-ml/rampart/internal/secrets"
	"github.com/rampart-ml/rampart/internal/store"
)

// Options configure a Service.
type Options struct {
	Store       store.Store
	Login       *identity.PasswordLogin
	Directory   *identity.Directory
	Revocations *identity.Revocations
	Sealer      *secrets.Sealer
	Keys        *signingkeys.Ring
	// Recorder writes the audit record of every change (required).
	Recorder *audit.Recorder
	Params   password.Params
	// MinPasswordLength applies to password-only accounts (default 15).
	MinPasswordLength int
	Logger            *slog.Logger
	Now               func() time.Time
}

// Service serves the account management API.
type Service struct {
	opt Options
	log *slog.Logger
	now func() time.Time
}

// New returns a Service. Every field of o but Params, MinPasswordLength,
// Logger and Now is required; Recorder above all: without it no change
// can be made.
func New(o Options) *Service {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Params == (password.Params{}) {
		o.Params = password.DefaultParams
	}
	return &Service{opt: o, log: o.Logger, now: o.Now}
}

// maxBodyBytes bounds every request body of this API: the largest is a
// public JWK (an 8192-bit RSA key is under 2 KiB).
const maxBodyBytes = 64 << 10

// Mount registers the routes.
func (s *Service) Mount(api *httpapi.Server) {
	self := httpapi.Authenticated
	admin := httpapi.AdminOnly
	for _, rt := range []httpapi.Route{
		// The signed-in user's own account.
		{Pattern: "GET /api/v1/me", Access: self, Handler: s.me},
		{Pattern: "POST /api/v1/me/password", Access: self, Handler: s.changePassword},
		{Pattern: "DELETE /api/v1/me", Access: self, Handler: s.deleteSelf},
		{Pattern: "POST /api/v1/me/totp", Access: self, Handler: s.beginTOTP},
		{Pattern: "PUT /api/v1/me/totp", Access: self, Handler: s.confirmTOTP},
		{Pattern: "DELETE /api/v1/me/totp", Access: self, Handler: s.removeTOTP},

		// User administration.
		{Pattern: "GET /api/v1/accounts", Access: admin, Handler: s.listAccounts},
		{Pattern: "POST /api/v1/accounts", Access: admin, Handler: s.createAccount},
		{Pattern: "GET /api/v1/accounts/{id}", Access: admin, Handler: s.getAccount},
		{Pattern: "PATCH /api/v1/accounts/{id}", Access: admin, Handler: s.updateAccount},
		{Pattern: "DELETE /api/v1/accounts/{id}", Access: admin, Handler: s.deleteAccount},
		{Pattern: "POST /api/v1/accounts/{id}/password-reset", Access: admin, Handler: s.resetPassword},
		{Pattern: "POST /api/v1/accounts/{id}/unlock", Access: admin, Handler: s.unlockAccount},
		{Pattern: "POST /api/v1/signing-keys/rotate", Access: admin, Handler: s.rotateSigningKey},

		// Service accounts: their owners and admins manage them.
		{Pattern: "GET /api/v1/service-accounts", Access: self, Handler: s.listServiceAccounts},
		{Pattern: "POST /api/v1/service-accounts", Access: self, Handler: s.createServiceAccount},
		{Pattern: "GET /api/v1/service-accounts/{id}", Access: self, Handler: s.getServiceAccount},
		{Pattern: "PATCH /api/v1/service-accounts/{id}", Access: self, Handler: s.updateServiceAccount},
		{Pattern: "DELETE /api/v1/service-accounts/{id}", Access: self, Handler: s.deleteServiceAccount},
		{Pattern: "GET /api/v1/service-accounts/{id}/secrets", Access: self, Handler: s.listSecrets},
		{Pattern: "POST /api/v1/service-accounts/{id}/secrets", Access: self, Handler: s.rotateSecret},
		{Pattern: "DELETE /api/v1/service-accounts/{id}/secrets/{secretID}", Access: self, Handler: s.deleteSecret},
		{Pattern: "GET /api/v1/service-accounts/{id}/keys", Access: self, Handler: s.listKeys},
		{Pattern: "POST /api/v1/service-accounts/{id}/keys", Access: self, Handler: s.addKey},
		{Pattern: "DELETE /api/v1/service-accounts/{id}/keys/{kid}", Access: self, Handler: s.deleteKey},
	} {
		rt.MaxBodyBytes = maxBodyBytes
		api.Handle(rt)
	}
}

// Me is the caller's own account.
type Me struct {
	ID                 string `json:"id"`
	Kind               string `json:"kind"`
	Name               string `json:"name"`
	Admin              bool   `json:"admin"`
	Auditor            bool   `json:"auditor"`
	MustChangePassword bool   `json:"must_change_password,omitempty"`
}

func (s *Service) me(w http.ResponseWriter, r *http.Request) error {
	p, _ := principal.FromContext(r.Context())
	out := Me{ID: p.ID, Kind: string(p.Kind), Name: p.Name, Admin: p.Admin, Auditor: p.Auditor}
	if sub, err := s.opt.Directory.Lookup(r.Context(), p.ID); err == nil {
		out.MustChangePassword = sub.MustChangePassword
	}
	httpapi.WriteJSON(w, http.StatusOK, out)
	return nil
}

// ---- shared helpers ----

// caller is the authenticated principal; the middleware guarantees one on
// every non-public route.
func caller(r *http.Request) principal.Principal {
	p, _ := principal.FromContext(r.Context())
	return p
}

// localUser returns the caller's own local account, refusing service
// accounts and federated users, for whom self-service makes no sense here.
func (s *Service) localUser(r *http.Request) (store.Account, error) {
	p := caller(r)
	if p.Kind != principal.User {
		return store.Account{}, httpapi.Error(http.StatusForbidden, "not_a_user",
			"this operation is for user accounts; service accounts cannot use it", nil)
	}
	ctx := r.Context()
	var a store.Account
	err := s.opt.Store.InTx(ctx, func(tx store.Tx) error {
		var err error
		a, err = tx.Accounts().AccountByID(ctx, p.ID)
		return err
	})
	switch {
	case errors.Is(err, store.ErrNotFound):
		return store.Account{}, httpapi.Error(http.StatusForbidden, "not_a_local_account",
			"this operation is for accounts managed by Rampart; change federated accounts at their identity provider", nil)
	case err != nil:
		return store.Account{}, fmt.Errorf("load account %s: %w", p.ID, err)
	case a.Disabled || a.Anonymized:
		// The middleware already refuses them; a race with a disable lands here.
		return store.Account{}, httpapi.Error(http.StatusUnauthorized, "invalid_token", "the account is disabled", nil)
	}
	return a, nil
}

// verifyCredentials re-checks the password (and the one-time code, when
// the account has a second factor) of a, through the same brute-force
// protection as a login: failures count towards the account's lockout.
func (s *Service) verifyCredentials(r *http.Request, w http.ResponseWriter, a store.Account, pw, otp string) error {
	if pw == "" {
		return invalid("password", "is required")
	}
	got, err := s.opt.Login.Login(r.Context(), identity.Credentials{Name: a.Name, Password: pw, OTP: otp}, sourceAddr(r))
	var rl *identity.RateLimitedError
	switch {
	case err == nil && got.ID != a.ID:
		return httpapi.Error(http.StatusUnauthorized, "invalid_credentials", "the password or one-time code is wrong", nil)
	case err == nil:
		return nil
	case errors.Is(err, identity.ErrInvalidCredentials):
		return httpapi.Error(http.StatusUnauthorized, "invalid_credentials", "the password or one-time code is wrong", nil)
	case errors.Is(err, identity.ErrSecondFactorRequired):
		return httpapi.Error(http.StatusUnauthorized, "otp_required", "the account has a second factor: send the current one-time code as \"otp\"", nil)
	case errors.As(err, &rl):
		w.Header().Set("Retry-After", fmt.Sprint(max(1, int((rl.RetryAfter+time.Second-1)/time.Second))))
		return httpapi.Error(http.StatusTooManyRequests, "rate_limited", rl.Error(), nil)
	case errors.Is(err, bruteforce.ErrBusy):
		w.Header().Set("Retry-After", "1")
		return httpapi.Error(http.StatusServiceUnavailable, "busy", "too many password checks in progress; retry shortly", err)
	default:
		return fmt.Errorf("verify credentials of %s: %w", a.ID, err)
	}
}

// sourceAddr is the client address the brute-force source limit counts
// against (the TCP peer; proxies are not trusted).
func sourceAddr(r *http.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

// endSessions revokes every session (and so every refresh token and
// session access token) of subject and drops it from the directory cache,
// so a change to the subject applies to its existing tokens at once. The
// revocation is recorded ("session.revoke") with reason, the change that
// ended them.
func (s *Service) endSessions(ctx context.Context, subject, reason string) error {
	s.opt.Directory.Invalidate(subject)
	if _, err := provider.RevokeAllSessions(ctx, s.opt.Store, s.opt.Revocations, s.opt.Recorder, subject, reason, s.now()); err != nil {
		return fmt.Errorf("revoke sessions of %s: %w", subject, err)
	}
	return nil
}

// endSessionsAfter ends subject's sessions after a change that is already
// committed. If that fails the answer says so, rather than the audit
// error's "the action was not performed".
func (s *Service) endSessionsAfter(ctx context.Context, subject, reason string) error {
	if err := s.endSessions(ctx, subject, reason); err != nil {
		return httpapi.Error(http.StatusServiceUnavailable, "sessions_not_ended",
			"the change was saved and recorded, but the account's existing sessions could not be ended; "+
				"they stay valid until they expire: report this to an administrator", err)
	}
	return nil
}

// subjectTarget is the audit target of an account or service account:
// recorded as the subject's pseudonym.
func subjectTarget(action, id string) audit.Entry {
	return audit.Entry{Action: action, Target: audit.Target{Kind: identity.TargetKind(id)}, TargetSubject: id}
}

// fieldChanges names the fields an update changed, for the reason of its
// record: which fields changed, never their values.
type fieldChanges []string

func (c *fieldChanges) add(name string, changed bool) {
	if changed {
		*c = append(*c, name)
	}
}

func (c fieldChanges) String() string { return strings.Join(c, ",") }

// randomHex returns n random bytes, hex-encoded.
func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return hex.EncodeToString(b)
}

// newAccountID makes an id in the style of the bootstrap admin's.
func newAccountID() string { return randomHex(16) }

func invalid(field, msg string) *httpapi.HTTPError {
	return httpapi.Error(http.StatusUnprocessableEntity, "invalid_field", field+" "+msg, nil)
}

func notFound(what string) *httpapi.HTTPError {
	return httpapi.Error(http.StatusNotFound, "not_found", "no such "+what, nil)
}

var errLastAdmin = httpapi.Error(http.StatusConflict, "last_admin",
	"this is the last enabled admin account: make another account an admin first", nil)

// activeAdmin reports whether a counts as an admin who can still act.
func activeAdmin(a store.Account) bool { return a.Admin && !a.Disabled && !a.Anonymized }

// checkLastAdmin refuses to let before become after when before is the
// only active admin. Run it in the transaction that writes after, so two
// concurrent demotions cannot both pass.
func checkLastAdmin(ctx context.Context, tx store.Tx, before store.Account, after *store.Account) error {
	if !activeAdmin(before) || (after != nil && activeAdmin(*after)) {
		return nil
	}
	all, err := tx.Accounts().ListAccounts(ctx)
	if err != nil {
		return err
	}
	for _, a := range all {
		if a.ID != before.ID && activeAdmin(a) {
			return nil
		}
	}
	return errLastAdmin
}

// ownsServiceAccounts returns how many service accounts accountID owns.
func ownsServiceAccounts(ctx context.Context, tx store.Tx, accountID string) (int, error) {
	all, err := tx.ServiceAccounts().ListServiceAccounts(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, sa := range all {
		if sa.OwnerID == accountID {
			n++
		}
	}
	return n, nil
}

// optTime is a time in a response: omitted when zero.
func optTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}
