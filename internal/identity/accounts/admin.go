package accounts

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/rampart-ml/rampart/internal/httpapi"
	"github.com/rampart-ml/rampart/internal/identity/password"
	"github.com/rampart-ml/rampart/internal/store"
)

// Account is a user account as admins see it: never a hash or a secret.
type Account struct {
	ID                 string    `json:"id"`
	Name               string    `json:"name"`
	Email              string    `json:"email"`
	Admin              bool      `json:"admin"`
	Auditor            bool      `json:"auditor"`
	Disabled           bool      `json:"disabled"`
	Anonymized         bool      `json:"anonymized"`
	MustChangePassword bool      `json:"must_change_password"`
	TOTP               bool      `json:"totp"`
	CreatedAt          time.Time `json:"created_at"`
	Lockout            Lockout   `json:"lockout"`
}

// Lockout is an account's brute-force protection state.
type Lockout struct {
	// Locked: logins are refused now (until LockedUntil, or for good).
	Locked      bool       `json:"locked"`
	LockedUntil *time.Time `json:"locked_until,omitempty"`
	Permanent   bool       `json:"permanent"`
	Failures    int        `json:"failures"`
}

func accountView(a store.Account, ls store.LoginState, now time.Time) Account {
	out := Account{
		ID: a.ID, Name: a.Name, Email: a.Email, Admin: a.Admin, Auditor: a.Auditor, Disabled: a.Disabled, Anonymized: a.Anonymized,
		MustChangePassword: a.MustChangePassword, TOTP: a.TOTPSecret != nil, CreatedAt: a.CreatedAt.UTC(),
		Lockout: Lockout{Permanent: ls.Permanent, Failures: ls.Failures},
	}
	if ls.LockedUntil.After(now) {
		out.Lockout.LockedUntil = optTime(ls.LockedUntil)
	}
	out.Lockout.Locked = ls.Permanent || out.Lockout.LockedUntil != nil
	return out
}

// AccountList answers GET /api/v1/accounts.
type AccountList struct {
	Accounts []Account `json:"accounts"`
}

func (s *Service) listAccounts(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	now := s.now()
	out := AccountList{Accounts: []Account{}}
	err := s.opt.Store.InTx(ctx, func(tx store.Tx) error {
		all, err := tx.Accounts().ListAccounts(ctx)
		if err != nil {
			return err
		}
		for _, a := range all {
			ls, err := tx.Accounts().LoginState(ctx, a.ID)
			if err != nil {
				return err
			}
			out.Accounts = append(out.Accounts, accountView(a, ls, now))
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("list accounts: %w", err)
	}
	httpapi.WriteJSON(w, http.StatusOK, out)
	return nil
}

// loadAccount reads the account named by the path's {id}; unknown and
// malformed ids are 404.
func (s *Service) loadAccount(ctx context.Context, id string) (store.Account, store.LoginState, error) {
	if !validPathID(id) {
		return store.Account{}, store.LoginState{}, notFound("account")
	}
	var (
		a  store.Account
		ls store.LoginState
	)
	err := s.opt.Store.InTx(ctx, func(tx store.Tx) error {
		var err error
		if a, err = tx.Accounts().AccountByID(ctx, id); err != nil {
			return err
		}
		ls, err = tx.Accounts().LoginState(ctx, id)
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return store.Account{}, store.LoginState{}, notFound("account")
	}
	if err != nil {
		return store.Account{}, store.LoginState{}, fmt.Errorf("load account %s: %w", id, err)
	}
	return a, ls, nil
}

func (s *Service) getAccount(w http.ResponseWriter, r *http.Request) error {
	a, ls, err := s.loadAccount(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	httpapi.WriteJSON(w, http.StatusOK, accountView(a, ls, s.now()))
	return nil
}

// CreateAccountRequest is the body of POST /api/v1/accounts.
type CreateAccountRequest struct {
	Name  string `json:"name"`
	Email string `json:"email,omitempty"`
	Admin bool   `json:"admin,omitempty"`
	// Auditor may read the audit log and resolve pseudonyms.
	Auditor bool `json:"auditor,omitempty"`
}

// CreatedAccount answers POST /api/v1/accounts; InitialPassword is shown
// only here, and must be changed at the first login.
type CreatedAccount struct {
	Account
	InitialPassword string `json:"initial_password"`
}

func (s *Service) createAccount(w http.ResponseWriter, r *http.Request) error {
	var req CreateAccountRequest
	if err := httpapi.DecodeJSON(r, &req); err != nil {
		return err
	}
	if err := validateName("name", req.Name); err != nil {
		return err
	}
	if strings.HasPrefix(req.Name, anonymizedPrefix) {
		return invalid("name", "must not start with \""+anonymizedPrefix+"\" (reserved for deleted accounts)")
	}
	if err := validateEmail(req.Email); err != nil {
		return err
	}
	pw := rand.Text() // 26 base32 characters, 130 bits
	hash, err := password.Hash(pw, s.opt.Params)
	if err != nil {
		return err
	}
	a := store.Account{
		ID: newAccountID(), Name: req.Name, Email: req.Email, PasswordHash: hash, Admin: req.Admin, Auditor: req.Auditor,
		MustChangePassword: true, CreatedAt: s.now().UTC().Truncate(time.Second),
	}
	ctx := r.Context()
	err = s.opt.Store.InTx(ctx, func(tx store.Tx) error {
		if err := tx.Accounts().CreateAccount(ctx, a); err != nil {
			return err
		}
		// The reason names the roles granted, so role grants can be found.
		var roles fieldChanges
		roles.add("admin", a.Admin)
		roles.add("auditor", a.Auditor)
		e := subjectTarget("account.create", a.ID)
		e.Reason = roles.String()
		return s.opt.Recorder.Record(ctx, tx, e)
	})
	if errors.Is(err, store.ErrConflict) {
		return httpapi.Error(http.StatusConflict, "name_taken", "an account with this name already exists", nil)
	}
	if err != nil {
		return fmt.Errorf("create account: %w", err)
	}
	httpapi.WriteJSON(w, http.StatusCreated, CreatedAccount{Account: accountView(a, store.LoginState{}, s.now()), InitialPassword: pw})
	return nil
}

// UpdateAccountRequest is the body of PATCH /api/v1/accounts/{id}; absent
// fields stay as they are.
type UpdateAccountRequest struct {
	Disabled *bool   `json:"disabled,omitempty"`
	Admin    *bool   `json:"admin,omitempty"`
	Auditor  *bool   `json:"auditor,omitempty"`
	Email    *string `json:"email,omitempty"`
	// TOTP false removes the user's second factor (a lost phone); users
	// enroll one themselves, so true is refused.
	TOTP *bool `json:"totp,omitempty"`
}

func (s *Service) updateAccount(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	if !validPathID(id) {
		return notFound("account")
	}
	var req UpdateAccountRequest
	if err := httpapi.DecodeJSON(r, &req); err != nil {
		return err
	}
	if req.Email != nil {
		if err := validateEmail(*req.Email); err != nil {
			return err
		}
	}
	if req.TOTP != nil && *req.TOTP {
		return invalid("totp", "can only be set to false: users enroll a second factor themselves")
	}
	ctx := r.Context()
	var (
		after store.Account
		ls    store.LoginState
	)
	err := s.opt.Store.InTx(ctx, func(tx store.Tx) error {
		before, err := tx.Accounts().AccountByID(ctx, id)
		if err != nil {
			return err
		}
		if before.Anonymized {
			return httpapi.Error(http.StatusConflict, "anonymized", "the account was deleted by its user and cannot be changed", nil)
		}
		after = before
		if req.Disabled != nil {
			after.Disabled = *req.Disabled
		}
		if req.Admin != nil {
			after.Admin = *req.Admin
		}
		if req.Auditor != nil {
			after.Auditor = *req.Auditor
		}
		if req.Email != nil {
			after.Email = *req.Email
		}
		if req.TOTP != nil {
			after.TOTPSecret = nil
		}
		if err := checkLastAdmin(ctx, tx, before, &after); err != nil {
			return err
		}
		if err := tx.Accounts().UpdateAccount(ctx, after); err != nil {
			return err
		}
		var ch fieldChanges
		ch.add("admin", after.Admin != before.Admin)
		ch.add("auditor", after.Auditor != before.Auditor)
		ch.add("disabled", after.Disabled != before.Disabled)
		ch.add("email", after.Email != before.Email)
		ch.add("totp", before.TOTPSecret != nil && after.TOTPSecret == nil)
		e := subjectTarget("account.update", id)
		e.Reason = ch.String()
		if err := s.opt.Recorder.Record(ctx, tx, e); err != nil {
			return err
		}
		ls, err = tx.Accounts().LoginState(ctx, id)
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return notFound("account")
	}
	if err != nil {
		return fmt.Errorf("update account %s: %w", id, err)
	}
	if after.Disabled {
		if err := s.endSessionsAfter(ctx, id, "account_disabled"); err != nil {
			return err
		}
	}
	s.opt.Directory.Invalidate(id)
	httpapi.WriteJSON(w, http.StatusOK, accountView(after, ls, s.now()))
	return nil
}

// deleteAccount deletes an account and erases its pseudonym (GDPR Art. 17):
// its audit records stay, and the chain still verifies, but nothing links
// them to the person any more. The delete record is written first, so it
// still carries their pseudonym.
func (s *Service) deleteAccount(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	if !validPathID(id) {
		return notFound("account")
	}
	ctx := r.Context()
	// Check first, then end the sessions, then delete: the account's
	// tokens are dead before the row goes.
	check := func(tx store.Tx) (store.Account, error) {
		a, err := tx.Accounts().AccountByID(ctx, id)
		if err != nil {
			return a, err
		}
		if err := checkLastAdmin(ctx, tx, a, nil); err != nil {
			return a, err
		}
		n, err := ownsServiceAccounts(ctx, tx, id)
		if err != nil {
			return a, err
		}
		if n > 0 {
			return a, httpapi.Error(http.StatusConflict, "owns_service_accounts", fmt.Sprintf(
				"the account owns %d service account(s): delete them or give them to another owner first", n), nil)
		}
		return a, nil
	}
	err := s.opt.Store.InTx(ctx, func(tx store.Tx) error { _, err := check(tx); return err })
	if err == nil {
		err = s.endSessions(ctx, id, "account_delete")
	}
	if err == nil {
		err = s.opt.Store.InTx(ctx, func(tx store.Tx) error {
			if _, err := check(tx); err != nil {
				return err
			}
			// Grants name subjects by id without a foreign key.
			if _, err := tx.Grants().DeleteGrantsOfSubject(ctx, "user", id); err != nil {
				return err
			}
			if err := tx.Accounts().DeleteAccount(ctx, id); err != nil {
				return err
			}
			if err := s.opt.Recorder.Record(ctx, tx, subjectTarget("account.delete", id)); err != nil {
				return err
			}
			return s.opt.Recorder.Erase(ctx, tx, id)
		})
	}
	switch {
	case errors.Is(err, store.ErrNotFound):
		return notFound("account")
	case errors.Is(err, store.ErrConflict):
		return httpapi.Error(http.StatusConflict, "owns_service_accounts",
			"the account owns service accounts: delete them or give them to another owner first", err)
	case err != nil:
		return fmt.Errorf("delete account %s: %w", id, err)
	}
	s.opt.Directory.Invalidate(id)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// PasswordReset answers POST /api/v1/accounts/{id}/password-reset; the
// password is shown only here and must be changed at the next login.
type PasswordReset struct {
	Password string `json:"password"`
}

func (s *Service) resetPassword(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	if !validPathID(id) {
		return notFound("account")
	}
	pw := rand.Text()
	hash, err := password.Hash(pw, s.opt.Params)
	if err != nil {
		return err
	}
	ctx := r.Context()
	err = s.opt.Store.InTx(ctx, func(tx store.Tx) error {
		a, err := tx.Accounts().AccountByID(ctx, id)
		if err != nil {
			return err
		}
		if a.Anonymized {
			return httpapi.Error(http.StatusConflict, "anonymized", "the account was deleted by its user and cannot be changed", nil)
		}
		a.PasswordHash, a.MustChangePassword = hash, true
		if err := tx.Accounts().UpdateAccount(ctx, a); err != nil {
			return err
		}
		return s.opt.Recorder.Record(ctx, tx, subjectTarget("account.reset-password", id))
	})
	if errors.Is(err, store.ErrNotFound) {
		return notFound("account")
	}
	if err != nil {
		return fmt.Errorf("reset password of %s: %w", id, err)
	}
	if err := s.endSessionsAfter(ctx, id, "password_reset"); err != nil {
		return err
	}
	httpapi.WriteJSON(w, http.StatusOK, PasswordReset{Password: pw})
	return nil
}

// unlockAccount clears the brute-force state, permanent lockout included.
func (s *Service) unlockAccount(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	if !validPathID(id) {
		return notFound("account")
	}
	ctx := r.Context()
	err := s.opt.Store.InTx(ctx, func(tx store.Tx) error {
		a, err := tx.Accounts().AccountByID(ctx, id)
		if err != nil {
			return err
		}
		if a.Anonymized {
			// Nothing to unlock (it cannot log in), and its pseudonym was
			// erased: a record would make it a new one.
			return httpapi.Error(http.StatusConflict, "anonymized", "the account was deleted by its user and cannot be changed", nil)
		}
		if err := tx.Accounts().SetLoginState(ctx, id, store.LoginState{}); err != nil {
			return err
		}
		return s.opt.Recorder.Record(ctx, tx, subjectTarget("account.unlock", id))
	})
	if errors.Is(err, store.ErrNotFound) {
		return notFound("account")
	}
	if err != nil {
		return fmt.Errorf("unlock account %s: %w", id, err)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// RotatedKey answers POST /api/v1/signing-keys/rotate.
type RotatedKey struct {
	KeyID     string    `json:"kid"`
	SignUntil time.Time `json:"sign_until"`
}

// rotateSigningKey retires the current token-signing key now; tokens it
// signed stay valid until they expire. The ring records the rotation.
func (s *Service) rotateSigningKey(w http.ResponseWriter, r *http.Request) error {
	k, err := s.opt.Keys.Rotate(r.Context())
	if err != nil {
		return fmt.Errorf("rotate signing key: %w", err)
	}
	httpapi.WriteJSON(w, http.StatusOK, RotatedKey{KeyID: k.ID, SignUntil: k.SignUntil.UTC()})
	return nil
}
