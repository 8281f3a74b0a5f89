package audit

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
)

// PseudonymSecretSize is the length of the per-subject secrets that
// pseudonyms are keyed with.
const PseudonymSecretSize = 32

// pseudonymDomain separates pseudonyms from every other HMAC use.
const pseudonymDomain = "rampart audit pseudonym v1\x00"

// pseudonymPrefix marks pseudonyms, so Validate can tell one from an id.
const pseudonymPrefix = "p-"

// NewPseudonymSecret returns a fresh random per-subject secret. It is
// stored with store.Audit.SetPseudonymSecret (sealed under the master key
// by the caller); deleting it erases the link from the subject to their
// records.
func NewPseudonymSecret() ([]byte, error) {
	b := make([]byte, PseudonymSecretSize)
	if _, err := rand.Read(b); err != nil {
		return nil, fmt.Errorf("pseudonym secret: %w", err)
	}
	return b, nil
}

// Pseudonym returns "p-" and the hex HMAC-SHA256 of userID under the
// subject's secret: the same for every record of the subject while the
// secret exists, and unlinkable to them once it is deleted.
func Pseudonym(secret []byte, userID string) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(pseudonymDomain))
	m.Write([]byte(userID))
	return pseudonymPrefix + hex.EncodeToString(m.Sum(nil))
}

// IsPseudonym reports whether s has the form Pseudonym returns.
func IsPseudonym(s string) bool {
	if len(s) != len(pseudonymPrefix)+2*sha256.Size || s[:len(pseudonymPrefix)] != pseudonymPrefix {
		return false
	}
	for _, c := range []byte(s[len(pseudonymPrefix):]) {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}
