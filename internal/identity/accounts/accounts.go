// Package accounts is account management over the REST API: the signed-in
// user's own account (/api/v1/me), user administration, service accounts
// and their credentials, and signing-key rotation.
//
// It never returns or logs a password hash, a TOTP secret or a stored
// client secret; generated secrets are shown exactly once, in the response
// that created them.
package accounts

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/rampart-ml/rampart/internal/httpapi"
	"github.com/rampart-ml/rampart/internal/identity"
	"github.com/rampart-ml/rampart/internal/identity/password"
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
	Params      password.Params
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

// New returns a Service.
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

// Mount registers the routes.
func (s *Service) Mount(api *httpapi.Server) {
	api.Handle(httpapi.Route{Pattern: "GET /api/v1/me", Access: httpapi.Authenticated, Handler: s.me})
}

// Me is the caller's own account.
type Me struct {
	ID                 string `json:"id"`
	Kind               string `json:"kind"`
	Name               string `json:"name"`
	Admin              bool   `json:"admin"`
	MustChangePassword bool   `json:"must_change_password,omitempty"`
}

func (s *Service) me(w http.ResponseWriter, r *http.Request) error {
	p, _ := principal.FromContext(r.Context())
	out := Me{ID: p.ID, Kind: string(p.Kind), Name: p.Name, Admin: p.Admin}
	if sub, err := s.opt.Directory.Lookup(r.Context(), p.ID); err == nil {
		out.MustChangePassword = sub.MustChangePassword
	}
	httpapi.WriteJSON(w, http.StatusOK, out)
	return nil
}
