package provider_test

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/rampart-ml/rampart/internal/identity"
	"github.com/rampart-ml/rampart/internal/identity/bruteforce"
	"github.com/rampart-ml/rampart/internal/identity/identitytest"
	"github.com/rampart-ml/rampart/internal/identity/password"
	"github.com/rampart-ml/rampart/internal/store"
	"github.com/rampart-ml/rampart/internal/store/sqlite"
)

// TestPasswordGuessingFromOneAddress sends 10,000 wrong passwords at 100
// accounts from one address, through identity.PasswordLogin (what the
// login page, the device page and POST /api/v1/login call) with the
// default brute-force settings and a fake clock: the attack runs over
// 1,000 simulated seconds, in a few real ones.
//
// The source limit (20 at once, one more per second) refuses most
// attempts, and the ones it lets through still lock every account.
func TestPasswordGuessingFromOneAddress(t *testing.T) {
	t.Parallel()
	const (
		accounts   = 100
		perAccount = 100
		step       = 101 * time.Millisecond // about 10 attempts a second
	)
	orders := []struct {
		name   string
		target func(i int) int
	}{
		// A dictionary against each account in turn.
		{"account by account", func(i int) int { return i / perAccount }},
		// Password spraying: one guess per account per round.
		{"spraying", func(i int) int { return i % accounts }},
	}
	for n, o := range orders {
		t.Run(o.name, func(t *testing.T) {
			if raceEnabled && n > 0 {
				// Single-goroutine, so the race detector adds nothing but
				// ten times the run time (SQLite is instrumented Go too).
				t.Skip("one order is enough under the race detector")
			}
			t.Parallel()
			ctx := context.Background()
			st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "db"))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = st.Close() })
			// One hash for all: each verification still costs an argon2id run.
			hash, err := password.Hash(userPassword, guessParams)
			if err != nil {
				t.Fatal(err)
			}
			start := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
			ids := make([]string, accounts+1)
			err = st.InTx(ctx, func(tx store.Tx) error {
				for i := range ids {
					ids[i] = fmt.Sprintf("acct-%03d", i)
					a := store.Account{ID: ids[i], Name: fmt.Sprintf("user%03d", i), PasswordHash: hash, CreatedAt: start}
					if err := tx.Accounts().CreateAccount(ctx, a); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			now := start
			bf := bruteforce.DefaultConfig()
			bf.Timing.Min = 0
			login, err := identity.NewPasswordLogin(st, identity.LoginOptions{
				Params: guessParams, BruteForce: bf, Now: func() time.Time { return now },
				Recorder: identitytest.NewRecorder(t, st, nil),
			})
			if err != nil {
				t.Fatal(err)
			}

			attacker := netip.MustParseAddr("203.0.113.7")
			var limited, refused int
			for i := range accounts * perAccount {
				name := fmt.Sprintf("user%03d", o.target(i))
				_, err := login.Login(ctx, identity.Credentials{Name: name, Password: fmt.Sprintf("guess %d", i)}, attacker)
				var rl *identity.RateLimitedError
				switch {
				case errors.As(err, &rl):
					limited++
					if rl.RetryAfter <= 0 {
						t.Fatalf("attempt %d: rate limited with RetryAfter %v", i, rl.RetryAfter)
					}
				case errors.Is(err, identity.ErrInvalidCredentials):
					refused++
				case err == nil:
					t.Fatalf("attempt %d: a wrong password logged in", i)
				default:
					t.Fatalf("attempt %d: %v", i, err)
				}
				now = now.Add(step)
			}
			total := accounts * perAccount
			// 20 at once, then one per simulated second.
			maxAllowed := bf.Source.Burst + int(time.Duration(total)*step/bf.Source.Refill) + 1
			if refused > maxAllowed || limited < total-maxAllowed {
				t.Errorf("%d attempts reached password checking and %d were rate limited; want at most %d through", refused, limited, maxAllowed)
			}
			t.Logf("%d of %d attempts rate limited, %d checked", limited, total, refused)

			var unlocked []string
			err = st.InTx(ctx, func(tx store.Tx) error {
				for _, id := range ids[:accounts] {
					s, err := tx.Accounts().LoginState(ctx, id)
					if err != nil {
						return err
					}
					if s.Lockouts == 0 && !s.Permanent {
						unlocked = append(unlocked, fmt.Sprintf("%s (%d failures)", id, s.Failures))
					}
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if len(unlocked) > 0 {
				t.Errorf("%d of %d targeted accounts were never locked: %v", len(unlocked), accounts, unlocked)
			}

			// The attacker's address is still limited (its bucket is
			// empty: two attempts at once cannot both pass); another
			// address is not, and an untargeted account logs in from it.
			var rl *identity.RateLimitedError
			_, err1 := login.Login(ctx, identity.Credentials{Name: "user100", Password: userPassword}, attacker)
			_, err2 := login.Login(ctx, identity.Credentials{Name: "user100", Password: userPassword}, attacker)
			if !errors.As(err1, &rl) && !errors.As(err2, &rl) {
				t.Errorf("attacker's next attempts: %v, %v; want rate limited", err1, err2)
			}
			other := netip.MustParseAddr("198.51.100.1")
			if _, err := login.Login(ctx, identity.Credentials{Name: "user100", Password: userPassword}, other); err != nil {
				t.Errorf("untargeted account from another address: %v", err)
			}
		})
	}
}

// guessParams are apptest.FastHashing's argon2id parameters; under the
// race detector, whose instrumentation makes argon2 about ten times
// slower, the cheaper ones the identity package's own tests use. Hash
// cost does not change what the brute-force defences decide.
var guessParams = func() password.Params {
	if raceEnabled {
		return password.Params{MemoryKiB: 64, Time: 1, Threads: 1}
	}
	return fastParams
}()
