package access

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

var (
	label63 = strings.Repeat("a", 63)
	// 4 labels of 63 plus 3 dots = 255 bytes; trimmed to exactly 253.
	domain253 = label63 + "." + label63 + "." + label63 + "." + strings.Repeat("b", 61)
)

var validDomains = []string{
	"com", "com.ericsson", "com.ericsson.internal", "a", "0", "a-b", "x1.y-2.z3", "123.456",
	label63, domain253, "a.b.c.d.e.f.g.h.i.j",
}

// invalidDomains maps each invalid name to what its error must say.
var invalidDomains = []struct{ name, says string }{
	{"", "empty"},
	{"*", "wildcard"},
	{"com.", "label 2 is empty"},
	{".com", "label 1 is empty"},
	{"com..ericsson", "label 2 is empty"},
	{"Com.ericsson", `label 1 "Com" has "C" at byte 0 (upper case is not allowed)`},
	{"com.eric_sson", `label 2 "eric_sson" has "_" at byte 4`},
	{"com.ericsson/x", `has "/"`},
	{"com. ericsson", `has " "`},
	{"com.érics", `label 2 "érics" has "\xc3" at byte 0`},
	{"-com", `"-com" starts with '-'`},
	{"com.ericsson-", `"ericsson-" ends with '-'`},
	{label63 + "a", "64 bytes long; the limit is 63"},
	{"a.b.c.d.e.f.g.h.i.j.k", "11 labels; the limit is 10"},
	{domain253 + "c", "254 bytes long; the limit is 253"},
	{"com.ericsson.*", `has "*"`},
}

func TestValidateDomain(t *testing.T) {
	t.Parallel()
	for _, d := range validDomains {
		if err := ValidateDomain(d); err != nil {
			t.Errorf("ValidateDomain(%q) = %v, want nil", d, err)
		}
	}
	for _, tc := range invalidDomains {
		err := ValidateDomain(tc.name)
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.says) {
			t.Errorf("ValidateDomain(%q) = %v, want ErrInvalid saying %q", tc.name, err, tc.says)
		}
	}
}

func TestValidateDomainDoesNotEchoHugeInput(t *testing.T) {
	t.Parallel()
	for _, huge := range []string{strings.Repeat("A", 1<<20), strings.Repeat("é", 1<<19), strings.Repeat("a.", 1<<19)} {
		for _, err := range []error{ValidateDomain(huge), func() error { _, _, err := SplitModelID(huge); return err }()} {
			if err == nil || len(err.Error()) > 400 {
				t.Errorf("error for a %d-byte input is %d bytes long: %.500s", len(huge), len(err.Error()), err)
			}
		}
	}
}

func TestParent(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in, want string
		ok       bool
	}{
		{"com.ericsson.internal", "com.ericsson", true},
		{"com.ericsson", "com", true},
		{"com", "", false},
		{Wildcard, "", false},
		{"", "", false},
	} {
		if got, ok := Parent(tc.in); got != tc.want || ok != tc.ok {
			t.Errorf("Parent(%q) = %q, %v; want %q, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

var validModelIDs = []struct{ id, domain, name string }{
	{"com.ericsson.mymodel", "com.ericsson", "mymodel"},
	{"mymodel", "", "mymodel"},
	{"com.my_model-2", "com", "my_model-2"},
	{"0", "", "0"},
	{"a.b.c.d.e.f.g.h.i.j.m", "a.b.c.d.e.f.g.h.i.j", "m"},
	{domain253 + "." + label63, domain253, label63},
}

var invalidModelIDs = []struct{ id, says string }{
	{"", "name (after the last dot) is empty"},
	{"com.", "name (after the last dot) is empty"},
	{".mymodel", "domain (before the last dot): invalid: the domain name is empty"},
	{"com..mymodel", "label 2 is empty"},
	{"com.ericsson.MyModel", `"MyModel" has "M" at byte 0 (upper case is not allowed)`},
	{"com._model", `starts with "_"`},
	{"-model", `starts with "-"`},
	{"com.my model", `has " "`},
	{"*.mymodel", "wildcard"},
	{"Com.mymodel", `label 1 "Com"`},
	{"com." + label63 + "x", "64 bytes long; the limit is 63"},
	{"a.b.c.d.e.f.g.h.i.j.k.m", "11 labels"},
}

func TestSplitModelID(t *testing.T) {
	t.Parallel()
	for _, tc := range validModelIDs {
		d, n, err := SplitModelID(tc.id)
		if d != tc.domain || n != tc.name || err != nil {
			t.Errorf("SplitModelID(%q) = %q, %q, %v; want %q, %q", tc.id, d, n, err, tc.domain, tc.name)
		}
	}
	for _, tc := range invalidModelIDs {
		d, n, err := SplitModelID(tc.id)
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.says) || d != "" || n != "" {
			t.Errorf("SplitModelID(%q) = %q, %q, %v; want ErrInvalid saying %q", tc.id, d, n, err, tc.says)
		}
	}
}

func FuzzValidateDomain(f *testing.F) {
	for _, d := range validDomains {
		f.Add(d)
	}
	for _, tc := range invalidDomains {
		f.Add(tc.name)
	}
	f.Fuzz(func(t *testing.T, s string) {
		err := ValidateDomain(s)
		if ok := refValidDomain(s); ok != (err == nil) {
			t.Fatalf("ValidateDomain(%q) = %v; the reference rules say valid=%v", s, err, ok)
		}
		if validDomain(s) != (err == nil) {
			t.Fatalf("validDomain(%q) = %v, ValidateDomain says %v", s, validDomain(s), err)
		}
		if err != nil {
			if !errors.Is(err, ErrInvalid) || len(err.Error()) > 400 || !utf8.ValidString(err.Error()) {
				t.Fatalf("ValidateDomain(%q): bad error %q", s, err)
			}
			return
		}
		// Accepted: within the limits, and the parent chain takes it
		// apart and puts it back together label by label.
		labels := strings.Split(s, ".")
		if len(s) > MaxDomainLen || len(labels) > MaxDomainLabels {
			t.Fatalf("accepted %q beyond the limits", s)
		}
		rebuilt, d := labels[len(labels)-1], s
		for i := len(labels) - 2; i >= 0; i-- {
			p, ok := Parent(d)
			if !ok || ValidateDomain(p) != nil || p+"."+labels[i+1] != d {
				t.Fatalf("Parent(%q) = %q, %v", d, p, ok)
			}
			rebuilt, d = labels[i]+"."+rebuilt, p
		}
		if _, ok := Parent(d); ok || rebuilt != s {
			t.Fatalf("parent chain of %q ends at %q, rebuilt %q", s, d, rebuilt)
		}
		// Every valid domain can hold a model.
		if dom, name, err := SplitModelID(s + ".m"); dom != s || name != "m" || err != nil {
			t.Fatalf("SplitModelID(%q) = %q, %q, %v", s+".m", dom, name, err)
		}
	})
}

func FuzzSplitModelID(f *testing.F) {
	for _, tc := range validModelIDs {
		f.Add(tc.id)
	}
	for _, tc := range invalidModelIDs {
		f.Add(tc.id)
	}
	f.Fuzz(func(t *testing.T, id string) {
		domain, name, err := SplitModelID(id)
		refDomain, refName, ok := refSplitModelID(id)
		if ok != (err == nil) {
			t.Fatalf("SplitModelID(%q) = %q, %q, %v; the reference rules say valid=%v", id, domain, name, err, ok)
		}
		if err != nil {
			if !errors.Is(err, ErrInvalid) || domain != "" || name != "" || len(err.Error()) > 500 {
				t.Fatalf("SplitModelID(%q): bad result %q, %q, %q", id, domain, name, err)
			}
			return
		}
		if domain != refDomain || name != refName {
			t.Fatalf("SplitModelID(%q) = %q, %q; reference %q, %q", id, domain, name, refDomain, refName)
		}
		rebuilt := name
		if domain != "" {
			rebuilt = domain + "." + name
			if ValidateDomain(domain) != nil {
				t.Fatalf("SplitModelID(%q) returned invalid domain %q", id, domain)
			}
		}
		if rebuilt != id || strings.Contains(name, ".") || len(name) == 0 || len(name) > MaxModelNameLen {
			t.Fatalf("SplitModelID(%q) = %q, %q does not round-trip", id, domain, name)
		}
	})
}
