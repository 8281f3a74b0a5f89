package accounts

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/rampart-ml/rampart/internal/httpapi"
	"github.com/rampart-ml/rampart/internal/identity"
	"github.com/rampart-ml/rampart/internal/identity/password"
	"github.com/rampart-ml/rampart/internal/store"
)

// ChangePasswordRequest is the body of POST /api/v1/me/password.
type ChangePasswordRequest struct {
	CurrentPassword string `json:"current_password"`
	NewPassword     string `json:"new_password"`
	// OTP is the current one-time code, required when the account has a
	// second factor.
	OTP string `json:"otp,omitempty"`
}

// changePassword replaces the caller's password after checking the current
// one, and ends every session of the account: other devices must log in
// again with the new password, and so must this one.
func (s *Service) changePassword(w http.ResponseWriter, r *http.Request) error {
	acct, err := s.localUser(r)
	if err != nil {
		return err
	}
	var req ChangePasswordRequest
	if err := httpapi.DecodeJSON(r, &req); err != nil {
		return err
	}
	if req.CurrentPassword == "" {
		return invalid("current_password", "is required")
	}
	if req.NewPassword == "" {
		return invalid("new_password", "is required")
	}
	// The policy first, so a doomed request spends neither a login
	// attempt nor a one-time code.
	if err := s.checkPolicy(req.NewPassword, acct); err != nil {
		return err
	}
	if req.NewPassword == req.CurrentPassword {
		return httpapi.Error(http.StatusUnprocessableEntity, "password_unchanged",
			"the new password must differ from the current one", nil)
	}
	if err := s.verifyCredentials(r, w, acct, req.CurrentPassword, strings.TrimSpace(req.OTP)); err != nil {
		return err
	}
	hash, err := password.Hash(req.NewPassword, s.opt.Params)
	if err != nil {
		return err
	}
	ctx := r.Context()
	err = s.opt.Store.InTx(ctx, func(tx store.Tx) error {
		// Re-read: a login may have updated the TOTP step meanwhile.
		a, err := tx.Accounts().AccountByID(ctx, acct.ID)
		if err != nil {
			return err
		}
		a.PasswordHash, a.MustChangePassword = hash, false
		if err := tx.Accounts().UpdateAccount(ctx, a); err != nil {
			return err
		}
		return s.opt.Recorder.Record(ctx, tx, subjectTarget("password.change", acct.ID))
	})
	if err != nil {
		return fmt.Errorf("change password of %s: %w", acct.ID, err)
	}
	if err := s.endSessionsAfter(ctx, acct.ID, "password_change"); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// checkPolicy applies the password policy for a: the configured minimum
// length, or the lower floor when the password is not the only factor.
func (s *Service) checkPolicy(pw string, a store.Account) error {
	pol := password.Policy{MinLength: s.opt.MinPasswordLength}
	if a.TOTPSecret != nil {
		pol.MinLength = password.MinLengthFloor
	}
	err := pol.Check(pw, password.User{Name: a.Name, Email: a.Email})
	var pe *password.PolicyError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &pe):
		// The message names the rule and never contains the password.
		return httpapi.Error(http.StatusUnprocessableEntity, "weak_password",
			fmt.Sprintf("the new password %s (rule %s)", pe.Message, pe.Rule), nil)
	default:
		return fmt.Errorf("password policy: %w", err)
	}
}

// DeleteSelfRequest is the body of DELETE /api/v1/me.
type DeleteSelfRequest struct {
	Password string `json:"password"`
	OTP      string `json:"otp,omitempty"`
}

// deleteSelf deletes the caller's account. An account that still owns
// resources (service accounts) is anonymized instead: the row stays as the
// owner reference, without name, e-mail, roles, usable password, second
// factor or login state. Either way the account's pseudonym is erased
// (GDPR Art. 17) in the same transaction, after the record of the
// deletion, so that record still carries it and nothing links any record
// to the person afterwards.
func (s *Service) deleteSelf(w http.ResponseWriter, r *http.Request) error {
	acct, err := s.localUser(r)
	if err != nil {
		return err
	}
	var req DeleteSelfRequest
	if err := httpapi.DecodeJSON(r, &req); err != nil {
		return err
	}
	if err := s.verifyCredentials(r, w, acct, req.Password, strings.TrimSpace(req.OTP)); err != nil {
		return err
	}
	// Hashed before the transaction, so the write lock is not held while
	// argon2id runs; nobody ever learns the value.
	unusable, err := password.Hash(rand.Text()+rand.Text(), s.opt.Params)
	if err != nil {
		return err
	}
	ctx := r.Context()
	// Check, end the sessions, then delete (checking again): a refused
	// deletion must not log the user out, and the record of the sessions'
	// end must not come after the erasure, or it would give the account a
	// new pseudonym.
	check := func(tx store.Tx) (store.Account, error) {
		a, err := tx.Accounts().AccountByID(ctx, acct.ID)
		if err != nil {
			return a, err
		}
		return a, checkLastAdmin(ctx, tx, a, nil)
	}
	err = s.opt.Store.InTx(ctx, func(tx store.Tx) error { _, err := check(tx); return err })
	if err == nil {
		err = s.endSessions(ctx, acct.ID, "account_delete")
	}
	if err != nil {
		return fmt.Errorf("delete account %s: %w", acct.ID, err)
	}
	err = s.opt.Store.InTx(ctx, func(tx store.Tx) error {
		a, err := check(tx)
		if err != nil {
			return err
		}
		n, err := ownsServiceAccounts(ctx, tx, a.ID)
		if err != nil {
			return err
		}
		// Grants name subjects by id without a foreign key; an anonymised
		// owner reference keeps none either.
		if _, err := tx.Grants().DeleteGrantsOfSubject(ctx, "user", a.ID); err != nil {
			return err
		}
		action := "account.delete"
		if n == 0 {
			if err := tx.Accounts().DeleteAccount(ctx, a.ID); err != nil {
				return err
			}
		} else {
			action = "account.anonymize"
			a.Name = anonymizedPrefix + a.ID
			a.Email = ""
			a.PasswordHash = unusable
			a.Admin, a.Auditor, a.MustChangePassword = false, false, false
			a.Disabled, a.Anonymized = true, true
			a.TOTPSecret, a.TOTPLastStep = nil, 0
			if err := tx.Accounts().UpdateAccount(ctx, a); err != nil {
				return err
			}
			if err := tx.Accounts().SetLoginState(ctx, a.ID, store.LoginState{}); err != nil {
				return err
			}
		}
		if err := s.opt.Recorder.Record(ctx, tx, subjectTarget(action, a.ID)); err != nil {
			return err
		}
		return s.opt.Recorder.Erase(ctx, tx, a.ID)
	})
	if err != nil {
		return fmt.Errorf("delete account %s: %w", acct.ID, err)
	}
	s.opt.Directory.Invalidate(acct.ID)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// ---- TOTP second factor ----

// totpEnrollmentTTL is how long an enrollment may wait for its first code.
const totpEnrollmentTTL = 10 * time.Minute

// maxEnrollmentLen bounds the enrollment token a client sends back.
const maxEnrollmentLen = 512

// TOTPEnrollment answers POST /api/v1/me/totp. Nothing is stored until
// PUT /api/v1/me/totp sends Enrollment back with a code from the app.
type TOTPEnrollment struct {
	Secret     string `json:"secret"`
	OTPAuthURL string `json:"otpauth_url"`
	// Enrollment is the secret sealed to this account and expiry; it is
	// opaque to clients.
	Enrollment string    `json:"enrollment"`
	ExpiresAt  time.Time `json:"expires_at"`
}

// enrollmentAD binds a sealed enrollment to its account and expiry, so
// neither can be changed without the seal failing.
func enrollmentAD(accountID string, exp int64) []byte {
	return []byte("totp-enroll:" + accountID + ":" + strconv.FormatInt(exp, 10))
}

// beginTOTP generates a secret and returns it with a sealed enrollment
// token; no pending state is kept on the server.
func (s *Service) beginTOTP(w http.ResponseWriter, r *http.Request) error {
	acct, err := s.localUser(r)
	if err != nil {
		return err
	}
	if acct.TOTPSecret != nil {
		return httpapi.Error(http.StatusConflict, "totp_enabled",
			"the account already has a second factor; remove it first (DELETE /api/v1/me/totp)", nil)
	}
	secret, url, err := identity.NewTOTPKey(acct.Name)
	if err != nil {
		return err
	}
	exp := s.now().Add(totpEnrollmentTTL).Truncate(time.Second).UTC()
	sealed, err := s.opt.Sealer.Seal([]byte(secret), enrollmentAD(acct.ID, exp.Unix()))
	if err != nil {
		return fmt.Errorf("seal totp enrollment: %w", err)
	}
	// Nothing is stored until the code is confirmed, but a secret is
	// handed out: recorded (and committed) before it is.
	if err := s.opt.Recorder.Write(r.Context(), subjectTarget("totp.enroll", acct.ID)); err != nil {
		return err
	}
	httpapi.WriteJSON(w, http.StatusOK, TOTPEnrollment{
		Secret: secret, OTPAuthURL: url, ExpiresAt: exp,
		Enrollment: strconv.FormatInt(exp.Unix(), 10) + "." + base64.RawURLEncoding.EncodeToString(sealed),
	})
	return nil
}

// openEnrollment returns the secret in an enrollment token made for
// accountID that has not expired.
func (s *Service) openEnrollment(accountID, token string) (string, error) {
	bad := invalid("enrollment", "is invalid or has expired; start again with POST /api/v1/me/totp")
	if len(token) > maxEnrollmentLen {
		return "", bad
	}
	expText, sealedText, ok := strings.Cut(token, ".")
	if !ok {
		return "", bad
	}
	exp, err := strconv.ParseInt(expText, 10, 64)
	if err != nil || !s.now().Before(time.Unix(exp, 0)) {
		return "", bad
	}
	sealed, err := base64.RawURLEncoding.DecodeString(sealedText)
	if err != nil {
		return "", bad
	}
	secret, err := s.opt.Sealer.Open(sealed, enrollmentAD(accountID, exp))
	if err != nil {
		return "", bad
	}
	return string(secret), nil
}

// ConfirmTOTPRequest is the body of PUT /api/v1/me/totp.
type ConfirmTOTPRequest struct {
	Enrollment string `json:"enrollment"`
	// Code is the current code shown by the authenticator app.
	Code string `json:"code"`
	// Password re-authenticates the user, so a stolen access token cannot
	// put a second factor on the account and lock its owner out.
	Password string `json:"password"`
}

// confirmTOTP turns the second factor on once the user proves their app
// produces the right codes. The code used here cannot be used to log in.
func (s *Service) confirmTOTP(w http.ResponseWriter, r *http.Request) error {
	acct, err := s.localUser(r)
	if err != nil {
		return err
	}
	var req ConfirmTOTPRequest
	if err := httpapi.DecodeJSON(r, &req); err != nil {
		return err
	}
	if acct.TOTPSecret != nil {
		return httpapi.Error(http.StatusConflict, "totp_enabled", "the account already has a second factor", nil)
	}
	secret, err := s.openEnrollment(acct.ID, req.Enrollment)
	if err != nil {
		return err
	}
	step := identity.MatchTOTP(secret, strings.TrimSpace(req.Code), s.now())
	if step == 0 {
		return httpapi.Error(http.StatusUnprocessableEntity, "invalid_otp",
			"the code does not match; check the authenticator app and the device clock", nil)
	}
	if err := s.verifyCredentials(r, w, acct, req.Password, ""); err != nil {
		return err
	}
	sealed, err := s.opt.Sealer.Seal([]byte(secret), identity.TOTPSecretAD(acct.ID))
	if err != nil {
		return fmt.Errorf("seal totp secret: %w", err)
	}
	ctx := r.Context()
	err = s.opt.Store.InTx(ctx, func(tx store.Tx) error {
		a, err := tx.Accounts().AccountByID(ctx, acct.ID)
		if err != nil {
			return err
		}
		if a.TOTPSecret != nil {
			return httpapi.Error(http.StatusConflict, "totp_enabled", "the account already has a second factor", nil)
		}
		a.TOTPSecret, a.TOTPLastStep = sealed, step
		if err := tx.Accounts().UpdateAccount(ctx, a); err != nil {
			return err
		}
		return s.opt.Recorder.Record(ctx, tx, subjectTarget("totp.confirm", acct.ID))
	})
	if err != nil {
		return fmt.Errorf("enable totp of %s: %w", acct.ID, err)
	}
	s.opt.Directory.Invalidate(acct.ID)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// RemoveTOTPRequest is the body of DELETE /api/v1/me/totp.
type RemoveTOTPRequest struct {
	Password string `json:"password"`
	OTP      string `json:"otp"`
}

// removeTOTP turns the second factor off after checking both factors.
func (s *Service) removeTOTP(w http.ResponseWriter, r *http.Request) error {
	acct, err := s.localUser(r)
	if err != nil {
		return err
	}
	var req RemoveTOTPRequest
	if err := httpapi.DecodeJSON(r, &req); err != nil {
		return err
	}
	if acct.TOTPSecret == nil {
		return httpapi.Error(http.StatusConflict, "totp_not_enabled", "the account has no second factor", nil)
	}
	otp := strings.TrimSpace(req.OTP)
	if otp == "" {
		return invalid("otp", "is required")
	}
	if err := s.verifyCredentials(r, w, acct, req.Password, otp); err != nil {
		return err
	}
	ctx := r.Context()
	err = s.opt.Store.InTx(ctx, func(tx store.Tx) error {
		a, err := tx.Accounts().AccountByID(ctx, acct.ID)
		if err != nil {
			return err
		}
		a.TOTPSecret = nil
		if err := tx.Accounts().UpdateAccount(ctx, a); err != nil {
			return err
		}
		return s.opt.Recorder.Record(ctx, tx, subjectTarget("totp.remove", acct.ID))
	})
	if err != nil {
		return fmt.Errorf("remove totp of %s: %w", acct.ID, err)
	}
	s.opt.Directory.Invalidate(acct.ID)
	w.WriteHeader(http.StatusNoContent)
	return nil
}
