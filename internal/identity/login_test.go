package identity

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/pquerna/otp/totp"

	"github.com/rampart-ml/rampart/internal/audit"
	"github.com/rampart-ml/rampart/internal/identity/bruteforce"
	"github.com/rampart-ml/rampart/internal/identity/identitytest"
	"github.com/rampart-ml/rampart/internal/identity/password"
	"github.com/rampart-ml/rampart/internal/store"
)

type loginFixture struct {
	login *PasswordLogin
	st    *identitytest.FailingStore
	rec   *audit.Recorder
	now   time.Time
	alice store.Account
}

const alicePassword = "a long and unusual passphrase 7"

func newLoginFixture(t *testing.T, params password.Params) *loginFixture {
	t.Helper()
	f := &loginFixture{st: identitytest.NewFailingStore(newStore(t)), now: time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)}
	sealer := identitytest.NewSealer(t)
	f.rec = identitytest.NewRecorder(t, f.st, sealer)
	hash, _ := password.Hash(alicePassword, cheap)
	f.alice = store.Account{ID: "alice-id", Name: "alice", PasswordHash: hash, CreatedAt: f.now}
	if err := f.st.InTx(context.Background(), func(tx store.Tx) error {
		return tx.Accounts().CreateAccount(context.Background(), f.alice)
	}); err != nil {
		t.Fatal(err)
	}
	cfg := bruteforce.DefaultConfig()
	cfg.Timing.Min = 0 // timing floor tested separately
	var err error
	f.login, err = NewPasswordLogin(f.st, LoginOptions{Params: params, BruteForce: cfg, Recorder: f.rec, Sealer: sealer,
		Now: func() time.Time { return f.now }})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *loginFixture) try(name, pw string, src string) error {
	_, err := f.login.Verify(context.Background(), name, pw, netip.MustParseAddr(src))
	return err
}

func TestPasswordLogin(t *testing.T) {
	t.Parallel()
	f := newLoginFixture(t, cheap)
	acct, err := f.login.Verify(context.Background(), "alice", alicePassword, netip.MustParseAddr("192.0.2.1"))
	if err != nil || acct.ID != "alice-id" {
		t.Fatalf("right password: %+v, %v", acct, err)
	}
	for _, tc := range []struct{ name, user, pw string }{
		{"wrong password", "alice", "not the passphrase at all"},
		{"unknown user", "mallory", alicePassword},
		{"empty", "", ""},
		{"oversized", "alice", strings.Repeat("x", 5000)},
	} {
		if err := f.try(tc.user, tc.pw, "192.0.2.1"); !errors.Is(err, ErrInvalidCredentials) {
			t.Errorf("%s: %v, want ErrInvalidCredentials", tc.name, err)
		}
	}
	recs := identitytest.Records(t, f.st)
	type rec struct{ Action, ActorKind, Outcome, Reason string }
	var got []rec
	for _, r := range recs {
		got = append(got, rec{r.Action, r.ActorKind, r.Outcome, r.Reason})
	}
	want := []rec{
		{"login", audit.ActorUser, audit.OutcomeSuccess, ""},
		{"login", audit.ActorUser, audit.OutcomeFailure, "invalid_credentials"},
		{"login", audit.ActorAnonymous, audit.OutcomeFailure, "invalid_credentials"},
		{"login", audit.ActorAnonymous, audit.OutcomeFailure, "invalid_credentials"},
		{"login", audit.ActorAnonymous, audit.OutcomeFailure, "invalid_credentials"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("records (-want +got):\n%s", diff)
	}
	if recs[0].Actor != recs[1].Actor {
		t.Error("alice's two attempts have different pseudonyms")
	}
	if id, err := identitytest.Resolve(t, f.st, f.rec, recs[0].Actor); id != "alice-id" || err != nil {
		t.Errorf("Resolve(actor) = %q, %v; want alice-id", id, err)
	}
	identitytest.CheckPrivate(t, recs, "alice", "mallory", alicePassword, "not the passphrase", "192.0.2.1")
}

// Five wrong passwords lock the account: then even the right password gets
// the same answer as a wrong one, until the lockout ends.
func TestLockoutHidesTheRightPassword(t *testing.T) {
	t.Parallel()
	f := newLoginFixture(t, cheap)
	for i := range 5 {
		// Different sources, so only the account lockout can stop this.
		src := netip.AddrFrom4([4]byte{198, 51, 100, byte(i)}).String()
		if err := f.try("alice", "wrong passphrase number x", src); !errors.Is(err, ErrInvalidCredentials) {
			t.Fatal(err)
		}
	}
	recs := identitytest.Records(t, f.st)
	if got := identitytest.Actions(recs); got != "login login login login login login.lockout" {
		t.Fatalf("records: %s", got)
	}
	lock := recs[len(recs)-1]
	if lock.Reason != "temporary" || lock.TargetKind != "account" || lock.TargetID != lock.Actor || !audit.IsPseudonym(lock.TargetID) {
		t.Errorf("lockout record %+v", lock)
	}
	if err := f.try("alice", alicePassword, "203.0.113.9"); !errors.Is(err, ErrInvalidCredentials) {
		t.Fatalf("right password during lockout: %v, want ErrInvalidCredentials", err)
	}
	if r := identitytest.Records(t, f.st); r[len(r)-1].Reason != "locked" || r[len(r)-1].Outcome != audit.OutcomeFailure {
		t.Errorf("attempt during lockout recorded as %+v", r[len(r)-1])
	}
	f.now = f.now.Add(61 * time.Second)
	if err := f.try("alice", alicePassword, "203.0.113.9"); err != nil {
		t.Fatalf("right password after lockout: %v", err)
	}
	var st store.LoginState
	_ = f.st.InTx(context.Background(), func(tx store.Tx) (err error) {
		st, err = tx.Accounts().LoginState(context.Background(), "alice-id")
		return err
	})
	if st.Failures != 0 || !st.LockedUntil.IsZero() && st.LockedUntil.After(f.now) {
		t.Errorf("state after success: %+v", st)
	}
}

// One address spraying many accounts is stopped by its token bucket.
func TestSourceRateLimit(t *testing.T) {
	t.Parallel()
	f := newLoginFixture(t, cheap)
	var limited *RateLimitedError
	for i := range 100 {
		err := f.try("user"+string(rune('a'+i%26)), "some passphrase guess 1", "192.0.2.50")
		if errors.As(err, &limited) {
			if i < 20 {
				t.Fatalf("limited after %d attempts, burst is 20", i)
			}
			if limited.RetryAfter <= 0 {
				t.Errorf("RetryAfter = %v", limited.RetryAfter)
			}
			recs := identitytest.Records(t, f.st)
			if last := recs[len(recs)-1]; last.Outcome != audit.OutcomeDenied || last.Reason != "rate_limited" || last.ActorKind != audit.ActorAnonymous {
				t.Errorf("rate-limited attempt recorded as %+v", last)
			}
			// Another address is unaffected.
			if err := f.try("alice", alicePassword, "192.0.2.51"); err != nil {
				t.Errorf("other source: %v", err)
			}
			return
		}
	}
	t.Fatal("100 attempts from one address were never limited")
}

func TestRehashOnLogin(t *testing.T) {
	t.Parallel()
	stronger := password.Params{MemoryKiB: 128, Time: 1, Threads: 1}
	f := newLoginFixture(t, stronger)
	if err := f.try("alice", alicePassword, "192.0.2.1"); err != nil {
		t.Fatal(err)
	}
	var a store.Account
	_ = f.st.InTx(context.Background(), func(tx store.Tx) (err error) {
		a, err = tx.Accounts().AccountByName(context.Background(), "alice")
		return err
	})
	if password.NeedsRehash(a.PasswordHash, stronger) {
		t.Errorf("hash not upgraded to the configured parameters: %s", a.PasswordHash[:30])
	}
	if err := f.try("alice", alicePassword, "192.0.2.1"); err != nil {
		t.Errorf("login after rehash: %v", err)
	}
}

// The floor applies to every credential answer (a lower bound only; no
// upper bound is asserted, machines are noisy).
func TestTimingFloor(t *testing.T) {
	t.Parallel()
	st := newStore(t)
	cfg := bruteforce.DefaultConfig()
	cfg.Timing.Min = 30 * time.Millisecond
	l, err := NewPasswordLogin(st, LoginOptions{Params: cheap, BruteForce: cfg, Recorder: identitytest.NewRecorder(t, st, nil)})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = l.Verify(context.Background(), "nobody", "whatever passphrase", netip.MustParseAddr("192.0.2.1"))
	if !errors.Is(err, ErrInvalidCredentials) || time.Since(start) < 30*time.Millisecond {
		t.Errorf("unknown user answered in %v with %v", time.Since(start), err)
	}
}

// The records of attempts with a second factor say what was wrong, never
// what was typed; a disabled account's right password is a failure too.
func TestLoginRecordReasons(t *testing.T) {
	t.Parallel()
	f := newLoginFixture(t, cheap)
	secret, _, err := NewTOTPKey("alice")
	if err != nil {
		t.Fatal(err)
	}
	code := func() string {
		c, err := totp.GenerateCodeCustom(secret, f.now, totpOpts)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	wrong := func() string { // a valid-looking code that is not the current one
		c := code()
		return string('0'+(c[0]-'0'+1)%10) + c[1:]
	}
	tests := []struct {
		name       string
		setup      func(a *store.Account)
		creds      Credentials
		wantErr    error
		wantReason string
	}{
		{"no code", f.withTOTP(t, secret), Credentials{Name: "alice", Password: alicePassword}, ErrSecondFactorRequired, "otp_required"},
		{"wrong code", f.withTOTP(t, secret), Credentials{Name: "alice", Password: alicePassword, OTP: wrong()}, ErrInvalidCredentials, "totp_invalid"},
		{"disabled", func(a *store.Account) { a.TOTPSecret, a.Disabled = nil, true }, Credentials{Name: "alice", Password: alicePassword}, ErrInvalidCredentials, "disabled"},
	}
	for _, tt := range tests {
		f.updateAlice(t, tt.setup)
		_, err := f.login.Login(context.Background(), tt.creds, netip.MustParseAddr("192.0.2.1"))
		if !errors.Is(err, tt.wantErr) {
			t.Errorf("%s: %v, want %v", tt.name, err, tt.wantErr)
		}
		recs := identitytest.Records(t, f.st)
		last := recs[len(recs)-1]
		if last.Action != "login" || last.Outcome != audit.OutcomeFailure || last.Reason != tt.wantReason || last.ActorKind != audit.ActorUser {
			t.Errorf("%s: recorded %+v, want a failed login with reason %s", tt.name, last, tt.wantReason)
		}
		identitytest.CheckPrivate(t, recs, "alice", alicePassword, code(), wrong())
	}
}

// withTOTP returns a setup that gives alice the second factor secret.
func (f *loginFixture) withTOTP(t *testing.T, secret string) func(a *store.Account) {
	t.Helper()
	sealed, err := f.login.sealer.Seal([]byte(secret), TOTPSecretAD(f.alice.ID))
	if err != nil {
		t.Fatal(err)
	}
	return func(a *store.Account) { a.TOTPSecret, a.TOTPLastStep = sealed, 0 }
}

func (f *loginFixture) updateAlice(t *testing.T, mod func(a *store.Account)) {
	t.Helper()
	ctx := context.Background()
	err := f.st.InTx(ctx, func(tx store.Tx) error {
		a, err := tx.Accounts().AccountByID(ctx, f.alice.ID)
		if err != nil {
			return err
		}
		mod(&a)
		return tx.Accounts().UpdateAccount(ctx, a)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// No login without its record: while the audit log refuses records, every
// attempt fails with the audit error, the right password as well as a
// wrong one or an unknown name (so the answer says nothing about the
// password), and no failure is counted against the account.
func TestLoginFailsClosed(t *testing.T) {
	t.Parallel()
	f := newLoginFixture(t, cheap)
	f.st.SetFailing(true)
	for _, c := range []Credentials{
		{Name: "alice", Password: alicePassword},
		{Name: "alice", Password: "not the passphrase at all"},
		{Name: "mallory", Password: alicePassword},
	} {
		acct, err := f.login.Login(context.Background(), c, netip.MustParseAddr("192.0.2.1"))
		if !errors.Is(err, audit.ErrWrite) || acct.ID != "" {
			t.Errorf("Login(%s) = %+v, %v; want no account and audit.ErrWrite", c.Name, acct.ID, err)
		}
	}
	f.st.SetFailing(false)
	if recs := identitytest.Records(t, f.st); len(recs) != 0 {
		t.Errorf("records written while the log failed: %s", identitytest.Actions(recs))
	}
	var ls store.LoginState
	_ = f.st.InTx(context.Background(), func(tx store.Tx) (err error) {
		ls, err = tx.Accounts().LoginState(context.Background(), f.alice.ID)
		return err
	})
	if ls.Failures != 0 {
		t.Errorf("login state changed without its record: %+v", ls)
	}
	if err := f.try("alice", alicePassword, "192.0.2.1"); err != nil {
		t.Errorf("login once the log works again: %v", err)
	}
}
