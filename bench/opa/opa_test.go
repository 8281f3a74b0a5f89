//go:build opa

package opa_test

import (
	"bytes"
	"cmp"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/rampart-ml/rampart/internal/access"
)

// The workload of the access control issue's performance goal.
const (
	numDomains = 1000   // depth 1 to 4
	numGrants  = 10000  // to users, service accounts and groups
	numQueries = 100000 // requesters in 0 to 3 groups
	numUsers   = 2000
	numSAs     = 200
	numGroups  = 300
	goalRatio  = 20 // Decide at least this many times faster than OPA
)

var (
	seed = flag.Uint64("opa.seed", 1, "seed of the random workload")
	keep = flag.Bool("opa.keep", false, "keep the workload file and the OPA program (to profile it: rego -bench -cpuprofile)")
)

// query is one question to both sides.
type query struct {
	r    access.Requester
	t    access.Target
	want access.Privilege
}

// workload is the random policy and questions, shared by the test and the
// benchmark, with the files the OPA side reads.
type workload struct {
	policy  *access.Policy
	queries []query
	dir     string // temporary; removed by TestMain unless -opa.keep
	file    string // the workload as JSON, for the OPA side
	rego    string // the OPA program, built from ./rego
}

var (
	loadOnce sync.Once
	loaded   *workload
	loadErr  error
)

// load builds the workload and the OPA program once per test binary.
func load(tb testing.TB) *workload {
	tb.Helper()
	loadOnce.Do(func() { loaded, loadErr = newWorkload(*seed) })
	if loadErr != nil {
		tb.Fatal(loadErr)
	}
	return loaded
}

// results collects one row per benchmark run, for the summary TestMain
// prints.
var results []result

type result struct {
	decideNs, opaNs float64
	decideAllocs    float64
	opaAllocs       int64
	opaVersion      string
}

func TestMain(m *testing.M) {
	code := m.Run()
	switch {
	case loaded == nil:
	case *keep:
		fmt.Printf("kept the workload and the OPA program in %s\n", loaded.dir)
	default:
		os.RemoveAll(loaded.dir)
	}
	if len(results) > 0 {
		printSummary(os.Stdout, results)
	}
	os.Exit(code)
}

// TestDecideAgreesWithOPA is the differential test: OPA, evaluating the
// Rego restatement of the policy, and Decide must agree on every one of
// the 100,000 queries: allowed or not, the effective privilege, and
// whether admin decided it.
func TestDecideAgreesWithOPA(t *testing.T) {
	w := load(t)
	out := filepath.Join(w.dir, "decisions.json")
	runRego(t, w, "-workload", w.file, "-decisions", out)
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var fromOPA []decision
	if err := json.Unmarshal(b, &fromOPA); err != nil {
		t.Fatalf("OPA's decisions: %v", err)
	}
	if len(fromOPA) != len(w.queries) {
		t.Fatalf("OPA answered %d queries, want %d", len(fromOPA), len(w.queries))
	}

	mismatches := 0
	tally := map[decision]int{}
	for i, q := range w.queries {
		d := q.decide(w.policy)
		tally[d]++
		if d == fromOPA[i] {
			continue
		}
		if mismatches++; mismatches <= 10 {
			in, _ := json.Marshal(q.input())
			t.Errorf("query %d %s: Decide %+v, OPA %+v", i, in, d, fromOPA[i])
		}
	}
	if mismatches > 0 {
		t.Fatalf("%d of %d decisions differ", mismatches, len(w.queries))
	}

	// The agreement means something only if the queries reach every
	// kind of answer.
	keys := slices.SortedFunc(maps.Keys(tally), func(a, b decision) int {
		return cmp.Or(cmp.Compare(a.Effective, b.Effective), compareBool(a.Allowed, b.Allowed), compareBool(a.Admin, b.Admin))
	})
	for _, d := range keys {
		t.Logf("%6d × %+v", tally[d], d)
	}
	for _, d := range []decision{
		{Allowed: true, Effective: 3, Admin: true},
		{Allowed: false, Effective: 0}, // default deny (and invalid questions)
		{Allowed: true, Effective: 1}, {Allowed: true, Effective: 2}, {Allowed: true, Effective: 3},
		{Allowed: false, Effective: 1}, {Allowed: false, Effective: 2}, // too little
	} {
		if tally[d] < 100 {
			t.Errorf("only %d queries answered %+v: the workload does not exercise the policy", tally[d], d)
		}
	}
	t.Logf("all %d decisions agree (seed %d)", len(w.queries), *seed)
}

var sink access.Decision

// BenchmarkDecideVsOPA measures Decide (ns/op, allocs/op) and, in the
// same run, OPA on the same queries (opa-ns/op, opa-allocs/op; measured by
// the OPA program with testing.Benchmark for the same -benchtime), and
// reports how many times faster Decide is (x-faster). Both cycle through
// the 100,000 queries in the same order, on one goroutine.
func BenchmarkDecideVsOPA(b *testing.B) {
	w := load(b)
	benchtime := "1s"
	if f := flag.Lookup("test.benchtime"); f != nil && !strings.HasSuffix(f.Value.String(), "x") {
		benchtime = f.Value.String()
	}
	var opa timing
	if err := json.Unmarshal(runRego(b, w, "-workload", w.file, "-bench", "-benchtime", benchtime), &opa); err != nil {
		b.Fatalf("OPA's timing: %v", err)
	}

	b.ReportAllocs()
	var allocs runtime.MemStats
	runtime.ReadMemStats(&allocs)
	before := allocs.Mallocs
	i := 0
	for b.Loop() {
		q := &w.queries[i%len(w.queries)]
		sink = w.policy.Decide(q.r, q.t, q.want)
		i++
	}
	runtime.ReadMemStats(&allocs)
	decideNs := float64(b.Elapsed().Nanoseconds()) / float64(i)
	r := result{
		decideNs:     decideNs,
		decideAllocs: float64(allocs.Mallocs-before) / float64(i),
		opaNs:        opa.NsPerDecision,
		opaAllocs:    opa.AllocsPerDecision,
		opaVersion:   opa.OPAVersion,
	}
	results = append(results, r)
	b.ReportMetric(opa.NsPerDecision, "opa-ns/op")
	b.ReportMetric(float64(opa.AllocsPerDecision), "opa-allocs/op")
	b.ReportMetric(opa.NsPerDecision/decideNs, "x-faster")
}

// runRego runs the OPA program and returns its standard output.
func runRego(tb testing.TB, w *workload, args ...string) []byte {
	tb.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(w.rego, args...) // #nosec G204 -- our own program, built by newWorkload
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		tb.Fatalf("%s: %v\n%s", w.rego, err, stderr.Bytes())
	}
	return stdout.Bytes()
}

// decision is what the two sides must agree on; it is also the JSON the
// OPA program writes.
type decision struct {
	Allowed   bool `json:"allowed"`
	Effective int  `json:"effective"`
	Admin     bool `json:"admin"`
}

func (q *query) decide(p *access.Policy) decision {
	d := p.Decide(q.r, q.t, q.want)
	return decision{Allowed: d.Allowed, Effective: int(d.Effective), Admin: d.Admin}
}

// timing is what the OPA program prints with -bench.
type timing struct {
	NsPerDecision     float64 `json:"ns_per_decision"`
	AllocsPerDecision int64   `json:"allocs_per_decision"`
	OPAVersion        string  `json:"opa_version"`
	GoVersion         string  `json:"go_version"`
}

// input is q as the Rego policy's input document.
func (q *query) input() map[string]any {
	groups := q.r.Groups
	if groups == nil {
		groups = []string{}
	}
	return map[string]any{
		"requester": map[string]any{"id": q.r.ID, "kind": q.r.Kind, "groups": groups, "admin": q.r.Admin},
		"target":    map[string]any{"kind": q.t.Kind, "domain": q.t.Domain},
		"want":      q.want.String(), // "none" and "privilege(4)" for invalid wants
	}
}

// newWorkload generates the grants and queries, writes them for the OPA
// side and builds the OPA program.
func newWorkload(seed uint64) (*workload, error) {
	grants, queries := generate(seed)
	p, err := access.NewPolicy(grants)
	if err != nil {
		return nil, err
	}
	w := &workload{policy: p, queries: queries}
	if w.dir, err = os.MkdirTemp("", "rampart-bench-opa-"); err != nil {
		return nil, err
	}
	type grantJSON struct {
		SubjectKind access.SubjectKind `json:"subject_kind"`
		SubjectID   string             `json:"subject_id"`
		Domain      string             `json:"domain"`
		Privilege   string             `json:"privilege"`
	}
	doc := struct {
		Grants  []grantJSON      `json:"grants"`
		Queries []map[string]any `json:"queries"`
	}{}
	for _, g := range grants {
		doc.Grants = append(doc.Grants, grantJSON{g.Subject.Kind, g.Subject.ID, g.Domain, g.Privilege.String()})
	}
	for i := range queries {
		doc.Queries = append(doc.Queries, queries[i].input())
	}
	b, err := json.Marshal(doc)
	if err != nil {
		return nil, err
	}
	w.file = filepath.Join(w.dir, "workload.json")
	if err := os.WriteFile(w.file, b, 0o600); err != nil {
		return nil, err
	}

	// The OPA program is a module of its own: go build in its directory.
	w.rego = filepath.Join(w.dir, "rego")
	build := exec.Command("go", "build", "-buildvcs=false", "-o", w.rego, ".")
	build.Dir = "rego"
	if out, err := build.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("build the OPA program (bench/opa/rego): %v\n%s", err, out)
	}
	return w, nil
}

// generate makes the workload: numGrants grants over numDomains
// domains of depth 1 to 4 (2 % of them on "*"), and numQueries queries:
//
//   - 45 % random: a random requester in 0 to 3 random groups asks about a
//     known domain, a descendant without grants of its own, a look-alike
//     (tld1 vs tld12), or a target without a domain; mostly denials, which
//     walk every ancestor;
//   - 45 % from a grant: its holder (or a member of its group) asks about
//     its domain, a descendant or the parent; a holder of a grant on "*"
//     about a target without a domain or a named one; mostly allowed;
//   - 5 % admins, 5 % invalid questions (bad privilege, kind, domain or
//     requester), which are denied even to admins.
//
// Ids collide across subject kinds (a service account and a group may be
// called user-7), so a mix-up of subject kinds shows as a disagreement.
func generate(seed uint64) ([]access.Grant, []query) {
	rng := rand.New(rand.NewPCG(seed, 0x0ba))
	domains := make([]string, 0, numDomains)
	seen := map[string]bool{}
	for len(domains) < numDomains {
		var d string
		if len(domains) < 20 || rng.IntN(10) == 0 {
			d = fmt.Sprintf("tld%d", rng.IntN(40))
		} else {
			parent := domains[rng.IntN(len(domains))]
			if strings.Count(parent, ".") >= 3 {
				continue // depth 4 at most
			}
			d = fmt.Sprintf("%s.d%d", parent, rng.IntN(30))
		}
		if !seen[d] {
			seen[d] = true
			domains = append(domains, d)
		}
	}
	user := func() string { return fmt.Sprintf("user-%d", rng.IntN(numUsers)) }
	serviceAccount := func() string {
		if rng.IntN(20) == 0 {
			return user() // same id as a user
		}
		return fmt.Sprintf("sa-%d", rng.IntN(numSAs))
	}
	group := func() string {
		if rng.IntN(20) == 0 {
			return user() // same id as a user
		}
		return fmt.Sprintf("group-%d", rng.IntN(numGroups))
	}
	privilege := func() access.Privilege { return access.Privilege(1 + rng.IntN(3)) }

	grants := make([]access.Grant, 0, numGrants)
	used := map[string]bool{}
	for len(grants) < numGrants {
		g := access.Grant{ID: fmt.Sprintf("g%d", len(grants)), Privilege: privilege()}
		switch n := rng.IntN(10); {
		case n < 6:
			g.Subject = access.Subject{Kind: access.User, ID: user()}
		case n < 7:
			g.Subject = access.Subject{Kind: access.ServiceAccount, ID: serviceAccount()}
		default:
			g.Subject = access.Subject{Kind: access.Group, ID: group()}
		}
		if rng.IntN(50) == 0 {
			g.Domain = access.Wildcard
		} else {
			g.Domain = domains[rng.IntN(len(domains))]
		}
		key := fmt.Sprint(g.Subject.Kind, "\x00", g.Subject.ID, "\x00", g.Domain)
		if !used[key] {
			used[key] = true
			grants = append(grants, g)
		}
	}

	kinds := access.Kinds()
	requester := func() access.Requester {
		r := access.Requester{Kind: access.User, ID: user()}
		if rng.IntN(10) == 0 {
			r = access.Requester{Kind: access.ServiceAccount, ID: serviceAccount()}
		}
		for range rng.IntN(4) {
			r.Groups = append(r.Groups, group())
		}
		return r
	}
	queries := make([]query, numQueries)
	for i := range queries {
		q := query{r: requester(), t: access.Target{Kind: kinds[rng.IntN(len(kinds))], ID: "target"}, want: privilege()}
		switch n := rng.IntN(100); {
		case n < 45: // random
			switch m := rng.IntN(20); {
			case m < 2: // no domain
			case m < 4:
				q.t.Domain = domains[rng.IntN(len(domains))] + ".leaf.x"
			case m < 5:
				q.t.Domain = fmt.Sprintf("tld%d", 10+rng.IntN(90)) // some exist, tld1 is no parent of tld12
			default:
				q.t.Domain = domains[rng.IntN(len(domains))]
			}
		case n < 90: // from a grant
			g := grants[rng.IntN(len(grants))]
			switch g.Subject.Kind {
			case access.Group:
				q.r.Groups = append(q.r.Groups, g.Subject.ID)
				rng.Shuffle(len(q.r.Groups), func(i, j int) { q.r.Groups[i], q.r.Groups[j] = q.r.Groups[j], q.r.Groups[i] })
			default:
				q.r.Kind, q.r.ID = g.Subject.Kind, g.Subject.ID
			}
			switch m := rng.IntN(10); {
			case g.Domain == access.Wildcard && m < 7: // no domain
			case g.Domain == access.Wildcard: // "*" must not reach a named domain
				q.t.Domain = domains[rng.IntN(len(domains))]
			case m < 4:
				q.t.Domain = g.Domain
			case m < 8:
				q.t.Domain = g.Domain + ".sub.leaf"
			default:
				if parent, ok := access.Parent(g.Domain); ok {
					q.t.Domain = parent
				} else {
					q.t.Domain = g.Domain + "x" // a look-alike
				}
			}
		case n < 95: // an admin
			q.r.Admin = true
			if rng.IntN(2) == 0 {
				q.t.Domain = domains[rng.IntN(len(domains))]
			}
		default: // an invalid question
			q.t.Domain = domains[rng.IntN(len(domains))]
			q.r.Admin = rng.IntN(4) == 0
			switch rng.IntN(5) {
			case 0:
				q.want = access.Privilege(rng.IntN(2) * 4) // none or out of range
			case 1:
				q.t.Kind = []access.Kind{"bogus", "Model", ""}[rng.IntN(3)]
			case 2:
				q.t.Domain = []string{"*", "Tld1", "tld1..d2", "-tld1", "tld1.", "a.b.c.d.e.f.g.h.i.j.k",
					strings.Repeat("x", 64)}[rng.IntN(7)]
			case 3:
				q.r.Kind = []access.SubjectKind{access.Group, ""}[rng.IntN(2)]
			default:
				q.r.ID = ""
			}
		}
		queries[i] = q
	}
	return grants, queries
}

// printSummary prints the benchmark runs and their medians as Markdown.
func printSummary(out io.Writer, rs []result) {
	median := func(f func(result) float64) float64 {
		xs := make([]float64, len(rs))
		for i, r := range rs {
			xs[i] = f(r)
		}
		slices.Sort(xs)
		return xs[len(xs)/2]
	}
	decide := median(func(r result) float64 { return r.decideNs })
	opa := median(func(r result) float64 { return r.opaNs })
	ratio := median(func(r result) float64 { return r.opaNs / r.decideNs })
	lo := slices.MinFunc(rs, func(a, b result) int { return cmp.Compare(a.opaNs/a.decideNs, b.opaNs/b.decideNs) })
	hi := slices.MaxFunc(rs, func(a, b result) int { return cmp.Compare(a.opaNs/a.decideNs, b.opaNs/b.decideNs) })
	verdict := "met"
	if ratio < goalRatio {
		verdict = "NOT met"
	}
	fmt.Fprintf(out, "\nDecide vs OPA %s (Rego, in-process), %s %s/%s, %d CPUs, %d runs (medians):\n\n",
		rs[0].opaVersion, runtime.Version(), runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), len(rs))
	fmt.Fprintln(out, "| side | median ns/decision | allocs/decision | ratio |")
	fmt.Fprintln(out, "|---|---:|---:|---:|")
	fmt.Fprintf(out, "| OPA (Rego) | %.0f | %d | 1.00× |\n", opa, rs[0].opaAllocs)
	fmt.Fprintf(out, "| access.Policy.Decide | %.0f | %.2f | **%.0f× faster** (runs %.0f–%.0f×) |\n",
		decide, rs[0].decideAllocs, ratio, lo.opaNs/lo.decideNs, hi.opaNs/hi.decideNs)
	fmt.Fprintf(out, "\nGoal ≥ %d×: %s.\n", goalRatio, verdict)
}

func compareBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case b:
		return -1
	}
	return 1
}
