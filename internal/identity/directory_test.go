package identity

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/rampart-ml/rampart/internal/store"
)

// pausingStore lets a test hold a transaction open after it has read.
type pausingStore struct {
	store.Store
	read, resume chan struct{}
}

func (p *pausingStore) InTx(ctx context.Context, fn func(store.Tx) error) error {
	err := p.Store.InTx(ctx, fn)
	if p.read != nil {
		p.read <- struct{}{}
		<-p.resume
	}
	return err
}

// A lookup that read the account before it was disabled, and finishes
// after the writer's Invalidate, must not cache the stale answer: the
// next lookup sees the account disabled.
func TestDirectoryInvalidateDuringLookup(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := newStore(t)
	acct := store.Account{ID: "u1", Name: "dora", PasswordHash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g", CreatedAt: time.Now()}
	if err := st.InTx(ctx, func(tx store.Tx) error { return tx.Accounts().CreateAccount(ctx, acct) }); err != nil {
		t.Fatal(err)
	}
	ps := &pausingStore{Store: st, read: make(chan struct{}), resume: make(chan struct{})}
	d := NewDirectory(ps, time.Hour, nil)

	done := make(chan error, 1)
	go func() { _, err := d.Lookup(ctx, "u1"); done <- err }()
	<-ps.read // the lookup has read the account, still enabled
	ps.read = nil
	acct.Disabled = true
	if err := st.InTx(ctx, func(tx store.Tx) error { return tx.Accounts().UpdateAccount(ctx, acct) }); err != nil {
		t.Fatal(err)
	}
	d.Invalidate("u1")
	close(ps.resume)
	if err := <-done; err != nil {
		t.Fatalf("the in-flight lookup: %v", err)
	}
	if _, err := d.Lookup(ctx, "u1"); !errors.Is(err, ErrInactive) {
		t.Errorf("lookup after disable + Invalidate: %v, want ErrInactive", err)
	}
}
