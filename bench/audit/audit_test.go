// Package audit_test holds the audit issue's cost benchmark: a management
// change with its audit record against the same change without one, on a
// real SQLite store. `make bench` runs it; it is not a test.
package audit_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/rampart-ml/rampart/internal/audit"
	"github.com/rampart-ml/rampart/internal/principal"
	"github.com/rampart-ml/rampart/internal/secrets"
	"github.com/rampart-ml/rampart/internal/store"
	"github.com/rampart-ml/rampart/internal/store/sqlite"
)

// BenchmarkAuditedChange creates domains, each in its own transaction,
// alternating two ways: "plain" writes only the domain; "audited" also
// appends its record through the Recorder (pseudonym, hash chain, insert)
// in the same transaction, as the API does. Alternating keeps the two
// under the same machine load; the ratio is the result. Goal: ≤ 1.3×.
func BenchmarkAuditedChange(b *testing.B) {
	ctx := principal.WithContext(context.Background(),
		principal.Principal{ID: "acct-bench", Kind: principal.User})
	st, err := sqlite.Open(ctx, filepath.Join(b.TempDir(), "rampart.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = st.Close() })
	rec := newRecorder(b, st)
	change := func(i int, audited bool) time.Duration {
		start := time.Now()
		d := store.Domain{Name: fmt.Sprintf("org.bench.d%d", i), CreatedBy: "acct-bench", CreatedAt: start}
		err := st.InTx(ctx, func(tx store.Tx) error {
			if err := tx.Domains().CreateDomain(ctx, d); err != nil {
				return err
			}
			if !audited {
				return nil
			}
			return rec.Record(ctx, tx, audit.Entry{Action: "domain.create", Target: audit.Target{Kind: "domain", ID: d.Name}})
		})
		if err != nil {
			b.Fatal(err)
		}
		return time.Since(start)
	}
	var plain, audited time.Duration
	n := 0
	for ; b.Loop(); n++ {
		plain += change(2*n, false)
		audited += change(2*n+1, true)
	}
	b.ReportMetric(float64(plain.Microseconds())/float64(n), "plain-µs/change")
	b.ReportMetric(float64(audited.Microseconds())/float64(n), "audited-µs/change")
	b.ReportMetric(float64(audited)/float64(plain), "ratio")
}

func newRecorder(b *testing.B, st store.Store) *audit.Recorder {
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	sealer, err := secrets.New(key)
	if err != nil {
		b.Fatal(err)
	}
	rec, err := audit.NewRecorder(audit.RecorderOptions{Store: st, Sealer: sealer, SourceKey: key})
	if err != nil {
		b.Fatal(err)
	}
	return rec
}
