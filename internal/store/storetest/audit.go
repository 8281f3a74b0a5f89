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
		auditCheckpoint(5, "prune"),
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
