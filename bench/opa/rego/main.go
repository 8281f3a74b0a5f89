// Command rego answers Rampart's access questions with OPA: the policy of
// access.Policy.Decide restated in Rego (policy.rego), prepared once and
// evaluated in-process with the grants as OPA data. It is the OPA side of
// the comparison in bench/opa, whose test builds and runs it; it lives in a
// module of its own so that Rampart itself never depends on OPA.
//
// It reads a workload (JSON: the grants and the queries, each query being
// the policy's input document) and then either answers every query once,
// in order, or measures how long one answer takes:
//
//	rego -workload w.json -decisions d.json    # the answers, for the differential test
//	rego -workload w.json -bench -benchtime 2s # JSON on stdout: ns per decision, versions
//
// For work on the Rego side, -policy evaluates another policy file and
// -cpuprofile profiles -bench.
//
// OPA is given every fair advantage: the grants are indexed as a Rego
// author would index them, data.grants[subject kind][subject id][domain] =
// privilege, so every match is a direct look-up, not a scan; the store
// holds them as AST values; queries are converted to OPA's AST before
// timing starts; and evaluation collects no metrics. The timing covers
// what remains: the store transaction, evaluation, and the conversion of
// the result to Go values.
package main

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"strings"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/metrics"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
	"github.com/open-policy-agent/opa/v1/version"
)

//go:embed policy.rego
var policy string

// query is the Rego query the program prepares.
const query = "data.rampart.access.decision"

// Workload is the input file: written by the test in bench/opa.
type Workload struct {
	Grants  []Grant           `json:"grants"`
	Queries []json.RawMessage `json:"queries"` // each the policy's input document
}

// Grant is one grant, with the privilege by name ("infer", "read", "all").
type Grant struct {
	SubjectKind string `json:"subject_kind"`
	SubjectID   string `json:"subject_id"`
	Domain      string `json:"domain"`
	Privilege   string `json:"privilege"`
}

// Decision is OPA's answer to one query.
type Decision struct {
	Allowed   bool `json:"allowed"`
	Effective int  `json:"effective"` // 0 none, 1 infer, 2 read, 3 all
	Admin     bool `json:"admin"`
}

// Timing is what -bench prints.
type Timing struct {
	NsPerDecision     float64 `json:"ns_per_decision"`
	AllocsPerDecision int64   `json:"allocs_per_decision"`
	BytesPerDecision  int64   `json:"bytes_per_decision"`
	Decisions         int     `json:"decisions"` // how many the measurement made
	OPAVersion        string  `json:"opa_version"`
	GoVersion         string  `json:"go_version"`
}

func main() {
	if err := realMain(context.Background(), os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "rego:", err)
		os.Exit(1)
	}
}

func realMain(ctx context.Context, args []string) error {
	testing.Init() // registers -test.benchtime, which testing.Benchmark reads
	fs := flag.NewFlagSet("rego", flag.ContinueOnError)
	workloadPath := fs.String("workload", "", "the workload `file` (JSON)")
	decisionsPath := fs.String("decisions", "", "answer every query once and write the answers to `file` (JSON)")
	bench := fs.Bool("bench", false, "measure the time per decision and print it as JSON")
	benchtime := fs.Duration("benchtime", time.Second, "how long -bench measures")
	policyPath := fs.String("policy", "", "evaluate the Rego policy in `file` instead of the built-in policy.rego")
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile of -bench to `file`")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *workloadPath == "" || (*decisionsPath == "") == !*bench {
		return errors.New("usage: rego -workload FILE (-decisions FILE | -bench [-benchtime D])")
	}
	if err := flag.Set("test.benchtime", benchtime.String()); err != nil {
		return err
	}

	w, err := readWorkload(*workloadPath)
	if err != nil {
		return err
	}
	module := policy
	if *policyPath != "" {
		b, err := os.ReadFile(*policyPath) // #nosec G304 -- the caller's own policy file
		if err != nil {
			return err
		}
		module = string(b)
	}
	e, err := newEvaluator(ctx, module, w.Grants)
	if err != nil {
		return err
	}
	inputs := make([]ast.Value, len(w.Queries))
	for i, q := range w.Queries {
		if inputs[i], err = ast.ValueFromReader(strings.NewReader(string(q))); err != nil {
			return fmt.Errorf("query %d: %w", i, err)
		}
	}
	if len(inputs) == 0 {
		return errors.New("the workload has no queries")
	}

	if *decisionsPath != "" {
		return writeDecisions(ctx, e, inputs, *decisionsPath)
	}
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile) // #nosec G304 -- the caller's own output file
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	return runBench(ctx, e, inputs)
}

func readWorkload(path string) (*Workload, error) {
	b, err := os.ReadFile(path) // #nosec G304 -- the path is the caller's own workload file
	if err != nil {
		return nil, fmt.Errorf("read workload: %w", err)
	}
	var w Workload
	if err := json.Unmarshal(b, &w); err != nil {
		return nil, fmt.Errorf("read workload %s: %w", path, err)
	}
	return &w, nil
}

// evaluator is the prepared query.
type evaluator struct {
	pq      rego.PreparedEvalQuery
	metrics metrics.Metrics
}

func newEvaluator(ctx context.Context, module string, grants []Grant) (*evaluator, error) {
	// data.grants[subject kind][subject id][domain] = privilege.
	index := map[string]any{}
	for _, g := range grants {
		byID, ok := index[g.SubjectKind].(map[string]any)
		if !ok {
			byID = map[string]any{}
			index[g.SubjectKind] = byID
		}
		byDomain, ok := byID[g.SubjectID].(map[string]any)
		if !ok {
			byDomain = map[string]any{}
			byID[g.SubjectID] = byDomain
		}
		if _, dup := byDomain[g.Domain]; dup {
			return nil, fmt.Errorf("two grants to %s %q on %q", g.SubjectKind, g.SubjectID, g.Domain)
		}
		byDomain[g.Domain] = g.Privilege
	}
	store := inmem.NewFromObjectWithOpts(map[string]any{"grants": index},
		inmem.OptRoundTripOnWrite(false), inmem.OptReturnASTValuesOnRead(true))
	pq, err := rego.New(
		rego.Query(query),
		rego.Module("policy.rego", module),
		rego.Store(store),
	).PrepareForEval(ctx)
	if err != nil {
		return nil, fmt.Errorf("prepare the policy: %w", err)
	}
	// No metrics: OPA would otherwise make a fresh set per evaluation.
	return &evaluator{pq: pq, metrics: metrics.NoOp()}, nil
}

// decide evaluates the policy for one input.
func (e *evaluator) decide(ctx context.Context, input ast.Value) (Decision, error) {
	rs, err := e.pq.Eval(ctx, rego.EvalParsedInput(input), rego.EvalMetrics(e.metrics))
	if err != nil {
		return Decision{}, err
	}
	if len(rs) != 1 || len(rs[0].Expressions) != 1 {
		return Decision{}, fmt.Errorf("%s is undefined or not one value: %v", query, rs)
	}
	obj, ok := rs[0].Expressions[0].Value.(map[string]any)
	if !ok {
		return Decision{}, fmt.Errorf("%s is not an object: %v", query, rs[0].Expressions[0].Value)
	}
	var d Decision
	d.Allowed, _ = obj["allowed"].(bool)
	d.Admin, _ = obj["admin"].(bool)
	n, ok := obj["effective"].(json.Number)
	if !ok {
		return Decision{}, fmt.Errorf("%s: effective is not a number: %v", query, obj)
	}
	eff, err := n.Int64()
	if err != nil || eff < 0 || eff > 3 {
		return Decision{}, fmt.Errorf("%s: effective %v is not 0 to 3", query, n)
	}
	d.Effective = int(eff)
	return d, nil
}

func writeDecisions(ctx context.Context, e *evaluator, inputs []ast.Value, path string) error {
	out := make([]Decision, len(inputs))
	for i, in := range inputs {
		d, err := e.decide(ctx, in)
		if err != nil {
			return fmt.Errorf("query %d: %w", i, err)
		}
		out[i] = d
	}
	b, err := json.Marshal(out)
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return fmt.Errorf("write decisions: %w", err)
	}
	return nil
}

// runBench measures with the standard benchmark machinery (b.Loop), cycling
// through the queries in order, exactly as the Decide side does.
func runBench(ctx context.Context, e *evaluator, inputs []ast.Value) error {
	var failed error
	res := testing.Benchmark(func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if _, err := e.decide(ctx, inputs[i%len(inputs)]); err != nil {
				failed = err
				b.FailNow()
			}
			i++
		}
	})
	if failed != nil {
		return failed
	}
	if res.N == 0 {
		return errors.New("the benchmark did not run")
	}
	return json.NewEncoder(os.Stdout).Encode(Timing{
		NsPerDecision:     float64(res.T.Nanoseconds()) / float64(res.N),
		AllocsPerDecision: res.AllocsPerOp(),
		BytesPerDecision:  res.AllocedBytesPerOp(),
		Decisions:         res.N,
		OPAVersion:        version.Version,
		GoVersion:         runtime.Version(),
	})
}
