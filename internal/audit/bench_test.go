package audit

import (
	"context"
	"flag"
	"testing"
	"time"

	"github.com/rampart-ml/rampart/internal/store"
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
