package storetest

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/rampart-ml/rampart/internal/store"
)

// registryBase is the time of the registry tests' records.
var registryBase = time.Date(2026, 5, 6, 7, 8, 9, 123456789, time.UTC)

func createDomain(t *testing.T, s store.Store, name string) {
	t.Helper()
	inTx(t, s, func(tx store.Tx) error {
		return tx.Domains().CreateDomain(context.Background(), store.Domain{Name: name, CreatedBy: "id-admin", CreatedAt: registryBase})
	})
}

func model(id, domain string) store.Model {
	return store.Model{ID: id, Domain: domain, Title: "Title of " + id, Description: "ünïcödé",
		CreatedBy: "id-alice", CreatedAt: registryBase}
}

func version(modelID, v string, files ...string) store.ModelVersion {
	mv := store.ModelVersion{
		ModelID: modelID, Version: v, State: store.VersionActive, ModelFile: "model.onnx",
		SubjectDigest: strings.Repeat("ab", 32), Signed: true, SignerKeyID: "key-1",
		VerifiedAt: registryBase, Metadata: `{"opset":17}`, CreatedBy: "id-alice", CreatedAt: registryBase,
	}
	for i, f := range files {
		mv.Files = append(mv.Files, store.ModelFile{Path: f, Size: int64(100 * i), Digest: strings.Repeat(string(rune('a'+i)), 64)})
	}
	return mv
}

func testModels(t *testing.T, s store.Store) {
	ctx := context.Background()
	createDomain(t, s, "com.acme.vision")
	want := []store.Model{model("com.acme.vision.resnet", "com.acme.vision"), model("tiny", "*")}
	inTx(t, s, func(tx store.Tx) error {
		for _, m := range want {
			if err := tx.Models().CreateModel(ctx, m); err != nil {
				return err
			}
		}
		return nil
	})
	for _, tc := range []struct {
		name string
		m    store.Model
		want error
	}{
		{"taken id", model("tiny", "*"), store.ErrConflict},
		{"unknown domain", model("org.other.m", "org.other"), store.ErrNotFound},
	} {
		err := s.InTx(ctx, func(tx store.Tx) error { return tx.Models().CreateModel(ctx, tc.m) })
		if !errors.Is(err, tc.want) {
			t.Errorf("CreateModel (%s) = %v, want %v", tc.name, err, tc.want)
		}
	}
	inTx(t, s, func(tx store.Tx) error {
		got, err := tx.Models().ListModels(ctx)
		if err != nil {
			return err
		}
		if diff := cmp.Diff(want, got, equateTime); diff != "" {
			t.Errorf("ListModels (-want +got):\n%s", diff)
		}
		m := want[0]
		m.Title, m.Description = "New title", "New description"
		if err := tx.Models().UpdateModel(ctx, m); err != nil {
			return err
		}
		got1, err := tx.Models().ModelByID(ctx, m.ID)
		if err != nil || got1.Title != "New title" || got1.Description != "New description" {
			t.Errorf("ModelByID after UpdateModel = %+v, %v", got1, err)
		}
		if _, err := tx.Models().ModelByID(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("ModelByID(nope) = %v, want ErrNotFound", err)
		}
		if err := tx.Models().UpdateModel(ctx, model("nope", "*")); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("UpdateModel(nope) = %v, want ErrNotFound", err)
		}
		if err := tx.Models().DeleteModel(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("DeleteModel(nope) = %v, want ErrNotFound", err)
		}
		return nil
	})
	// A domain that a model names cannot go.
	err := s.InTx(ctx, func(tx store.Tx) error { return tx.Domains().DeleteDomain(ctx, "com.acme.vision") })
	if !errors.Is(err, store.ErrConflict) {
		t.Errorf("DeleteDomain of a model's domain = %v, want ErrConflict", err)
	}
	inTx(t, s, func(tx store.Tx) error { return tx.Models().DeleteModel(ctx, "tiny") })
}

func testModelVersions(t *testing.T, s store.Store) {
	ctx := context.Background()
	createDomain(t, s, "com.acme")
	inTx(t, s, func(tx store.Tx) error { return tx.Models().CreateModel(ctx, model("com.acme.m", "com.acme")) })
	v1 := version("com.acme.m", "1.0.0", "model.onnx", "labels.txt", "model.sig")
	v2 := version("com.acme.m", "2.0.0", "model.onnx", "model.sig")
	v2.CreatedAt = registryBase.Add(time.Hour)
	v2.Signed, v2.SignerKeyID = false, ""
	inTx(t, s, func(tx store.Tx) error {
		if err := tx.Models().CreateModelVersion(ctx, v1); err != nil {
			return err
		}
		return tx.Models().CreateModelVersion(ctx, v2)
	})
	for _, tc := range []struct {
		name string
		v    store.ModelVersion
		want error
	}{
		{"taken version", version("com.acme.m", "1.0.0", "model.onnx"), store.ErrConflict},
		{"unknown model", version("com.acme.nope", "1.0.0", "model.onnx"), store.ErrNotFound},
		{"file twice", version("com.acme.m", "3.0.0", "model.onnx", "model.onnx"), store.ErrConflict},
	} {
		err := s.InTx(ctx, func(tx store.Tx) error { return tx.Models().CreateModelVersion(ctx, tc.v) })
		if !errors.Is(err, tc.want) {
			t.Errorf("CreateModelVersion (%s) = %v, want %v", tc.name, err, tc.want)
		}
	}
	inTx(t, s, func(tx store.Tx) error {
		got, err := tx.Models().ModelVersion(ctx, "com.acme.m", "1.0.0")
		if err != nil {
			return err
		}
		want := v1
		want.Files = []store.ModelFile{v1.Files[1], v1.Files[0], v1.Files[2]} // by path
		if diff := cmp.Diff(want, got, equateTime); diff != "" {
			t.Errorf("ModelVersion (-want +got):\n%s", diff)
		}
		list, err := tx.Models().ListModelVersions(ctx, "com.acme.m")
		if err != nil {
			return err
		}
		if len(list) != 2 || list[0].Version != "1.0.0" || list[1].Version != "2.0.0" || list[1].Signed || list[0].Files != nil {
			t.Errorf("ListModelVersions = %+v", list)
		}
		if _, err := tx.Models().ModelVersion(ctx, "com.acme.m", "9"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("ModelVersion(9) = %v, want ErrNotFound", err)
		}
		if n, err := tx.Models().CountFilesWithDigest(ctx, "com.acme", v1.Files[0].Digest); err != nil || n != 2 {
			t.Errorf("CountFilesWithDigest = %d, %v; want 2 (model.onnx of both versions)", n, err)
		}
		if n, err := tx.Models().CountFilesWithDigest(ctx, "org.other", v1.Files[0].Digest); err != nil || n != 0 {
			t.Errorf("CountFilesWithDigest in another domain = %d, %v; want 0", n, err)
		}
		if err := tx.Models().SetModelVersionState(ctx, "com.acme.m", "1.0.0", store.VersionQuarantined, "digest mismatch"); err != nil {
			return err
		}
		got, err = tx.Models().ModelVersion(ctx, "com.acme.m", "1.0.0")
		if err != nil || got.State != store.VersionQuarantined || got.StateReason != "digest mismatch" {
			t.Errorf("after SetModelVersionState: %+v, %v", got, err)
		}
		if err := tx.Models().SetModelVersionState(ctx, "com.acme.m", "9", store.VersionActive, ""); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("SetModelVersionState(9) = %v, want ErrNotFound", err)
		}
		return nil
	})
	err := s.InTx(ctx, func(tx store.Tx) error { return tx.Models().DeleteModel(ctx, "com.acme.m") })
	if !errors.Is(err, store.ErrConflict) {
		t.Errorf("DeleteModel with versions = %v, want ErrConflict", err)
	}
	inTx(t, s, func(tx store.Tx) error {
		for _, v := range []string{"1.0.0", "2.0.0"} {
			if err := tx.Models().DeleteModelVersion(ctx, "com.acme.m", v); err != nil {
				return err
			}
		}
		if err := tx.Models().DeleteModelVersion(ctx, "com.acme.m", "1.0.0"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("DeleteModelVersion twice = %v, want ErrNotFound", err)
		}
		if n, err := tx.Models().CountFilesWithDigest(ctx, "com.acme", v1.Files[0].Digest); err != nil || n != 0 {
			t.Errorf("CountFilesWithDigest after deleting the versions = %d, %v; want 0", n, err)
		}
		return tx.Models().DeleteModel(ctx, "com.acme.m")
	})
}

func signerKey(id, domain string) store.SignerKey {
	return store.SignerKey{ID: id, Domain: domain, PublicKey: "-----BEGIN PUBLIC KEY-----\n…", Algorithm: "ecdsa-p256",
		Description: "release key", NotBefore: registryBase, CreatedBy: "id-admin", CreatedAt: registryBase}
}

func testSignerKeys(t *testing.T, s store.Store) {
	ctx := context.Background()
	createDomain(t, s, "com.acme")
	expiring := signerKey("k2", "*")
	expiring.NotAfter = registryBase.Add(24 * time.Hour)
	want := []store.SignerKey{expiring, signerKey("k1", "com.acme")}
	inTx(t, s, func(tx store.Tx) error {
		for _, k := range want {
			if err := tx.SignerKeys().AddSignerKey(ctx, k); err != nil {
				return err
			}
		}
		return nil
	})
	for _, tc := range []struct {
		name string
		k    store.SignerKey
		want error
	}{
		{"taken id", signerKey("k1", "*"), store.ErrConflict},
		{"unknown domain", signerKey("k3", "org.other"), store.ErrNotFound},
	} {
		err := s.InTx(ctx, func(tx store.Tx) error { return tx.SignerKeys().AddSignerKey(ctx, tc.k) })
		if !errors.Is(err, tc.want) {
			t.Errorf("AddSignerKey (%s) = %v, want %v", tc.name, err, tc.want)
		}
	}
	inTx(t, s, func(tx store.Tx) error {
		got, err := tx.SignerKeys().ListSignerKeys(ctx)
		if err != nil {
			return err
		}
		if diff := cmp.Diff(want, got, equateTime); diff != "" {
			t.Errorf("ListSignerKeys (-want +got):\n%s", diff)
		}
		if err := tx.SignerKeys().DeleteSignerKey(ctx, "k1"); !errors.Is(err, store.ErrConflict) {
			t.Errorf("DeleteSignerKey of a trusted key = %v, want ErrConflict", err)
		}
		at := registryBase.Add(time.Hour)
		if err := tx.SignerKeys().RevokeSignerKey(ctx, "k1", at); err != nil {
			return err
		}
		if err := tx.SignerKeys().RevokeSignerKey(ctx, "k1", at); !errors.Is(err, store.ErrConflict) {
			t.Errorf("RevokeSignerKey twice = %v, want ErrConflict", err)
		}
		if err := tx.SignerKeys().RevokeSignerKey(ctx, "nope", at); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("RevokeSignerKey(nope) = %v, want ErrNotFound", err)
		}
		k, err := tx.SignerKeys().SignerKeyByID(ctx, "k1")
		if err != nil || !k.RevokedAt.Equal(at) {
			t.Errorf("SignerKeyByID after revoking = %+v, %v", k, err)
		}
		return nil
	})
	// The domain of a key, even a revoked one, cannot go until the key does.
	err := s.InTx(ctx, func(tx store.Tx) error { return tx.Domains().DeleteDomain(ctx, "com.acme") })
	if !errors.Is(err, store.ErrConflict) {
		t.Errorf("DeleteDomain of a key's domain = %v, want ErrConflict", err)
	}
	inTx(t, s, func(tx store.Tx) error {
		if err := tx.SignerKeys().DeleteSignerKey(ctx, "k1"); err != nil {
			return err
		}
		if _, err := tx.SignerKeys().SignerKeyByID(ctx, "k1"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("SignerKeyByID after delete = %v, want ErrNotFound", err)
		}
		if err := tx.SignerKeys().DeleteSignerKey(ctx, "k1"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("DeleteSignerKey twice = %v, want ErrNotFound", err)
		}
		return tx.Domains().DeleteDomain(ctx, "com.acme")
	})
}

func testUnsignedAllowed(t *testing.T, s store.Store) {
	ctx := context.Background()
	createDomain(t, s, "com.acme")
	inTx(t, s, func(tx store.Tx) error {
		m := tx.Models()
		for _, d := range []string{"com.acme", "*", "com.acme"} { // twice is not an error
			if err := m.SetUnsignedAllowed(ctx, d, true, "id-admin", registryBase); err != nil {
				return err
			}
		}
		if err := m.SetUnsignedAllowed(ctx, "org.other", true, "id-admin", registryBase); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("SetUnsignedAllowed(unknown domain) = %v, want ErrNotFound", err)
		}
		got, err := m.UnsignedAllowed(ctx)
		if err != nil {
			return err
		}
		if diff := cmp.Diff([]string{"*", "com.acme"}, got); diff != "" {
			t.Errorf("UnsignedAllowed (-want +got):\n%s", diff)
		}
		if err := m.SetUnsignedAllowed(ctx, "*", false, "id-admin", registryBase); err != nil {
			return err
		}
		return tx.Domains().DeleteDomain(ctx, "com.acme")
	})
	inTx(t, s, func(tx store.Tx) error {
		got, err := tx.Models().UnsignedAllowed(ctx)
		if err != nil || len(got) != 0 {
			t.Errorf("UnsignedAllowed after turning * off and deleting the domain = %v, %v; want none", got, err)
		}
		return nil
	})
}
