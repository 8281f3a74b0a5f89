package access

import (
	"errors"
	"fmt"
	"math/rand"
	"reflect"
	"strings"
	"testing"
	"testing/quick"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// The property tests draw from a small universe so that random grants,
// requesters and targets collide often: ids shared across subject kinds,
// look-alike domains (a and ab), deep descendants without grants of their
// own, and the occasional invalid input.
var (
	propGrantDomains  = []string{"*", "a", "a.b", "a.b.c", "a.b.c.d", "a.e", "ab", "ab.b", "x", "x.a"}
	propTargetDomains = append([]string{"", "", "a.b.z", "a.b.c.d.e", "q", "b", "x.a.b"}, propGrantDomains[1:]...)
	propBadDomains    = []string{"*", "A", "a..b", "-a", ".a"}
	propSubjects      = []Subject{
		{User, "u1"}, {User, "u2"}, {User, "u3"},
		{ServiceAccount, "s1"}, {ServiceAccount, "u1"}, // u1 is a user and a service account
		{Group, "g1"}, {Group, "g2"}, {Group, "g3"}, {Group, "u1"}, // and a group
	}
	propRequesterIDs = []string{"u1", "u2", "u3", "s1"}
	propGroups       = []string{"g1", "g2", "g3", "u1", ""}
)

// scenario is a random policy and question, generated for testing/quick.
type scenario struct {
	Grants    []Grant   // no two on the same (subject, domain)
	Extra     Grant     // a valid grant on a (subject, domain) not in Grants
	Requester Requester // never an admin unless Admin is set below
	Target    Target
	Want      Privilege
	Pick      int // an index into Grants when it is not empty
}

func pick[T any](r *rand.Rand, xs []T) T { return xs[r.Intn(len(xs))] }

func (scenario) Generate(r *rand.Rand, size int) reflect.Value {
	var s scenario
	used := map[grantKey]bool{}
	n := r.Intn(min(size, 25) + 1)
	for i := 0; i <= n; i++ { // the last one becomes Extra
		g := Grant{
			ID:        fmt.Sprintf("g%d", i),
			Subject:   pick(r, propSubjects),
			Domain:    pick(r, propGrantDomains),
			Privilege: Privilege(1 + r.Intn(3)),
		}
		if used[keyOf(&g)] {
			continue
		}
		used[keyOf(&g)] = true
		s.Grants = append(s.Grants, g)
	}
	s.Extra, s.Grants = s.Grants[len(s.Grants)-1], s.Grants[:len(s.Grants)-1]
	if len(s.Grants) > 0 {
		s.Pick = r.Intn(len(s.Grants))
	}

	s.Requester = Requester{ID: pick(r, propRequesterIDs), Kind: User, Admin: r.Intn(20) == 0}
	if r.Intn(4) == 0 {
		s.Requester.Kind = ServiceAccount
	}
	for range r.Intn(4) {
		s.Requester.Groups = append(s.Requester.Groups, pick(r, propGroups))
	}
	switch r.Intn(40) { // occasionally invalid requesters
	case 0:
		s.Requester.Kind = Group
	case 1:
		s.Requester.ID = ""
	}

	s.Target = Target{Kind: pick(r, kinds[:]), Domain: pick(r, propTargetDomains), ID: "t"}
	switch r.Intn(40) { // occasionally invalid questions
	case 0:
		s.Target.Kind = "bogus"
	case 1:
		s.Target.Domain = pick(r, propBadDomains)
	}
	s.Want = Privilege(1 + r.Intn(3))
	if r.Intn(40) == 0 {
		s.Want = Privilege(r.Intn(2) * 4) // None or out of range
	}
	return reflect.ValueOf(s)
}

func mustPolicy(t *testing.T, grants []Grant) *Policy {
	t.Helper()
	p, err := NewPolicy(grants)
	if err != nil {
		t.Fatalf("NewPolicy: %v", err)
	}
	return p
}

func checkProperty(t *testing.T, f any) {
	t.Helper()
	if err := quick.Check(f, &quick.Config{MaxCount: 20000, Rand: rand.New(rand.NewSource(1))}); err != nil {
		t.Error(err)
	}
}

func without(grants []Grant, i int) []Grant {
	return append(grants[:i:i], grants[i+1:]...)
}

// decisionsOnly compares what a decision says, not how it words it.
var decisionsOnly = cmpopts.IgnoreFields(Decision{}, "Reason")

func TestPropertyMatchesReference(t *testing.T) {
	t.Parallel()
	checkProperty(t, func(s scenario) bool {
		p := mustPolicy(t, s.Grants)
		got := p.Decide(s.Requester, s.Target, s.Want)
		want := refDecide(s.Grants, s.Requester, s.Target, s.Want)
		if d := cmp.Diff(want, got, decisionsOnly); d != "" {
			t.Logf("Decide(%+v, %+v, %v) with %+v: -reference +got:\n%s", s.Requester, s.Target, s.Want, s.Grants, d)
			return false
		}
		if got.Reason == "" {
			t.Logf("empty reason for %+v", got)
			return false
		}
		// Effective agrees with the reference on every domain, and
		// with Decide.
		for _, d := range propTargetDomains {
			gotP, gotG := p.Effective(s.Requester, d)
			wantP, wantG := refEffective(s.Grants, s.Requester, d)
			if gotP != wantP || !cmp.Equal(gotG, wantG) {
				t.Logf("Effective(%+v, %q) = %v %+v, reference %v %+v", s.Requester, d, gotP, gotG, wantP, wantG)
				return false
			}
		}
		return true
	})
}

func TestPropertyAddingGrantNeverRemovesAccess(t *testing.T) {
	t.Parallel()
	checkProperty(t, func(s scenario) bool {
		before := mustPolicy(t, s.Grants).Decide(s.Requester, s.Target, s.Want)
		after := mustPolicy(t, append(s.Grants[:len(s.Grants):len(s.Grants)], s.Extra)).Decide(s.Requester, s.Target, s.Want)
		return after.Effective >= before.Effective && (!before.Allowed || after.Allowed)
	})
}

func TestPropertyRevokingGrantNeverAddsAccess(t *testing.T) {
	t.Parallel()
	checkProperty(t, func(s scenario) bool {
		if len(s.Grants) == 0 {
			return true
		}
		before := mustPolicy(t, s.Grants).Decide(s.Requester, s.Target, s.Want)
		after := mustPolicy(t, without(s.Grants, s.Pick)).Decide(s.Requester, s.Target, s.Want)
		return after.Effective <= before.Effective && (before.Allowed || !after.Allowed)
	})
}

func TestPropertyParentGrantReachesEveryDescendant(t *testing.T) {
	t.Parallel()
	labels := []string{"a", "b", "z", "0", "x-y"}
	checkProperty(t, func(s scenario, extraLabels uint8) bool {
		if len(s.Grants) == 0 || s.Grants[s.Pick].Domain == Wildcard {
			return true
		}
		g := s.Grants[s.Pick]
		// A requester holding g's subject, with whatever else it has.
		r := s.Requester
		r.Admin = false
		if g.Subject.Kind == Group {
			r.Groups = append(r.Groups[:len(r.Groups):len(r.Groups)], g.Subject.ID)
			if !r.valid() {
				r.Kind, r.ID = User, "u9"
			}
		} else {
			r.Kind, r.ID = g.Subject.Kind, g.Subject.ID
		}
		// A descendant (or the domain itself) up to the depth limit.
		d := g.Domain
		for i := range int(extraLabels % 7) {
			if strings.Count(d, ".")+1 == MaxDomainLabels {
				break
			}
			d += "." + labels[(i+int(extraLabels))%len(labels)]
		}
		dec := mustPolicy(t, s.Grants).Decide(r, Target{Kind: s.Target.Kind, Domain: d}, g.Privilege)
		if !s.Target.Kind.Valid() {
			return !dec.Allowed
		}
		if !dec.Allowed || dec.Effective < g.Privilege {
			t.Logf("grant %+v does not reach %q for %+v: %+v", g, d, r, dec)
			return false
		}
		return true
	})
}

func TestPropertyNoGrantsAlwaysDeny(t *testing.T) {
	t.Parallel()
	for _, p := range []*Policy{nil, {}, mustPolicy(t, nil)} {
		checkProperty(t, func(s scenario) bool {
			r := s.Requester
			r.Admin = false
			d := p.Decide(r, s.Target, s.Want)
			return !d.Allowed && d.Effective == None && d.Grant == nil && !d.Admin && d.Reason != ""
		})
	}
}

func TestPropertyWildcardAndNamedDomainsNeverMix(t *testing.T) {
	t.Parallel()
	checkProperty(t, func(s scenario) bool {
		var wild, named []Grant
		for _, g := range s.Grants {
			if g.Domain == Wildcard {
				wild = append(wild, g)
			} else {
				named = append(named, g)
			}
		}
		all := mustPolicy(t, s.Grants).Decide(s.Requester, s.Target, s.Want)
		onlyWild := mustPolicy(t, wild).Decide(s.Requester, s.Target, s.Want)
		onlyNamed := mustPolicy(t, named).Decide(s.Requester, s.Target, s.Want)
		if s.Requester.Admin {
			return true
		}
		if s.Target.Domain == "" {
			// "*" grants alone decide; named grants never allow.
			return cmp.Equal(all, onlyWild) && !onlyNamed.Allowed && onlyNamed.Effective == None
		}
		// Named domains: "*" grants change nothing and never allow.
		return cmp.Equal(all, onlyNamed) && !onlyWild.Allowed && onlyWild.Effective == None
	})
}

func TestPropertyCheckNewGrantMatchesReference(t *testing.T) {
	t.Parallel()
	checkProperty(t, func(s scenario, subject, domain, priv uint8) bool {
		p := mustPolicy(t, s.Grants)
		// Half the time a fresh random grant (duplicates likely), half
		// the time Extra, sometimes invalid.
		n := s.Extra
		if subject%2 == 0 {
			n = Grant{ID: "new", Subject: propSubjects[int(subject)%len(propSubjects)],
				Domain: propGrantDomains[int(domain)%len(propGrantDomains)], Privilege: Privilege(priv % 5)}
		}
		if domain%30 == 0 {
			n.Domain = propBadDomains[int(priv)%len(propBadDomains)]
		}
		err := p.CheckNewGrant(n)
		want := refCheckNewGrant(s.Grants, n)
		var got string
		switch {
		case err == nil:
		case errors.Is(err, ErrInvalid):
			got = "invalid"
		case errors.Is(err, ErrDuplicate):
			got = "duplicate"
		case errors.Is(err, ErrRedundant):
			got = "redundant"
		default:
			got = "unexpected: " + err.Error()
		}
		if got != want {
			t.Logf("CheckNewGrant(%+v) with %+v = %v, reference %q", n, s.Grants, err, want)
			return false
		}
		// Accepting a grant keeps the policy buildable.
		if err == nil {
			if _, err := NewPolicy(append(s.Grants[:len(s.Grants):len(s.Grants)], n)); err != nil {
				t.Logf("accepted %+v but NewPolicy refuses it: %v", n, err)
				return false
			}
		}
		return true
	})
}

func TestPropertyMayGrantMatchesReference(t *testing.T) {
	t.Parallel()
	checkProperty(t, func(s scenario, domain, priv uint8) bool {
		n := Grant{ID: "new", Subject: Subject{User, "u2"}, Privilege: Privilege(priv % 5),
			Domain: propGrantDomains[int(domain)%len(propGrantDomains)]}
		switch domain % 20 {
		case 0:
			n.Domain = pick(rand.New(rand.NewSource(int64(priv))), propBadDomains[1:])
		case 1:
			n.Domain = "a.b.c.q" // a descendant without grants of its own
		}
		err := mustPolicy(t, s.Grants).MayGrant(s.Requester, n)
		if want := refMayGrant(s.Grants, s.Requester, n); (err == nil) != want {
			t.Logf("MayGrant(%+v, %+v) with %+v = %v, reference %v", s.Requester, n, s.Grants, err, want)
			return false
		}
		return err == nil || errors.Is(err, ErrForbidden) || errors.Is(err, ErrInvalid)
	})
}
