package identity

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"time"

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

// LoginEvent is a brute-force protection event for the audit log. It names
// the account by id (empty for an unknown user name), never by name.
type LoginEvent struct {
	bruteforce.Event
	AccountID string
	Time      time.Time
}

// EventSink receives login events. The audit subsystem implements it.
type EventSink interface {
	RecordLogin(ctx context.Context, e LoginEvent) error
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
	events  EventSink
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
	Events     EventSink
	// Sealer opens TOTP secrets; required once any account has one.
	Sealer *secrets.Sealer
	Now    func() time.Time
}

// NewPasswordLogin validates o and prepares the dummy hash.
func NewPasswordLogin(st store.Store, o LoginOptions) (*PasswordLogin, error) {
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
		timing: o.BruteForce.Timing, events: o.Events, sealer: o.Sealer, hasher: o.Hasher, now: o.Now, dummy: dummy,
	}, nil
}

// Verify returns the account when name and pw are right and the account is
// not locked. Otherwise it returns ErrInvalidCredentials, a
// *RateLimitedError, bruteforce.ErrBusy or a technical error. Accounts with
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
// code counts as a failed attempt, exactly like a wrong password.
func (l *PasswordLogin) Login(ctx context.Context, c Credentials, source netip.Addr) (acct store.Account, err error) {
	name, pw := c.Name, c.Password
	start := l.now()
	if ok, retry := l.sources.Allow(source, start); !ok {
		return store.Account{}, &RateLimitedError{RetryAfter: retry}
	}
	if len(pw) > 4*password.MaxLength || len(name) > 256 || len(c.OTP) > 16 {
		return store.Account{}, ErrInvalidCredentials // oversized: no hashing, says nothing about accounts
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
		l.record(ctx, LoginEvent{Event: bruteforce.Event{Kind: bruteforce.EventLoginFailed}, Time: start})
		return store.Account{}, ErrInvalidCredentials
	case err != nil:
		return store.Account{}, fmt.Errorf("login: %w", err)
	}
	if !l.lockout.Check(toBF(state), start).Allowed {
		_, _ = l.hasher.Verify(ctx, pw, l.dummy)
		l.record(ctx, LoginEvent{Event: bruteforce.Event{Kind: bruteforce.EventLoginFailed, Failures: state.Failures, Lockouts: state.Lockouts}, AccountID: acct.ID, Time: start})
		return store.Account{}, ErrInvalidCredentials
	}
	ok, err := l.hasher.Verify(ctx, pw, acct.PasswordHash)
	if err != nil {
		return store.Account{}, fmt.Errorf("login: account %s: %w", acct.ID, err)
	}
	var otpStep int64
	if ok && acct.TOTPSecret != nil {
		if c.OTP == "" {
			return store.Account{}, ErrSecondFactorRequired
		}
		if otpStep, err = l.checkOTP(acct, c.OTP, start); err != nil {
			return store.Account{}, err
		}
		ok = otpStep > 0
	}
	var rehash string
	if ok && password.NeedsRehash(acct.PasswordHash, l.params) {
		if rehash, err = l.hasher.Hash(ctx, pw, l.params); err != nil {
			return store.Account{}, err
		}
	}

	var events []bruteforce.Event
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
		var next bruteforce.State
		if ok {
			next = l.lockout.Succeed(toBF(cur), start)
		} else {
			next, events = l.lockout.Fail(toBF(cur), start)
		}
		return tx.Accounts().SetLoginState(ctx, acct.ID, fromBF(next))
	})
	if err != nil {
		return store.Account{}, fmt.Errorf("login: record outcome: %w", err)
	}
	for _, e := range events {
		l.record(ctx, LoginEvent{Event: e, AccountID: acct.ID, Time: start})
	}
	if !ok {
		return store.Account{}, ErrInvalidCredentials
	}
	return acct, nil
}

// record hands e to the sink. Until the audit subsystem makes this
// fail-closed and transactional, a sink error is dropped.
func (l *PasswordLogin) record(ctx context.Context, e LoginEvent) {
	if l.events != nil {
		_ = l.events.RecordLogin(ctx, e)
	}
}

func toBF(s store.LoginState) bruteforce.State {
	return bruteforce.State{Failures: s.Failures, Lockouts: s.Lockouts, LockedUntil: s.LockedUntil, Permanent: s.Permanent, LastFailure: s.LastFailure}
}

func fromBF(s bruteforce.State) store.LoginState {
	return store.LoginState{Failures: s.Failures, Lockouts: s.Lockouts, LockedUntil: s.LockedUntil, Permanent: s.Permanent, LastFailure: s.LastFailure}
}

// LogEvents is the EventSink used until the tamper-evident audit log
// exists: one structured log line per event, naming the account by id
// only (never by name, nor the client address).
type LogEvents struct{ Logger *slog.Logger }

// RecordLogin implements EventSink.
func (l LogEvents) RecordLogin(ctx context.Context, e LoginEvent) error {
	level := slog.LevelInfo
	if e.Kind != bruteforce.EventLoginFailed {
		level = slog.LevelWarn
	}
	l.Logger.LogAttrs(ctx, level, "identity event", slog.String("event", string(e.Kind)),
		slog.String("account", e.AccountID), slog.Int("failures", e.Failures), slog.Int("lockouts", e.Lockouts))
	return nil
}
