package access

import (
	"errors"
	"fmt"
	"strconv"
	"unicode/utf8"
)

// Sentinel errors, checked with errors.Is. The errors this package returns
// wrap them with the details of what is wrong.
var (
	// ErrInvalid: a name, privilege, kind or grant is malformed.
	ErrInvalid = errors.New("invalid")
	// ErrDuplicate: the subject already has a grant on exactly this domain
	// (HTTP layers map it to 409 Conflict).
	ErrDuplicate = errors.New("grant already exists")
	// ErrRedundant: a grant on a parent domain already gives the same
	// subject at least this privilege, so the new grant could neither add
	// nor restrict anything.
	ErrRedundant = errors.New("redundant grant")
	// ErrForbidden: the granter may not create this grant.
	ErrForbidden = errors.New("not allowed to grant")
)

// ConflictError is returned by CheckNewGrant (and NewPolicy) when a grant
// collides with one that exists. It wraps ErrDuplicate or ErrRedundant and
// names the existing grant, so a caller can show or link it.
type ConflictError struct {
	Err      error // ErrDuplicate or ErrRedundant
	New      Grant // the refused grant
	Existing Grant // the grant it collides with
}

func (e *ConflictError) Error() string {
	s, ex := e.New.Subject, e.Existing
	if e.Err == ErrRedundant {
		return fmt.Sprintf("%v: %s %s already holds %s on %s through grant %s on its parent domain %s; "+
			"a grant on a subdomain cannot restrict or repeat what a parent domain gives",
			e.Err, s.Kind, quote(s.ID), ex.Privilege, quote(e.New.Domain), quote(ex.ID), quote(ex.Domain))
	}
	return fmt.Sprintf("%v: %s %s already holds %s on %s through grant %s; revoke it first",
		e.Err, s.Kind, quote(s.ID), ex.Privilege, quote(ex.Domain), quote(ex.ID))
}

func (e *ConflictError) Unwrap() error { return e.Err }

// maxQuoted bounds how long a quoted piece of a caller's input may be in
// an error message, escapes included, so huge or binary inputs are not
// echoed back.
const maxQuoted = 48

// quote quotes s for an error message: the longest prefix of whole runes
// (or single invalid bytes) whose quoted form fits in maxQuoted bytes, and
// how long s was if it had to be cut.
func quote(s string) string {
	end := 0
	for end < len(s) {
		_, size := utf8.DecodeRuneInString(s[end:])
		if len(strconv.Quote(s[:end+size])) > maxQuoted {
			break
		}
		end += size
	}
	q := strconv.Quote(s[:end])
	if end == len(s) {
		return q
	}
	return q + "... (" + strconv.Itoa(len(s)) + " bytes)"
}
