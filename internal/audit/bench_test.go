package audit

import (
	"context"
	"errors"
	"flag"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rampart-ml/rampart/internal/store"
	"github.com/rampart-ml/rampart/internal/store/sqlite"
)

var verifyRecords = flag.Int("verify-records", 20000, "log length BenchmarkVerify verifies (the issue's target: 1000000 in < 60 s)")

// BenchmarkAppend appends records to a real SQLite store, 100 per
// transaction (batched commits), and reports records/s.
func BenchmarkAppend(b *testing.B) {
	st, _ := openStore(b)
	ctx := context.Background()
	const batch = 100
	e := event(1)
	b.ReportAllocs()
	b.ResetTimer()
	for n := 0; n < b.N; n += batch {
		err := st.InTx(ctx, func(tx store.Tx) error {
			for i := n; i < min(n+batch, b.N); i++ {
				if _, err := Append(ctx, tx, e); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkVerify verifies a log of -verify-records records (with a
// checkpoint every 1000) and reports records/s.
func BenchmarkVerify(b *testing.B) {
	st, _ := openStore(b)
	ctx := context.Background()
	s := newSigner(b)
	n := *verifyRecords
	const batch = 1000
	for i := 0; i < n; i += batch {
		err := st.InTx(ctx, func(tx store.Tx) error {
			for j := i; j < min(i+batch, n); j++ {
				if _, err := Append(ctx, tx, event(j)); err != nil {
					return err
				}
			}
			_, err := Checkpoint(ctx, tx, s, KindPeriodic, time.Now())
			return err
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		rep, err := Verify(ctx, st, s.Public())
		if err != nil || rep.Records != uint64(n) {
			b.Fatalf("Verify = %+v, %v", rep, err)
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkSubmit appends records through Submit from parallel goroutines
// to a real SQLite store, the writer committing them in batches, and
// reports records/s from the first Submit to the commit of the last (the
// issue's target: ≥ 20,000 on 2 cores). Actors are users (recorded as
// pseudonyms) and client addresses are pseudonymised, as in the server.
// Submitters wait when the queue is full, so what is measured is how fast
// the writer empties it. "copied" runs a Follower alongside, reading
// through a read-only handle, copying every record to a JSON-lines file
// (synced per batch) and signing a checkpoint every 1000 records.
func BenchmarkSubmit(b *testing.B) {
	b.Run("alone", func(b *testing.B) { benchmarkSubmit(b, false) })
	b.Run("copied", func(b *testing.B) { benchmarkSubmit(b, true) })
}

func benchmarkSubmit(b *testing.B, copied bool) {
	st, path := openStore(b)
	ctx := context.Background()
	var f *Follower
	o := RecorderOptions{Request: func(context.Context) RequestInfo {
		return RequestInfo{ID: "req-1", ClientAddr: "192.0.2.7:4711"}
	}}
	if copied {
		ro, err := sqlite.OpenReadOnly(ctx, path)
		if err != nil {
			b.Fatal(err)
		}
		defer ro.Close()
		f = newFollower(b, FollowerOptions{Store: st, Reader: ro, Signer: newSigner(b), File: filepath.Join(b.TempDir(), "audit.jsonl")})
		o.OnCommit = f.Notify
		f.Start()
	}
	r := newRecorder(b, st, o)
	r.Start()
	b.ReportAllocs()
	b.ResetTimer()
	var n atomic.Int64
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			e := userEntry("inference.call", int(n.Add(1)))
			for {
				err := r.Submit(ctx, e)
				if err == nil {
					break
				}
				if !errors.Is(err, ErrQueueFull) {
					b.Error(err)
					return
				}
				time.Sleep(100 * time.Microsecond)
			}
		}
	})
	if err := r.Close(ctx); err != nil {
		b.Fatal(err)
	}
	if f != nil {
		if err := f.Close(ctx); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if s := r.Stats(); s.Written != uint64(b.N) {
		b.Fatalf("stats %+v, want %d written", s, b.N)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
	b.ReportMetric(float64(b.N)/float64(r.Stats().Batches), "records/batch")
}
