// Package identitytest gives the identity packages' tests what they need
// to check the audit records they write: a real Recorder over a real
// store, a store whose audit log can be made to fail, and a check that
// records name people only by pseudonym and hold nothing personal.
//
// It is for tests only; no production code imports it.
package identitytest

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rampart-ml/rampart/internal/audit"
	"github.com/rampart-ml/rampart/internal/httpapi"
	"github.com/rampart-ml/rampart/internal/secrets"
	"github.com/rampart-ml/rampart/internal/store"
)

// NewRecorder returns a Recorder writing to st as the server's does: it
// takes the request id and client address from httpapi's request
// context. A nil sealer gets a fresh random master key.
func NewRecorder(t testing.TB, st store.Store, sealer *secrets.Sealer) *audit.Recorder {
	t.Helper()
	if sealer == nil {
		sealer = NewSealer(t)
	}
	rec, err := audit.NewRecorder(audit.RecorderOptions{
		Store: st, Sealer: sealer, SourceKey: []byte(strings.Repeat("k", 32)),
		Request: func(ctx context.Context) audit.RequestInfo {
			return audit.RequestInfo{ID: httpapi.RequestID(ctx), ClientAddr: httpapi.ClientAddr(ctx)}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

// NewSealer returns a sealer with a fresh random master key.
func NewSealer(t testing.TB) *secrets.Sealer {
	t.Helper()
	key := make([]byte, secrets.KeySize)
	_, _ = rand.Read(key)
	s, err := secrets.New(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Records returns every audit record in st, oldest first.
func Records(t testing.TB, st store.Store) []store.AuditRecord {
	t.Helper()
	var all []store.AuditRecord
	ctx := context.Background()
	err := st.InTx(ctx, func(tx store.Tx) error {
		for {
			var after uint64
			if len(all) > 0 {
				after = all[len(all)-1].Seq
			}
			batch, err := tx.Audit().AuditRecords(ctx, after, 100)
			if err != nil || len(batch) == 0 {
				return err
			}
			all = append(all, batch...)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return all
}

// WithAction returns the records of recs whose action is action.
func WithAction(recs []store.AuditRecord, action string) []store.AuditRecord {
	var out []store.AuditRecord
	for _, r := range recs {
		if r.Action == action {
			out = append(out, r)
		}
	}
	return out
}

// Actions returns the actions of recs, in order, joined by spaces (for
// compact comparisons and messages).
func Actions(recs []store.AuditRecord) string {
	var a []string
	for _, r := range recs {
		a = append(a, r.Action)
	}
	return strings.Join(a, " ")
}

// CheckPrivate fails t when a record names a user or service account other
// than by pseudonym (actor, or target of an account or service-account
// record) or when any of its fields contains one of private (names,
// e-mails, passwords, tokens, addresses the test used). Empty strings in
// private are ignored.
func CheckPrivate(t testing.TB, recs []store.AuditRecord, private ...string) {
	t.Helper()
	for _, r := range recs {
		if (r.ActorKind == audit.ActorUser || r.ActorKind == audit.ActorServiceAccount) && !audit.IsPseudonym(r.Actor) {
			t.Errorf("record %d (%s): actor %q is not a pseudonym", r.Seq, r.Action, r.Actor)
		}
		if (r.TargetKind == "account" || r.TargetKind == "service-account") && r.TargetID != "" && !audit.IsPseudonym(r.TargetID) {
			t.Errorf("record %d (%s): target %q is not a pseudonym", r.Seq, r.Action, r.TargetID)
		}
		fields := []string{r.Actor, r.ActorKind, r.Source, r.Action, r.TargetKind, r.TargetDomain, r.TargetID, r.Outcome, r.Reason, r.RequestID}
		for _, p := range private {
			if p == "" {
				continue
			}
			for _, f := range fields {
				if strings.Contains(strings.ToLower(f), strings.ToLower(p)) {
					t.Errorf("record %d (%s) holds private text %q in %q", r.Seq, r.Action, p, f)
				}
			}
		}
	}
}

// Resolve resolves pseudonym with rec in a transaction of st.
func Resolve(t testing.TB, st store.Store, rec *audit.Recorder, pseudonym string) (string, error) {
	t.Helper()
	var subject string
	ctx := context.Background()
	err := st.InTx(ctx, func(tx store.Tx) error {
		var err error
		subject, err = rec.Resolve(ctx, tx, pseudonym)
		return err
	})
	return subject, err
}

// NewSigner returns a checkpoint signer with a fresh key.
func NewSigner(t testing.TB) *audit.Signer {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := audit.NewSigner(priv)
	if err != nil {
		t.Fatal(err)
	}
	return signer
}

// VerifyChain signs a checkpoint of st's log with signer and verifies the
// whole chain and every checkpoint, failing t on any problem.
func VerifyChain(t testing.TB, st store.Store, signer *audit.Signer) audit.Report {
	t.Helper()
	ctx := context.Background()
	err := st.InTx(ctx, func(tx store.Tx) error {
		_, err := audit.Checkpoint(ctx, tx, signer, audit.KindPeriodic, time.Now())
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := audit.Verify(ctx, st, signer.Public())
	if err != nil {
		t.Fatalf("audit.Verify = %+v, %v", rep, err)
	}
	return rep
}

// ErrAuditDown is the failure of a FailingStore's audit log.
var ErrAuditDown = errors.New("audit log unavailable (test)")

// FailingStore is a store whose audit log refuses records while Fail is
// set: every transaction that appends one fails and rolls back, as when
// the disk under the log is full.
type FailingStore struct {
	store.Store
	fail atomic.Bool
}

// NewFailingStore wraps st; its audit log works until SetFailing(true).
func NewFailingStore(st store.Store) *FailingStore { return &FailingStore{Store: st} }

// SetFailing makes the audit log refuse records (true) or take them again.
func (f *FailingStore) SetFailing(fail bool) { f.fail.Store(fail) }

// InTx implements store.Store.
func (f *FailingStore) InTx(ctx context.Context, fn func(tx store.Tx) error) error {
	return f.Store.InTx(ctx, func(tx store.Tx) error { return fn(failingTx{Tx: tx, f: f}) })
}

type failingTx struct {
	store.Tx
	f *FailingStore
}

func (t failingTx) Audit() store.Audit { return failingAudit{Audit: t.Tx.Audit(), f: t.f} }

type failingAudit struct {
	store.Audit
	f *FailingStore
}

func (a failingAudit) AppendAuditRecord(ctx context.Context, r store.AuditRecord) error {
	if a.f.fail.Load() {
		return ErrAuditDown
	}
	return a.Audit.AppendAuditRecord(ctx, r)
}
