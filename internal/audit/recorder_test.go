package audit

import (
	"context"
	"errors"
	"testing"

	"github.com/rampart-ml/rampart/internal/principal"
	"github.com/rampart-ml/rampart/internal/store"
)

// pseudonymIn returns subject's pseudonym, computed in a transaction of
// its own.
func pseudonymIn(t *testing.T, st store.Store, r *Recorder, subject string) string {
	t.Helper()
	var p string
	err := st.InTx(context.Background(), func(tx store.Tx) (err error) {
		p, err = r.PseudonymOf(context.Background(), tx, subject)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// resolves reports whether p resolves to subject.
func resolves(t *testing.T, st store.Store, r *Recorder, p, subject string) bool {
	t.Helper()
	var got string
	err := st.InTx(context.Background(), func(tx store.Tx) (err error) {
		got, err = r.Resolve(context.Background(), tx, p)
		return err
	})
	if err != nil && !errors.Is(err, ErrUnknownPseudonym) {
		t.Fatal(err)
	}
	return err == nil && got == subject
}

// TestEraseIsFinal: after Erase, the subject's old pseudonym does not
// resolve, and records that name them again get one-off pseudonyms, never
// a new secret that would link those records to them or to each other.
func TestEraseIsFinal(t *testing.T) {
	t.Parallel()
	st, _ := openStore(t)
	r := newRecorder(t, st, RecorderOptions{})
	ctx := principal.WithContext(context.Background(), principal.Principal{ID: "acct-alice", Kind: principal.User})
	before := pseudonymIn(t, st, r, "acct-alice")
	if !resolves(t, st, r, before, "acct-alice") {
		t.Fatal("the pseudonym does not resolve before the erasure")
	}
	if err := st.InTx(ctx, func(tx store.Tx) error { return r.Erase(ctx, tx, "acct-alice") }); err != nil {
		t.Fatal(err)
	}
	if resolves(t, st, r, before, "acct-alice") {
		t.Error("the pseudonym still resolves after the erasure")
	}
	// A record queued before the erasure, or a later one naming her.
	for range 2 {
		if err := r.Write(ctx, Entry{Action: "login"}); err != nil {
			t.Fatal(err)
		}
	}
	var recs []store.AuditRecord
	err := st.InTx(ctx, func(tx store.Tx) error {
		if _, err := tx.Audit().PseudonymSecret(ctx, "acct-alice"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("a secret exists again after the erasure (%v)", err)
		}
		var err error
		recs, err = tx.Audit().AuditRecords(ctx, 0, 10)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 2 || recs[0].Actor == recs[1].Actor || recs[0].Actor == before || !IsPseudonym(recs[0].Actor) {
		t.Errorf("records after the erasure: %+v; want two different one-off pseudonyms", recs)
	}
	for _, rec := range recs {
		if resolves(t, st, r, rec.Actor, "acct-alice") {
			t.Errorf("record %d resolves to the erased subject", rec.Seq)
		}
	}
}

// TestPseudonymCacheRollback: a secret created in a transaction that rolls
// back is not cached, however often that transaction reads it, so the
// subject's next pseudonym is the one whose secret is stored.
func TestPseudonymCacheRollback(t *testing.T) {
	t.Parallel()
	st, _ := openStore(t)
	r := newRecorder(t, st, RecorderOptions{})
	ctx := context.Background()
	boom := errors.New("roll back")
	err := st.InTx(ctx, func(tx store.Tx) error {
		for range 3 {
			if _, err := r.PseudonymOf(ctx, tx, "acct-bob"); err != nil {
				return err
			}
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatal(err)
	}
	p := pseudonymIn(t, st, r, "acct-bob")
	if !resolves(t, st, r, p, "acct-bob") {
		t.Fatal("the pseudonym after the rollback does not resolve")
	}
	// Cached now (read in a later transaction), and still the stored one.
	if again := pseudonymIn(t, st, r, "acct-bob"); again != p || !resolves(t, st, r, again, "acct-bob") {
		t.Errorf("cached pseudonym %s, stored %s", again, p)
	}
}

// TestHeadHintAfterRollback: the head the Recorder remembers runs ahead of
// the log when a transaction that appended rolls back; the next record
// still links to the real head.
func TestHeadHintAfterRollback(t *testing.T) {
	t.Parallel()
	st, _ := openStore(t)
	r := newRecorder(t, st, RecorderOptions{})
	ctx := context.Background()
	sys := &Actor{ID: "test", Kind: ActorSystem}
	if err := r.Write(ctx, Entry{Action: "first", Actor: sys}); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("roll back")
	err := st.InTx(ctx, func(tx store.Tx) error {
		if err := r.Record(ctx, tx, Entry{Action: "rolled-back", Actor: sys}); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatal(err)
	}
	for _, action := range []string{"second", "third"} {
		if err := r.Write(ctx, Entry{Action: action, Actor: sys}); err != nil {
			t.Fatalf("%s after the rollback: %v", action, err)
		}
	}
	signer := newSigner(t)
	checkpoint(t, st, signer, KindShutdown)
	rep, err := Verify(ctx, st, signer.Public())
	if err != nil || rep.Records != 3 {
		t.Errorf("Verify = %+v, %v; want 3 records, intact", rep, err)
	}
}
