package audit

import (
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
	"time"
	"unicode"
	"unicode/utf8"
)

// Outcomes of an audited action.
const (
	OutcomeSuccess = "success"
	OutcomeFailure = "failure"
	OutcomeDenied  = "denied"
)

// Actor kinds. A user or service account appears only as a pseudonym; a
// system actor (the server itself, a scheduler) by its component name; an
// unauthenticated caller as "anonymous".
const (
	ActorUser           = "user"
	ActorServiceAccount = "service-account"
	ActorSystem         = "system"
	ActorAnonymous      = "anonymous"
)

// Field length limits, in bytes.
const (
	maxActor     = 128
	maxSource    = 128
	maxAction    = 128
	maxKind      = 64
	maxDomain    = 253
	maxTargetID  = 256
	maxReason    = 1024
	maxRequestID = 128
)

// ErrInvalidEvent means an Event failed Validate. It is a programming error
// in the emitter, not a storage failure.
var ErrInvalidEvent = errors.New("invalid audit event")

// Event is one audited action: who did what to which target, with what
// outcome. Every field is covered by the record's hash.
type Event struct {
	Time         time.Time
	Actor        string // a pseudonym (Pseudonym) for users and service accounts, never a name
	ActorKind    string // ActorUser, ActorServiceAccount, ActorSystem or ActorAnonymous
	Source       string // a pseudonym of the client address, or empty: never a raw IP
	Action       string // e.g. "account.create", "login"
	TargetKind   string // e.g. "account", "grant", "model"; empty when there is no target
	TargetDomain string
	TargetID     string
	Outcome      string // OutcomeSuccess, OutcomeFailure or OutcomeDenied
	Reason       string // why, for failures and denials; machine text, no personal data
	RequestID    string
}

var (
	actionPattern = regexp.MustCompile(`^[a-z][a-z0-9_.-]*$`)
	kindPattern   = regexp.MustCompile(`^[a-z][a-z0-9_-]*$`)
	systemPattern = regexp.MustCompile(`^[a-z][a-z0-9.-]{0,63}$`)
)

// Validate reports every problem with e at once. Beyond required fields and
// bounded lengths it refuses what would make the log unsafe to read: text
// that is not UTF-8 or holds control, format or line-separator characters
// (log injection: a forged second line, a terminal escape, reversed text),
// a user actor that is not a pseudonym, and a source that is an IP address.
// Error messages name fields, never their values.
func (e Event) Validate() error {
	var problems []error
	add := func(format string, args ...any) { problems = append(problems, fmt.Errorf(format, args...)) }

	if e.Time.IsZero() {
		add("time: required")
	} else if y := e.Time.UTC().Year(); y < 1 || y > 9999 {
		add("time: year %d is out of range", y)
	}

	text := func(field, v string, limit int, required bool) bool {
		switch {
		case v == "":
			if required {
				add("%s: required", field)
			}
			return false
		case len(v) > limit:
			add("%s: longer than %d bytes", field, limit)
		case !utf8.ValidString(v):
			add("%s: not valid UTF-8", field)
		case hasUnsafeRune(v):
			add("%s: contains a control, format or line-separator character", field)
		default:
			return true
		}
		return false
	}

	if text("actor", e.Actor, maxActor, true) {
		switch e.ActorKind {
		case ActorUser, ActorServiceAccount:
			if !IsPseudonym(e.Actor) {
				add("actor: a %s must appear as a pseudonym (p-…), never by id or name", e.ActorKind)
			}
		case ActorSystem:
			if !systemPattern.MatchString(e.Actor) {
				add("actor: a system actor is a component name (lower case, digits, '.', '-')")
			}
		case ActorAnonymous:
			if e.Actor != ActorAnonymous {
				add("actor: must be %q for an anonymous actor", ActorAnonymous)
			}
		}
	}
	switch e.ActorKind {
	case ActorUser, ActorServiceAccount, ActorSystem, ActorAnonymous:
	case "":
		add("actor kind: required")
	default:
		add("actor kind: must be %s, %s, %s or %s", ActorUser, ActorServiceAccount, ActorSystem, ActorAnonymous)
	}
	if text("source", e.Source, maxSource, false) && isAddress(e.Source) {
		add("source: an IP address; record a pseudonym of it instead")
	}
	if text("action", e.Action, maxAction, true) && !actionPattern.MatchString(e.Action) {
		add("action: must be lower case letters, digits, '_', '.', '-'")
	}
	if text("target kind", e.TargetKind, maxKind, false) && !kindPattern.MatchString(e.TargetKind) {
		add("target kind: must be lower case letters, digits, '_', '-'")
	}
	text("target domain", e.TargetDomain, maxDomain, false)
	text("target id", e.TargetID, maxTargetID, false)
	if e.TargetKind == "" && (e.TargetDomain != "" || e.TargetID != "") {
		add("target kind: required with a target domain or id")
	}
	switch e.Outcome {
	case OutcomeSuccess, OutcomeFailure, OutcomeDenied:
	case "":
		add("outcome: required")
	default:
		add("outcome: must be %s, %s or %s", OutcomeSuccess, OutcomeFailure, OutcomeDenied)
	}
	text("reason", e.Reason, maxReason, false)
	text("request id", e.RequestID, maxRequestID, false)

	if len(problems) > 0 {
		return fmt.Errorf("%w: %w", ErrInvalidEvent, errors.Join(problems...))
	}
	return nil
}

// hasUnsafeRune reports a rune that could forge or hide log content: C0/C1
// controls and DEL, format characters (bidi overrides, zero-width), and
// the Unicode line and paragraph separators.
func hasUnsafeRune(s string) bool {
	for _, r := range s {
		if unicode.IsControl(r) || unicode.In(r, unicode.Cf, unicode.Zl, unicode.Zp) {
			return true
		}
	}
	return false
}

// isAddress reports whether s is an IP address, with or without a port or
// brackets.
func isAddress(s string) bool {
	if _, err := netip.ParseAddr(s); err == nil {
		return true
	}
	if _, err := netip.ParseAddrPort(s); err == nil {
		return true
	}
	if len(s) > 2 && s[0] == '[' && s[len(s)-1] == ']' {
		_, err := netip.ParseAddr(s[1 : len(s)-1])
		return err == nil
	}
	return false
}

// timeLayout is RFC 3339 in UTC with a fixed nine-digit fraction: one
// spelling per instant, so the encoding is deterministic.
const timeLayout = "2006-01-02T15:04:05.000000000Z"

// AppendCanonical appends the canonical encoding of e to b and returns it:
// a JSON object with every field, in a fixed order, empty ones included;
// the time in UTC with nanoseconds (timeLayout); strings with only '"',
// '\' and control characters escaped. Bytes that are not UTF-8 are copied
// as they are (Validate refuses them, so appended events never hold any);
// this keeps the encoding one-to-one, so two different events never hash
// alike.
func AppendCanonical(b []byte, e Event) []byte {
	b = append(b, `{"time":"`...)
	b = e.Time.UTC().AppendFormat(b, timeLayout)
	b = append(b, '"')
	for _, f := range [...]struct{ name, value string }{
		{"actor", e.Actor},
		{"actor_kind", e.ActorKind},
		{"source", e.Source},
		{"action", e.Action},
		{"target_kind", e.TargetKind},
		{"target_domain", e.TargetDomain},
		{"target_id", e.TargetID},
		{"outcome", e.Outcome},
		{"reason", e.Reason},
		{"request_id", e.RequestID},
	} {
		b = append(b, `,"`...)
		b = append(b, f.name...)
		b = append(b, `":`...)
		b = appendString(b, f.value)
	}
	return append(b, '}')
}

// Canonical returns the canonical encoding of e (see AppendCanonical).
func Canonical(e Event) []byte { return AppendCanonical(nil, e) }

func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < 0x20 || c == 0x7f:
			b = append(b, `\u00`...)
			if c < 0x10 {
				b = append(b, '0')
			}
			b = strconv.AppendUint(b, uint64(c), 16)
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}
