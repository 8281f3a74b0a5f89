// Package storetest is the conformance suite for store.Store: every backend
// (SQLite, PostgreSQL, in-memory fakes) runs Run and must pass it unchanged.
//
// It owns the behaviour callers may rely on; it must never reach into a
// backend's internals, so a backend that passes is a drop-in replacement.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/rampart-ml/rampart/internal/store"
)

// Run runs the conformance suite. newStore must return a fresh, empty,
// migrated store each time it is called; subtests run in parallel, each with
// its own store, and Run closes every store when its subtest ends.
func Run(t *testing.T, newStore func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"CreateAndReadAccount", testCreateAndRead},
		{"DuplicateNameConflicts", testDuplicateName},
		{"DuplicateIDConflicts", testDuplicateID},
		{"UnknownNameNotFound", testUnknownName},
		{"SetPasswordHash", testSetPasswordHash},
		{"SetPasswordHashUnknownIDNotFound", testSetPasswordHashUnknown},
		{"RollbackOnError", testRollbackOnError},
		{"RollbackOnPanic", testRollbackOnPanic},
		{"CommittedVisibleInLaterTx", testCommittedVisible},
		{"CountAccounts", testCountAccounts},
		{"CancelledContext", testCancelledContext},
		{"ConcurrentTransactions", testConcurrent},
		{"LoginState", testLoginState},
		{"LoginStateUnknownAccount", testLoginStateUnknown},
		{"SigningKeys", testSigningKeys},
		{"SealedSecrets", testSealedSecrets},
		{"AccountRoundTrip", testAccountRoundTrip},
		{"AccountByIDUnknownNotFound", testAccountByIDUnknown},
		{"ListAccounts", testListAccounts},
		{"UpdateAccount", testUpdateAccount},
		{"DeleteAccount", testDeleteAccount},
		{"DeleteAccountOwningServiceAccountsConflicts", testDeleteAccountOwningServiceAccounts},
		{"ServiceAccountRoundTrip", testServiceAccountRoundTrip},
		{"ServiceAccountNotFound", testServiceAccountNotFound},
		{"CreateServiceAccountErrors", testCreateServiceAccountErrors},
		{"ListServiceAccounts", testListServiceAccounts},
		{"UpdateServiceAccount", testUpdateServiceAccount},
		{"DeleteServiceAccountCascades", testDeleteServiceAccountCascades},
		{"ClientSecrets", testClientSecrets},
		{"ExpireClientSecrets", testExpireClientSecrets},
		{"ClientKeys", testClientKeys},
		{"SessionRoundTrip", testSessionRoundTrip},
		{"SessionErrors", testSessionErrors},
		{"RevokeSession", testRevokeSession},
		{"RevokeSessionsOf", testRevokeSessionsOf},
		{"RefreshTokens", testRefreshTokens},
		{"UseRefreshToken", testUseRefreshToken},
		{"UseRefreshTokenRollback", testUseRefreshTokenRollback},
		{"Revocations", testRevocations},
		{"DeleteExpiredSessions", testDeleteExpiredSessions},
		{"Domains", testDomains},
		{"DeleteDomainInUseConflicts", testDeleteDomainInUse},
		{"GrantRoundTrip", testGrantRoundTrip},
		{"WildcardGrant", testWildcardGrant},
		{"CreateGrantErrors", testCreateGrantErrors},
		{"GrantNotFound", testGrantNotFound},
		{"ListGrants", testListGrants},
		{"DeleteGrantsOfSubject", testDeleteGrantsOfSubject},
		{"AccessVersion", testAccessVersion},
		{"AccessVersionRollback", testAccessRollback},
		{"AuditAppendAndRead", testAuditAppendAndRead},
		{"AuditTimeExact", testAuditTimeExact},
		{"AuditDuplicateSeqConflicts", testAuditDuplicateSeq},
		{"AuditRollback", testAuditRollback},
		{"AuditCheckpoints", testAuditCheckpoints},
		{"FindAuditRecords", testFindAuditRecords},
		{"FirstAuditSeqAt", testFirstAuditSeqAt},
		{"PruneAuditRecords", testPruneAuditRecords},
		{"PseudonymSecrets", testPseudonymSecrets},
		{"ErasedSubjects", testErasedSubjects},
		{"PruneCheckpointMustMatch", testPruneCheckpointMustMatch},
		{"Models", testModels},
		{"ModelVersions", testModelVersions},
		{"SignerKeys", testSignerKeys},
		{"UnsignedAllowed", testUnsignedAllowed},
		{"Services", testServices},
		{"ServiceReferences", testServiceReferences},
		{"Ping", testPing},
		{"Closed", testClosed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := newStore(t)
			t.Cleanup(func() { _ = s.Close() }) // ErrClosed if the test closed it
			tt.fn(t, s)
		})
	}
}

// equateTime compares times to the microsecond, the finest precision every
// backend keeps (PostgreSQL rounds to it), ignoring location.
var equateTime = cmpopts.EquateApproxTime(time.Microsecond)

// #nosec G101 -- a syntactically valid test hash of no real password.
func account(name string) store.Account {
	return store.Account{
		ID:                 "id-" + name,
		Name:               name,
		PasswordHash:       "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo",
		Admin:              false,
		MustChangePassword: true,
		// Not UTC and with nanoseconds, to check both survive the round trip.
		CreatedAt: time.Date(2025, 3, 4, 5, 6, 7, 123456789, time.FixedZone("CET", 3600)),
	}
}

// inTx runs fn in a transaction and fails the test if it returns an error.
func inTx(t *testing.T, s store.Store, fn func(tx store.Tx) error) {
	t.Helper()
	if err := s.InTx(context.Background(), fn); err != nil {
		t.Fatalf("InTx: %v", err)
	}
}

func create(t *testing.T, s store.Store, accts ...store.Account) {
	t.Helper()
	inTx(t, s, func(tx store.Tx) error {
		for _, a := range accts {
			if err := tx.Accounts().CreateAccount(context.Background(), a); err != nil {
				return err
			}
		}
		return nil
	})
}

// lookup returns the account called name, or the error AccountByName gave.
func lookup(t *testing.T, s store.Store, name string) (store.Account, error) {
	t.Helper()
	var (
		got    store.Account
		getErr error
	)
	inTx(t, s, func(tx store.Tx) error {
		got, getErr = tx.Accounts().AccountByName(context.Background(), name)
		return nil
	})
	return got, getErr
}

func count(t *testing.T, s store.Store) int {
	t.Helper()
	var n int
	inTx(t, s, func(tx store.Tx) error {
		var err error
		n, err = tx.Accounts().CountAccounts(context.Background())
		return err
	})
	return n
}

// wantAbsent fails the test unless no account called name exists.
func wantAbsent(t *testing.T, s store.Store, name string) {
	t.Helper()
	if _, err := lookup(t, s, name); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("AccountByName(%q) error = %v, want ErrNotFound: the write was not rolled back", name, err)
	}
}

func testCreateAndRead(t *testing.T, s store.Store) {
	alice := account("alice")
	bob := account("bob")
	bob.Admin, bob.MustChangePassword = true, false
	create(t, s, alice, bob)

	for _, want := range []store.Account{alice, bob} {
		got, err := lookup(t, s, want.Name)
		if err != nil {
			t.Fatalf("AccountByName(%q): %v", want.Name, err)
		}
		if diff := cmp.Diff(want, got, equateTime); diff != "" {
			t.Errorf("AccountByName(%q) mismatch (-want +got):\n%s", want.Name, diff)
		}
	}
}

func testDuplicateName(t *testing.T, s store.Store) {
	create(t, s, account("alice"))
	dup := account("alice")
	dup.ID = "another-id"
	err := s.InTx(context.Background(), func(tx store.Tx) error {
		return tx.Accounts().CreateAccount(context.Background(), dup)
	})
	if !errors.Is(err, store.ErrConflict) {
		t.Errorf("CreateAccount with taken name: error = %v, want ErrConflict", err)
	}
}

func testDuplicateID(t *testing.T, s store.Store) {
	create(t, s, account("alice"))
	dup := account("bob")
	dup.ID = account("alice").ID
	err := s.InTx(context.Background(), func(tx store.Tx) error {
		return tx.Accounts().CreateAccount(context.Background(), dup)
	})
	if !errors.Is(err, store.ErrConflict) {
		t.Errorf("CreateAccount with taken id: error = %v, want ErrConflict", err)
	}
	wantAbsent(t, s, "bob")
}

func testUnknownName(t *testing.T, s store.Store) {
	create(t, s, account("alice"))
	wantAbsent(t, s, "nobody")
}

func testSetPasswordHash(t *testing.T, s store.Store) {
	a := account("alice")
	create(t, s, a)
	const newHash = "$argon2id$v=19$m=65536,t=3,p=4$bmV3c2FsdA$bmV3aGFzaA"
	inTx(t, s, func(tx store.Tx) error {
		return tx.Accounts().SetPasswordHash(context.Background(), a.ID, newHash)
	})
	got, err := lookup(t, s, a.Name)
	if err != nil {
		t.Fatalf("AccountByName: %v", err)
	}
	a.PasswordHash = newHash
	if diff := cmp.Diff(a, got, equateTime); diff != "" {
		t.Errorf("after SetPasswordHash (-want +got):\n%s", diff)
	}
}

func testSetPasswordHashUnknown(t *testing.T, s store.Store) {
	create(t, s, account("alice"))
	err := s.InTx(context.Background(), func(tx store.Tx) error {
		return tx.Accounts().SetPasswordHash(context.Background(), "no-such-id", "$argon2id$x")
	})
	if !errors.Is(err, store.ErrNotFound) {
		t.Errorf("SetPasswordHash(unknown id): error = %v, want ErrNotFound", err)
	}
}

func testRollbackOnError(t *testing.T, s store.Store) {
	errBoom := errors.New("boom")
	err := s.InTx(context.Background(), func(tx store.Tx) error {
		if err := tx.Accounts().CreateAccount(context.Background(), account("alice")); err != nil {
			return err
		}
		return errBoom
	})
	if !errors.Is(err, errBoom) {
		t.Errorf("InTx error = %v, want the error fn returned", err)
	}
	wantAbsent(t, s, "alice")
	if n := count(t, s); n != 0 {
		t.Errorf("CountAccounts = %d after rollback, want 0", n)
	}
}

func testRollbackOnPanic(t *testing.T, s store.Store) {
	type boom struct{}
	func() {
		defer func() {
			if r := recover(); r != (boom{}) {
				t.Errorf("recovered %v, want the panic fn raised", r)
			}
		}()
		_ = s.InTx(context.Background(), func(tx store.Tx) error {
			if err := tx.Accounts().CreateAccount(context.Background(), account("alice")); err != nil {
				return err
			}
			panic(boom{})
		})
		t.Error("InTx returned; want the panic to propagate")
	}()
	wantAbsent(t, s, "alice")
	// The store must still work after a panicking transaction.
	create(t, s, account("bob"))
	if n := count(t, s); n != 1 {
		t.Errorf("CountAccounts = %d, want 1", n)
	}
}

func testCommittedVisible(t *testing.T, s store.Store) {
	a := account("alice")
	create(t, s, a)
	got, err := lookup(t, s, a.Name)
	if err != nil {
		t.Fatalf("AccountByName in later transaction: %v", err)
	}
	if got.ID != a.ID {
		t.Errorf("AccountByName(%q).ID = %q, want %q", a.Name, got.ID, a.ID)
	}
}

func testCountAccounts(t *testing.T, s store.Store) {
	if n := count(t, s); n != 0 {
		t.Fatalf("CountAccounts on empty store = %d, want 0", n)
	}
	create(t, s, account("alice"), account("bob"), account("carol"))
	if n := count(t, s); n != 3 {
		t.Errorf("CountAccounts = %d, want 3", n)
	}
	// Inside a transaction, its own uncommitted writes count.
	inTx(t, s, func(tx store.Tx) error {
		if err := tx.Accounts().CreateAccount(context.Background(), account("dave")); err != nil {
			return err
		}
		n, err := tx.Accounts().CountAccounts(context.Background())
		if err != nil {
			return err
		}
		if n != 4 {
			t.Errorf("CountAccounts inside transaction = %d, want 4", n)
		}
		return nil
	})
}

func testCancelledContext(t *testing.T, s store.Store) {
	t.Run("before", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		err := s.InTx(ctx, func(tx store.Tx) error {
			return tx.Accounts().CreateAccount(ctx, account("alice"))
		})
		if err == nil {
			t.Error("InTx with cancelled context succeeded, want an error")
		}
		wantAbsent(t, s, "alice")
	})
	t.Run("during", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		err := s.InTx(ctx, func(tx store.Tx) error {
			if err := tx.Accounts().CreateAccount(ctx, account("bob")); err != nil {
				return err
			}
			cancel() // fn succeeds, but the context ends before commit
			return nil
		})
		if err == nil {
			t.Error("InTx whose context was cancelled before commit succeeded, want an error")
		}
		wantAbsent(t, s, "bob")
	})
}

func testConcurrent(t *testing.T, s store.Store) {
	const workers = 8
	var wg sync.WaitGroup
	errs := make([]error, workers)
	for i := range workers {
		wg.Go(func() {
			errs[i] = s.InTx(context.Background(), func(tx store.Tx) error {
				return tx.Accounts().CreateAccount(context.Background(), account(fmt.Sprintf("user%d", i)))
			})
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("worker %d: %v", i, err)
		}
	}
	if n := count(t, s); n != workers {
		t.Errorf("CountAccounts = %d, want %d", n, workers)
	}
}

func testPing(t *testing.T, s store.Store) {
	if err := s.Ping(context.Background()); err != nil {
		t.Errorf("Ping: %v", err)
	}
}

func testClosed(t *testing.T, s store.Store) {
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	err := s.InTx(context.Background(), func(tx store.Tx) error {
		t.Error("InTx ran fn on a closed store")
		return nil
	})
	if !errors.Is(err, store.ErrClosed) {
		t.Errorf("InTx after Close: error = %v, want ErrClosed", err)
	}
	if err := s.Ping(context.Background()); !errors.Is(err, store.ErrClosed) {
		t.Errorf("Ping after Close: error = %v, want ErrClosed", err)
	}
	if err := s.Close(); !errors.Is(err, store.ErrClosed) {
		t.Errorf("second Close: error = %v, want ErrClosed", err)
	}
}

func testLoginState(t *testing.T, s store.Store) {
	ctx := context.Background()
	a := account("lockme")
	create(t, s, a)
	var got store.LoginState
	inTx(t, s, func(tx store.Tx) (err error) {
		got, err = tx.Accounts().LoginState(ctx, a.ID)
		return err
	})
	if d := cmp.Diff(store.LoginState{}, got); d != "" {
		t.Errorf("fresh account has login state (-want +got):\n%s", d)
	}
	for _, want := range []store.LoginState{
		{Failures: 5, Lockouts: 1, LockedUntil: time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC), LastFailure: time.Date(2026, 1, 2, 3, 3, 5, 0, time.UTC)},
		{Failures: 55, Lockouts: 10, Permanent: true, LastFailure: time.Date(2026, 1, 3, 0, 0, 0, 0, time.UTC)},
		{}, // reset (e.g. admin unlock)
	} {
		inTx(t, s, func(tx store.Tx) error { return tx.Accounts().SetLoginState(ctx, a.ID, want) })
		inTx(t, s, func(tx store.Tx) (err error) {
			got, err = tx.Accounts().LoginState(ctx, a.ID)
			return err
		})
		if d := cmp.Diff(want, got, equateTime); d != "" {
			t.Errorf("login state round trip (-want +got):\n%s", d)
		}
	}
}

func testLoginStateUnknown(t *testing.T, s store.Store) {
	ctx := context.Background()
	err := s.InTx(ctx, func(tx store.Tx) error {
		_, err := tx.Accounts().LoginState(ctx, "no-such-id")
		return err
	})
	if !errors.Is(err, store.ErrNotFound) {
		t.Errorf("LoginState of unknown account: %v, want ErrNotFound", err)
	}
	err = s.InTx(ctx, func(tx store.Tx) error {
		return tx.Accounts().SetLoginState(ctx, "no-such-id", store.LoginState{Failures: 1})
	})
	if !errors.Is(err, store.ErrNotFound) {
		t.Errorf("SetLoginState of unknown account: %v, want ErrNotFound", err)
	}
}

func testSigningKeys(t *testing.T, s store.Store) {
	ctx := context.Background()
	t0 := time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)
	old := store.SigningKey{ID: "k1", Algorithm: "ES256", SealedPrivate: []byte{1, 2, 3},
		CreatedAt: t0, SignUntil: t0.Add(time.Hour), PublishUntil: t0.Add(2 * time.Hour)}
	cur := store.SigningKey{ID: "k2", Algorithm: "ES256", SealedPrivate: []byte{4, 5, 6},
		CreatedAt: t0.Add(time.Hour), SignUntil: t0.Add(25 * time.Hour), PublishUntil: t0.Add(26 * time.Hour)}
	list := func() []store.SigningKey {
		var keys []store.SigningKey
		inTx(t, s, func(tx store.Tx) (err error) {
			keys, err = tx.SigningKeys().ListSigningKeys(ctx)
			return err
		})
		return keys
	}
	inTx(t, s, func(tx store.Tx) error {
		if err := tx.SigningKeys().CreateSigningKey(ctx, cur); err != nil {
			return err
		}
		return tx.SigningKeys().CreateSigningKey(ctx, old)
	})
	if d := cmp.Diff([]store.SigningKey{old, cur}, list(), equateTime); d != "" {
		t.Errorf("keys oldest first (-want +got):\n%s", d)
	}
	err := s.InTx(ctx, func(tx store.Tx) error { return tx.SigningKeys().CreateSigningKey(ctx, old) })
	if !errors.Is(err, store.ErrConflict) {
		t.Errorf("duplicate key id: %v, want ErrConflict", err)
	}

	// Rotation at t0+2h retires k2 (still signing) but not k1 (already retired).
	now := t0.Add(2 * time.Hour)
	inTx(t, s, func(tx store.Tx) error {
		return tx.SigningKeys().RetireSigningKeys(ctx, now, now.Add(10*time.Minute))
	})
	cur.SignUntil, cur.PublishUntil = now, now.Add(10*time.Minute)
	if d := cmp.Diff([]store.SigningKey{old, cur}, list(), equateTime); d != "" {
		t.Errorf("after retire (-want +got):\n%s", d)
	}
	inTx(t, s, func(tx store.Tx) error { return tx.SigningKeys().DeleteExpiredSigningKeys(ctx, now) })
	if d := cmp.Diff([]store.SigningKey{cur}, list(), equateTime); d != "" {
		t.Errorf("after deleting expired (-want +got):\n%s", d)
	}
}
