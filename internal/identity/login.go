package identity

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/rampart-ml/rampart/internal/audit"
	"github.com/rampart-ml/rampart/internal/identity/bruteforce"
	"github.com/rampart-ml/rampart/internal/identity/password"
	"github.com/rampart-ml/rampart/internal/secrets"
	"github.com/rampart-ml/rampart/internal/store"
)

// ErrInvalidCredentials is the one answer for a wrong password, an unknown
// user and a locked account, so none of them can be told apart.
var ErrInvalidCredentials = errors.New("invalid user name or password")

// RateLimitedError refuses an attempt because its source address sent too
// many; RetryAfter may be shown to the client (it says nothing about accounts).
type RateLimitedError struct{ RetryAfter time.Duration }

func (e *RateLimitedError) Error() string {
	return fmt.Sprintf("too many login attempts from this address; retry in %v", e.RetryAfter.Round(time.Second))
}

// PasswordLogin verifies user name + password with brute-force protection:
// a per-source token bucket, per-account lockout persisted in the store, a
// bound on concurrent argon2id work, a dummy hash for unknown and locked
// accounts, and a floor on the answer time.
type PasswordLogin struct {
	store   store.Store
	params  password.Params
	lockout bruteforce.Policy
	sources *bruteforce.SourceLimiter
	hashes  *bruteforce.HashLimiter
	timing  bruteforce.Timing
	rec     *audit.Recorder
	sealer  *secrets.Sealer
	hasher  Hasher
	now     func() time.Time
	dummy   string
}

// Hasher computes password hashes for logins. InProcess does it here;
// hashworker.Pool does it in lower-priority child processes.
type Hasher interface {
	Verify(ctx context.Context, pw, encoded string) (bool, error)
	Hash(ctx context.Context, pw string, p password.Params) (string, error)
}

// InProcess is the Hasher that hashes in this process.
type InProcess struct{}

// Verify implements Hasher.
func (InProcess) Verify(_ context.Context, pw, encoded string) (bool, error) {
	return password.Verify(pw, encoded)
}

// Hash implements Hasher.
func (InProcess) Hash(_ context.Context, pw string, p password.Params) (string, error) {
	return password.Hash(pw, p)
}

// LoginOptions configure NewPasswordLogin. Zero values take the defaults.
type LoginOptions struct {
	// Hasher defaults to InProcess.
	Hasher     Hasher
	Params     password.Params
	BruteForce bruteforce.Config
	// Recorder writes the audit record of every attempt (required): a
	// login that cannot be recorded does not happen.
	Recorder *audit.Recorder
	// Sealer opens TOTP secrets; required once any account has one.
	Sealer *secrets.Sealer
	Now    func() time.Time
}

// NewPasswordLogin validates o and prepares the dummy hash.
func NewPasswordLogin(st store.Store, o LoginOptions) (*PasswordLogin, error) {
	if o.Recorder == nil {
		return nil, errors.New("password login: an audit recorder is required")
	}
	if o.Params == (password.Params{}) {
		o.Params = password.DefaultParams
	}
	if o.BruteForce == (bruteforce.Config{}) {
		o.BruteForce = bruteforce.DefaultConfig()
	}
	if err := o.BruteForce.Validate(); err != nil {
		return nil, err
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Hasher == nil {
		o.Hasher = InProcess{}
	}
	sources, err := bruteforce.NewSourceLimiter(o.BruteForce.Source)
	if err != nil {
		return nil, err
	}
	hashes, err := bruteforce.NewHashLimiter(o.BruteForce.Hash)
	if err != nil {
		return nil, err
	}
	// Same parameters as real hashes, so verifying it costs the same.
	dummy, err := password.Hash(newID(), o.Params)
	if err != nil {
		return nil, err
	}
	return &PasswordLogin{
		store: st, params: o.Params, lockout: o.BruteForce.Account, sources: sources, hashes: hashes,
		timing: o.BruteForce.Timing, rec: o.Recorder, sealer: o.Sealer, hasher: o.Hasher, now: o.Now, dummy: dummy,
	}, nil
}

// Verify returns the account when name and pw are right and the account is
// neither locked nor disabled. Otherwise it returns ErrInvalidCredentials,
// a *RateLimitedError, bruteforce.ErrBusy, an error wrapping audit.ErrWrite
// (the attempt could not be recorded) or a technical error. Accounts with
// a second factor need Login.
func (l *PasswordLogin) Verify(ctx context.Context, name, pw string, source netip.Addr) (store.Account, error) {
	return l.Login(ctx, Credentials{Name: name, Password: pw}, source)
}

// Credentials are what a user types to log in. OTP is the TOTP code, needed
// only for accounts with a second factor.
type Credentials struct {
	Name, Password, OTP string
}

// ErrSecondFactorRequired: the password was right, but the account has a
// second factor and no code was given. Nothing is counted against the
// account; the caller asks for the code and tries again.
var ErrSecondFactorRequired = errors.New("a one-time code from the authenticator app is required")

// Login is Verify with an optional second factor: a wrong or replayed TOTP
// code counts as a failed attempt, exactly like a wrong password. A
// disabled account gets ErrInvalidCredentials even with the right password.
//
// Every attempt is audited as "login": the account is the actor, or the
// anonymous actor for an unknown name (never the name typed). The record
// is written in the transaction that updates the account's login state
// where there is one. When it cannot be written the attempt fails with an
// error wrapping audit.ErrWrite, whatever its outcome would have been, so
// neither a login nor an answer about a password happens unrecorded.
func (l *PasswordLogin) Login(ctx context.Context, c Credentials, source netip.Addr) (acct store.Account, err error) {
	name, pw := c.Name, c.Password
	start := l.now()
	if ok, retry := l.sources.Allow(source, start); !ok {
		if err := l.rec.Submit(ctx, loginEntry("", audit.OutcomeDenied, "rate_limited")); err != nil {
			return store.Account{}, fmt.Errorf("login: %w", err)
		}
		return store.Account{}, &RateLimitedError{RetryAfter: retry}
	}
	if len(pw) > 4*password.MaxLength || len(name) > 256 || len(c.OTP) > 16 {
		// Oversized: no hashing, and it says nothing about accounts.
		return store.Account{}, l.refuse(ctx, loginEntry("", audit.OutcomeFailure, reasonInvalid))
	}
	release, err := l.hashes.Acquire(ctx)
	if err != nil {
		return store.Account{}, err
	}
	// Every credential answer, good or bad, takes at least the floor. The
	// hashing slot is released before the wait (deferred calls run last
	// first), so sleeping answers do not hold back other logins.
	defer func() {
		if perr := l.timing.Pad(ctx, l.now().Sub(start)); perr != nil && err == nil {
			acct, err = store.Account{}, perr
		}
	}()
	defer release()

	var state store.LoginState
	err = l.store.InTx(ctx, func(tx store.Tx) error {
		var err error
		if acct, err = tx.Accounts().AccountByName(ctx, name); err != nil {
			return err
		}
		state, err = tx.Accounts().LoginState(ctx, acct.ID)
		return err
	})
	switch {
	case errors.Is(err, store.ErrNotFound):
		_, _ = l.hasher.Verify(ctx, pw, l.dummy)
		return store.Account{}, l.refuse(ctx, loginEntry("", audit.OutcomeFailure, reasonInvalid))
	case err != nil:
		return store.Account{}, fmt.Errorf("login: %w", err)
	}
	if !l.lockout.Check(toBF(state), start).Allowed {
		_, _ = l.hasher.Verify(ctx, pw, l.dummy)
		return store.Account{}, l.refuse(ctx, loginEntry(acct.ID, audit.OutcomeFailure, "locked"))
	}
	ok, err := l.hasher.Verify(ctx, pw, acct.PasswordHash)
	if err != nil {
		return store.Account{}, fmt.Errorf("login: account %s: %w", acct.ID, err)
	}
	reason := reasonInvalid // why the attempt failed, if it does
	var otpStep int64
	if ok && acct.TOTPSecret != nil {
		if c.OTP == "" {
			// Nothing is counted; the record says the password was right.
			if err := l.rec.Submit(ctx, loginEntry(acct.ID, audit.OutcomeFailure, "otp_required")); err != nil {
				return store.Account{}, fmt.Errorf("login: %w", err)
			}
			return store.Account{}, ErrSecondFactorRequired
		}
		if otpStep, err = l.checkOTP(acct, c.OTP, start); err != nil {
			return store.Account{}, err
		}
		ok, reason = otpStep > 0, reasonTOTP
	}
	var rehash string
	if ok && password.NeedsRehash(acct.PasswordHash, l.params) {
		if rehash, err = l.hasher.Hash(ctx, pw, l.params); err != nil {
			return store.Account{}, err
		}
	}

	active := !acct.Disabled && !acct.Anonymized
	err = l.store.InTx(ctx, func(tx store.Tx) error {
		// Re-read: concurrent attempts on this account may have counted.
		cur, err := tx.Accounts().LoginState(ctx, acct.ID)
		if err != nil {
			return err
		}
		if rehash != "" {
			if err := tx.Accounts().SetPasswordHash(ctx, acct.ID, rehash); err != nil {
				return err
			}
		}
		if otpStep > 0 {
			// Re-check under the transaction: a concurrent login may have
			// used this code already (RFC 6238 section 5.2: one use).
			a, err := tx.Accounts().AccountByID(ctx, acct.ID)
			if err != nil {
				return err
			}
			if otpStep <= a.TOTPLastStep {
				ok = false
			} else {
				a.TOTPLastStep = otpStep
				if err := tx.Accounts().UpdateAccount(ctx, a); err != nil {
					return err
				}
			}
		}
		var (
			next   bruteforce.State
			events []bruteforce.Event
		)
		e := loginEntry(acct.ID, audit.OutcomeSuccess, "")
		switch {
		case !ok:
			next, events = l.lockout.Fail(toBF(cur), start)
			e.Outcome, e.Reason = audit.OutcomeFailure, reason
		case !active:
			next = l.lockout.Succeed(toBF(cur), start)
			e.Outcome, e.Reason = audit.OutcomeFailure, "disabled"
		default:
			next = l.lockout.Succeed(toBF(cur), start)
		}
		if err := tx.Accounts().SetLoginState(ctx, acct.ID, fromBF(next)); err != nil {
			return err
		}
		if err := l.rec.Record(ctx, tx, e); err != nil {
			return err
		}
		for _, ev := range events {
			if err := l.recordLockout(ctx, tx, acct.ID, ev); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return store.Account{}, fmt.Errorf("login: record outcome: %w", err)
	}
	if !ok || !active {
		return store.Account{}, ErrInvalidCredentials
	}
	return acct, nil
}

// Audit reasons of failed logins: a wrong password or unknown name, and a
// wrong or replayed one-time code.
const (
	reasonInvalid = "invalid_credentials"
	reasonTOTP    = "totp_invalid"
)

// loginEntry is the audit entry of a login attempt on accountID; "" (an
// unknown name, or one never looked up) is the anonymous actor.
func loginEntry(accountID, outcome, reason string) audit.Entry {
	actor := &audit.Actor{ID: audit.ActorAnonymous, Kind: audit.ActorAnonymous}
	if accountID != "" {
		actor = &audit.Actor{ID: accountID, Kind: audit.ActorUser}
	}
	return audit.Entry{Action: "login", Outcome: outcome, Reason: reason, Actor: actor}
}

// refuse records a refused attempt that changes no state and returns
// ErrInvalidCredentials, or the audit error when it cannot be recorded.
// The record goes through the queue (Submit): a flood of bad attempts is
// committed in batches, and a full queue still refuses.
func (l *PasswordLogin) refuse(ctx context.Context, e audit.Entry) error {
	if err := l.rec.Submit(ctx, e); err != nil {
		return fmt.Errorf("login: %w", err)
	}
	return ErrInvalidCredentials
}

// recordLockout records, in tx, a lock that a failed attempt put on the
// account ("login.lockout", reason temporary or permanent).
func (l *PasswordLogin) recordLockout(ctx context.Context, tx store.Tx, accountID string, ev bruteforce.Event) error {
	var reason string
	switch ev.Kind {
	case bruteforce.EventAccountLocked:
		reason = "temporary"
	case bruteforce.EventAccountLockedPermanently:
		reason = "permanent"
	default:
		return nil // the failure itself is the login record
	}
	return l.rec.Record(ctx, tx, audit.Entry{
		Action: "login.lockout", Target: audit.Target{Kind: TargetAccount}, TargetSubject: accountID,
		Reason: reason, Actor: &audit.Actor{ID: accountID, Kind: audit.ActorUser},
	})
}

func toBF(s store.LoginState) bruteforce.State {
	return bruteforce.State{Failures: s.Failures, Lockouts: s.Lockouts, LockedUntil: s.LockedUntil, Permanent: s.Permanent, LastFailure: s.LastFailure}
}

func fromBF(s bruteforce.State) store.LoginState {
	return store.LoginState{Failures: s.Failures, Lockouts: s.Lockouts, LockedUntil: s.LockedUntil, Permanent: s.Permanent, LastFailure: s.LastFailure}
}
