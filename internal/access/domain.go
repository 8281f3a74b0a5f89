package access

import (
	"fmt"
	"strings"
)

// Wildcard is the special domain of grants that reach the targets without
// a domain, and only those.
const Wildcard = "*"

// Limits on domain names and model names.
const (
	MaxLabelLen     = 63  // bytes per dot-separated label
	MaxDomainLabels = 10  // labels per domain name
	MaxDomainLen    = 253 // bytes per domain name, dots included
	MaxModelNameLen = 63  // bytes in the name part of a model id
)

// ValidateDomain reports whether name is a domain name: 1 to
// MaxDomainLabels dot-separated labels, at most MaxDomainLen bytes in all,
// each label 1 to MaxLabelLen bytes of [a-z0-9-] that neither starts nor
// ends with '-'. The Wildcard "*" is not a domain name. The error (which
// wraps ErrInvalid) says what is wrong and repeats at most a bounded prefix
// of name.
//
// It allocates only when it returns an error.
func ValidateDomain(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("%w: the domain name is empty", ErrInvalid)
	case name == Wildcard:
		return fmt.Errorf(`%w: "*" is the wildcard, not a domain name`, ErrInvalid)
	case len(name) > MaxDomainLen:
		return fmt.Errorf("%w: domain name %s is %d bytes long; the limit is %d",
			ErrInvalid, quote(name), len(name), MaxDomainLen)
	}
	if n := strings.Count(name, ".") + 1; n > MaxDomainLabels {
		return fmt.Errorf("%w: domain name %s has %d labels; the limit is %d",
			ErrInvalid, quote(name), n, MaxDomainLabels)
	}
	rest, n := name, 0
	for {
		n++
		label, tail, more := strings.Cut(rest, ".")
		if msg := labelProblem(label); msg != "" {
			return fmt.Errorf("%w: domain name %s: label %d %s", ErrInvalid, quote(name), n, msg)
		}
		if !more {
			return nil
		}
		rest = tail
	}
}

// validDomain is ValidateDomain without the error: it never allocates, so
// Decide stays allocation-free even for bad targets.
func validDomain(name string) bool {
	if name == "" || len(name) > MaxDomainLen {
		return false
	}
	labels, start := 1, 0
	for i := 0; i <= len(name); i++ {
		if i < len(name) && name[i] != '.' {
			c := name[i]
			if !(('a' <= c && c <= 'z') || ('0' <= c && c <= '9') || c == '-') {
				return false
			}
			continue
		}
		label := name[start:i]
		if label == "" || len(label) > MaxLabelLen || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		if i < len(name) {
			labels++
		}
		start = i + 1
	}
	return labels <= MaxDomainLabels
}

// labelProblem describes what is wrong with a domain label, or returns "".
// The non-empty results are built only on failure.
func labelProblem(label string) string {
	switch {
	case label == "":
		return "is empty (a dot at the start or end, or two dots in a row)"
	case len(label) > MaxLabelLen:
		return fmt.Sprintf("%s is %d bytes long; the limit is %d", quote(label), len(label), MaxLabelLen)
	}
	for i := 0; i < len(label); i++ {
		c := label[i]
		if ('a' <= c && c <= 'z') || ('0' <= c && c <= '9') || c == '-' {
			continue
		}
		hint := ""
		if 'A' <= c && c <= 'Z' {
			hint = " (upper case is not allowed)"
		}
		return fmt.Sprintf("%s has %s at byte %d%s; labels use only a-z, 0-9 and '-'",
			quote(label), quote(label[i:i+1]), i, hint)
	}
	switch {
	case label[0] == '-':
		return fmt.Sprintf("%s starts with '-'", quote(label))
	case label[len(label)-1] == '-':
		return fmt.Sprintf("%s ends with '-'", quote(label))
	}
	return ""
}

// Parent returns the domain one level up: "com.ericsson" for
// "com.ericsson.internal", and ("", false) for a top-level domain, the
// Wildcard or "". It slices domain and does not validate it.
func Parent(domain string) (string, bool) {
	i := strings.LastIndexByte(domain, '.')
	if i < 0 {
		return "", false
	}
	return domain[:i], true
}

// SplitModelID splits a model id into its domain and name. As in MXE, the
// domain is encoded in the id: everything before the last dot is the
// domain, the rest is the name; an id without a dot has no domain (""):
//
//	com.ericsson.mymodel → ("com.ericsson", "mymodel")
//	mymodel              → ("", "mymodel")
//
// The domain must satisfy ValidateDomain. The name is 1 to MaxModelNameLen
// bytes of [a-z0-9_-] starting with a letter or digit (so it never looks
// like a command-line flag). For accepted ids, id == name when domain is
// "" and id == domain + "." + name otherwise. Errors wrap ErrInvalid.
func SplitModelID(id string) (domain, name string, err error) {
	name = id
	i := strings.LastIndexByte(id, '.')
	if i >= 0 {
		domain, name = id[:i], id[i+1:]
	}
	if msg := modelNameProblem(name); msg != "" {
		return "", "", fmt.Errorf("%w: model id %s: the name (after the last dot) %s", ErrInvalid, quote(id), msg)
	}
	if i >= 0 {
		if err := ValidateDomain(domain); err != nil {
			return "", "", fmt.Errorf("model id %s: the domain (before the last dot): %w", quote(id), err)
		}
	}
	return domain, name, nil
}

func modelNameProblem(name string) string {
	switch {
	case name == "":
		return "is empty"
	case len(name) > MaxModelNameLen:
		return fmt.Sprintf("is %d bytes long; the limit is %d", len(name), MaxModelNameLen)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if ('a' <= c && c <= 'z') || ('0' <= c && c <= '9') || ((c == '-' || c == '_') && i > 0) {
			continue
		}
		if i == 0 && (c == '-' || c == '_') {
			return fmt.Sprintf("%s starts with %s; it must start with a-z or 0-9", quote(name), quote(name[:1]))
		}
		hint := ""
		if 'A' <= c && c <= 'Z' {
			hint = " (upper case is not allowed)"
		}
		return fmt.Sprintf("%s has %s at byte %d%s; names use only a-z, 0-9, '-' and '_'",
			quote(name), quote(name[i:i+1]), i, hint)
	}
	return ""
}
