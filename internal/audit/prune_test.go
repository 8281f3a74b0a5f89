package audit

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/rampart-ml/rampart/internal/store"
	"github.com/rampart-ml/rampart/internal/store/sqlite"
)

func prune(t *testing.T, st store.Store, s *Signer, before time.Time) PruneReport {
	t.Helper()
	rep, err := Prune(context.Background(), st, s, before, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func TestPrune(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, _ := openStore(t)
	s := newSigner(t)
	if rep := prune(t, st, s, event(100).Time); rep.Through != 0 {
		t.Errorf("Prune of an empty log = %+v", rep)
	}
	appendEvents(t, st, 0, 10)
	checkpoint(t, st, s, KindPeriodic) // at 10
	appendEvents(t, st, 10, 30)
	checkpoint(t, st, s, KindPeriodic) // at 30

	// Records 1 to 15 are older than event 15 (record 16).
	rep := prune(t, st, s, event(15).Time)
	if rep.Through != 15 || rep.Removed != 15 || rep.Checkpoint.Kind != KindPrune || rep.Checkpoint.Seq != 15 {
		t.Fatalf("Prune = %+v", rep)
	}
	vrep, err := Verify(ctx, st, s.Public())
	if err != nil {
		t.Fatalf("Verify after Prune = %+v, %v", vrep, err)
	}
	if vrep.Records != 15 || vrep.PrunedThrough != 15 || vrep.LastSeq != 30 || vrep.Checkpoints != 3 || vrep.Unsigned != 0 {
		t.Errorf("Verify after Prune = %+v", vrep)
	}
	// Nothing more is old enough.
	if rep := prune(t, st, s, event(15).Time); rep.Through != 0 {
		t.Errorf("second Prune = %+v, want nothing", rep)
	}
	// Everything is old: the head stays, so the chain goes on.
	if rep := prune(t, st, s, event(1000).Time); rep.Through != 29 || rep.Removed != 14 {
		t.Errorf("Prune of everything = %+v, want through 29", rep)
	}
	appendEvents(t, st, 30, 35)
	if vrep, err := Verify(ctx, st, s.Public()); err != nil || vrep.Records != 6 || vrep.PrunedThrough != 29 {
		t.Errorf("Verify = %+v, %v", vrep, err)
	}
	if _, err := Prune(ctx, st, nil, event(1).Time, time.Now()); err == nil {
		t.Error("Prune without a signer: no error")
	}
}

// TestPruneRefusesBadLog: a log that does not verify is not pruned.
func TestPruneRefusesBadLog(t *testing.T) {
	t.Parallel()
	path, _, _ := writeMutationLog(t)
	mutate(t, path, editColumn("outcome", 20))
	ctx := context.Background()
	st, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	_, err = Prune(ctx, st, newSigner(t), event(1000).Time, time.Now())
	var ve *VerifyError
	if !errors.As(err, &ve) || ve.Seq != 20 {
		t.Errorf("Prune of an edited log = %v, want the VerifyError", err)
	}
	if got := len(records(t, st)); got != mutRecords {
		t.Errorf("%d records left, want all %d", got, mutRecords)
	}
}

// TestVerifyPruneMutations tampers with a pruned log (records 1 to 75
// pruned; checkpoints at 50 below and 100, 150, 200 above) and with an
// unpruned one.
func TestVerifyPruneMutations(t *testing.T) {
	t.Parallel()
	s := newSigner(t)
	const through = 75
	pruned, recs := writeLog(t, s, func(st store.Store) {
		if rep := prune(t, st, s, event(through).Time); rep.Through != through {
			t.Fatalf("Prune = %+v", rep)
		}
	})
	whole, _ := writeLog(t, s, nil)
	forgedPrune := func(seq uint64) string {
		return fmt.Sprintf(`INSERT INTO audit_checkpoints (seq, head, kind, time, signature)
			VALUES (%d, x'%x', 'prune', '2031-01-01T00:00:00.000000000Z', randomblob(64))`, seq, recs[seq-1].Hash)
	}
	tests := []struct {
		name string
		db   string
		sql  []string
		want uint64
	}{
		{"forged prune checkpoint, records deleted below it", whole,
			[]string{forgedPrune(100), `DELETE FROM audit_records WHERE seq <= 100`}, 100},
		{"forged prune checkpoint after a real one", pruned,
			[]string{forgedPrune(120), `DELETE FROM audit_records WHERE seq <= 120`}, 120},
		{"records deleted after the prune point", pruned,
			[]string{`DELETE FROM audit_records WHERE seq BETWEEN 76 AND 80`}, 76},
		{"prune checkpoint deleted", pruned,
			[]string{`DELETE FROM audit_checkpoints WHERE kind = 'prune'`}, 1},
		{"prune checkpoint head edited", pruned,
			[]string{`UPDATE audit_checkpoints SET head = randomblob(32) WHERE kind = 'prune'`}, through},
		{"prune checkpoint moved", pruned,
			[]string{`UPDATE audit_checkpoints SET seq = 70 WHERE kind = 'prune'`}, 70},
		{"first kept record relinked", pruned,
			[]string{`UPDATE audit_records SET prev_hash = randomblob(32) WHERE seq = 76`}, 76},
		{"first kept record edited", pruned, []string{editColumn("reason", 76)}, 76},
		{"checkpoint below the prune point forged", pruned,
			[]string{`UPDATE audit_checkpoints SET signature = randomblob(64) WHERE seq = 50`}, 50},
		{"first kept record deleted", pruned,
			[]string{`DELETE FROM audit_records WHERE seq = 76`}, 76},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := copyFile(t, tt.db)
			mutate(t, p, tt.sql...)
			st, err := sqlite.OpenReadOnly(context.Background(), p)
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			rep, err := Verify(context.Background(), st, s.Public())
			var ve *VerifyError
			if !errors.As(err, &ve) || ve.Seq != tt.want {
				t.Fatalf("Verify = %+v, %v; want a VerifyError at %d", rep, err, tt.want)
			}
			t.Log(err)
		})
	}
	// The untouched pruned log verifies.
	st, err := sqlite.OpenReadOnly(context.Background(), copyFile(t, pruned))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if rep, err := Verify(context.Background(), st, s.Public()); err != nil || rep.PrunedThrough != through || rep.Records != mutRecords-through {
		t.Errorf("Verify of the pruned log = %+v, %v", rep, err)
	}
}

// TestPruneTrigger: without a prune checkpoint covering them, the
// database refuses to delete records, whatever the statement.
func TestPruneTrigger(t *testing.T) {
	t.Parallel()
	s := newSigner(t)
	path, _ := writeLog(t, s, func(st store.Store) { prune(t, st, s, event(50).Time) })
	db := openRaw(t, path)
	for _, q := range []string{
		`DELETE FROM audit_records WHERE seq = 51`,
		`DELETE FROM audit_records`,
		`DELETE FROM audit_records WHERE seq > 100`,
	} {
		if _, err := db.Exec(q); err == nil {
			t.Errorf("%s: no error", q)
		}
	}
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM audit_records`).Scan(&n); err != nil || n != mutRecords-50 {
		t.Errorf("%d records left (%v), want %d", n, err, mutRecords-50)
	}
}
