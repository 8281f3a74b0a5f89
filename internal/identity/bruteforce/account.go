package bruteforce

import (
	"errors"
	"fmt"
	"time"
)

// Policy configures per-account lockout. The zero value is not usable; start
// from [DefaultPolicy].
//
// After MaxFailures failures (none more than ResetAfter apart) the account is
// locked for BaseLockout. Once that lock expires, each further MaxFailures
// failures lock it again for twice as long as the previous lock, up to
// MaxLockout. After PermanentAfter temporary lockouts, the next lockout is
// permanent and only [Unlock] (an administrator) lifts it.
type Policy struct {
	// MaxFailures is the number of failures that triggers a lockout.
	MaxFailures int
	// BaseLockout is the duration of the first temporary lockout.
	BaseLockout time.Duration
	// MaxLockout caps the duration of a temporary lockout; each lockout
	// doubles the previous one until it reaches the cap.
	MaxLockout time.Duration
	// ResetAfter is how long an account must see no failure before its
	// failure and lockout counters reset. It never lifts a permanent lock.
	ResetAfter time.Duration
	// PermanentAfter is the number of temporary lockouts after which the
	// next lockout is permanent. 0 means never lock permanently.
	PermanentAfter int
}

// DefaultPolicy returns the secure defaults: lock after 5 failures for 1
// minute, doubling up to 15 minutes, counters reset after 12 hours without a
// failure, permanent lock after 10 temporary ones.
func DefaultPolicy() Policy {
	return Policy{
		MaxFailures:    5,
		BaseLockout:    time.Minute,
		MaxLockout:     15 * time.Minute,
		ResetAfter:     12 * time.Hour,
		PermanentAfter: 10,
	}
}

// Validate reports every problem with p at once.
func (p Policy) Validate() error {
	var errs []error
	if p.MaxFailures < 1 {
		errs = append(errs, fmt.Errorf("MaxFailures is %d, must be at least 1", p.MaxFailures))
	}
	if p.BaseLockout <= 0 {
		errs = append(errs, fmt.Errorf("BaseLockout is %v, must be positive", p.BaseLockout))
	}
	if p.MaxLockout < p.BaseLockout {
		errs = append(errs, fmt.Errorf("MaxLockout (%v) must not be less than BaseLockout (%v)", p.MaxLockout, p.BaseLockout))
	}
	if p.ResetAfter <= 0 {
		errs = append(errs, fmt.Errorf("ResetAfter is %v, must be positive", p.ResetAfter))
	} else if p.ResetAfter <= p.MaxLockout {
		// Otherwise the counters reset while the account is still locked and
		// lockouts never escalate.
		errs = append(errs, fmt.Errorf("ResetAfter (%v) must be longer than MaxLockout (%v), or lockouts never escalate", p.ResetAfter, p.MaxLockout))
	}
	if p.PermanentAfter < 0 {
		errs = append(errs, fmt.Errorf("PermanentAfter is %d, must be 0 (never) or positive", p.PermanentAfter))
	}
	return errors.Join(errs...)
}

// effective returns p with every field that Validate would reject replaced by
// its default, so that an unvalidated Policy fails safe instead of open or
// dividing by zero.
func (p Policy) effective() Policy {
	d := DefaultPolicy()
	if p.MaxFailures < 1 {
		p.MaxFailures = d.MaxFailures
	}
	if p.BaseLockout <= 0 {
		p.BaseLockout = d.BaseLockout
	}
	if p.MaxLockout < p.BaseLockout {
		p.MaxLockout = p.BaseLockout
	}
	if p.ResetAfter <= p.MaxLockout {
		p.ResetAfter = max(d.ResetAfter, 2*p.MaxLockout)
	}
	if p.PermanentAfter < 0 {
		p.PermanentAfter = d.PermanentAfter
	}
	return p
}

// State is the lockout state of one account. The caller persists it with the
// account and passes it back unchanged; the zero value is a fresh account.
// Counters reset lazily: a State whose LastFailure is older than ResetAfter is
// treated as fresh by the next [Policy.Fail].
type State struct {
	// Failures counts failed attempts since the last reset; it is cumulative
	// across temporary lockouts.
	Failures int
	// Lockouts counts temporary lockouts since the last reset.
	Lockouts int
	// LockedUntil is the end of the current temporary lockout, if any.
	LockedUntil time.Time
	// Permanent means locked until [Unlock].
	Permanent bool
	// LastFailure is the time of the last counted failure.
	LastFailure time.Time
}

// Reasons a [Decision] refuses an attempt.
const (
	ReasonLocked            = "account_locked"
	ReasonLockedPermanently = "account_locked_permanently"
)

// Decision says whether a login attempt may proceed to password
// verification. RetryAfter and Reason are for logs and audit, not for the
// client (see the package documentation).
type Decision struct {
	Allowed bool
	// RetryAfter is how long until a temporary lockout ends; 0 when allowed
	// or locked permanently.
	RetryAfter time.Duration
	// Reason is empty when allowed, otherwise ReasonLocked or
	// ReasonLockedPermanently.
	Reason string
}

// EventKind names something the audit log should record.
type EventKind string

// Event kinds returned by [Policy.Fail] and [Unlock].
const (
	EventLoginFailed              EventKind = "login_failed"
	EventAccountLocked            EventKind = "account_locked"
	EventAccountLockedPermanently EventKind = "account_locked_permanently"
	EventAccountUnlocked          EventKind = "account_unlocked"
)

// Event is a lockout state change for the audit log. It carries no user
// identity and no time of its own: the caller knows both.
type Event struct {
	Kind EventKind
	// Failures and Lockouts are the counters after the change (before it,
	// for EventAccountUnlocked).
	Failures int
	Lockouts int
	// Until is the end of the lockout, for EventAccountLocked.
	Until time.Time
	// Permanent is whether the account was permanently locked, for
	// EventAccountUnlocked.
	Permanent bool
}

// Check reports whether an attempt on an account in state s may proceed to
// password verification at time now. It does not change the state and does
// not allocate.
func (p Policy) Check(s State, now time.Time) Decision {
	switch {
	case s.Permanent:
		return Decision{Reason: ReasonLockedPermanently}
	case now.Before(s.LockedUntil):
		return Decision{RetryAfter: s.LockedUntil.Sub(now), Reason: ReasonLocked}
	}
	return Decision{Allowed: true}
}

// Fail records a failed attempt at time now and returns the new state and the
// events to audit.
//
// A failure while the account is locked (which a caller that obeys Check
// sees only when two attempts race) is reported but changes nothing: it
// neither counts towards the next lockout nor extends the current one, so an
// attacker cannot keep a victim locked out by continuing to guess. Keycloak
// behaves the same way.
func (p Policy) Fail(s State, now time.Time) (State, []Event) {
	p = p.effective()
	if s.Permanent || now.Before(s.LockedUntil) {
		return s, []Event{{Kind: EventLoginFailed, Failures: s.Failures, Lockouts: s.Lockouts}}
	}
	s = p.reset(s, now)
	s.Failures++
	s.LastFailure = now
	failed := Event{Kind: EventLoginFailed, Failures: s.Failures, Lockouts: s.Lockouts}
	if s.Failures < (s.Lockouts+1)*p.MaxFailures {
		return s, []Event{failed}
	}
	if p.PermanentAfter > 0 && s.Lockouts >= p.PermanentAfter {
		s.Permanent = true
		s.LockedUntil = time.Time{}
		return s, []Event{failed, {Kind: EventAccountLockedPermanently, Failures: s.Failures, Lockouts: s.Lockouts}}
	}
	s.Lockouts++
	s.LockedUntil = now.Add(p.lockout(s.Lockouts))
	return s, []Event{failed, {Kind: EventAccountLocked, Failures: s.Failures, Lockouts: s.Lockouts, Until: s.LockedUntil}}
}

// Succeed records a successful login at time now and returns the new state:
// a fresh one. It never lifts a lock: a State that Check refuses is returned
// unchanged, because a correct password must not be verified, let alone
// rewarded, while the account is locked.
func (p Policy) Succeed(s State, now time.Time) State {
	if s.Permanent || now.Before(s.LockedUntil) {
		return s
	}
	return State{}
}

// Unlock is the administrator's unlock: it clears every counter and lock,
// permanent ones included, and returns the event to audit.
func Unlock(s State) (State, []Event) {
	return State{}, []Event{{Kind: EventAccountUnlocked, Failures: s.Failures, Lockouts: s.Lockouts, Permanent: s.Permanent}}
}

// reset clears the counters of an unlocked s whose last failure is at least
// ResetAfter before now. A clock that went backwards resets nothing.
func (p Policy) reset(s State, now time.Time) State {
	if s.Failures < 0 || s.Lockouts < 0 { // damaged state: start over
		s.Failures, s.Lockouts = 0, 0
	}
	if !s.LastFailure.IsZero() && now.Sub(s.LastFailure) >= p.ResetAfter {
		s.Failures, s.Lockouts = 0, 0
		s.LockedUntil = time.Time{}
	}
	return s
}

// lockout returns the duration of the n-th temporary lockout (n >= 1):
// BaseLockout doubled n-1 times, capped at MaxLockout, without overflow.
func (p Policy) lockout(n int) time.Duration {
	d := p.BaseLockout
	for i := 1; i < n && d < p.MaxLockout; i++ {
		if d > p.MaxLockout/2 {
			return p.MaxLockout
		}
		d *= 2
	}
	return min(d, p.MaxLockout)
}
