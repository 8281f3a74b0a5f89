package access

import (
	"errors"
	"strings"
	"testing"
)

func TestNewPolicyRefusesBadGrants(t *testing.T) {
	t.Parallel()
	_, err := NewPolicy([]Grant{
		grant("ok", User, "alice", "com", Read),
		grant("bad-kind", "role", "x", "com", Read),
		grant("bad-domain", User, "alice", "Com", Read),
		grant("dup", User, "alice", "com", All),
		grant("none", User, "bob", Wildcard, None),
	})
	for _, want := range []string{`"bad-kind"`, `"bad-domain"`, `grant "dup": grant already exists`, `"none"`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("NewPolicy error %v does not mention %s", err, want)
		}
	}
	if !errors.Is(err, ErrInvalid) || !errors.Is(err, ErrDuplicate) {
		t.Errorf("NewPolicy error %v does not wrap ErrInvalid and ErrDuplicate", err)
	}

	many := make([]Grant, 50)
	for i := range many {
		many[i] = grant("", User, "", "com", Read)
	}
	if _, err := NewPolicy(many); err == nil || !strings.Contains(err.Error(), "and 40 more bad grants") {
		t.Errorf("NewPolicy(50 bad grants) = %v, want a bounded report", err)
	}
}

func TestNewPolicyCopiesGrants(t *testing.T) {
	t.Parallel()
	gs := []Grant{grant("r", User, "alice", "com", Read)}
	p := mustPolicy(t, gs)
	gs[0].Privilege = All
	if d := p.Decide(alice, Target{Kind: Model, Domain: "com"}, All); d.Allowed {
		t.Errorf("changing the caller's slice changed the policy: %+v", d)
	}
	p.Grants()[0].Privilege = All
	if d := p.Decide(alice, Target{Kind: Model, Domain: "com"}, All); d.Allowed {
		t.Errorf("changing Grants() changed the policy: %+v", d)
	}
}

func TestDecideRefusesInvalidQuestions(t *testing.T) {
	t.Parallel()
	p := mustPolicy(t, []Grant{grant("w", User, "alice", Wildcard, All), grant("c", User, "alice", "com", All)})
	for _, tc := range []struct {
		name   string
		r      Requester
		target Target
		want   Privilege
	}{
		{"want none", alice, Target{Kind: Model, Domain: "com"}, None},
		{"want out of range", alice, Target{Kind: Model, Domain: "com"}, Privilege(4)},
		{"unknown kind", alice, Target{Kind: "secret", Domain: "com"}, Read},
		{"target domain *", alice, Target{Kind: Model, Domain: Wildcard}, Read},
		{"malformed target domain inheriting from com", alice, Target{Kind: Model, Domain: "com..x"}, Read},
		{"admin asking for none", admin, Target{Kind: Model, Domain: "com"}, None},
		{"admin with an unknown kind", admin, Target{Kind: "secret"}, Read},
		{"service account without id", Requester{Kind: ServiceAccount}, Target{Kind: Model}, Read},
	} {
		d := p.Decide(tc.r, tc.target, tc.want)
		if d.Allowed || d.Effective != None || d.Grant != nil || d.Reason == "" {
			t.Errorf("%s: Decide = %+v, want a denial with a reason", tc.name, d)
		}
	}
}

func TestEffective(t *testing.T) {
	t.Parallel()
	p := mustPolicy(t, []Grant{grant("w", User, "alice", Wildcard, Read), grant("c", Group, "dev", "com", All)})
	for _, tc := range []struct {
		r      Requester
		domain string
		want   Privilege
		id     string
	}{
		{alice, "", Read, "w"},
		{alice, Wildcard, Read, "w"},
		{alice, "com", None, ""},
		{aliceDev, "com.x", All, "c"},
		{aliceDev, "Com.x", None, ""},
		{Requester{ID: "alice", Kind: User, Admin: true}, "com", None, ""}, // Effective ignores Admin
	} {
		got, g := p.Effective(tc.r, tc.domain)
		id := ""
		if g != nil {
			id = g.ID
		}
		if got != tc.want || id != tc.id {
			t.Errorf("Effective(%+v, %q) = %v, %q; want %v, %q", tc.r, tc.domain, got, id, tc.want, tc.id)
		}
	}
}

func TestDecideDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	p, queries := benchPolicy(t)
	i := 0
	if n := testing.AllocsPerRun(10000, func() {
		q := &queries[i%len(queries)]
		i++
		_ = p.Decide(q.r, q.t, q.want)
	}); n != 0 {
		t.Errorf("Decide allocates %v times per call", n)
	}
}

func TestQuote(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"", `""`},
		{"abc", `"abc"`},
		{strings.Repeat("a", 46), `"` + strings.Repeat("a", 46) + `"`},
		{strings.Repeat("a", 47), `"` + strings.Repeat("a", 46) + `"... (47 bytes)`},
		{strings.Repeat("é", 30), `"` + strings.Repeat("é", 23) + `"... (60 bytes)`},
		{strings.Repeat("\x13", 20), `"` + strings.Repeat(`\x13`, 11) + `"... (20 bytes)`},
	} {
		if got := quote(tc.in); got != tc.want {
			t.Errorf("quote(%q) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

func TestQuoteInvalidUTF8(t *testing.T) {
	t.Parallel()
	if got, want := quote(strings.Repeat("\x85", 20)), `"`+strings.Repeat(`\x85`, 11)+`"... (20 bytes)`; got != want {
		t.Errorf("quote = %s, want %s", got, want)
	}
}
