package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/rampart-ml/rampart/internal/store"
)

// Every sealed value is listed by kind and owner and can be replaced in
// place; owners without one are neither listed nor given one.
func testSealedSecrets(t *testing.T, s store.Store) {
	ctx := context.Background()
	t0 := time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)
	withTOTP, without := account("alice"), account("bob")
	withTOTP.TOTPSecret = []byte("sealed-totp")
	create(t, s, withTOTP, without)
	inTx(t, s, func(tx store.Tx) error {
		if err := tx.SigningKeys().CreateSigningKey(ctx, store.SigningKey{ID: "k1", Algorithm: "ES256",
			SealedPrivate: []byte("sealed-k1"), CreatedAt: t0, SignUntil: t0, PublishUntil: t0}); err != nil {
			return err
		}
		a := tx.Audit()
		if err := a.SetPseudonymSecret(ctx, "sa-z", "p-z", []byte("sealed-z")); err != nil {
			return err
		}
		return a.SetPseudonymSecret(ctx, withTOTP.ID, "p-a", []byte("sealed-a"))
	})
	list := func() map[store.SecretKind][]store.SealedSecret {
		got := map[store.SecretKind][]store.SealedSecret{}
		inTx(t, s, func(tx store.Tx) error {
			for _, k := range store.SecretKinds {
				l, err := tx.SealedSecrets().ListSealedSecrets(ctx, k)
				if err != nil {
					return err
				}
				got[k] = l
			}
			return nil
		})
		return got
	}
	want := map[store.SecretKind][]store.SealedSecret{
		store.SecretSigningKey: {{Kind: store.SecretSigningKey, Owner: "k1", Sealed: []byte("sealed-k1")}},
		store.SecretTOTP:       {{Kind: store.SecretTOTP, Owner: withTOTP.ID, Sealed: []byte("sealed-totp")}},
		store.SecretPseudonym: {
			{Kind: store.SecretPseudonym, Owner: withTOTP.ID, Sealed: []byte("sealed-a")},
			{Kind: store.SecretPseudonym, Owner: "sa-z", Sealed: []byte("sealed-z")},
		},
	}
	if d := cmp.Diff(want, list()); d != "" {
		t.Fatalf("sealed secrets (-want +got):\n%s", d)
	}

	inTx(t, s, func(tx store.Tx) error {
		for k, l := range want {
			for i := range l {
				l[i].Sealed = append([]byte("new-"), l[i].Sealed...)
				if err := tx.SealedSecrets().ReplaceSealedSecret(ctx, l[i]); err != nil {
					return err
				}
			}
			want[k] = l
		}
		return nil
	})
	if d := cmp.Diff(want, list()); d != "" {
		t.Errorf("after replacing (-want +got):\n%s", d)
	}
	// The other repositories see the replaced values.
	inTx(t, s, func(tx store.Tx) error {
		a, err := tx.Accounts().AccountByID(ctx, withTOTP.ID)
		if err == nil && string(a.TOTPSecret) != "new-sealed-totp" {
			t.Errorf("account's TOTP secret = %q", a.TOTPSecret)
		}
		return err
	})

	for _, tc := range []struct {
		name string
		s    store.SealedSecret
	}{
		{"unknown owner", store.SealedSecret{Kind: store.SecretSigningKey, Owner: "nope", Sealed: []byte("x")}},
		{"owner without a value", store.SealedSecret{Kind: store.SecretTOTP, Owner: without.ID, Sealed: []byte("x")}},
	} {
		err := s.InTx(ctx, func(tx store.Tx) error { return tx.SealedSecrets().ReplaceSealedSecret(ctx, tc.s) })
		if !errors.Is(err, store.ErrNotFound) {
			t.Errorf("%s: %v, want ErrNotFound", tc.name, err)
		}
	}
	for _, tc := range []struct {
		name string
		s    store.SealedSecret
	}{
		{"unknown kind", store.SealedSecret{Kind: "nope", Owner: "k1", Sealed: []byte("x")}},
		{"empty value", store.SealedSecret{Kind: store.SecretSigningKey, Owner: "k1"}},
	} {
		if err := s.InTx(ctx, func(tx store.Tx) error { return tx.SealedSecrets().ReplaceSealedSecret(ctx, tc.s) }); err == nil {
			t.Errorf("%s: accepted", tc.name)
		}
	}
	if err := s.InTx(ctx, func(tx store.Tx) error {
		_, err := tx.SealedSecrets().ListSealedSecrets(ctx, "nope")
		return err
	}); err == nil {
		t.Error("listing an unknown kind: accepted")
	}
}
