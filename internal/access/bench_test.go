package access

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

type benchQuery struct {
	r    Requester
	t    Target
	want Privilege
}

// benchPolicy builds the benchmark shape: 10,000 grants over 1,000
// domains of depth 1 to 4 (plus some on "*"), to 2,000 users, 200 service
// accounts and 300 groups; and 4,096 queries from requesters in 0 to 3
// groups about targets in those domains, deeper descendants and no domain.
// benchPolicy returns the random queries (most of them denials, which
// walk every ancestor) followed by 4,096 queries derived from grants (a
// holder of a grant, or a member of the granted group, asking about the
// grant's domain or a descendant, most of them allowed).
func benchPolicy(tb testing.TB) (*Policy, []benchQuery) {
	tb.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	domains := make([]string, 0, 1000)
	seen := map[string]bool{}
	for len(domains) < 1000 {
		var d string
		if len(domains) < 20 || rng.IntN(10) == 0 {
			d = fmt.Sprintf("tld%d", rng.IntN(40))
		} else {
			parent := domains[rng.IntN(len(domains))]
			if countLabels(parent) >= 4 {
				continue
			}
			d = fmt.Sprintf("%s.d%d", parent, rng.IntN(30))
		}
		if !seen[d] {
			seen[d] = true
			domains = append(domains, d)
		}
	}
	subject := func() Subject {
		switch n := rng.IntN(10); {
		case n < 6:
			return Subject{User, fmt.Sprintf("user-%d", rng.IntN(2000))}
		case n < 7:
			return Subject{ServiceAccount, fmt.Sprintf("sa-%d", rng.IntN(200))}
		default:
			return Subject{Group, fmt.Sprintf("group-%d", rng.IntN(300))}
		}
	}
	grants := make([]Grant, 0, 10000)
	used := map[grantKey]bool{}
	for len(grants) < 10000 {
		g := Grant{ID: fmt.Sprintf("g%d", len(grants)), Subject: subject(), Privilege: Privilege(1 + rng.IntN(3))}
		if rng.IntN(50) == 0 {
			g.Domain = Wildcard
		} else {
			g.Domain = domains[rng.IntN(len(domains))]
		}
		if !used[keyOf(&g)] {
			used[keyOf(&g)] = true
			grants = append(grants, g)
		}
	}
	p, err := NewPolicy(grants)
	if err != nil {
		tb.Fatal(err)
	}
	queries := make([]benchQuery, 4096, 2*4096)
	for i := range queries {
		var r Requester
		if rng.IntN(10) == 0 {
			r = Requester{Kind: ServiceAccount, ID: fmt.Sprintf("sa-%d", rng.IntN(200))}
		} else {
			r = Requester{Kind: User, ID: fmt.Sprintf("user-%d", rng.IntN(2000))}
		}
		for range rng.IntN(4) {
			r.Groups = append(r.Groups, fmt.Sprintf("group-%d", rng.IntN(300)))
		}
		t := Target{Kind: kinds[rng.IntN(len(kinds))], ID: "target"}
		switch n := rng.IntN(10); {
		case n == 0: // no domain
		case n == 1: // a descendant without grants of its own
			t.Domain = domains[rng.IntN(len(domains))] + ".leaf.x"
		default:
			t.Domain = domains[rng.IntN(len(domains))]
		}
		queries[i] = benchQuery{r, t, Privilege(1 + rng.IntN(3))}
	}
	for range 4096 {
		g := grants[rng.IntN(len(grants))]
		r := Requester{Kind: g.Subject.Kind, ID: g.Subject.ID}
		if g.Subject.Kind == Group {
			r = Requester{Kind: User, ID: fmt.Sprintf("user-%d", rng.IntN(2000)),
				Groups: []string{fmt.Sprintf("group-%d", rng.IntN(300)), g.Subject.ID}}
		}
		t := Target{Kind: kinds[rng.IntN(len(kinds))], ID: "target"}
		switch {
		case g.Domain == Wildcard:
		case rng.IntN(2) == 0:
			t.Domain = g.Domain + ".sub.leaf"
		default:
			t.Domain = g.Domain
		}
		queries = append(queries, benchQuery{r, t, Privilege(1 + rng.IntN(3))})
	}
	return p, queries
}

func countLabels(d string) int {
	n := 1
	for i := range len(d) {
		if d[i] == '.' {
			n++
		}
	}
	return n
}

var sinkDecision Decision

func BenchmarkDecide(b *testing.B) {
	p, queries := benchPolicy(b)
	for _, bc := range []struct {
		name    string
		queries []benchQuery
	}{
		{"random", queries[:4096]},
		{"granted", queries[4096:]},
	} {
		b.Run(bc.name, func(b *testing.B) {
			allowed := 0
			for _, q := range bc.queries {
				if p.Decide(q.r, q.t, q.want).Allowed {
					allowed++
				}
			}
			b.Logf("%d of %d queries are allowed", allowed, len(bc.queries))
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				q := &bc.queries[i&(len(bc.queries)-1)]
				i++
				sinkDecision = p.Decide(q.r, q.t, q.want)
			}
		})
	}
}
