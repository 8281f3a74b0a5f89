package modelarchive

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

const (
	maxNameBytes      = 1024
	maxComponentBytes = 255
)

// cleanName validates an archive entry name and returns it as a relative
// POSIX path without "./" prefixes or a trailing slash. root is true for the
// archive's own top directory ("./", "."), which carries nothing to extract.
//
// Names are refused rather than repaired: a name that needs cleaning is a
// name whose meaning differs between tools, and a signature over one meaning
// must not silently apply to another.
func cleanName(raw string, maxDepth int) (name string, root bool, err error) {
	switch {
	case raw == "":
		return "", false, fmt.Errorf("%w: empty", ErrInvalidName)
	case !utf8.ValidString(raw):
		return "", false, fmt.Errorf("%w: not valid UTF-8", ErrInvalidName)
	case len(raw) > maxNameBytes:
		return "", false, fmt.Errorf("%w: %d bytes, limit %d", ErrNameTooLong, len(raw), maxNameBytes)
	case strings.HasPrefix(raw, "/"):
		return "", false, ErrAbsolutePath
	case strings.ContainsRune(raw, '\\'):
		return "", false, fmt.Errorf("%w: contains a backslash", ErrInvalidName)
	}
	for _, r := range raw {
		// C0, DEL and C1 controls (NUL included): never part of a model file
		// name, and dangerous in logs and terminals.
		if r < 0x20 || (r >= 0x7f && r <= 0x9f) {
			return "", false, fmt.Errorf("%w: contains control character %U", ErrInvalidName, r)
		}
	}
	parts := strings.Split(strings.TrimSuffix(raw, "/"), "/")
	for len(parts) > 0 && parts[0] == "." {
		parts = parts[1:] // "./" prefixes, as written by tar -C dir .
	}
	if len(parts) == 0 {
		return "", true, nil
	}
	for _, p := range parts {
		switch {
		case p == "..":
			return "", false, ErrPathTraversal
		case p == "" || p == ".":
			return "", false, fmt.Errorf("%w: empty or '.' component", ErrInvalidName)
		case len(p) > maxComponentBytes:
			return "", false, fmt.Errorf("%w: component of %d bytes, limit %d", ErrNameTooLong, len(p), maxComponentBytes)
		}
	}
	if len(parts) > maxDepth {
		return "", false, fmt.Errorf("%w: %d levels, limit %d", ErrTooDeep, len(parts), maxDepth)
	}
	return strings.Join(parts, "/"), false, nil
}

// lessPath orders paths by their components, as the OpenSSF model-signing
// manifest does ("a/b" sorts before "a.txt", unlike a raw string compare).
func lessPath(a, b string) bool {
	pa, pb := strings.Split(a, "/"), strings.Split(b, "/")
	for i := 0; i < len(pa) && i < len(pb); i++ {
		if pa[i] != pb[i] {
			return pa[i] < pb[i]
		}
	}
	return len(pa) < len(pb)
}
