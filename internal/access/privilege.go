package access

import (
	"fmt"
	"strconv"
)

// Privilege is a level of access. Privileges are ordered: a >= b means a
// implies b.
type Privilege uint8

const (
	// None is no access; it is never granted.
	None Privilege = iota
	// Infer: call a model service, run a flow deployment.
	Infer
	// Read: see the target and all its details, download a model's
	// artefacts; implies Infer.
	Read
	// All: create, modify, delete, start, stop; implies Read.
	All
)

var privilegeNames = [...]string{None: "none", Infer: "infer", Read: "read", All: "all"}

// String returns "none", "infer", "read" or "all" (and "privilege(N)" for
// values out of range).
func (p Privilege) String() string {
	if int(p) < len(privilegeNames) {
		return privilegeNames[p]
	}
	return "privilege(" + strconv.Itoa(int(p)) + ")"
}

// ParsePrivilege is the inverse of String: it accepts exactly "none",
// "infer", "read" or "all" (lower case, the wire form).
func ParsePrivilege(s string) (Privilege, error) {
	for p, name := range privilegeNames {
		if s == name {
			return Privilege(p), nil
		}
	}
	return None, fmt.Errorf(`%w: unknown privilege %s; the privileges are "infer", "read" and "all"`, ErrInvalid, quote(s))
}
