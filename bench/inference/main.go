// Command inference measures issue 8's performance goals in one run:
// the in-process ONNX Runtime baseline (internal/runtime/onnx) against the
// full secure path of a real `rampart serve` (TLS keep-alive, bearer
// token of a client_credentials service account, authz, validation,
// audit sampling, worker IPC into a sandboxed worker), over REST and gRPC,
// for PaddleOCR's classifier (1×3×48×192, ~1 ms) and the binding's random
// forest (~10 µs). Sequential latency is measured by this process as the
// client; throughput by ghz (gRPC) and wrk (REST) as separate processes.
// It also compares JSON with the binary tensor extension for a
// 1×3×224×224 FP32 tensor, and a ready worker's RSS with the model's ORT
// session in a fresh process. Every ratio is against a baseline from the
// same run. Not part of make test; run it with make bench-inference.
package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/rampart-ml/rampart/internal/runtime/onnx"
	"github.com/rampart-ml/rampart/internal/tensor"
)

func main() {
	if err := realMain(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, "inference:", err)
		os.Exit(1)
	}
}

type options struct {
	binary, ghz, wrk string
	oauth2Proxy      string // the peer stack's proxy; skipped when missing
	seqCls, seqRF    int
	rounds           int
	duration         time.Duration
	clsSpec, rfSpec  serviceSpec
	clsLoad, rfLoad  int // concurrent requests of the load generators
	raw              string
	perf             string // a directory for perf recordings of the load runs; "": none
}

func realMain(ctx context.Context) error {
	var o options
	probe := flag.String("mem-probe", "", "internal: print the RSS of ORT with this model loaded, then exit")
	probeInput := flag.String("mem-probe-input", "", "internal: the probe's input kind")
	home, _ := os.UserHomeDir()
	tools := filepath.Join(home, ".cache", "rampart", "tools")
	flag.StringVar(&o.binary, "rampart", "bin/rampart", "the server binary")
	flag.StringVar(&o.ghz, "ghz", filepath.Join(tools, "ghz-v0.120.0"), "the ghz binary")
	flag.StringVar(&o.wrk, "wrk", "wrk", "the wrk binary")
	flag.StringVar(&o.oauth2Proxy, "oauth2-proxy", filepath.Join(tools, "oauth2-proxy-v7.8.1"), "the oauth2-proxy binary of the peer stack (skipped when missing)")
	flag.IntVar(&o.seqCls, "seq-cls", 1000, "sequential calls per round for the classifier")
	flag.IntVar(&o.seqRF, "seq-rf", 5000, "sequential calls per round for the random forest")
	flag.IntVar(&o.rounds, "rounds", 3, "rounds of sequential measurements, the kinds interleaved")
	flag.DurationVar(&o.duration, "duration", 10*time.Second, "length of each throughput measurement")
	flag.IntVar(&o.clsSpec.replicas, "cls-replicas", 2, "replicas of the classifier's service")
	flag.IntVar(&o.clsSpec.maxConcurrent, "cls-max-concurrent", 2, "limits.max_concurrent of the classifier's service")
	flag.IntVar(&o.rfSpec.replicas, "rf-replicas", 2, "replicas of the random forest's service")
	flag.IntVar(&o.rfSpec.maxConcurrent, "rf-max-concurrent", 8, "limits.max_concurrent of the random forest's service")
	flag.IntVar(&o.clsLoad, "cls-load", 4, "concurrent requests of the load generators for the classifier")
	flag.IntVar(&o.rfLoad, "rf-load", 32, "concurrent requests of the load generators for the random forest")
	flag.StringVar(&o.raw, "raw", "", "write the load generators' raw output to this file")
	flag.StringVar(&o.perf, "perf", "", "record the server and workers with perf during each load run into this directory (MODEL-grpc.data, MODEL-rest.data)")
	flag.Parse()
	if *probe != "" {
		return runMemProbe(*probe, *probeInput)
	}
	work, err := os.MkdirTemp("", "rampart-bench-inference-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	return run(ctx, o, work)
}

// row is one line of the table.
type row struct {
	name, p50, p99, added, rps, ratio, note string
}

type report struct {
	rows     []row
	commands []string
	raw      []string
}

func (r *report) add(x row) {
	r.rows = append(r.rows, x)
	fmt.Fprintf(os.Stderr, "  %s: p50 %s p99 %s %s %s %s %s\n", x.name, x.p50, x.p99, x.added, x.rps, x.ratio, x.note)
}

func run(ctx context.Context, o options, work string) error {
	cls, rf, err := models()
	if err != nil {
		return err
	}
	var rep report

	// Memory first, in fresh processes, before anything else runs.
	fmt.Fprintln(os.Stderr, "memory probes (fresh processes)")
	memIn := map[string]memProbe{}
	for _, m := range []model{cls, rf} {
		p, err := probeMemory(m)
		if err != nil {
			return err
		}
		memIn[m.name] = p
	}

	if err := onnx.Init(onnx.LibraryPath()); err != nil {
		return err
	}
	sessions := map[string]*onnx.Session{}
	for _, m := range []model{cls, rf} {
		s, err := onnx.Open(m.path, onnx.Options{})
		if err != nil {
			return err
		}
		defer s.Close()
		sessions[m.name] = s
	}
	inProcess := func(m model) func() error {
		s, in := sessions[m.name], []tensor.Tensor{m.input}
		return func() error { _, err := s.Run(in, nil); return err }
	}

	fmt.Fprintln(os.Stderr, "starting the server")
	srv, err := startServer(ctx, o.binary, work)
	if err != nil {
		return err
	}
	defer srv.Stop()
	rep.commands = append(rep.commands, "RAMPART_ADMIN_PASSWORD=… "+o.binary+" "+"serve --data-dir DIR/d --listen 127.0.0.1:PORT "+strings.Join(serverArgs, " "))
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	if err := srv.setup(key); err != nil {
		return fmt.Errorf("setup: %w", err)
	}
	token, err := srv.token()
	if err != nil {
		return err
	}
	// Worker memory: each service alone, ready, after one inference.
	workerRSS := map[string][2]int64{}
	for _, x := range []struct {
		m    model
		spec serviceSpec
	}{{cls, o.clsSpec}, {rf, o.rfSpec}} {
		if err := srv.onboard(work, x.m.name, x.m.path, key); err != nil {
			return fmt.Errorf("onboard %s: %w", x.m.name, err)
		}
		before, err := srv.workers()
		if err != nil {
			return err
		}
		if err := srv.startService(x.m.name, x.spec); err != nil {
			return err
		}
		body, hl, err := restBody(x.m.input, false)
		if err != nil {
			return err
		}
		c, err := newRESTCaller(srv.CAFile, srv.URL, x.m.name, token, body, hl)
		if err != nil {
			return err
		}
		for range 2 * x.spec.replicas {
			if err := c.call(); err != nil {
				return fmt.Errorf("first inference on %s: %w", x.m.name, err)
			}
		}
		time.Sleep(time.Second)
		after, err := srv.workers()
		if err != nil {
			return err
		}
		var rss, anon, n int64
		for _, pid := range after {
			if slices.Contains(before, pid) {
				continue
			}
			cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
			v, err1 := procStatus(pid, "VmRSS")
			a, err2 := procStatus(pid, "RssAnon")
			if err1 != nil || err2 != nil {
				continue
			}
			fmt.Fprintf(os.Stderr, "  %s worker pid %d (%s): VmRSS %.1f MiB, RssAnon %.1f MiB\n", x.m.name, pid,
				strings.ReplaceAll(string(cmdline), "\x00", " "), mib(v), mib(a))
			rss, anon, n = rss+v, anon+a, n+1
		}
		if n == 0 {
			return fmt.Errorf("no worker process of %s found", x.m.name)
		}
		workerRSS[x.m.name] = [2]int64{rss / n, anon / n}
	}

	// Sequential latency, kinds interleaved round by round.
	fmt.Fprintln(os.Stderr, "sequential latency")
	type kind struct {
		name string
		n    int
		f    func() error
		base string // the baseline's name; "" for a baseline
	}
	var kinds []kind
	for _, m := range []model{cls, rf} {
		n := o.seqCls
		if m.name == "rf" {
			n = o.seqRF
		}
		body, hl, err := restBody(m.input, false)
		if err != nil {
			return err
		}
		rc, err := newRESTCaller(srv.CAFile, srv.URL, m.name, token, body, hl)
		if err != nil {
			return err
		}
		gc, err := newGRPCCaller(srv.CAFile, srv.Addr, token, grpcRequest(m.name, m.input))
		if err != nil {
			return err
		}
		defer gc.conn.Close()
		base := m.name + ": in-process onnx.Session.Run"
		kinds = append(kinds,
			kind{base, n, inProcess(m), ""},
			kind{m.name + ": REST JSON via rampart serve", n, rc.call, base},
			kind{m.name + ": gRPC raw_input_contents via rampart serve", n, gc.call, base})
	}
	// The 1×3×224×224 tensor through the classifier: JSON vs binary.
	big := model{name: "cls", path: cls.path, input: image(224, 224)}
	bigBase := "cls 1×3×224×224: in-process onnx.Session.Run"
	kinds = append(kinds, kind{bigBase, o.seqCls / 4, inProcess(big), ""})
	for _, binaryData := range []bool{false, true} {
		body, hl, err := restBody(big.input, binaryData)
		if err != nil {
			return err
		}
		rc, err := newRESTCaller(srv.CAFile, srv.URL, "cls", token, body, hl)
		if err != nil {
			return err
		}
		name := "cls 1×3×224×224: REST JSON"
		if binaryData {
			name = "cls 1×3×224×224: REST binary tensor extension"
		}
		name += fmt.Sprintf(" (%d-byte body)", len(body))
		kinds = append(kinds, kind{name, o.seqCls / 4, rc.call, bigBase})
	}
	samples := map[string][]time.Duration{}
	for round := range o.rounds {
		for _, k := range kinds {
			d, err := sequential(k.n, k.n/10+10, k.f)
			if err != nil {
				return fmt.Errorf("%s: %w", k.name, err)
			}
			samples[k.name] = append(samples[k.name], d...)
			fmt.Fprintf(os.Stderr, "  round %d %s: p50 %s\n", round+1, k.name, pct(d, 50))
		}
	}
	for _, k := range kinds {
		s := samples[k.name]
		r := row{name: k.name + " (1 client, sequential)", p50: ms(pct(s, 50)), p99: ms(pct(s, 99)),
			note: fmt.Sprintf("%d calls", len(s))}
		if k.base != "" {
			b := samples[k.base]
			r.added = fmt.Sprintf("+%s / +%s", ms(pct(s, 50)-pct(b, 50)), ms(pct(s, 99)-pct(b, 99)))
			r.ratio = fmt.Sprintf("%.2f× p50", float64(pct(s, 50))/float64(pct(b, 50)))
		}
		rep.add(r)
	}

	// Throughput: the in-process baseline with one goroutine per core,
	// then the load generators against the server, per model.
	fmt.Fprintln(os.Stderr, "throughput")
	for _, m := range []model{cls, rf} {
		load, spec := o.clsLoad, o.clsSpec
		if m.name == "rf" {
			load, spec = o.rfLoad, o.rfSpec
		}
		g := runtime.GOMAXPROCS(0)
		cpu0 := selfCPU()
		start := time.Now()
		base, err := parallel(g, o.duration, inProcess(m))
		if err != nil {
			return err
		}
		calls := base * time.Since(start).Seconds()
		rep.add(row{name: fmt.Sprintf("%s: in-process, %d goroutines, one session", m.name, g), rps: fmt.Sprintf("%.0f/s", base),
			note: fmt.Sprintf("CPU %.0f µs/inference", 1e6*(selfCPU()-cpu0)/calls)})
		note := fmt.Sprintf("%d replicas × max_concurrent %d", spec.replicas, spec.maxConcurrent)
		// cpuNote is the server's and the workers' CPU per inference
		// over a load run that made n requests.
		cpuNote := func(s0, w0 float64, n int64) (string, error) {
			s1, w1, err := srv.cpu()
			if err != nil {
				return "", err
			}
			return fmt.Sprintf("%s; CPU/inference: server %.0f µs, workers %.0f µs", note,
				1e6*(s1-s0)/float64(n), 1e6*(w1-w0)/float64(n)), nil
		}
		s0, w0, err := srv.cpu()
		if err != nil {
			return err
		}
		stopPerf, err := perfDuring(srv, o, m.name+"-grpc")
		if err != nil {
			return err
		}
		gr, cmds, err := runGHZ(o.ghz, work, srv.CAFile, srv.Addr, token, grpcRequest(m.name, m.input), load, 1, o.duration)
		if err != nil {
			return err
		}
		stopPerf()
		rep.commands, rep.raw = append(rep.commands, cmds...), append(rep.raw, "ghz "+m.name+": "+gr.raw)
		n, err := cpuNote(s0, w0, gr.requests)
		if err != nil {
			return err
		}
		rep.add(row{name: fmt.Sprintf("%s: gRPC via rampart serve, ghz -c %d", m.name, load), p50: ms(gr.p50), p99: ms(gr.p99),
			rps: fmt.Sprintf("%.0f/s", gr.rps), ratio: fmt.Sprintf("%.0f %%", 100*gr.rps/base), note: n})
		body, hl, err := restBody(m.input, false)
		if err != nil {
			return err
		}
		if s0, w0, err = srv.cpu(); err != nil {
			return err
		}
		if stopPerf, err = perfDuring(srv, o, m.name+"-rest"); err != nil {
			return err
		}
		wr, cmds, err := runWRK(o.wrk, work, srv.URL, m.name, token, body, hl, load, o.duration)
		if err != nil {
			return err
		}
		stopPerf()
		rep.commands, rep.raw = append(rep.commands, cmds...), append(rep.raw, "wrk "+m.name+":\n"+wr.raw)
		if n, err = cpuNote(s0, w0, wr.requests); err != nil {
			return err
		}
		rep.add(row{name: fmt.Sprintf("%s: REST JSON via rampart serve, wrk -c %d", m.name, load), p50: ms(wr.p50), p99: ms(wr.p99),
			rps: fmt.Sprintf("%.0f/s", wr.rps), ratio: fmt.Sprintf("%.0f %%", 100*wr.rps/base), note: n})
		if m.name != "rf" {
			continue
		}
		// The peer stack on the trivial model, right after Rampart's REST run.
		if _, err := os.Stat(o.oauth2Proxy); err != nil {
			rep.add(row{name: "rf: peer stack (oauth2-proxy)", note: "not measured: " + err.Error()})
			continue
		}
		if err := peerRows(ctx, o, srv, work, m, sessions[m.name], token, wr.rps, &rep); err != nil {
			return fmt.Errorf("peer stack: %w", err)
		}
	}

	for _, m := range []model{cls, rf} {
		p, w := memIn[m.name], workerRSS[m.name]
		session := p.AfterSession - p.AfterInit
		rep.add(row{name: m.name + ": ready idle worker VmRSS (RssAnon)", note: fmt.Sprintf("%.1f MiB (%.1f MiB); %.2f× a fresh process with ORT + the session (%.1f MiB (%.1f MiB); the session alone %.1f MiB)",
			mib(w[0]), mib(w[1]), float64(w[0])/float64(p.AfterSession), mib(p.AfterSession), mib(p.AnonAfterSession), mib(session))})
	}
	return rep.print(o)
}

// perfDuring starts a perf recording of the server for most of a load
// run when -perf is set; the returned func waits for it.
func perfDuring(srv *server, o options, name string) (func(), error) {
	if o.perf == "" {
		return func() {}, nil
	}
	if err := os.MkdirAll(o.perf, 0o700); err != nil {
		return nil, err
	}
	cmd, err := srv.perfRecord(filepath.Join(o.perf, name+".data"), o.duration*8/10)
	if err != nil {
		return nil, err
	}
	return func() { _ = cmd.Wait() }, nil
}

func (r *report) print(o options) error {
	fmt.Printf("\ninference benchmark, %s, GOMAXPROCS %d, %s\n\n", machine(), runtime.GOMAXPROCS(0), time.Now().UTC().Format(time.RFC3339))
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.Debug)
	fmt.Fprintln(tw, "measurement\tp50 ms\tp99 ms\tadded p50 / p99 ms\tthroughput\tvs baseline\tnote\t")
	for _, x := range r.rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", x.name, x.p50, x.p99, x.added, x.rps, x.ratio, x.note)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Println("\ncommands:")
	for _, c := range r.commands {
		fmt.Println("  " + c)
	}
	if o.raw != "" {
		return os.WriteFile(o.raw, []byte(strings.Join(r.raw, "\n\n")+"\n"), 0o600)
	}
	return nil
}

func pct(d []time.Duration, p int) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, len(s)*p/100)]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.3f", float64(d)/1e6) }

func mib(b int64) float64 { return float64(b) / (1 << 20) }

// machine describes the CPU count and model for the report.
func machine() string {
	model := "unknown CPU"
	b, _ := os.ReadFile("/proc/cpuinfo")
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "model name"); ok {
			model = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
			break
		}
	}
	return fmt.Sprintf("%d × %s", runtime.NumCPU(), model)
}
