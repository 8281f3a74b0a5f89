package audit

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/rampart-ml/rampart/internal/store"
)

// sequence returns a random source that yields vals in turn, repeating.
func sequence(vals ...float64) func() float64 {
	var i atomic.Int64
	return func() float64 { return vals[(i.Add(1)-1)%int64(len(vals))] }
}

func TestSamplerRepresents(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		rate  float64
		rnd   func() float64
		calls int
		// want lists represents of each recorded call, in order.
		want      []uint64
		remainder uint64
	}{
		{"every call at rate 1", 1, sequence(0.999), 4, []uint64{1, 1, 1, 1}, 0},
		{"none at rate 0", 0, sequence(0), 5, nil, 5},
		// Recorded when rnd < 0.5: calls 2, 3 and 6.
		{"the calls between are represented", 0.5, sequence(0.7, 0.1, 0.2, 0.9, 0.5, 0.4, 0.8), 7, []uint64{2, 1, 3}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, err := NewSampler(tt.rate, tt.rnd)
			if err != nil {
				t.Fatal(err)
			}
			var got []uint64
			for range tt.calls {
				if rec, n := s.Allowed("svc-a"); rec {
					got = append(got, n)
				} else if n != 0 {
					t.Errorf("an unrecorded call represents %d", n)
				}
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("represents (-want +got):\n%s", diff)
			}
			wantFlush := map[string]uint64{}
			if tt.remainder > 0 {
				wantFlush["svc-a"] = tt.remainder
			}
			if diff := cmp.Diff(wantFlush, s.Flush()); diff != "" {
				t.Errorf("Flush (-want +got):\n%s", diff)
			}
			if got := s.Flush(); len(got) != 0 {
				t.Errorf("second Flush = %v, want nothing", got)
			}
			if diff := cmp.Diff(map[string]uint64{"svc-a": uint64(tt.calls)}, s.Totals()); diff != "" {
				t.Errorf("Totals (-want +got):\n%s", diff)
			}
		})
	}
}

// TestSamplerExactConcurrent: whatever the interleaving, the records'
// represents plus the flushed remainder add up to the calls, per service.
func TestSamplerExactConcurrent(t *testing.T) {
	t.Parallel()
	s, err := NewSampler(0.05, nil)
	if err != nil {
		t.Fatal(err)
	}
	const goroutines, calls = 8, 5000
	services := []string{"svc-a", "svc-b", "svc-c"}
	var mu sync.Mutex
	represented := map[string]uint64{}
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			mine := map[string]uint64{}
			for i := range calls {
				svc := services[(g+i)%len(services)]
				if rec, n := s.Allowed(svc); rec {
					if n == 0 {
						t.Error("a record represents no call")
					}
					mine[svc] += n
				}
			}
			mu.Lock()
			defer mu.Unlock()
			for k, v := range mine {
				represented[k] += v
			}
		})
	}
	wg.Wait()
	for k, v := range s.Flush() {
		represented[k] += v
	}
	totals := s.Totals()
	var sum uint64
	for _, svc := range services {
		if represented[svc] != totals[svc] {
			t.Errorf("%s: represented %d, total %d", svc, represented[svc], totals[svc])
		}
		sum += totals[svc]
	}
	if sum != goroutines*calls {
		t.Errorf("totals add up to %d, want %d", sum, goroutines*calls)
	}
}

func TestSamplerRate(t *testing.T) {
	t.Parallel()
	for _, rate := range []float64{-0.1, 1.01, math.NaN(), math.Inf(1)} {
		if _, err := NewSampler(rate, nil); err == nil {
			t.Errorf("NewSampler(%v): no error", rate)
		}
	}
	// The default rate, with a seeded source: about 1 % recorded.
	r := rand.New(rand.NewPCG(1, 2)) // #nosec G404 -- test randomness
	s, err := NewSampler(DefaultSampleRate, r.Float64)
	if err != nil {
		t.Fatal(err)
	}
	recorded := 0
	for range 100000 {
		if rec, _ := s.Allowed("svc"); rec {
			recorded++
		}
	}
	if recorded < 800 || recorded > 1200 {
		t.Errorf("%d of 100000 recorded at rate %v", recorded, s.Rate())
	}
}

func TestSamplerNoAllocation(t *testing.T) {
	s, err := NewSampler(0.5, nil)
	if err != nil {
		t.Fatal(err)
	}
	name := fmt.Sprintf("svc-%d", 1) // not a constant: as from a request
	s.Allowed(name)
	if n := testing.AllocsPerRun(1000, func() { s.Allowed(name) }); n != 0 {
		t.Errorf("Allowed allocates %v times per call", n)
	}
}

// BenchmarkSamplerAllowed measures the hot-path cost of Allowed, from
// parallel goroutines over a few services.
func BenchmarkSamplerAllowed(b *testing.B) {
	s, err := NewSampler(DefaultSampleRate, nil)
	if err != nil {
		b.Fatal(err)
	}
	services := []string{"svc-a", "svc-b", "svc-c", "svc-d"}
	var next atomic.Int64
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		svc := services[next.Add(1)%int64(len(services))]
		for pb.Next() {
			s.Allowed(svc)
		}
	})
}

// TestRecordAllowedInference: sampled records and the shutdown summary
// together account for every allowed call, per service, exactly.
func TestRecordAllowedInference(t *testing.T) {
	t.Parallel()
	st, _ := openStore(t)
	rec := newRecorder(t, st, RecorderOptions{})
	rec.Start()
	rng := rand.New(rand.NewPCG(1, 2))
	s, err := NewSampler(0.05, rng.Float64)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	calls := map[string]uint64{"com.acme.vision.resnet": 700, "org.lab.bert": 300}
	for svc, n := range calls {
		for range n {
			if err := rec.RecordAllowedInference(ctx, s, Target{Kind: "service", ID: svc}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := rec.RecordInferenceSummary(ctx, s); err != nil {
		t.Fatal(err)
	}
	if err := rec.Close(ctx); err != nil {
		t.Fatal(err)
	}
	got := map[string]uint64{}
	sampled := 0
	err = st.InTx(ctx, func(tx store.Tx) error {
		recs, err := tx.Audit().AuditRecords(ctx, 0, 10_000)
		for _, r := range recs {
			n, perr := strconv.ParseUint(strings.TrimPrefix(r.Reason, "calls="), 10, 64)
			if perr != nil || (r.Action != ActionInferenceAllow && r.Action != ActionInferenceSummary) {
				t.Errorf("record %+v", r)
			}
			if r.Action == ActionInferenceAllow {
				sampled++
			}
			got[r.TargetID] += n
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(got, calls) {
		t.Errorf("calls accounted for: %v, want %v", got, calls)
	}
	if sampled < 20 || sampled > 90 {
		t.Errorf("%d sampled records of 1000 calls at 5%%", sampled)
	}
}

// TestRecordAllowedInferenceRefused: a sampled call whose record cannot be
// queued is refused and not counted; the calls its record stood for are
// carried by the next record, so the totals stay exact.
func TestRecordAllowedInferenceRefused(t *testing.T) {
	t.Parallel()
	st := newTestStore(t)
	rec := newRecorder(t, st, RecorderOptions{QueueSize: 1})
	rec.Start()
	release := st.hold()
	ctx := context.Background()
	if err := rec.Submit(ctx, userEntry("first", 0)); err != nil {
		t.Fatal(err)
	}
	<-st.waiting // the writer holds the first; the queue (1) is empty
	s, err := NewSampler(1, nil)
	if err != nil {
		t.Fatal(err)
	}
	svc := Target{Kind: "service", ID: "org.lab.bert"}
	if err := rec.RecordAllowedInference(ctx, s, svc); err != nil { // fills the queue
		t.Fatal(err)
	}
	if err := rec.RecordAllowedInference(ctx, s, svc); !errors.Is(err, ErrQueueFull) {
		t.Fatalf("second call = %v, want ErrQueueFull", err)
	}
	if got := s.Totals()[svc.ID]; got != 1 {
		t.Errorf("total %d, want 1: the refused call did not happen", got)
	}
	if got := s.Flush()[svc.ID]; got != 0 {
		t.Errorf("pending %d, want 0", got)
	}
	release()
	closeRecorder(t, rec)
}
