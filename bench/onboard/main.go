// Command onboard measures model onboarding end to end (issue 7's goal: a
// 1 GiB model hashed, verified, encrypted and stored at ≥ 50 % of
// sha256sum's throughput with < 64 MiB of extra server RSS).
//
// In one run it builds a signed model directory with a large external-data
// weights file, tars it, times `sha256sum` on the weights file (page cache
// warm) as the baseline, times `dd conv=fsync` of the same size into each
// data directory's file system, then starts the real server binary once per
// data directory and onboards the archive through the HTTP API, reading
// the server's peak RSS from /proc. It is not part of make test; run it
// with make bench-onboard.
package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/rampart-ml/rampart/bench/internal/benchserver"
)

func main() {
	if err := realMain(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, "onboard:", err)
		os.Exit(1)
	}
}

type options struct {
	binaries []string
	size     int64
	work     string
	dataDirs []string
	runs     int
}

func realMain(ctx context.Context) error {
	var o options
	var sizeMiB int64
	var dataDirs string
	var binaries string
	flag.StringVar(&binaries, "rampart", "bin/rampart", "the server binary; several, comma-separated, are compared run by run (e.g. an older build first)")
	flag.Int64Var(&sizeMiB, "size-mib", 1024, "size of the weights file in MiB")
	flag.StringVar(&o.work, "work", "", "directory for the model and archive (default: a temporary directory)")
	flag.StringVar(&dataDirs, "data-parents", os.TempDir(), "comma-separated directories to put the server's data directory in, one server each (e.g. /var/tmp,/dev/shm)")
	flag.IntVar(&o.runs, "runs", 3, "onboardings per data directory (the median is reported)")
	flag.Parse()
	o.size = sizeMiB << 20
	o.dataDirs = strings.Split(dataDirs, ",")
	o.binaries = strings.Split(binaries, ",")
	if o.work == "" {
		d, err := os.MkdirTemp("", "rampart-bench-onboard-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		o.work = d
	}
	return run(ctx, o)
}

type row struct {
	name    string
	seconds float64 // median
	bytes   int64
	ratio   float64 // median of the per-run throughput ratios to sha256sum; 0: none
	note    string
}

func run(ctx context.Context, o options) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	modelDir := filepath.Join(o.work, "model")
	archive := filepath.Join(o.work, "model.tar")
	fmt.Fprintf(os.Stderr, "building a %d MiB signed model in %s\n", o.size>>20, o.work)
	if err := writeModel(modelDir, o.size, key); err != nil {
		return fmt.Errorf("write model: %w", err)
	}
	if err := writeTar(modelDir, archive); err != nil {
		return fmt.Errorf("write archive: %w", err)
	}
	weights := filepath.Join(modelDir, weightsFile)

	// The baseline: sha256sum on the weights, page cache warm. The
	// machines are shared and noisy, so it is timed again right before
	// each onboarding and each onboarding is compared with its own.
	if _, err := timeCmd(ctx, "sha256sum", weights); err != nil { // warms the cache
		return err
	}
	var rows []row
	for _, parent := range o.dataDirs {
		dd, err := ddSync(ctx, parent, o.size)
		if err != nil {
			return err
		}
		rows = append(rows, row{name: "dd bs=1M conv=fsync into " + parent, seconds: dd, bytes: o.size})
		results, err := onboardRuns(ctx, o, parent, archive, weights, key)
		if err != nil {
			return fmt.Errorf("onboard with data in %s: %w", parent, err)
		}
		for i, res := range results {
			name := "onboard via HTTP, data in " + parent
			if len(o.binaries) > 1 {
				name += " (" + o.binaries[i] + ")"
			}
			rows = append(rows,
				row{name: "sha256sum weights, before each onboarding", seconds: res.sha, bytes: o.size, ratio: 1},
				row{name: name, seconds: res.onboard, bytes: o.size, ratio: res.ratio,
					note: fmt.Sprintf("peak extra RSS %.1f MiB, server CPU %.2f s", float64(res.peakExtra)/(1<<20), res.cpu)})
		}
	}

	fmt.Printf("\nonboarding benchmark: %d MiB weights, %s\n\n", o.size>>20, machine())
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight|tabwriter.Debug)
	fmt.Fprintf(tw, "measurement (median of %d where repeated)\tseconds\tMB/s\tthroughput vs sha256sum\tnote\t\n", o.runs)
	for _, r := range rows {
		ratio := "—"
		if r.ratio > 0 {
			ratio = fmt.Sprintf("%.2f×", r.ratio)
		}
		fmt.Fprintf(tw, "%s\t%.2f\t%.0f\t%s\t%s\t\n", r.name, r.seconds, float64(r.bytes)/r.seconds/1e6, ratio, r.note)
	}
	return tw.Flush()
}

func timeCmd(ctx context.Context, name string, args ...string) (float64, error) {
	start := time.Now()
	// #nosec G204 -- fixed programs with the benchmark's own file names
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdout, cmd.Stderr = io.Discard, os.Stderr
	if err := cmd.Run(); err != nil {
		return 0, fmt.Errorf("%s: %w", name, err)
	}
	return time.Since(start).Seconds(), nil
}

// ddSync is the file system's durable write rate: dd of size bytes with
// fsync before it exits, as a Put writes and syncs its blob.
func ddSync(ctx context.Context, dir string, size int64) (float64, error) {
	f := filepath.Join(dir, fmt.Sprintf("rampart-bench-dd-%d", os.Getpid()))
	defer os.Remove(f)
	return timeCmd(ctx, "dd", "if=/dev/zero", "of="+f, "bs=1M", "count="+strconv.FormatInt(size>>20, 10), "conv=fsync", "status=none")
}

type result struct {
	sha, onboard, ratio float64 // medians
	cpu                 float64 // median server CPU seconds (user + system) per onboarding
	peakExtra           int64   // the largest over the runs
}

// onboardRuns starts a server per binary with its data directory in
// parent and onboards the archive o.runs times as new versions into each,
// the binaries taking turns, each onboarding right after its own
// sha256sum baseline.
func onboardRuns(ctx context.Context, o options, parent, archive, weights string, key *ecdsa.PrivateKey) ([]result, error) {
	type state struct {
		srv                 *server
		shas, times, ratios []float64
		cpu                 []float64 // server CPU seconds per onboarding
		peak                int64
	}
	var states []*state
	for _, bin := range o.binaries {
		data, err := os.MkdirTemp(parent, "rampart-bench-data-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(data)
		srv, err := startServer(ctx, bin, data)
		if err != nil {
			return nil, err
		}
		defer srv.Stop()
		if err := srv.setup(key); err != nil {
			return nil, err
		}
		states = append(states, &state{srv: srv})
	}
	for i := range o.runs {
		for b, st := range states {
			sha, err := timeCmd(ctx, "sha256sum", weights)
			if err != nil {
				return nil, err
			}
			cpu0, err := benchserver.CPUSeconds(st.srv.Cmd.Process.Pid)
			if err != nil {
				return nil, err
			}
			rss, err := st.srv.resetPeak()
			if err != nil {
				return nil, err
			}
			d, err := st.srv.upload(archive, fmt.Sprintf("1.%d", i))
			if err != nil {
				return nil, err
			}
			hwm, err := procStatus(st.srv.Cmd.Process.Pid, "VmHWM")
			if err != nil {
				return nil, err
			}
			cpu1, err := benchserver.CPUSeconds(st.srv.Cmd.Process.Pid)
			if err != nil {
				return nil, err
			}
			st.cpu = append(st.cpu, cpu1-cpu0)
			st.shas, st.times, st.ratios = append(st.shas, sha), append(st.times, d), append(st.ratios, sha/d)
			st.peak = max(st.peak, hwm-rss)
			fmt.Fprintf(os.Stderr, "  run %d (%s, %s): sha256sum %.2f s, onboarding %.2f s (%.2f×), RSS before %.1f MiB, peak %.1f MiB\n",
				i+1, parent, o.binaries[b], sha, d, sha/d, float64(rss)/(1<<20), float64(hwm)/(1<<20))
		}
	}
	var out []result
	for _, st := range states {
		out = append(out, result{sha: median(st.shas), onboard: median(st.times), ratio: median(st.ratios), cpu: median(st.cpu), peakExtra: st.peak})
	}
	return out, nil
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

// server is a real `rampart serve`; Token is the admin's.
type server struct {
	*benchserver.Server
}

// startServer starts one with long timeouts: a 1 GiB body on a slow disk
// takes longer than the defaults allow, and the benchmark measures the
// work, not the limits.
func startServer(ctx context.Context, binary, data string) (*server, error) {
	bs, err := benchserver.Start(ctx, binary, data, "--read-timeout", "10m", "--write-timeout", "10m", "--log-level", "warn")
	if err != nil {
		return nil, err
	}
	return &server{Server: bs}, nil
}

// setup logs in as the admin, creates the domain and registers the key.
func (s *server) setup(key *ecdsa.PrivateKey) error {
	return s.SetUp("com.bench", key.Public())
}

// resetPeak resets the server's peak RSS (clear_refs 5) and returns its
// current RSS, the base of "extra".
func (s *server) resetPeak() (int64, error) {
	pid := s.Cmd.Process.Pid
	if err := os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0); err != nil {
		return 0, fmt.Errorf("reset peak RSS: %w", err)
	}
	return procStatus(pid, "VmRSS")
}

func (s *server) upload(archive, version string) (float64, error) {
	f, err := os.Open(archive) // #nosec G304 -- the benchmark's own archive
	if err != nil {
		return 0, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return 0, err
	}
	req, err := http.NewRequest("PUT", s.URL+"/api/v1/models/com.bench.big/versions/"+version, f)
	if err != nil {
		return 0, err
	}
	req.ContentLength = st.Size()
	req.Header.Set("Content-Type", "application/x-tar")
	req.Header.Set("Authorization", "Bearer "+s.Token)
	start := time.Now()
	res, err := s.Client.Do(req)
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	out, err := io.ReadAll(res.Body)
	d := time.Since(start).Seconds()
	if err != nil {
		return 0, err
	}
	if res.StatusCode != http.StatusCreated {
		return 0, fmt.Errorf("upload: %d %s", res.StatusCode, out)
	}
	return d, nil
}

// procStatus reads a "kB" field of /proc/<pid>/status, in bytes.
func procStatus(pid int, field string) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", field, pid)
}

// machine describes the CPU count and model for the report.
func machine() string {
	model := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "model name"); ok {
				model = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	n := 0
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		n = strings.Count(string(b), "\nprocessor")
		if strings.HasPrefix(string(b), "processor") {
			n++
		}
	}
	return fmt.Sprintf("%d × %s", n, model)
}
