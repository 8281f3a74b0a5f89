package provider

import (
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/rampart-ml/rampart/internal/audit"
	"github.com/rampart-ml/rampart/internal/httpapi"
	"github.com/rampart-ml/rampart/internal/identity"
	"github.com/rampart-ml/rampart/internal/identity/bruteforce"
)

// LoginRequest is the body of POST /api/v1/login.
type LoginRequest struct {
	Username string `json:"username"`
	Password string `json:"password"`
	// OTP is the TOTP code, for accounts with a second factor.
	OTP string `json:"otp,omitempty"`
}

// apiLoginID is the id of the authorization request apiLogin makes up.
const apiLoginID = "api-login"

// apiLogin is the direct user name + password login for scripts. It runs
// behind the same brute-force protection as the login page and returns the
// same tokens as the authorization code flow (an OAuth token response) for
// the CLI client.
func (p *Provider) apiLogin(w http.ResponseWriter, r *http.Request) error {
	var req LoginRequest
	if err := httpapi.DecodeJSON(r, &req); err != nil {
		return err
	}
	if req.Username == "" || req.Password == "" {
		return httpapi.Error(http.StatusBadRequest, "invalid_request", "username and password are required", nil)
	}
	acct, err := p.opt.Login.Login(r.Context(), identity.Credentials{
		Name: req.Username, Password: req.Password, OTP: strings.TrimSpace(req.OTP),
	}, httpapi.PeerAddr(r))
	if err == nil && (acct.Disabled || acct.Anonymized) {
		err = identity.ErrInvalidCredentials
	}
	var rl *identity.RateLimitedError
	switch {
	case err == nil:
	case errors.Is(err, identity.ErrInvalidCredentials):
		return httpapi.Error(http.StatusUnauthorized, "invalid_credentials", err.Error(), nil)
	case errors.Is(err, identity.ErrSecondFactorRequired):
		return httpapi.Error(http.StatusUnauthorized, "otp_required", err.Error(), nil)
	case errors.As(err, &rl):
		w.Header().Set("Retry-After", retryAfter(rl))
		return httpapi.Error(http.StatusTooManyRequests, "rate_limited", rl.Error(), nil)
	case errors.Is(err, bruteforce.ErrBusy):
		w.Header().Set("Retry-After", "1")
		return httpapi.Error(http.StatusServiceUnavailable, "busy", "too many logins in progress; retry shortly", err)
	case errors.Is(err, audit.ErrWrite):
		return err // 503: the attempt could not be recorded
	default:
		return httpapi.Error(http.StatusInternalServerError, "internal", "login failed", err)
	}

	ctx := op.ContextWithIssuer(r.Context(), p.opt.Issuer)
	a := &authRequest{
		id: apiLoginID, done: true, subject: acct.ID, authTime: p.now(), amr: amrOf(acct),
		req: oidc.AuthRequest{ClientID: CLIClientID, ResponseType: oidc.ResponseTypeCode,
			Scopes: oidc.SpaceDelimitedArray{oidc.ScopeOpenID, oidc.ScopeOfflineAccess}},
	}
	resp, err := op.CreateTokenResponse(ctx, a, p.cliClient(), p.op, true, "", "")
	if err != nil {
		if errors.Is(err, audit.ErrWrite) {
			return err // 503: no tokens without their record
		}
		var oe *oidc.Error
		if errors.As(err, &oe) && oe.ErrorType == oidc.InvalidGrant {
			return httpapi.Error(http.StatusUnauthorized, "invalid_credentials", identity.ErrInvalidCredentials.Error(), err)
		}
		p.log.Error("issue tokens", slog.String("request_id", httpapi.RequestID(r.Context())), slog.Any("error", err))
		return httpapi.Error(http.StatusInternalServerError, "internal", "could not issue tokens", err)
	}
	w.Header().Set("Cache-Control", "no-store")
	httpapi.WriteJSON(w, http.StatusOK, resp)
	return nil
}

func retryAfter(rl *identity.RateLimitedError) string {
	s := int(rl.RetryAfter.Seconds() + 0.999)
	if s < 1 {
		s = 1
	}
	return strconv.Itoa(s)
}
