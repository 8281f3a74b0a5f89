package password

import (
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
)

// wantMessages are the complete error texts under DefaultPolicy. They are
// fixed: nothing in them depends on the password.
var wantMessages = map[Rule]string{
	RuleInvalidUTF8:         "password rejected: must be valid UTF-8 text",
	RuleTooLong:             "password rejected: must be at most 256 characters",
	RuleTooShort:            "password rejected: must be at least 15 characters",
	RuleContainsProductName: "password rejected: must not contain the product name",
	RuleContainsUsername:    "password rejected: must not contain the user name",
	RuleContainsEmail:       "password rejected: must not contain the e-mail address or its user part",
	RuleBlocklisted:         "password rejected: is too common: it appears in lists of breached passwords",
	RuleTooGuessable:        "password rejected: is too easy to guess; a longer phrase of unrelated words works well",
}

var (
	alice = User{Name: "alice", Email: "bob.smith+work@example.org"}
	totp  = Policy{MinLength: 8}
)

type checkCase struct {
	name   string
	policy Policy
	pw     string
	user   User
	want   Rule // "" means accepted
}

// checkCases has, for each rule, at least one password that fails it and
// one that passes it for the reason the case names.
var checkCases = []checkCase{
	{"valid UTF-8", DefaultPolicy, "Grüße aus Köln, schöne Stadt", alice, ""},
	{"invalid UTF-8", DefaultPolicy, "\xff\xfe invalid utf-8 bytes here", alice, RuleInvalidUTF8},

	{"15 characters (30 bytes)", DefaultPolicy, "ĀāĂăĄąĆćĈĉĊċČčĎ", alice, ""},
	{"14 characters (28 bytes)", DefaultPolicy, "ĀāĂăĄąĆćĈĉĊċČč", alice, RuleTooShort},
	{"short", DefaultPolicy, "short", alice, RuleTooShort},
	{"empty", DefaultPolicy, "", User{}, RuleTooShort},
	{"counted after NFKC: 13 code points, 17 characters", DefaultPolicy, "\ufb03\ufb03 and more\ufb04", alice, ""},
	{"zero value is the default", Policy{}, "ĀāĂăĄąĆćĈĉĊċČč", alice, RuleTooShort},
	{"second factor: 14 characters", totp, "ĀāĂăĄąĆćĈĉĊċČč", alice, ""},
	{"second factor: 7 characters", totp, "ĀāĂăĄąĆ", alice, RuleTooShort},
	{"invalid minimum is raised to 8", Policy{MinLength: 3}, "ĀāĂăĄąĆ", alice, RuleTooShort},
	{"256 characters", DefaultPolicy, strings.Repeat("correct horse battery staple ", 9)[:256], alice, ""},
	{"257 characters", DefaultPolicy, strings.Repeat("correct horse battery staple ", 9)[:257], alice, RuleTooLong},
	{"far too many bytes", DefaultPolicy, strings.Repeat("\U0001F600", 5000), alice, RuleTooLong},

	{"ramp art", DefaultPolicy, "rampant parts of the garden", alice, ""},
	{"product name", DefaultPolicy, "my Rampart passphrase 2024", alice, RuleContainsProductName},
	{"product name, full width", DefaultPolicy, "my ＲＡＭＰＡＲＴ passphrase 2024", alice, RuleContainsProductName},

	{"user name", DefaultPolicy, "Alice in wonderland 1865", alice, RuleContainsUsername},
	{"user name, full width", DefaultPolicy, "ＡＬＩＣＥ in wonderland 1865", alice, RuleContainsUsername},
	{"user name under 3 characters is ignored", DefaultPolicy, "always a long phrase", User{Name: "al"}, ""},
	{"admin", DefaultPolicy, "xxxxxAdminxxxxxxxx", User{Name: "admin"}, RuleContainsUsername},

	{"e-mail local part", DefaultPolicy, "bob.smith+work likes green tea", alice, RuleContainsEmail},
	{"e-mail local part without +tag", DefaultPolicy, "Bob.Smith drinks tea", alice, RuleContainsEmail},
	{"e-mail local part under 3 characters is ignored", DefaultPolicy, "bo and the fine long passphrase", User{Email: "bo@example.org"}, ""},

	{"not in the blocklist", DefaultPolicy, "mauve tractor silently", alice, ""},
	{"blocklisted", DefaultPolicy, "allyouneedislove", alice, RuleBlocklisted},
	{"blocklisted, second factor", totp, "password", alice, RuleBlocklisted},

	{"strong", DefaultPolicy, "correct horse battery staple", alice, ""},
	{"guessable", DefaultPolicy, "Password1234567", alice, RuleTooGuessable},
	{"guessable repetition", DefaultPolicy, "iloveyouiloveyou", alice, RuleTooGuessable},
	{"reversed e-mail local part, without the user", DefaultPolicy, "htims.bob1234567", User{}, ""},
	{"reversed e-mail local part", DefaultPolicy, "htims.bob1234567", alice, RuleTooGuessable},
	{"8 characters never reach zxcvbn score 3", totp, "Kx9#mQ2v", alice, RuleTooGuessable},
}

func TestCheck(t *testing.T) {
	t.Parallel()
	for _, tc := range checkCases {
		err := tc.policy.Check(tc.pw, tc.user)
		if tc.want == "" {
			if err != nil {
				t.Errorf("%s: Check = %v, want nil", tc.name, err)
			}
			continue
		}
		var pe *PolicyError
		if !errors.As(err, &pe) || pe.Rule != tc.want {
			t.Errorf("%s: Check = %#v, want rule %q", tc.name, err, tc.want)
			continue
		}
		if tc.policy == DefaultPolicy && err.Error() != wantMessages[tc.want] {
			t.Errorf("%s: message %q, want %q", tc.name, err, wantMessages[tc.want])
		}
		// The word "password" is in every message.
		if tc.pw != "" && strings.Contains(err.Error(), tc.pw) && !strings.Contains(wantMessages[tc.want], tc.pw) {
			t.Errorf("%s: error %q echoes the password", tc.name, err)
		}
	}
}

// Real entries of the embedded list (BLOCKLIST.md), in other cases and
// Unicode forms, and with white space around them.
func TestCheckBlocklistForms(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		policy Policy
		pw     string
	}{
		{DefaultPolicy, "allyouneedislove"},
		{DefaultPolicy, "AllYouNeedIsLove"},
		{DefaultPolicy, "ALLYOUNEEDISLOVE"},
		{DefaultPolicy, "ａｌｌｙｏｕｎｅｅｄｉｓｌｏｖｅ"}, // full width: NFKC gives ASCII
		{DefaultPolicy, "  allyouneedislove \t"},
		{DefaultPolicy, "\u00a0allyouneedislove\u3000"}, // no-break and ideographic spaces
		{DefaultPolicy, "AlineLima123456"},
		{DefaultPolicy, "alinelima１２３４５６"},
		{DefaultPolicy, "Abrakadabra1977"},
		{DefaultPolicy, "1QAZ2WSX3EDC4RFV"},
		{DefaultPolicy, "PasswordPassword"},
		// Entries zxcvbn alone would accept (score 3 or more), so only the
		// blocklist stops them: see TestBlocklistCatchesWhatZxcvbnMisses.
		{DefaultPolicy, "$Xobotok@Xobotok"},
		{DefaultPolicy, "*Vyacheslav*1989*"},
		{DefaultPolicy, "!QAZXSW2#EDCVFR4"},
		{DefaultPolicy, "0102030405060708"},
		{totp, "Password"},
		{totp, " password "}, // blocklisted once trimmed
		{totp, "QWERTYUIOP"},
	} {
		err := tc.policy.Check(tc.pw, alice)
		var pe *PolicyError
		if !errors.As(err, &pe) || pe.Rule != RuleBlocklisted {
			t.Errorf("Check(%q) = %v, want rule %q", tc.pw, err, RuleBlocklisted)
		}
	}
}

func TestBlocklistCatchesWhatZxcvbnMisses(t *testing.T) {
	t.Parallel()
	for _, pw := range []string{"$xobotok@xobotok", "*vyacheslav*1989*", "!qazxsw2#edcvfr4", "0102030405060708"} {
		if found, err := blocklisted(pw); !found || err != nil {
			t.Errorf("%q is not in the embedded list (%v)", pw, err)
		}
		if s := zxcvbnScore(pw, alice); s < minScore {
			t.Errorf("zxcvbn scores %q %d: pick an example it accepts", pw, s)
		}
	}
}

// The admin bootstrap's generated passwords (crypto/rand.Text: 26 base32
// characters) must always pass, for the admin account they are made for.
func TestRandomPasswordsPass(t *testing.T) {
	t.Parallel()
	admin := User{Name: "admin", Email: "admin@example.com"}
	const workers, each = 8, 125
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range each {
				pw := rand.Text()
				err := DefaultPolicy.Check(pw, admin)
				// base32 can spell ADMIN or RAMPART (odds about 1e-6).
				switch {
				case strings.Contains(pw, "RAMPART"):
					checkRule(t, pw, err, RuleContainsProductName)
				case strings.Contains(pw, "ADMIN"):
					checkRule(t, pw, err, RuleContainsUsername)
				case err != nil:
					t.Errorf("random password rejected: %v", err)
				}
			}
		})
	}
	wg.Wait()
}

func checkRule(t *testing.T, pw string, err error, want Rule) {
	t.Helper()
	var pe *PolicyError
	if !errors.As(err, &pe) || pe.Rule != want {
		t.Errorf("Check(%q) = %v, want rule %q", pw, err, want)
	}
}

// CheckPolicy is what config validation and the admin bootstrap call.
func TestCheckPolicy(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		pw, user string
		want     Rule
	}{
		{"short", "admin", RuleTooShort},
		{"admin", "admin", RuleTooShort},
		{"adminadminadminadmin", "admin", RuleContainsUsername},
		{"correct horse battery staple", "admin", ""},
		{"a perfectly long passphrase", "admin", ""},
		{rand.Text(), "admin", ""}, // one in about 1e6 contains ADMIN
		{"qwertyuiopasdfghjkl", "admin", RuleBlocklisted},
	} {
		err := CheckPolicy(tc.pw, tc.user)
		if want := DefaultPolicy.Check(tc.pw, User{Name: tc.user}); fmt.Sprint(err) != fmt.Sprint(want) {
			t.Errorf("CheckPolicy(%q) = %v, DefaultPolicy.Check = %v", tc.pw, err, want)
		}
		if tc.want == "" {
			if err != nil {
				t.Errorf("CheckPolicy(%q) = %v, want nil", tc.pw, err)
			}
			continue
		}
		checkRule(t, tc.pw, err, tc.want)
	}
}

func TestPolicyValidate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		min int
		ok  bool
	}{
		{0, true}, {8, true}, {15, true}, {64, true},
		{-1, false}, {7, false}, {65, false}, {1000, false},
	} {
		err := Policy{MinLength: tc.min}.Validate()
		if (err == nil) != tc.ok {
			t.Errorf("Policy{MinLength: %d}.Validate() = %v, want ok=%v", tc.min, err, tc.ok)
		}
	}
}

func TestFirstRunes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		s    string
		n    int
		want string
	}{
		{"", 3, ""}, {"abc", 0, ""}, {"abc", 3, "abc"}, {"abcd", 3, "abc"}, {"äöüß", 2, "äö"},
	} {
		if got := firstRunes(tc.s, tc.n); got != tc.want {
			t.Errorf("firstRunes(%q, %d) = %q, want %q", tc.s, tc.n, got, tc.want)
		}
	}
}

// FuzzCheck: Check must never panic, must only ever return nil or a
// *PolicyError, and the error text must be the fixed one for its rule, so
// it cannot carry any part of the password.
func FuzzCheck(f *testing.F) {
	for _, tc := range checkCases {
		f.Add(tc.pw, tc.user.Name, tc.user.Email)
	}
	f.Add("ééééééééééééééééééééééé", "é", "é@é")
	f.Add(strings.Repeat("ᄀ\u1161\u11a8", 300), "", "")
	f.Fuzz(func(t *testing.T, pw, name, email string) {
		err := DefaultPolicy.Check(pw, User{Name: name, Email: email})
		if err == nil {
			return
		}
		var pe *PolicyError
		if !errors.As(err, &pe) {
			t.Fatalf("Check returned %T %v, want *PolicyError", err, err)
		}
		want, ok := wantMessages[pe.Rule]
		if !ok || err.Error() != want {
			t.Fatalf("rule %q: message %q, want %q", pe.Rule, err, want)
		}
		if len(pw) > 0 && strings.Contains(err.Error(), pw) && !strings.Contains(want, pw) {
			t.Fatalf("error %q echoes the password", err)
		}
	})
}

func BenchmarkCheck(b *testing.B) {
	if err := LoadBlocklist(); err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct{ name, pw string }{
		{"passphrase28", "correct horse battery staple"},
		{"random26", rand.Text()},
		{"passphrase256", strings.Repeat("correct horse battery staple ", 9)[:256]},
		{"manager64", strings.Repeat("kQ7#x!Lm2@vB9$zR4&nW1^", 3)[:64]}, // password-manager style
		// The worst case known: every l33t substitution zxcvbn tries.
		{"l33tWorst256", strings.Repeat("4@8({[<3691!|70$5+%2", 13)[:256]},
		{"blocklisted", "allyouneedislove"},
		{"tooShort", "short"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = DefaultPolicy.Check(bc.pw, alice)
			}
		})
	}
}
