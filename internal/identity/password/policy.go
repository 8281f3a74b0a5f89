package password

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/trustelem/zxcvbn"
	"golang.org/x/text/unicode/norm"
)

// Length limits, in characters (Unicode code points after NFKC
// normalisation, as NIST SP 800-63B rev 4 counts them).
const (
	// MinLength is the default minimum: the length NIST requires when the
	// password is the only authentication factor.
	MinLength = 15
	// MinLengthFloor is the lowest minimum a Policy may set, for passwords
	// used together with a second factor such as TOTP.
	MinLengthFloor = 8
	// MinLengthCeiling is the highest minimum a Policy may set; NIST asks
	// that passwords of at least 64 characters be allowed.
	MinLengthCeiling = 64
	// MaxLength bounds the work one login can cause; NIST asks for at least 64.
	MaxLength = 256
)

// Strength estimation. zxcvbn's cost grows with the square of its input's
// length or faster: for input crafted to maximise its l33t substitutions,
// about 20 ms for 32 characters, 115 ms for 64, 280 ms for 100 and seconds
// for 256. So it sees only the first zxcvbnMaxRunes characters, which bounds
// that case to about 45 ms, the cost of the argon2id hash that follows (a
// typical passphrase takes under 1 ms). The bound errs on the strict side: a
// password whose first 40 characters are guessable is refused whatever
// follows; long passwords are still checked whole against the blocklist.
const (
	minScore       = 3 // zxcvbn: 3 is "safely unguessable" (at least 10^8 guesses)
	zxcvbnMaxRunes = 40
	productName    = "rampart"
	// maxInputBytes refuses absurd inputs before normalising them: NFKC
	// composes at most 4 code points into one, so no password that is within
	// MaxLength once normalised is longer than this.
	maxInputBytes = 4 * MaxLength * utf8.UTFMax
)

// Policy decides which passwords are acceptable. The zero value is the
// policy for a password that is the only factor. It has no composition rules
// (no "one digit, one symbol") and no expiry, per NIST SP 800-63B rev 4.
type Policy struct {
	// MinLength is the minimum number of characters. 0 means the default,
	// MinLength (15); a password used with a second factor may have a lower
	// one, never below MinLengthFloor (8). Validate reports values outside
	// [MinLengthFloor, MinLengthCeiling]; Check never applies less than
	// MinLengthFloor.
	MinLength int
}

// DefaultPolicy is the policy for a password that is the only factor.
var DefaultPolicy = Policy{MinLength: MinLength}

// User is what the policy knows about the account the password is for. Both
// fields may be empty.
type User struct {
	Name  string
	Email string
}

// Rule is the stable, machine-readable code of a password rule.
type Rule string

// The rules a password can fail, in the order Check applies them.
const (
	RuleInvalidUTF8         Rule = "invalid_utf8"
	RuleTooLong             Rule = "too_long"
	RuleTooShort            Rule = "too_short"
	RuleContainsProductName Rule = "contains_product_name"
	RuleContainsUsername    Rule = "contains_username"
	RuleContainsEmail       Rule = "contains_email"
	RuleBlocklisted         Rule = "blocklisted"
	RuleTooGuessable        Rule = "too_guessable"
)

// PolicyError says which password rule failed. It never contains the
// password, nor anything derived from it (not even its length).
type PolicyError struct {
	Rule    Rule   // stable code, for programs
	Message string // sentence for people, in English
}

func (e *PolicyError) Error() string { return "password rejected: " + e.Message }

// Validate reports whether the policy's settings are allowed, for config
// validation.
func (p Policy) Validate() error {
	if p.MinLength != 0 && (p.MinLength < MinLengthFloor || p.MinLength > MinLengthCeiling) {
		return fmt.Errorf("password minimum length %d: must be between %d and %d (0 means %d)",
			p.MinLength, MinLengthFloor, MinLengthCeiling, MinLength)
	}
	return nil
}

func (p Policy) minLength() int {
	switch {
	case p.MinLength == 0:
		return MinLength
	case p.MinLength < MinLengthFloor:
		return MinLengthFloor
	}
	return p.MinLength
}

// Check returns nil if password is acceptable for u, a *PolicyError naming
// the first rule it fails otherwise, or another error if the embedded
// blocklist cannot be read (then no password is accepted).
//
// The password is compared after NFKC normalisation, case-insensitively,
// also with surrounding white space removed. Check's cost is dominated by
// zxcvbn: about a millisecond for a typical passphrase, at most some tens of
// milliseconds, bounded by the cap on the length of its input.
func (p Policy) Check(password string, u User) error {
	if !utf8.ValidString(password) {
		return reject(RuleInvalidUTF8, "must be valid UTF-8 text")
	}
	if len(password) > maxInputBytes {
		return reject(RuleTooLong, fmt.Sprintf("must be at most %d characters", MaxLength))
	}
	pw := norm.NFKC.String(password)
	n := utf8.RuneCountInString(pw)
	if n > MaxLength {
		return reject(RuleTooLong, fmt.Sprintf("must be at most %d characters", MaxLength))
	}
	if least := p.minLength(); n < least {
		return reject(RuleTooShort, fmt.Sprintf("must be at least %d characters", least))
	}

	key := strings.ToLower(pw) // == blocklistKey(password)
	if strings.Contains(key, productName) {
		return reject(RuleContainsProductName, "must not contain the product name")
	}
	name := identifier(u.Name)
	if name != "" && strings.Contains(key, name) {
		return reject(RuleContainsUsername, "must not contain the user name")
	}
	_, local, base := emailParts(u.Email)
	if (local != "" && strings.Contains(key, local)) || (base != "" && strings.Contains(key, base)) {
		return reject(RuleContainsEmail, "must not contain the e-mail address or its user part")
	}

	for _, k := range []string{key, strings.TrimSpace(key)} {
		found, err := blocklisted(k)
		if err != nil {
			return err
		}
		if found {
			return reject(RuleBlocklisted, "is too common: it appears in lists of breached passwords")
		}
	}

	if zxcvbnScore(pw, u) < minScore {
		return reject(RuleTooGuessable, "is too easy to guess; a longer phrase of unrelated words works well")
	}
	return nil
}

// zxcvbnScore estimates how guessable the NFKC-normalised pw is (0 to 4),
// from its first zxcvbnMaxRunes characters, knowing the user's name, e-mail
// address and the product name.
func zxcvbnScore(pw string, u User) int {
	email, local, base := emailParts(u.Email)
	inputs := []string{productName}
	for _, s := range []string{strings.TrimSpace(blocklistKey(u.Name)), email, local, base} {
		if s != "" {
			inputs = append(inputs, s)
		}
	}
	return zxcvbn.PasswordStrength(firstRunes(pw, zxcvbnMaxRunes), inputs).Score
}

// CheckPolicy applies DefaultPolicy for a user known only by name. It is
// what config validation and the admin bootstrap use.
func CheckPolicy(password, username string) error {
	return DefaultPolicy.Check(password, User{Name: username})
}

func reject(r Rule, msg string) *PolicyError { return &PolicyError{Rule: r, Message: msg} }

// identifier returns s in blocklistKey form without surrounding space, or ""
// when it is too short (under 3 characters) to be worth refusing in a
// password.
func identifier(s string) string {
	s = strings.TrimSpace(blocklistKey(s))
	if utf8.RuneCountInString(s) < 3 {
		return ""
	}
	return s
}

// emailParts returns the normalised address, its local part (before the
// last "@"; the whole address if there is none) and, when the local part has
// a "+tag" sub-address, the local part without it. local and base are ""
// when absent or shorter than 3 characters.
func emailParts(addr string) (email, local, base string) {
	email = strings.TrimSpace(blocklistKey(addr))
	l := email
	if i := strings.LastIndexByte(l, '@'); i >= 0 {
		l = l[:i]
	}
	local = identifier(l)
	if i := strings.IndexByte(local, '+'); i >= 0 {
		base = identifier(local[:i])
	}
	return email, local, base
}

// firstRunes returns the first n code points of s.
func firstRunes(s string, n int) string {
	for i := range s {
		if n == 0 {
			return s[:i]
		}
		n--
	}
	return s
}
