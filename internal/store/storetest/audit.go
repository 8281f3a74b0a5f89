package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/rampart-ml/rampart/internal/store"
)

// auditRecord returns a record with every field set; the hashes are
// arbitrary bytes (the store does not check them).
func auditRecord(seq uint64) store.AuditRecord {
	return store.AuditRecord{
		Seq: seq,
		// Not UTC and with nanoseconds, to check both survive.
		Time:         time.Date(2025, 3, 4, 5, 6, 7, 123456789+int(seq%1000), time.FixedZone("CET", 3600)), // #nosec G115 -- bounded
		Actor:        fmt.Sprintf("p-%064x", seq),
		ActorKind:    "user",
		Source:       "s-1",
		Action:       "account.create",
		TargetKind:   "account",
		TargetDomain: "com.acme",
		TargetID:     fmt.Sprintf("id-%d", seq),
		Outcome:      "success",
		Reason:       "a reason with \"quotes\" and ünïcödé",
		RequestID:    fmt.Sprintf("req-%d", seq),
		PrevHash:     bytes.Repeat([]byte{byte((seq - 1) & 0xff)}, 32), // #nosec G115 -- masked
		Hash:         bytes.Repeat([]byte{byte(seq & 0xff)}, 32),       // #nosec G115 -- masked
	}
}

func appendAudit(t *testing.T, s store.Store, recs ...store.AuditRecord) {
	t.Helper()
	inTx(t, s, func(tx store.Tx) error {
		for _, r := range recs {
			if err := tx.Audit().AppendAuditRecord(context.Background(), r); err != nil {
				return err
			}
		}
		return nil
	})
}

func testAuditAppendAndRead(t *testing.T, s store.Store) {
	ctx := context.Background()
	inTx(t, s, func(tx store.Tx) error {
		if _, ok, err := tx.Audit().AuditHead(ctx); err != nil || ok {
			t.Errorf("AuditHead of an empty log = ok %v, %v; want false, nil", ok, err)
		}
		list, err := tx.Audit().AuditRecords(ctx, 0, 10)
		if err != nil || len(list) != 0 {
			t.Errorf("AuditRecords of an empty log = %v, %v; want none", list, err)
		}
		return nil
	})
	var want []store.AuditRecord
	for seq := uint64(1); seq <= 5; seq++ {
		want = append(want, auditRecord(seq))
	}
	// Empty optional fields survive as empty strings.
	want[2].Source, want[2].TargetDomain, want[2].Reason = "", "", ""
	appendAudit(t, s, want[:3]...)
	appendAudit(t, s, want[3:]...)

	inTx(t, s, func(tx store.Tx) error {
		head, ok, err := tx.Audit().AuditHead(ctx)
		if err != nil || !ok {
			t.Fatalf("AuditHead = ok %v, %v", ok, err)
		}
		if diff := cmp.Diff(want[4], head, equateTime); diff != "" {
			t.Errorf("AuditHead (-want +got):\n%s", diff)
		}
		all, err := tx.Audit().AuditRecords(ctx, 0, 100)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, all, equateTime); diff != "" {
			t.Errorf("AuditRecords (-want +got):\n%s", diff)
		}
		// Batches: after 1, two at a time.
		got, err := tx.Audit().AuditRecords(ctx, 1, 2)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want[1:3], got, equateTime); diff != "" {
			t.Errorf("AuditRecords(1, 2) (-want +got):\n%s", diff)
		}
		if got, err := tx.Audit().AuditRecords(ctx, 5, 2); err != nil || len(got) != 0 {
			t.Errorf("AuditRecords after the head = %v, %v; want none", got, err)
		}
		if _, err := tx.Audit().AuditRecords(ctx, 0, 0); err == nil {
			t.Error("AuditRecords with limit 0: no error")
		}
		return nil
	})
}

// testAuditTimeExact checks that a record's time comes back to the
// nanosecond: hashes are computed over it, so rounding would break the
// chain.
func testAuditTimeExact(t *testing.T, s store.Store) {
	r := auditRecord(1)
	r.Time = time.Date(2031, 12, 31, 23, 59, 59, 999999999, time.UTC)
	appendAudit(t, s, r)
	inTx(t, s, func(tx store.Tx) error {
		head, _, err := tx.Audit().AuditHead(context.Background())
		if err != nil {
			return err
		}
		if !head.Time.Equal(r.Time) {
			t.Errorf("time = %v, want %v exactly", head.Time, r.Time)
		}
		return nil
	})
}

func testAuditDuplicateSeq(t *testing.T, s store.Store) {
	appendAudit(t, s, auditRecord(1))
	err := s.InTx(context.Background(), func(tx store.Tx) error {
		return tx.Audit().AppendAuditRecord(context.Background(), auditRecord(1))
	})
	if !errors.Is(err, store.ErrConflict) {
		t.Errorf("duplicate seq: err = %v, want ErrConflict", err)
	}
}

func testAuditRollback(t *testing.T, s store.Store) {
	ctx := context.Background()
	errBoom := errors.New("boom")
	err := s.InTx(ctx, func(tx store.Tx) error {
		if err := tx.Audit().AppendAuditRecord(ctx, auditRecord(1)); err != nil {
			return err
		}
		if err := tx.Audit().AddAuditCheckpoint(ctx, auditCheckpoint(1, "periodic")); err != nil {
			return err
		}
		return errBoom
	})
	if !errors.Is(err, errBoom) {
		t.Fatalf("InTx = %v, want errBoom", err)
	}
	inTx(t, s, func(tx store.Tx) error {
		if _, ok, err := tx.Audit().AuditHead(ctx); err != nil || ok {
			t.Errorf("after rollback: AuditHead ok = %v, %v; want an empty log", ok, err)
		}
		if cs, err := tx.Audit().AuditCheckpoints(ctx); err != nil || len(cs) != 0 {
			t.Errorf("after rollback: checkpoints = %v, %v; want none", cs, err)
		}
		return nil
	})
}

func auditCheckpoint(seq uint64, kind string) store.AuditCheckpoint {
	return store.AuditCheckpoint{
		Seq:       seq,
		Head:      bytes.Repeat([]byte{byte(seq & 0xff)}, 32), // #nosec G115 -- masked
		Kind:      kind,
		Time:      time.Date(2025, 3, 4, 5, 6, 7, 123456789+int(seq%1000), time.FixedZone("CET", 3600)), // #nosec G115 -- bounded
		Signature: bytes.Repeat([]byte{0xAB}, 64),
	}
}

func testAuditCheckpoints(t *testing.T, s store.Store) {
	ctx := context.Background()
	inTx(t, s, func(tx store.Tx) error {
		cs, err := tx.Audit().AuditCheckpoints(ctx)
		if err != nil || len(cs) != 0 {
			t.Errorf("AuditCheckpoints of an empty log = %v, %v; want none", cs, err)
		}
		return nil
	})
	// Added out of order, two at the same seq, one at 0 (an empty log).
	add := []store.AuditCheckpoint{
		auditCheckpoint(10, "periodic"),
		auditCheckpoint(0, "shutdown"),
		auditCheckpoint(10, "shutdown"),
		auditCheckpoint(5, "periodic"),
	}
	inTx(t, s, func(tx store.Tx) error {
		for _, c := range add {
			if err := tx.Audit().AddAuditCheckpoint(ctx, c); err != nil {
				return err
			}
		}
		return nil
	})
	want := []store.AuditCheckpoint{add[1], add[3], add[0], add[2]}
	inTx(t, s, func(tx store.Tx) error {
		got, err := tx.Audit().AuditCheckpoints(ctx)
		if err != nil {
			return err
		}
		if diff := cmp.Diff(want, got, equateTime); diff != "" {
			t.Errorf("AuditCheckpoints (-want +got):\n%s", diff)
		}
		for i := range got {
			if i < len(want) && !got[i].Time.Equal(want[i].Time) {
				t.Errorf("checkpoint %d time = %v, want %v exactly", i, got[i].Time, want[i].Time)
			}
		}
		return nil
	})
}

// testPruneCheckpointMustMatch: a prune checkpoint that does not name an
// existing record by its hash is refused (it would unlock deletions).
func testPruneCheckpointMustMatch(t *testing.T, s store.Store) {
	ctx := context.Background()
	appendAudit(t, s, auditRecord(1), auditRecord(2))
	bad := auditCheckpoint(1, "prune")
	bad.Head = bytes.Repeat([]byte{0xEE}, 32)
	err := s.InTx(ctx, func(tx store.Tx) error { return tx.Audit().AddAuditCheckpoint(ctx, bad) })
	if !errors.Is(err, store.ErrConflict) {
		t.Errorf("prune checkpoint with a wrong head = %v, want ErrConflict", err)
	}
	good := bad
	good.Head = auditRecord(1).Hash
	inTx(t, s, func(tx store.Tx) error { return tx.Audit().AddAuditCheckpoint(ctx, good) })
}

func testErasedSubjects(t *testing.T, s store.Store) {
	ctx := context.Background()
	tag := bytes.Repeat([]byte{7}, 32)
	inTx(t, s, func(tx store.Tx) error {
		a := tx.Audit()
		if ok, err := a.IsErasedSubject(ctx, tag); err != nil || ok {
			t.Errorf("IsErasedSubject before = %v, %v", ok, err)
		}
		for range 2 { // twice is not an error
			if err := a.AddErasedSubject(ctx, tag); err != nil {
				return err
			}
		}
		if err := a.AddErasedSubject(ctx, []byte("short")); err == nil {
			t.Error("AddErasedSubject accepted a 5-byte tag")
		}
		return nil
	})
	inTx(t, s, func(tx store.Tx) error {
		if ok, err := tx.Audit().IsErasedSubject(ctx, tag); err != nil || !ok {
			t.Errorf("IsErasedSubject after = %v, %v", ok, err)
		}
		return nil
	})
}

func testPseudonymSecrets(t *testing.T, s store.Store) {
	ctx := context.Background()
	secret := []byte("sealed secret bytes")
	inTx(t, s, func(tx store.Tx) error {
		a := tx.Audit()
		if _, err := a.PseudonymSecret(ctx, "id-alice"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("PseudonymSecret of unknown = %v, want ErrNotFound", err)
		}
		if err := a.DeletePseudonymSecret(ctx, "id-alice"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("DeletePseudonymSecret of unknown = %v, want ErrNotFound", err)
		}
		if err := a.SetPseudonymSecret(ctx, "id-alice", "p-alice", secret); err != nil {
			return err
		}
		return a.SetPseudonymSecret(ctx, "sa-bob", "p-bob", []byte("other"))
	})
	err := s.InTx(ctx, func(tx store.Tx) error {
		return tx.Audit().SetPseudonymSecret(ctx, "id-alice", "p-alice2", []byte("replacement"))
	})
	if !errors.Is(err, store.ErrConflict) {
		t.Errorf("SetPseudonymSecret twice = %v, want ErrConflict", err)
	}
	inTx(t, s, func(tx store.Tx) error {
		a := tx.Audit()
		got, err := a.PseudonymSecret(ctx, "id-alice")
		if err != nil || !bytes.Equal(got, secret) {
			t.Errorf("PseudonymSecret = %q, %v; want %q", got, err, secret)
		}
		if sub, err := a.SubjectByPseudonym(ctx, "p-alice"); err != nil || sub != "id-alice" {
			t.Errorf("SubjectByPseudonym = %q, %v; want id-alice", sub, err)
		}
		if err := a.DeletePseudonymSecret(ctx, "id-alice"); err != nil {
			return err
		}
		if _, err := a.PseudonymSecret(ctx, "id-alice"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("PseudonymSecret after delete = %v, want ErrNotFound", err)
		}
		if _, err := a.SubjectByPseudonym(ctx, "p-alice"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("SubjectByPseudonym after delete = %v, want ErrNotFound", err)
		}
		if got, err := a.PseudonymSecret(ctx, "sa-bob"); err != nil || string(got) != "other" {
			t.Errorf("other subject's secret = %q, %v", got, err)
		}
		return nil
	})
}

// queryBase is the time of record 0 in the query tests; record n is n
// minutes later.
var queryBase = time.Date(2025, 3, 4, 5, 0, 0, 0, time.UTC)

var (
	pAlice = fmt.Sprintf("p-%064x", 0xa11ce)
	pBob   = fmt.Sprintf("p-%064x", 0xb0b)
)

// queryRecords appends records 1 to 11: even ones by alice, odd ones by
// bob; record 5 is bob acting on alice, 11 alice acting on herself.
func queryRecords(t *testing.T, s store.Store) {
	t.Helper()
	var recs []store.AuditRecord
	for seq := uint64(1); seq <= 11; seq++ {
		r := auditRecord(seq)
		r.Time = queryBase.Add(time.Duration(seq) * time.Minute) // #nosec G115 -- small
		r.Actor = pBob
		if seq%2 == 0 {
			r.Actor = pAlice
		}
		switch seq {
		case 5:
			r.TargetKind, r.TargetID = "account", pAlice
		case 11:
			r.Actor, r.TargetKind, r.TargetID = pAlice, "account", pAlice
		}
		recs = append(recs, r)
	}
	appendAudit(t, s, recs...)
}

func seqsOf(recs []store.AuditRecord) []uint64 {
	seqs := []uint64{}
	for _, r := range recs {
		seqs = append(seqs, r.Seq)
	}
	return seqs
}

func testFindAuditRecords(t *testing.T, s store.Store) {
	ctx := context.Background()
	queryRecords(t, s)
	cet := time.FixedZone("CET", 3600)
	tests := []struct {
		name string
		q    store.AuditQuery
		want []uint64
	}{
		{"all", store.AuditQuery{Limit: 100}, []uint64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}},
		{"limit", store.AuditQuery{Limit: 3}, []uint64{1, 2, 3}},
		{"after", store.AuditQuery{AfterSeq: 8, Limit: 100}, []uint64{9, 10, 11}},
		{"after the head", store.AuditQuery{AfterSeq: 11, Limit: 100}, []uint64{}},
		{"since, inclusive, in any zone", store.AuditQuery{Since: queryBase.Add(5 * time.Minute).In(cet), Limit: 100}, []uint64{5, 6, 7, 8, 9, 10, 11}},
		{"since and after", store.AuditQuery{Since: queryBase.Add(5 * time.Minute), AfterSeq: 9, Limit: 100}, []uint64{10, 11}},
		{"subject as actor or target, once each", store.AuditQuery{Subject: pAlice, Limit: 100}, []uint64{2, 4, 5, 6, 8, 10, 11}},
		{"subject, after, limit", store.AuditQuery{Subject: pAlice, AfterSeq: 4, Limit: 2}, []uint64{5, 6}},
		{"subject since", store.AuditQuery{Subject: pAlice, Since: queryBase.Add(6 * time.Minute), Limit: 100}, []uint64{6, 8, 10, 11}},
		{"other subject", store.AuditQuery{Subject: pBob, Limit: 100}, []uint64{1, 3, 5, 7, 9}},
		{"unknown subject", store.AuditQuery{Subject: "p-nobody", Limit: 100}, []uint64{}},
	}
	inTx(t, s, func(tx store.Tx) error {
		for _, tt := range tests {
			got, err := tx.Audit().FindAuditRecords(ctx, tt.q)
			if err != nil {
				t.Errorf("%s: %v", tt.name, err)
				continue
			}
			if diff := cmp.Diff(tt.want, seqsOf(got)); diff != "" {
				t.Errorf("%s: seqs (-want +got):\n%s", tt.name, diff)
			}
		}
		// Records come back whole.
		got, err := tx.Audit().FindAuditRecords(ctx, store.AuditQuery{AfterSeq: 4, Limit: 1})
		if err != nil {
			return err
		}
		want := auditRecord(5)
		want.Time, want.Actor, want.TargetKind, want.TargetID = queryBase.Add(5*time.Minute), pBob, "account", pAlice
		if diff := cmp.Diff([]store.AuditRecord{want}, got, equateTime); diff != "" {
			t.Errorf("FindAuditRecords record (-want +got):\n%s", diff)
		}
		if _, err := tx.Audit().FindAuditRecords(ctx, store.AuditQuery{}); err == nil {
			t.Error("FindAuditRecords without a limit: no error")
		}
		return nil
	})
}

func testFirstAuditSeqAt(t *testing.T, s store.Store) {
	ctx := context.Background()
	inTx(t, s, func(tx store.Tx) error {
		if seq, ok, err := tx.Audit().FirstAuditSeqAt(ctx, queryBase); err != nil || ok {
			t.Errorf("FirstAuditSeqAt of an empty log = %d, %v, %v; want none", seq, ok, err)
		}
		return nil
	})
	queryRecords(t, s)
	// A record written out of time order (queued before 12 committed).
	late := auditRecord(12)
	late.Time = queryBase.Add(90 * time.Second)
	appendAudit(t, s, late)
	tests := []struct {
		name   string
		at     time.Time
		want   uint64
		wantOK bool
	}{
		{"before every record", queryBase, 1, true},
		{"exactly a record's time", queryBase.Add(5 * time.Minute), 5, true},
		{"between records", queryBase.Add(5*time.Minute + time.Nanosecond), 6, true},
		{"in another zone", queryBase.Add(5 * time.Minute).In(time.FixedZone("X", -7*3600)), 5, true},
		{"the lowest seq, not the earliest time", queryBase.Add(80 * time.Second), 2, true},
		{"after every record", queryBase.Add(time.Hour), 0, false},
	}
	inTx(t, s, func(tx store.Tx) error {
		for _, tt := range tests {
			seq, ok, err := tx.Audit().FirstAuditSeqAt(ctx, tt.at)
			if err != nil || seq != tt.want || ok != tt.wantOK {
				t.Errorf("%s: FirstAuditSeqAt = %d, %v, %v; want %d, %v", tt.name, seq, ok, err, tt.want, tt.wantOK)
			}
		}
		return nil
	})
}

func testPruneAuditRecords(t *testing.T, s store.Store) {
	ctx := context.Background()
	queryRecords(t, s)
	count := func() []uint64 {
		var seqs []uint64
		inTx(t, s, func(tx store.Tx) error {
			recs, err := tx.Audit().AuditRecords(ctx, 0, 100)
			seqs = seqsOf(recs)
			return err
		})
		return seqs
	}
	addCheckpoint := func(seq uint64, kind string) {
		inTx(t, s, func(tx store.Tx) error { return tx.Audit().AddAuditCheckpoint(ctx, auditCheckpoint(seq, kind)) })
	}
	prune := func(through uint64) (int64, error) {
		var n int64
		err := s.InTx(ctx, func(tx store.Tx) error {
			var err error
			n, err = tx.Audit().PruneAuditRecords(ctx, through)
			return err
		})
		return n, err
	}
	all := []uint64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}

	refused := func(through uint64, why string) {
		t.Helper()
		if n, err := prune(through); !errors.Is(err, store.ErrConflict) {
			t.Errorf("PruneAuditRecords(%d) %s = %d, %v; want ErrConflict", through, why, n, err)
		}
	}
	refused(3, "without a checkpoint")
	addCheckpoint(5, "periodic")
	refused(3, "below a periodic checkpoint")
	addCheckpoint(3, "prune")
	refused(5, "above the prune checkpoint")
	if diff := cmp.Diff(all, count()); diff != "" {
		t.Fatalf("records after refused prunes (-want +got):\n%s", diff)
	}

	if n, err := prune(3); err != nil || n != 3 {
		t.Fatalf("PruneAuditRecords(3) at the prune checkpoint = %d, %v; want 3", n, err)
	}
	if n, err := prune(2); err != nil || n != 0 {
		t.Errorf("PruneAuditRecords(2) of pruned records = %d, %v; want 0", n, err)
	}
	addCheckpoint(9, "prune")
	if n, err := prune(6); err != nil || n != 3 {
		t.Fatalf("PruneAuditRecords(6) below the prune checkpoint = %d, %v; want 3", n, err)
	}
	if diff := cmp.Diff([]uint64{7, 8, 9, 10, 11}, count()); diff != "" {
		t.Errorf("records after pruning (-want +got):\n%s", diff)
	}
	// The head and what follows are untouched; appending goes on.
	appendAudit(t, s, auditRecord(12))
	if got := count(); len(got) != 6 || got[5] != 12 {
		t.Errorf("records after appending = %v", got)
	}
}
