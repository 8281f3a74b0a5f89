package bruteforce

import (
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var t0 = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)

// joined returns the individual errors of an errors.Join result.
func joined(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

func TestPolicyValidate(t *testing.T) {
	t.Parallel()
	ok := DefaultPolicy()
	tests := []struct {
		name   string
		modify func(*Policy)
		want   []string // one field name per expected problem
	}{
		{"default", func(*Policy) {}, nil},
		{"never permanent", func(p *Policy) { p.PermanentAfter = 0 }, nil},
		{"equal lockouts", func(p *Policy) { p.MaxLockout = p.BaseLockout }, nil},
		{"zero max failures", func(p *Policy) { p.MaxFailures = 0 }, []string{"MaxFailures"}},
		{"negative base", func(p *Policy) { p.BaseLockout = -time.Second }, []string{"BaseLockout"}},
		{"max below base", func(p *Policy) { p.MaxLockout = 30 * time.Second }, []string{"MaxLockout"}},
		{"reset not above max lockout", func(p *Policy) { p.ResetAfter = p.MaxLockout }, []string{"ResetAfter"}},
		{"negative permanent", func(p *Policy) { p.PermanentAfter = -1 }, []string{"PermanentAfter"}},
		{"zero value", func(p *Policy) { *p = Policy{} }, []string{"MaxFailures", "BaseLockout", "ResetAfter"}},
		{"everything wrong", func(p *Policy) {
			*p = Policy{MaxFailures: -3, BaseLockout: time.Hour, MaxLockout: time.Minute, ResetAfter: -time.Hour, PermanentAfter: -2}
		}, []string{"MaxFailures", "MaxLockout", "ResetAfter", "PermanentAfter"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := ok
			tt.modify(&p)
			errs := joined(p.Validate())
			if len(errs) != len(tt.want) {
				t.Fatalf("Validate() = %v, want %d problems (%v)", errs, len(tt.want), tt.want)
			}
			for i, field := range tt.want {
				if !strings.Contains(errs[i].Error(), field) {
					t.Errorf("problem %d = %q, want it to name %s", i, errs[i], field)
				}
			}
		})
	}
}

func TestCheck(t *testing.T) {
	t.Parallel()
	p := DefaultPolicy()
	tests := []struct {
		name string
		s    State
		now  time.Time
		want Decision
	}{
		{"fresh", State{}, t0, Decision{Allowed: true}},
		{"failures below limit", State{Failures: 4, LastFailure: t0}, t0, Decision{Allowed: true}},
		{"locked", State{Failures: 5, Lockouts: 1, LockedUntil: t0.Add(time.Minute)}, t0.Add(20 * time.Second),
			Decision{RetryAfter: 40 * time.Second, Reason: ReasonLocked}},
		{"last nanosecond of lock", State{LockedUntil: t0}, t0.Add(-time.Nanosecond),
			Decision{RetryAfter: time.Nanosecond, Reason: ReasonLocked}},
		{"lock expired", State{Failures: 5, Lockouts: 1, LockedUntil: t0}, t0, Decision{Allowed: true}},
		{"permanent", State{Permanent: true}, t0, Decision{Reason: ReasonLockedPermanently}},
		{"permanent outlives everything", State{Permanent: true, LastFailure: t0}, t0.AddDate(10, 0, 0), Decision{Reason: ReasonLockedPermanently}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if diff := cmp.Diff(tt.want, p.Check(tt.s, tt.now)); diff != "" {
				t.Errorf("Check() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// failN records n failures one second apart starting at now and returns the
// state, the time of the last failure and the events of the last failure.
func failN(t *testing.T, p Policy, s State, now time.Time, n int) (State, time.Time, []Event) {
	t.Helper()
	var ev []Event
	for i := range n {
		if i > 0 {
			now = now.Add(time.Second)
		}
		if d := p.Check(s, now); !d.Allowed {
			t.Fatalf("failure %d of %d at %v: Check() = %+v, want allowed", i+1, n, now, d)
		}
		s, ev = p.Fail(s, now)
	}
	return s, now, ev
}

func TestEscalation(t *testing.T) {
	t.Parallel()
	p := DefaultPolicy()
	want := []time.Duration{1, 2, 4, 8, 15, 15, 15, 15, 15, 15} // minutes; 10 = PermanentAfter
	var s State
	now := t0
	for i, minutes := range want {
		lockout := i + 1
		var ev []Event
		s, now, ev = failN(t, p, s, now, p.MaxFailures)
		until := now.Add(minutes * time.Minute)
		wantEv := []Event{
			{Kind: EventLoginFailed, Failures: lockout * 5, Lockouts: lockout - 1},
			{Kind: EventAccountLocked, Failures: lockout * 5, Lockouts: lockout, Until: until},
		}
		if diff := cmp.Diff(wantEv, ev); diff != "" {
			t.Fatalf("lockout %d: events mismatch (-want +got):\n%s", lockout, diff)
		}
		if d := p.Check(s, now); d.Allowed || d.RetryAfter != minutes*time.Minute || d.Reason != ReasonLocked {
			t.Fatalf("lockout %d: Check() right after = %+v, want locked for %dm", lockout, d, minutes)
		}
		if d := p.Check(s, until.Add(-time.Nanosecond)); d.Allowed {
			t.Fatalf("lockout %d: allowed 1ns before the lock ends", lockout)
		}
		now = until // the lock ends exactly now
	}

	// The lockout after PermanentAfter temporary ones is permanent.
	s, now, ev := failN(t, p, s, now, p.MaxFailures)
	wantEv := []Event{
		{Kind: EventLoginFailed, Failures: 55, Lockouts: 10},
		{Kind: EventAccountLockedPermanently, Failures: 55, Lockouts: 10},
	}
	if diff := cmp.Diff(wantEv, ev); diff != "" {
		t.Fatalf("permanent lock: events mismatch (-want +got):\n%s", diff)
	}
	if !s.Permanent {
		t.Fatalf("state after permanent lock = %+v, want Permanent", s)
	}
	later := now.Add(365 * 24 * time.Hour) // long after ResetAfter
	if d := p.Check(s, later); d != (Decision{Reason: ReasonLockedPermanently}) {
		t.Fatalf("Check() a year later = %+v, want permanently locked", d)
	}
	if got, _ := p.Fail(s, later); got != s {
		t.Errorf("Fail() while permanent changed the state: %+v -> %+v", s, got)
	}
	if got := p.Succeed(s, later); got != s {
		t.Errorf("Succeed() while permanent changed the state: %+v -> %+v", s, got)
	}

	s, ev = Unlock(s)
	if diff := cmp.Diff([]Event{{Kind: EventAccountUnlocked, Failures: 55, Lockouts: 10, Permanent: true}}, ev); diff != "" {
		t.Errorf("Unlock() events mismatch (-want +got):\n%s", diff)
	}
	if s != (State{}) {
		t.Errorf("Unlock() = %+v, want a fresh state", s)
	}
	if d := p.Check(s, later); !d.Allowed {
		t.Errorf("Check() after Unlock = %+v, want allowed", d)
	}
	// And the escalation starts again from the beginning.
	_, last, ev := failN(t, p, s, later, p.MaxFailures)
	if got, want := ev[len(ev)-1].Until, last.Add(time.Minute); !got.Equal(want) {
		t.Errorf("first lockout after Unlock until %v, want %v", got, want)
	}
}

func TestNeverPermanent(t *testing.T) {
	t.Parallel()
	p := DefaultPolicy()
	p.PermanentAfter = 0
	s := State{Failures: 1000 * 5, Lockouts: 1000, LastFailure: t0}
	s, now, ev := failN(t, p, s, t0.Add(time.Hour), 5)
	if s.Permanent {
		t.Fatal("locked permanently with PermanentAfter = 0")
	}
	if got, want := ev[len(ev)-1], (Event{Kind: EventAccountLocked, Failures: 5005, Lockouts: 1001, Until: now.Add(15 * time.Minute)}); got != want {
		t.Errorf("lockout 1001 = %+v, want %+v (capped, no overflow)", got, want)
	}
}

func TestLockoutDurationNoOverflow(t *testing.T) {
	t.Parallel()
	p := Policy{MaxFailures: 1, BaseLockout: time.Nanosecond, MaxLockout: 1<<63 - 1, ResetAfter: 1<<63 - 1}
	prev := time.Duration(0)
	for n := 1; n < 200; n++ {
		d := p.lockout(n)
		if d < prev || d <= 0 {
			t.Fatalf("lockout(%d) = %v after %v: not monotonic or overflowed", n, d, prev)
		}
		prev = d
	}
	if prev != p.MaxLockout {
		t.Errorf("lockout(199) = %v, want the cap %v", prev, p.MaxLockout)
	}
}

func TestFailDuringLockoutDoesNotExtend(t *testing.T) {
	t.Parallel()
	p := DefaultPolicy()
	s, now, _ := failN(t, p, State{}, t0, 5)
	locked := s
	for i := range 100 {
		now = now.Add(100 * time.Millisecond)
		var ev []Event
		s, ev = p.Fail(s, now) // as if attempts raced past Check
		if s != locked {
			t.Fatalf("Fail() %d during lockout changed the state: %+v -> %+v", i, locked, s)
		}
		if diff := cmp.Diff([]Event{{Kind: EventLoginFailed, Failures: 5, Lockouts: 1}}, ev); diff != "" {
			t.Fatalf("Fail() during lockout events mismatch (-want +got):\n%s", diff)
		}
	}
	if d := p.Check(s, locked.LockedUntil); !d.Allowed {
		t.Errorf("Check() at the original LockedUntil = %+v, want allowed", d)
	}
}

func TestResetAfterIdle(t *testing.T) {
	t.Parallel()
	p := DefaultPolicy()
	tests := []struct {
		name string
		// prior failures before the idle gap; 5 means one lockout has happened.
		prior        int
		idle         time.Duration
		wantFailures int // after one more failure
		wantLockouts int
	}{
		{"just under ResetAfter keeps the count", 4, 12*time.Hour - time.Nanosecond, 5, 1},
		{"ResetAfter resets the count", 4, 12 * time.Hour, 1, 0},
		{"ResetAfter resets lockouts", 5, 12 * time.Hour, 1, 0},
		{"lockouts survive shorter gaps", 5, 11 * time.Hour, 6, 1},
		{"clock going backwards resets nothing", 4, -time.Hour, 5, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, last, _ := failN(t, p, State{}, t0, tt.prior)
			now := last.Add(tt.idle)
			s, _ = p.Fail(s, now)
			if s.Failures != tt.wantFailures || s.Lockouts != tt.wantLockouts {
				t.Errorf("after idle %v: Failures, Lockouts = %d, %d, want %d, %d", tt.idle, s.Failures, s.Lockouts, tt.wantFailures, tt.wantLockouts)
			}
		})
	}

	// After a reset the next lockout is the first again (BaseLockout), not
	// a doubled one.
	var s State
	now := t0
	for range 3 { // three lockouts: 1m, 2m, 4m
		s, _, _ = failN(t, p, s, now, 5)
		now = s.LockedUntil
	}
	if s.Lockouts != 3 {
		t.Fatalf("Lockouts = %d, want 3", s.Lockouts)
	}
	s, now, ev := failN(t, p, s, s.LastFailure.Add(12*time.Hour), 5)
	if got, want := ev[len(ev)-1], (Event{Kind: EventAccountLocked, Failures: 5, Lockouts: 1, Until: now.Add(time.Minute)}); got != want {
		t.Errorf("lockout after reset = %+v, want %+v", got, want)
	}
}

func TestResetNeverLiftsPermanent(t *testing.T) {
	t.Parallel()
	p := DefaultPolicy()
	s := State{Failures: 55, Lockouts: 10, Permanent: true, LastFailure: t0}
	now := t0.Add(100 * 24 * time.Hour)
	s2, _ := p.Fail(s, now)
	if !s2.Permanent || p.Check(s2, now).Allowed {
		t.Errorf("permanent lock lifted by idle time: %+v", s2)
	}
}

func TestSucceed(t *testing.T) {
	t.Parallel()
	p := DefaultPolicy()
	tests := []struct {
		name string
		s    State
		now  time.Time
		want State
	}{
		{"fresh", State{}, t0, State{}},
		{"resets failures", State{Failures: 4, LastFailure: t0}, t0.Add(time.Second), State{}},
		{"resets lockouts after expiry", State{Failures: 12, Lockouts: 2, LockedUntil: t0, LastFailure: t0.Add(-2 * time.Minute)}, t0, State{}},
		{"no-op during temporary lock",
			State{Failures: 5, Lockouts: 1, LockedUntil: t0.Add(time.Minute), LastFailure: t0}, t0,
			State{Failures: 5, Lockouts: 1, LockedUntil: t0.Add(time.Minute), LastFailure: t0}},
		{"no-op when permanent",
			State{Failures: 55, Lockouts: 10, Permanent: true, LastFailure: t0}, t0.Add(time.Hour),
			State{Failures: 55, Lockouts: 10, Permanent: true, LastFailure: t0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if diff := cmp.Diff(tt.want, p.Succeed(tt.s, tt.now)); diff != "" {
				t.Errorf("Succeed() mismatch (-want +got):\n%s", diff)
			}
		})
	}

	// A success in the middle of a run of failures starts the count again.
	s, now, _ := failN(t, p, State{}, t0, 4)
	s = p.Succeed(s, now)
	s, _, _ = failN(t, p, s, now.Add(time.Second), 4)
	if d := p.Check(s, now.Add(time.Hour)); !d.Allowed || s.Failures != 4 {
		t.Errorf("after 4 failures, success, 4 failures: state %+v, Check %+v; want 4 failures, allowed", s, d)
	}
}

func TestUnlock(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		s    State
		want Event
	}{
		{"fresh", State{}, Event{Kind: EventAccountUnlocked}},
		{"temporary", State{Failures: 5, Lockouts: 1, LockedUntil: t0, LastFailure: t0}, Event{Kind: EventAccountUnlocked, Failures: 5, Lockouts: 1}},
		{"permanent", State{Failures: 55, Lockouts: 10, Permanent: true, LastFailure: t0}, Event{Kind: EventAccountUnlocked, Failures: 55, Lockouts: 10, Permanent: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, ev := Unlock(tt.s)
			if s != (State{}) {
				t.Errorf("Unlock() state = %+v, want fresh", s)
			}
			if diff := cmp.Diff([]Event{tt.want}, ev); diff != "" {
				t.Errorf("Unlock() events mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// An unvalidated Policy must fail safe: lock, never divide by zero or let
// every attempt through.
func TestInvalidPolicyFailsSafe(t *testing.T) {
	t.Parallel()
	for _, p := range []Policy{{}, {MaxFailures: -1, BaseLockout: -time.Hour, MaxLockout: -time.Hour, ResetAfter: -1, PermanentAfter: -5}} {
		s, now, ev := failN(t, p, State{}, t0, DefaultPolicy().MaxFailures)
		if d := p.Check(s, now); d.Allowed || d.RetryAfter != time.Minute {
			t.Errorf("Policy %+v: after 5 failures Check() = %+v (events %+v), want locked for the default 1m", p, d, ev)
		}
	}
}

// TestProperties drives random sequences of attempts, successes, unlocks and
// clock jumps (backwards included) through the state machine and checks its
// invariants after every step.
func TestProperties(t *testing.T) {
	t.Parallel()
	policies := []Policy{
		DefaultPolicy(),
		{MaxFailures: 1, BaseLockout: time.Second, MaxLockout: time.Second, ResetAfter: time.Minute, PermanentAfter: 0},
		{MaxFailures: 3, BaseLockout: time.Second, MaxLockout: 10 * time.Second, ResetAfter: 30 * time.Second, PermanentAfter: 3},
	}
	steps := 200_000
	if testing.Short() {
		steps = 50_000
	}
	for pi, p := range policies {
		rng := rand.New(rand.NewPCG(uint64(pi), 42))
		var s State
		now := t0
		var locks, permanents int // make sure the walk reaches the interesting states
		for step := range steps {
			// Advance the clock by a random amount on a log-ish scale.
			switch r := rng.IntN(100); {
			case r < 60:
				now = now.Add(time.Duration(rng.Int64N(int64(2 * time.Second))))
			case r < 90:
				now = now.Add(time.Duration(rng.Int64N(int64(20 * time.Minute))))
			case r < 97:
				now = now.Add(time.Duration(rng.Int64N(int64(24 * time.Hour))))
			default:
				now = now.Add(-time.Duration(rng.Int64N(int64(time.Hour))))
			}
			prev := s
			d := p.Check(s, now)
			if d.Allowed && (s.Permanent || now.Before(s.LockedUntil)) {
				t.Fatalf("policy %d step %d: Check(%+v, %v) allowed a locked account", pi, step, s, now)
			}
			if !d.Allowed && !s.Permanent && !now.Before(s.LockedUntil) {
				t.Fatalf("policy %d step %d: Check(%+v, %v) refused an unlocked account", pi, step, s, now)
			}
			wantRetry := time.Duration(0)
			if !d.Allowed && !s.Permanent {
				wantRetry = s.LockedUntil.Sub(now)
			}
			if d.RetryAfter != wantRetry {
				t.Fatalf("policy %d step %d: RetryAfter = %v, want %v", pi, step, d.RetryAfter, wantRetry)
			}
			op := rng.IntN(1000)
			switch {
			case op < 970: // a failed attempt, raced past Check 10% of the time
				if !d.Allowed && op%10 != 0 {
					continue
				}
				var ev []Event
				s, ev = p.Fail(s, now)
				for _, e := range ev {
					switch e.Kind {
					case EventAccountLocked:
						locks++
					case EventAccountLockedPermanently:
						permanents++
					}
				}
				locked := prev.Permanent || now.Before(prev.LockedUntil)
				reset := !prev.LastFailure.IsZero() && now.Sub(prev.LastFailure) >= p.ResetAfter
				switch {
				case locked && s != prev:
					t.Fatalf("policy %d step %d: Fail during lock changed %+v -> %+v", pi, step, prev, s)
				case locked:
				case s.Failures < prev.Failures || s.Lockouts < prev.Lockouts:
					if !reset || s.Failures != 1 {
						t.Fatalf("policy %d step %d: counters decreased without reset: %+v -> %+v at %v", pi, step, prev, s, now)
					}
				case s.Failures != prev.Failures+1 && !reset:
					t.Fatalf("policy %d step %d: Fail counted %d failures: %+v -> %+v", pi, step, s.Failures-prev.Failures, prev, s)
				}
				if prev.Permanent && !s.Permanent {
					t.Fatalf("policy %d step %d: Fail lifted a permanent lock", pi, step)
				}
				if s.LockedUntil.After(prev.LockedUntil) && s.LockedUntil.Sub(now) > p.MaxLockout {
					t.Fatalf("policy %d step %d: lock of %v exceeds MaxLockout", pi, step, s.LockedUntil.Sub(now))
				}
				if p.PermanentAfter > 0 && s.Lockouts > p.PermanentAfter {
					t.Fatalf("policy %d step %d: %d temporary lockouts exceed PermanentAfter", pi, step, s.Lockouts)
				}
			case op < 997: // a success, only when allowed
				if !d.Allowed {
					continue
				}
				s = p.Succeed(s, now)
				if s != (State{}) {
					t.Fatalf("policy %d step %d: Succeed on an unlocked account left %+v", pi, step, s)
				}
			default:
				s, _ = Unlock(s)
			}
		}
		if locks == 0 || (p.PermanentAfter > 0 && permanents == 0) {
			t.Errorf("policy %d: the walk reached %d temporary and %d permanent locks; tune it", pi, locks, permanents)
		}
		t.Logf("policy %d: %d temporary and %d permanent locks", pi, locks, permanents)
	}
}

func TestDefaultConfigValid(t *testing.T) {
	t.Parallel()
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("DefaultConfig().Validate() = %v", err)
	}
	c := Config{Timing: Timing{Min: -1}}
	errs := joined(c.Validate())
	if len(errs) != 4 {
		t.Fatalf("Config{}.Validate() = %v, want 4 problems", errs)
	}
	for i, part := range []string{"account lockout", "source limit", "hash limit", "timing"} {
		if !strings.HasPrefix(errs[i].Error(), part) {
			t.Errorf("problem %d = %q, want prefix %q", i, errs[i], part)
		}
	}
}

func BenchmarkPolicyCheck(b *testing.B) {
	p := DefaultPolicy()
	states := []State{{}, {Failures: 5, Lockouts: 1, LockedUntil: t0.Add(time.Minute)}, {Permanent: true}}
	b.ReportAllocs()
	var allowed int
	for i := 0; b.Loop(); i++ {
		if p.Check(states[i%len(states)], t0).Allowed {
			allowed++
		}
	}
	_ = allowed
}

func BenchmarkPolicyFail(b *testing.B) {
	p := DefaultPolicy()
	b.ReportAllocs()
	now := t0
	var s State
	for b.Loop() {
		now = now.Add(time.Minute)
		s, _ = p.Fail(s, now)
		if s.Permanent {
			s, _ = Unlock(s)
		}
	}
}
