package accounts

import (
	"encoding/json"
	"fmt"
	"net/mail"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Field bounds.
const (
	maxNameLen        = 64
	maxEmailLen       = 254 // RFC 5321 path limit
	maxDescriptionLen = 1024
	maxPathIDLen      = 128
	maxKeyIDLen       = 128
	// anonymizedPrefix names accounts deleted while owning resources; new
	// accounts may not take such a name.
	anonymizedPrefix = "deleted-"
)

// validateName checks an account or service account name: 1–64
// characters of [a-z0-9._-], starting with a letter or digit.
func validateName(field, name string) error {
	if name == "" {
		return invalid(field, "is required")
	}
	if len(name) > maxNameLen {
		return invalid(field, fmt.Sprintf("must be at most %d characters", maxNameLen))
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case (c == '.' || c == '_' || c == '-') && i > 0:
		default:
			return invalid(field, "must consist of lower-case letters, digits, '.', '_' and '-', and start with a letter or digit")
		}
	}
	return nil
}

// validateEmail accepts "" (no address) or one plain address.
func validateEmail(email string) error {
	if email == "" {
		return nil
	}
	if len(email) > maxEmailLen {
		return invalid("email", fmt.Sprintf("must be at most %d characters", maxEmailLen))
	}
	bad := strings.ContainsFunc(email, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) })
	at := strings.LastIndexByte(email, '@')
	if bad || !utf8.ValidString(email) || at < 1 || at == len(email)-1 {
		return invalid("email", "must be an address such as name@example.com")
	}
	if a, err := mail.ParseAddress(email); err != nil || a.Address != email || a.Name != "" {
		return invalid("email", "must be an address such as name@example.com")
	}
	return nil
}

// validateDescription bounds free text; line breaks and tabs are allowed,
// other control characters are not (they end up in terminals).
func validateDescription(d string) error {
	if len(d) > maxDescriptionLen {
		return invalid("description", fmt.Sprintf("must be at most %d bytes", maxDescriptionLen))
	}
	if !utf8.ValidString(d) || strings.ContainsFunc(d, func(r rune) bool {
		return unicode.IsControl(r) && r != '\n' && r != '\t'
	}) {
		return invalid("description", "must be UTF-8 text without control characters")
	}
	return nil
}

// validPathID reports whether s can be a record id taken from a URL path.
// Ids that cannot exist are answered like unknown ones (404).
func validPathID(s string) bool {
	if s == "" || len(s) > maxPathIDLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// validKeyID reports whether kid is acceptable as a client key id: URL-path
// safe (so DELETE .../keys/{kid} can name it) and bounded.
func validKeyID(kid string) bool {
	if kid == "" || len(kid) > maxKeyIDLen {
		return false
	}
	for i := 0; i < len(kid); i++ {
		c := kid[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("-_.~:+=", c) >= 0) {
			return false
		}
	}
	return true
}

// parseFutureTime parses an RFC 3339 time that must be after now.
func parseFutureTime(field, s string, now time.Time) (time.Time, error) {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, invalid(field, "must be an RFC 3339 time such as 2030-01-02T15:04:05Z")
	}
	if !t.After(now) {
		return time.Time{}, invalid(field, "must be in the future")
	}
	return t.UTC(), nil
}

// parseDuration parses a Go duration ("1h30m") within [lo, hi].
func parseDuration(field, s string, lo, hi time.Duration) (time.Duration, error) {
	if len(s) > 32 {
		return 0, invalid(field, "is too long")
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, invalid(field, `must be a duration such as "90s", "1h" or "720h"`)
	}
	if d < lo || d > hi {
		return 0, invalid(field, fmt.Sprintf("must be between %v and %v", lo, hi))
	}
	return d, nil
}

// nullableString is a JSON field that may be absent (Set false), null
// (Set and Null) or a string: PATCH tells "leave alone" from "clear".
type nullableString struct {
	Set, Null bool
	Value     string
}

// UnmarshalJSON implements json.Unmarshaler; it is called only when the
// field is present.
func (n *nullableString) UnmarshalJSON(b []byte) error {
	n.Set = true
	if string(b) == "null" {
		n.Null = true
		return nil
	}
	return json.Unmarshal(b, &n.Value)
}
