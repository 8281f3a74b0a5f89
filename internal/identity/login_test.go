package identity

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rampart-ml/rampart/internal/identity/bruteforce"
	"github.com/rampart-ml/rampart/internal/identity/password"
	"github.com/rampart-ml/rampart/internal/store"
)

type eventLog struct {
	mu     sync.Mutex
	events []LoginEvent
}

func (l *eventLog) RecordLogin(_ context.Context, e LoginEvent) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, e)
	return nil
}

func (l *eventLog) kinds() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var k []string
	for _, e := range l.events {
		k = append(k, string(e.Kind))
	}
	return strings.Join(k, ",")
}

type loginFixture struct {
	login  *PasswordLogin
	st     store.Store
	events *eventLog
	now    time.Time
	alice  store.Account
}

const alicePassword = "a long and unusual passphrase 7"

func newLoginFixture(t *testing.T, params password.Params) *loginFixture {
	t.Helper()
	f := &loginFixture{st: newStore(t), events: &eventLog{}, now: time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)}
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
	f.login, err = NewPasswordLogin(f.st, LoginOptions{Params: params, BruteForce: cfg, Events: f.events, Now: func() time.Time { return f.now }})
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
	if got := f.events.kinds(); got != "login_failed,login_failed,login_failed" {
		t.Errorf("events = %s", got)
	}
	for _, e := range f.events.events {
		if e.AccountID != "" && e.AccountID != "alice-id" {
			t.Errorf("event names account %q", e.AccountID)
		}
	}
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
	if !strings.HasSuffix(f.events.kinds(), "login_failed,account_locked") {
		t.Fatalf("events = %s", f.events.kinds())
	}
	if err := f.try("alice", alicePassword, "203.0.113.9"); !errors.Is(err, ErrInvalidCredentials) {
		t.Fatalf("right password during lockout: %v, want ErrInvalidCredentials", err)
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
	l, err := NewPasswordLogin(st, LoginOptions{Params: cheap, BruteForce: cfg})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = l.Verify(context.Background(), "nobody", "whatever passphrase", netip.MustParseAddr("192.0.2.1"))
	if !errors.Is(err, ErrInvalidCredentials) || time.Since(start) < 30*time.Millisecond {
		t.Errorf("unknown user answered in %v with %v", time.Since(start), err)
	}
}

func TestLogEvents(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	sink := LogEvents{Logger: slog.New(slog.NewJSONHandler(&buf, nil))}
	err := sink.RecordLogin(context.Background(), LoginEvent{
		Event: bruteforce.Event{Kind: bruteforce.EventAccountLocked, Failures: 5, Lockouts: 1}, AccountID: "acct-1",
	})
	if err != nil {
		t.Fatal(err)
	}
	var line map[string]any
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		t.Fatal(err)
	}
	if line["level"] != "WARN" || line["event"] != "account_locked" || line["account"] != "acct-1" || line["failures"] != 5.0 {
		t.Errorf("log line = %v", line)
	}
}
