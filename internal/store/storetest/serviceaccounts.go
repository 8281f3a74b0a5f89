package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/rampart-ml/rampart/internal/store"
)

func serviceAccount(name, ownerID string) store.ServiceAccount {
	return store.ServiceAccount{
		ID:          "sa-" + name,
		Name:        name,
		Description: "runs " + name,
		OwnerID:     ownerID,
		CreatedAt:   epoch,
	}
}

// createServiceAccounts creates alice and then sas, which she may own.
func createServiceAccounts(t *testing.T, s store.Store, sas ...store.ServiceAccount) {
	t.Helper()
	create(t, s, account("alice"))
	inTx(t, s, func(tx store.Tx) error {
		for _, sa := range sas {
			if err := tx.ServiceAccounts().CreateServiceAccount(context.Background(), sa); err != nil {
				return err
			}
		}
		return nil
	})
}

func listServiceAccounts(t *testing.T, s store.Store) []store.ServiceAccount {
	t.Helper()
	return must(t, s, func(tx store.Tx) ([]store.ServiceAccount, error) {
		return tx.ServiceAccounts().ListServiceAccounts(context.Background())
	})
}

func serviceAccountByID(s store.Store, id string) (store.ServiceAccount, error) {
	return get(s, func(tx store.Tx) (store.ServiceAccount, error) {
		return tx.ServiceAccounts().ServiceAccountByID(context.Background(), id)
	})
}

func clientSecrets(t *testing.T, s store.Store, saID string) []store.ClientSecret {
	t.Helper()
	return must(t, s, func(tx store.Tx) ([]store.ClientSecret, error) {
		return tx.ServiceAccounts().ClientSecrets(context.Background(), saID)
	})
}

func clientKeys(t *testing.T, s store.Store, saID string) []store.ClientKey {
	t.Helper()
	return must(t, s, func(tx store.Tx) ([]store.ClientKey, error) {
		return tx.ServiceAccounts().ClientKeys(context.Background(), saID)
	})
}

func testServiceAccountRoundTrip(t *testing.T, s store.Store) {
	ctx := context.Background()
	plain := serviceAccount("plain", "id-alice")
	full := serviceAccount("full", "id-alice")
	full.Disabled, full.ExpiresAt = true, epoch.Add(90*24*time.Hour)
	createServiceAccounts(t, s, plain, full)
	for _, want := range []store.ServiceAccount{plain, full} {
		byID, err := serviceAccountByID(s, want.ID)
		if err != nil {
			t.Fatalf("ServiceAccountByID(%q): %v", want.ID, err)
		}
		if d := cmp.Diff(want, byID, equateTime); d != "" {
			t.Errorf("ServiceAccountByID(%q) (-want +got):\n%s", want.ID, d)
		}
		byName := must(t, s, func(tx store.Tx) (store.ServiceAccount, error) {
			return tx.ServiceAccounts().ServiceAccountByName(ctx, want.Name)
		})
		if d := cmp.Diff(want, byName, equateTime); d != "" {
			t.Errorf("ServiceAccountByName(%q) (-want +got):\n%s", want.Name, d)
		}
	}
}

func testServiceAccountNotFound(t *testing.T, s store.Store) {
	ctx := context.Background()
	createServiceAccounts(t, s, serviceAccount("ci", "id-alice"))
	missing := serviceAccount("nobody", "id-alice")
	for name, fn := range map[string]func(store.ServiceAccounts) error{
		"ServiceAccountByID": func(r store.ServiceAccounts) error {
			_, err := r.ServiceAccountByID(ctx, missing.ID)
			return err
		},
		"ServiceAccountByName": func(r store.ServiceAccounts) error {
			_, err := r.ServiceAccountByName(ctx, missing.Name)
			return err
		},
		"UpdateServiceAccount": func(r store.ServiceAccounts) error { return r.UpdateServiceAccount(ctx, missing) },
		"DeleteServiceAccount": func(r store.ServiceAccounts) error { return r.DeleteServiceAccount(ctx, missing.ID) },
		"DeleteClientSecret": func(r store.ServiceAccounts) error {
			return r.DeleteClientSecret(ctx, missing.ID, "secret")
		},
		"DeleteClientKey": func(r store.ServiceAccounts) error { return r.DeleteClientKey(ctx, missing.ID, "key") },
	} {
		err := try(s, func(tx store.Tx) error { return fn(tx.ServiceAccounts()) })
		wantIs(t, name+"(unknown)", err, store.ErrNotFound)
	}
}

func testCreateServiceAccountErrors(t *testing.T, s store.Store) {
	ci := serviceAccount("ci", "id-alice")
	createServiceAccounts(t, s, ci)
	for _, tt := range []struct {
		name string
		sa   func(sa store.ServiceAccount) store.ServiceAccount
		want error
	}{
		{"id taken", func(sa store.ServiceAccount) store.ServiceAccount { sa.Name = "other"; return sa }, store.ErrConflict},
		{"name taken", func(sa store.ServiceAccount) store.ServiceAccount { sa.ID = "sa-other"; return sa }, store.ErrConflict},
		{"unknown owner", func(sa store.ServiceAccount) store.ServiceAccount {
			sa.ID, sa.Name, sa.OwnerID = "sa-other", "other", "no-such-account"
			return sa
		}, store.ErrNotFound},
	} {
		err := try(s, func(tx store.Tx) error {
			return tx.ServiceAccounts().CreateServiceAccount(context.Background(), tt.sa(ci))
		})
		wantIs(t, "CreateServiceAccount("+tt.name+")", err, tt.want)
	}
	if d := cmp.Diff([]store.ServiceAccount{ci}, listServiceAccounts(t, s), equateTime); d != "" {
		t.Errorf("after failed creates (-want +got):\n%s", d)
	}
}

func testListServiceAccounts(t *testing.T, s store.Store) {
	if got := listServiceAccounts(t, s); len(got) != 0 {
		t.Errorf("ListServiceAccounts on empty store = %v, want none", got)
	}
	a, b, c := serviceAccount("a-deploy", "id-alice"), serviceAccount("b-ci", "id-alice"), serviceAccount("c-backup", "id-alice")
	a.ID, c.ID = "sa-3", "sa-1" // order is by name, not id
	createServiceAccounts(t, s, b, c, a)
	if d := cmp.Diff([]store.ServiceAccount{a, b, c}, listServiceAccounts(t, s), equateTime); d != "" {
		t.Errorf("ListServiceAccounts ordered by name (-want +got):\n%s", d)
	}
}

func testUpdateServiceAccount(t *testing.T, s store.Store) {
	ctx := context.Background()
	orig := serviceAccount("ci", "id-alice")
	createServiceAccounts(t, s, orig)
	create(t, s, account("bob"))

	want := orig
	want.Description, want.OwnerID, want.Disabled, want.ExpiresAt = "new", "id-bob", true, epoch.Add(time.Hour)
	update := want
	update.Name, update.CreatedAt = "renamed", epoch.Add(-time.Hour) // neither may change
	cleared := want
	cleared.Disabled, cleared.ExpiresAt = false, time.Time{}
	for _, step := range []struct{ update, want store.ServiceAccount }{
		{update, want},
		{cleared, cleared},
	} {
		inTx(t, s, func(tx store.Tx) error { return tx.ServiceAccounts().UpdateServiceAccount(ctx, step.update) })
		got, err := serviceAccountByID(s, orig.ID)
		if err != nil {
			t.Fatalf("ServiceAccountByID: %v", err)
		}
		if d := cmp.Diff(step.want, got, equateTime); d != "" {
			t.Errorf("after UpdateServiceAccount (-want +got):\n%s", d)
		}
	}

	bad := cleared
	bad.OwnerID = "no-such-account"
	err := try(s, func(tx store.Tx) error { return tx.ServiceAccounts().UpdateServiceAccount(ctx, bad) })
	wantIs(t, "UpdateServiceAccount(unknown owner)", err, store.ErrNotFound)
}

func testDeleteServiceAccountCascades(t *testing.T, s store.Store) {
	ctx := context.Background()
	ci, other := serviceAccount("ci", "id-alice"), serviceAccount("other", "id-alice")
	createServiceAccounts(t, s, ci, other)
	secret := store.ClientSecret{ID: "s1", ServiceAccountID: ci.ID, Hash: []byte{1}, CreatedAt: epoch}
	key := store.ClientKey{ID: "k1", ServiceAccountID: ci.ID, PublicKey: []byte(`{}`), CreatedAt: epoch}
	otherKey := store.ClientKey{ID: "k1", ServiceAccountID: other.ID, PublicKey: []byte(`{}`), CreatedAt: epoch}
	addCredentials := func(tx store.Tx) error {
		if err := tx.ServiceAccounts().AddClientSecret(ctx, secret); err != nil {
			return err
		}
		return tx.ServiceAccounts().AddClientKey(ctx, key)
	}
	inTx(t, s, addCredentials)
	inTx(t, s, func(tx store.Tx) error { return tx.ServiceAccounts().AddClientKey(ctx, otherKey) })

	inTx(t, s, func(tx store.Tx) error { return tx.ServiceAccounts().DeleteServiceAccount(ctx, ci.ID) })
	_, err := serviceAccountByID(s, ci.ID)
	wantIs(t, "ServiceAccountByID after delete", err, store.ErrNotFound)
	if got := clientSecrets(t, s, ci.ID); len(got) != 0 {
		t.Errorf("secrets survived DeleteServiceAccount: %v", got)
	}
	if got := clientKeys(t, s, ci.ID); len(got) != 0 {
		t.Errorf("keys survived DeleteServiceAccount: %v", got)
	}
	if d := cmp.Diff([]store.ClientKey{otherKey}, clientKeys(t, s, other.ID), equateTime); d != "" {
		t.Errorf("another service account's keys (-want +got):\n%s", d)
	}
	// Recreated, it starts without credentials, and the old ids are free.
	inTx(t, s, func(tx store.Tx) error { return tx.ServiceAccounts().CreateServiceAccount(ctx, ci) })
	if got := clientSecrets(t, s, ci.ID); len(got) != 0 {
		t.Errorf("recreated service account has secrets: %v", got)
	}
	inTx(t, s, addCredentials)
}

func testClientSecrets(t *testing.T, s store.Store) {
	ctx := context.Background()
	ci, other := serviceAccount("ci", "id-alice"), serviceAccount("other", "id-alice")
	createServiceAccounts(t, s, ci, other)
	if got := clientSecrets(t, s, ci.ID); len(got) != 0 {
		t.Errorf("ClientSecrets of a new service account = %v, want none", got)
	}
	older := store.ClientSecret{ID: "s-2", ServiceAccountID: ci.ID, Hash: []byte("hash-older"),
		CreatedAt: epoch, ExpiresAt: epoch.Add(time.Hour)}
	newer := store.ClientSecret{ID: "s-1", ServiceAccountID: ci.ID, Hash: []byte("hash-newer"),
		CreatedAt: epoch.Add(time.Minute)}
	theirs := store.ClientSecret{ID: "s-3", ServiceAccountID: other.ID, Hash: []byte("hash-theirs"), CreatedAt: epoch}
	inTx(t, s, func(tx store.Tx) error {
		for _, sec := range []store.ClientSecret{newer, theirs, older} {
			if err := tx.ServiceAccounts().AddClientSecret(ctx, sec); err != nil {
				return err
			}
		}
		return nil
	})
	if d := cmp.Diff([]store.ClientSecret{older, newer}, clientSecrets(t, s, ci.ID), equateTime); d != "" {
		t.Errorf("ClientSecrets oldest first (-want +got):\n%s", d)
	}

	for _, tt := range []struct {
		name   string
		secret store.ClientSecret
		want   error
	}{
		{"id taken", store.ClientSecret{ID: theirs.ID, ServiceAccountID: ci.ID, Hash: []byte("x"), CreatedAt: epoch}, store.ErrConflict},
		{"unknown service account", store.ClientSecret{ID: "s-9", ServiceAccountID: "no-such-sa", Hash: []byte("x"), CreatedAt: epoch}, store.ErrNotFound},
	} {
		err := try(s, func(tx store.Tx) error { return tx.ServiceAccounts().AddClientSecret(ctx, tt.secret) })
		wantIs(t, "AddClientSecret("+tt.name+")", err, tt.want)
	}

	// A secret is deleted only through its own service account.
	err := try(s, func(tx store.Tx) error { return tx.ServiceAccounts().DeleteClientSecret(ctx, other.ID, older.ID) })
	wantIs(t, "DeleteClientSecret(wrong service account)", err, store.ErrNotFound)
	inTx(t, s, func(tx store.Tx) error { return tx.ServiceAccounts().DeleteClientSecret(ctx, ci.ID, older.ID) })
	if d := cmp.Diff([]store.ClientSecret{newer}, clientSecrets(t, s, ci.ID), equateTime); d != "" {
		t.Errorf("after DeleteClientSecret (-want +got):\n%s", d)
	}
	err = try(s, func(tx store.Tx) error { return tx.ServiceAccounts().DeleteClientSecret(ctx, ci.ID, older.ID) })
	wantIs(t, "DeleteClientSecret twice", err, store.ErrNotFound)
}

func testExpireClientSecrets(t *testing.T, s store.Store) {
	ctx := context.Background()
	ci, other := serviceAccount("ci", "id-alice"), serviceAccount("other", "id-alice")
	createServiceAccounts(t, s, ci, other)
	at := epoch.Add(time.Hour)
	// n orders the secrets by creation.
	secret := func(id, sa string, n int, expires time.Time) store.ClientSecret {
		return store.ClientSecret{ID: id, ServiceAccountID: sa, Hash: []byte(id),
			CreatedAt: epoch.Add(time.Duration(n) * time.Minute), ExpiresAt: expires}
	}
	tests := []struct {
		before, after store.ClientSecret
	}{
		{secret("never", ci.ID, 1, time.Time{}), secret("never", ci.ID, 1, at)},
		{secret("later", ci.ID, 2, at.Add(time.Minute)), secret("later", ci.ID, 2, at)},
		{secret("sooner", ci.ID, 3, at.Add(-time.Minute)), secret("sooner", ci.ID, 3, at.Add(-time.Minute))},
		{secret("exactly", ci.ID, 4, at), secret("exactly", ci.ID, 4, at)},
		{secret("theirs", other.ID, 5, time.Time{}), secret("theirs", other.ID, 5, time.Time{})},
	}
	inTx(t, s, func(tx store.Tx) error {
		for _, tt := range tests {
			if err := tx.ServiceAccounts().AddClientSecret(ctx, tt.before); err != nil {
				return err
			}
		}
		return tx.ServiceAccounts().ExpireClientSecrets(ctx, ci.ID, at)
	})
	var want []store.ClientSecret
	for _, tt := range tests {
		want = append(want, tt.after)
	}
	got := append(clientSecrets(t, s, ci.ID), clientSecrets(t, s, other.ID)...)
	if d := cmp.Diff(want, got, equateTime); d != "" {
		t.Errorf("after ExpireClientSecrets (-want +got):\n%s", d)
	}
}

func testClientKeys(t *testing.T, s store.Store) {
	ctx := context.Background()
	ci, other := serviceAccount("ci", "id-alice"), serviceAccount("other", "id-alice")
	createServiceAccounts(t, s, ci, other)
	if got := clientKeys(t, s, ci.ID); len(got) != 0 {
		t.Errorf("ClientKeys of a new service account = %v, want none", got)
	}
	older := store.ClientKey{ID: "kid-b", ServiceAccountID: ci.ID, PublicKey: []byte(`{"kty":"OKP","crv":"Ed25519","x":"b"}`),
		CreatedAt: epoch, ExpiresAt: epoch.Add(time.Hour)}
	newer := store.ClientKey{ID: "kid-a", ServiceAccountID: ci.ID, PublicKey: []byte(`{"kty":"OKP","crv":"Ed25519","x":"a"}`),
		CreatedAt: epoch.Add(time.Minute)}
	// Key ids are chosen by clients, so another service account may reuse one.
	theirs := store.ClientKey{ID: older.ID, ServiceAccountID: other.ID, PublicKey: []byte(`{}`), CreatedAt: epoch}
	inTx(t, s, func(tx store.Tx) error {
		for _, k := range []store.ClientKey{newer, theirs, older} {
			if err := tx.ServiceAccounts().AddClientKey(ctx, k); err != nil {
				return err
			}
		}
		return nil
	})
	if d := cmp.Diff([]store.ClientKey{older, newer}, clientKeys(t, s, ci.ID), equateTime); d != "" {
		t.Errorf("ClientKeys oldest first (-want +got):\n%s", d)
	}

	for _, tt := range []struct {
		name string
		key  store.ClientKey
		want error
	}{
		{"id taken", store.ClientKey{ID: newer.ID, ServiceAccountID: ci.ID, PublicKey: []byte(`{}`), CreatedAt: epoch}, store.ErrConflict},
		{"unknown service account", store.ClientKey{ID: "kid-z", ServiceAccountID: "no-such-sa", PublicKey: []byte(`{}`), CreatedAt: epoch}, store.ErrNotFound},
	} {
		err := try(s, func(tx store.Tx) error { return tx.ServiceAccounts().AddClientKey(ctx, tt.key) })
		wantIs(t, "AddClientKey("+tt.name+")", err, tt.want)
	}

	inTx(t, s, func(tx store.Tx) error { return tx.ServiceAccounts().DeleteClientKey(ctx, ci.ID, older.ID) })
	if d := cmp.Diff([]store.ClientKey{newer}, clientKeys(t, s, ci.ID), equateTime); d != "" {
		t.Errorf("after DeleteClientKey (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]store.ClientKey{theirs}, clientKeys(t, s, other.ID), equateTime); d != "" {
		t.Errorf("DeleteClientKey touched another service account's key with the same id (-want +got):\n%s", d)
	}
	err := try(s, func(tx store.Tx) error { return tx.ServiceAccounts().DeleteClientKey(ctx, ci.ID, older.ID) })
	wantIs(t, "DeleteClientKey twice", err, store.ErrNotFound)
}
