package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/rampart-ml/rampart/internal/store"
)

// epoch is the base of the identity tests' times: not UTC and with
// nanoseconds, like account's CreatedAt.
var epoch = time.Date(2026, 5, 6, 7, 8, 9, 123456789, time.FixedZone("EST", -5*3600))

// get runs fn in its own transaction and returns what it returned. Unlike
// inTx it leaves errors to the caller, and the transaction rolls back on one.
func get[T any](s store.Store, fn func(tx store.Tx) (T, error)) (T, error) {
	var v T
	err := s.InTx(context.Background(), func(tx store.Tx) (err error) {
		v, err = fn(tx)
		return err
	})
	return v, err
}

// must is get for calls that must succeed.
func must[T any](t *testing.T, s store.Store, fn func(tx store.Tx) (T, error)) T {
	t.Helper()
	v, err := get(s, fn)
	if err != nil {
		t.Fatalf("InTx: %v", err)
	}
	return v
}

// try runs fn in its own transaction and returns its error.
func try(s store.Store, fn func(tx store.Tx) error) error {
	return s.InTx(context.Background(), fn)
}

// wantIs fails the test unless err is want.
func wantIs(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Errorf("%s: error = %v, want %v", what, err, want)
	}
}

func accountByID(s store.Store, id string) (store.Account, error) {
	return get(s, func(tx store.Tx) (store.Account, error) {
		return tx.Accounts().AccountByID(context.Background(), id)
	})
}

func listAccounts(t *testing.T, s store.Store) []store.Account {
	t.Helper()
	return must(t, s, func(tx store.Tx) ([]store.Account, error) {
		return tx.Accounts().ListAccounts(context.Background())
	})
}

// fullAccount is account(name) with every optional field set.
func fullAccount(name string) store.Account {
	a := account(name)
	a.Email = name + "@example.org"
	a.Admin, a.MustChangePassword, a.Disabled, a.Anonymized = true, false, true, true
	a.TOTPSecret = []byte("sealed-" + name)
	a.TOTPLastStep = 59_000_123
	return a
}

func testAccountRoundTrip(t *testing.T, s store.Store) {
	for _, want := range []store.Account{account("plain"), fullAccount("full")} {
		create(t, s, want)
		byName, err := lookup(t, s, want.Name)
		if err != nil {
			t.Fatalf("AccountByName(%q): %v", want.Name, err)
		}
		if d := cmp.Diff(want, byName, equateTime); d != "" {
			t.Errorf("AccountByName(%q) (-want +got):\n%s", want.Name, d)
		}
		byID, err := accountByID(s, want.ID)
		if err != nil {
			t.Fatalf("AccountByID(%q): %v", want.ID, err)
		}
		if d := cmp.Diff(want, byID, equateTime); d != "" {
			t.Errorf("AccountByID(%q) (-want +got):\n%s", want.ID, d)
		}
	}
}

func testAccountByIDUnknown(t *testing.T, s store.Store) {
	create(t, s, account("alice"))
	_, err := accountByID(s, "no-such-id")
	wantIs(t, "AccountByID(unknown)", err, store.ErrNotFound)
}

func testListAccounts(t *testing.T, s store.Store) {
	if got := listAccounts(t, s); len(got) != 0 {
		t.Errorf("ListAccounts on empty store = %v, want none", got)
	}
	alice, bob, carol := account("alice"), fullAccount("bob"), account("carol")
	create(t, s, carol, alice, bob)
	if d := cmp.Diff([]store.Account{alice, bob, carol}, listAccounts(t, s), equateTime); d != "" {
		t.Errorf("ListAccounts ordered by name (-want +got):\n%s", d)
	}
}

func testUpdateAccount(t *testing.T, s store.Store) {
	ctx := context.Background()
	alice := account("alice")
	create(t, s, alice, account("bob"))

	// Every field changes; CreatedAt must not.
	want := fullAccount("alicia")
	want.ID = alice.ID
	update := want
	update.CreatedAt = epoch
	inTx(t, s, func(tx store.Tx) error { return tx.Accounts().UpdateAccount(ctx, update) })
	want.CreatedAt = alice.CreatedAt
	got, err := accountByID(s, alice.ID)
	if err != nil {
		t.Fatalf("AccountByID: %v", err)
	}
	if d := cmp.Diff(want, got, equateTime); d != "" {
		t.Errorf("after UpdateAccount (-want +got):\n%s", d)
	}
	wantAbsent(t, s, "alice")

	// And back: optional fields can be cleared.
	inTx(t, s, func(tx store.Tx) error { return tx.Accounts().UpdateAccount(ctx, alice) })
	if got, err := accountByID(s, alice.ID); err != nil {
		t.Fatalf("AccountByID: %v", err)
	} else if d := cmp.Diff(alice, got, equateTime); d != "" {
		t.Errorf("after clearing fields (-want +got):\n%s", d)
	}

	for _, tt := range []struct {
		name    string
		account store.Account
		want    error
	}{
		{"unknown id", account("nobody"), store.ErrNotFound},
		{"name taken", func() store.Account { a := alice; a.Name = "bob"; return a }(), store.ErrConflict},
	} {
		err := try(s, func(tx store.Tx) error { return tx.Accounts().UpdateAccount(ctx, tt.account) })
		wantIs(t, "UpdateAccount("+tt.name+")", err, tt.want)
	}
	if got, err := accountByID(s, alice.ID); err != nil || got.Name != alice.Name {
		t.Errorf("after failed updates: AccountByID = %+v, %v; want it unchanged", got, err)
	}
}

func testDeleteAccount(t *testing.T, s store.Store) {
	ctx := context.Background()
	alice := account("alice")
	create(t, s, alice, account("bob"))
	inTx(t, s, func(tx store.Tx) error {
		return tx.Accounts().SetLoginState(ctx, alice.ID, store.LoginState{Failures: 3, LastFailure: epoch})
	})
	inTx(t, s, func(tx store.Tx) error { return tx.Accounts().DeleteAccount(ctx, alice.ID) })

	_, err := accountByID(s, alice.ID)
	wantIs(t, "AccountByID after delete", err, store.ErrNotFound)
	wantAbsent(t, s, alice.Name)
	if n := count(t, s); n != 1 {
		t.Errorf("CountAccounts = %d, want 1", n)
	}
	err = try(s, func(tx store.Tx) error { return tx.Accounts().DeleteAccount(ctx, alice.ID) })
	wantIs(t, "DeleteAccount twice", err, store.ErrNotFound)

	// The login state went with the account: a new account with the same
	// id starts clean.
	create(t, s, alice)
	st := must(t, s, func(tx store.Tx) (store.LoginState, error) { return tx.Accounts().LoginState(ctx, alice.ID) })
	if d := cmp.Diff(store.LoginState{}, st, equateTime); d != "" {
		t.Errorf("login state survived DeleteAccount (-want +got):\n%s", d)
	}
}

func testDeleteAccountOwningServiceAccounts(t *testing.T, s store.Store) {
	ctx := context.Background()
	alice, bob := account("alice"), account("bob")
	create(t, s, alice, bob)
	sa := serviceAccount("ci", alice.ID)
	inTx(t, s, func(tx store.Tx) error { return tx.ServiceAccounts().CreateServiceAccount(ctx, sa) })

	err := try(s, func(tx store.Tx) error { return tx.Accounts().DeleteAccount(ctx, alice.ID) })
	wantIs(t, "DeleteAccount of an owner", err, store.ErrConflict)
	if _, err := accountByID(s, alice.ID); err != nil {
		t.Fatalf("owner gone after refused delete: %v", err)
	}

	// Once the service account has another owner, alice can go.
	sa.OwnerID = bob.ID
	inTx(t, s, func(tx store.Tx) error { return tx.ServiceAccounts().UpdateServiceAccount(ctx, sa) })
	inTx(t, s, func(tx store.Tx) error { return tx.Accounts().DeleteAccount(ctx, alice.ID) })
	err = try(s, func(tx store.Tx) error { return tx.Accounts().DeleteAccount(ctx, bob.ID) })
	wantIs(t, "DeleteAccount of the new owner", err, store.ErrConflict)
}
