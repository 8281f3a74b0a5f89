package audit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/rampart-ml/rampart/internal/store"
	"github.com/rampart-ml/rampart/internal/store/sqlite"
)

// openStore opens a fresh SQLite store in a temporary directory and
// returns it with the path of its file.
func openStore(t testing.TB) (*sqlite.Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "rampart.db")
	st, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st, path
}

// event returns a valid event numbered i.
func event(i int) Event {
	e := validEvent()
	e.Time = time.Date(2025, 6, 7, 10, 0, 0, 0, time.UTC).Add(time.Duration(i) * time.Millisecond)
	e.TargetID = fmt.Sprintf("g-%d", i)
	e.RequestID = fmt.Sprintf("req-%d", i)
	if i%3 == 0 {
		e.Source, e.Reason = "", ""
	}
	return e
}

// appendEvents appends events from..to-1 in one transaction.
func appendEvents(t testing.TB, st store.Store, from, to int) []store.AuditRecord {
	t.Helper()
	var recs []store.AuditRecord
	err := st.InTx(context.Background(), func(tx store.Tx) error {
		for i := from; i < to; i++ {
			r, err := Append(context.Background(), tx, event(i))
			if err != nil {
				return err
			}
			recs = append(recs, r)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

func TestAppendChains(t *testing.T) {
	t.Parallel()
	st, _ := openStore(t)
	recs := append(appendEvents(t, st, 0, 3), appendEvents(t, st, 3, 5)...)
	prev := GenesisHash()
	for i, r := range recs {
		if r.Seq != uint64(i+1) {
			t.Errorf("record %d: seq %d", i, r.Seq)
		}
		if !bytes.Equal(r.PrevHash, prev) {
			t.Errorf("record %d: prev hash %x, want %x", r.Seq, r.PrevHash, prev)
		}
		if want := RecordHash(prev, r.Seq, event(i)); !bytes.Equal(r.Hash, want) {
			t.Errorf("record %d: hash %x, want %x", r.Seq, r.Hash, want)
		}
		prev = r.Hash
	}
	// What was stored is what Append returned, and reads back as the event.
	err := st.InTx(context.Background(), func(tx store.Tx) error {
		got, err := tx.Audit().AuditRecords(context.Background(), 0, 10)
		if err != nil {
			return err
		}
		for i := range got {
			if !bytes.Equal(got[i].Hash, recs[i].Hash) || !bytes.Equal(Canonical(EventOf(got[i])), Canonical(event(i))) {
				t.Errorf("stored record %d differs from the appended one", got[i].Seq)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestAppendFailClosed: a change and its record commit together or not at
// all. The record fails (a bad event, or a store that refuses it), so the
// change made before it in the same transaction is rolled back.
func TestAppendFailClosed(t *testing.T) {
	t.Parallel()
	errDisk := errors.New("disk full")
	tests := []struct {
		name    string
		wrap    func(store.Tx) store.Tx
		event   Event
		wantErr error
	}{
		{"invalid event", func(tx store.Tx) store.Tx { return tx }, Event{Action: "domain.create"}, ErrInvalidEvent},
		{"store refuses the record", func(tx store.Tx) store.Tx { return failingTx{Tx: tx, err: errDisk} }, validEvent(), errDisk},
		{"store cannot read the head", func(tx store.Tx) store.Tx { return failingTx{Tx: tx, err: errDisk, head: true} }, validEvent(), errDisk},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			st, _ := openStore(t)
			ctx := context.Background()
			err := st.InTx(ctx, func(tx store.Tx) error {
				d := store.Domain{Name: "com.acme", CreatedBy: "id-admin", CreatedAt: time.Now()}
				if err := tx.Domains().CreateDomain(ctx, d); err != nil {
					return err
				}
				_, err := Append(ctx, tt.wrap(tx), tt.event)
				return err
			})
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("InTx = %v, want %v", err, tt.wantErr)
			}
			if tt.wantErr == errDisk && !errors.Is(err, ErrWrite) {
				t.Errorf("InTx = %v, want it to wrap ErrWrite", err)
			}
			err = st.InTx(ctx, func(tx store.Tx) error {
				exists, err := tx.Domains().DomainExists(ctx, "com.acme")
				if exists {
					t.Error("the change committed without its audit record")
				}
				if _, ok, _ := tx.Audit().AuditHead(ctx); ok {
					t.Error("a record was written")
				}
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}

// failingTx is a transaction whose audit store fails.
type failingTx struct {
	store.Tx
	err  error
	head bool // fail AuditHead too, not only AppendAuditRecord
}

func (f failingTx) Audit() store.Audit { return failingAudit{Audit: f.Tx.Audit(), f: f} }

type failingAudit struct {
	store.Audit
	f failingTx
}

func (a failingAudit) AppendAuditRecord(context.Context, store.AuditRecord) error { return a.f.err }

func (a failingAudit) AuditHead(ctx context.Context) (store.AuditRecord, bool, error) {
	if a.f.head {
		return store.AuditRecord{}, false, a.f.err
	}
	return a.Audit.AuditHead(ctx)
}

func (a failingAudit) AuditHeadLink(ctx context.Context) (uint64, []byte, bool, error) {
	if a.f.head {
		return 0, nil, false, a.f.err
	}
	return a.Audit.AuditHeadLink(ctx)
}

// TestAppendConcurrent: transactions appending at once still make one
// chain without gaps.
func TestAppendConcurrent(t *testing.T) {
	t.Parallel()
	st, _ := openStore(t)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 10 {
				appendEvents(t, st, g*100+i*5, g*100+i*5+5)
			}
		}()
	}
	wg.Wait()
	signer := newSigner(t)
	checkpoint(t, st, signer, KindShutdown)
	rep, err := Verify(context.Background(), st, signer.Public())
	if err != nil {
		t.Fatal(err)
	}
	if rep.Records != 400 || rep.LastSeq != 400 {
		t.Errorf("report %+v, want 400 records", rep)
	}
}
