package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/rampart-ml/rampart/internal/store"
)

func service(name, domain, modelID, version string) store.Service {
	return store.Service{
		Name: name, Domain: domain, ModelID: modelID, ModelVersion: version,
		Spec:         store.ServiceSpec{Replicas: 1, MemoryBytes: 1 << 30, Threads: 2, MaxConcurrent: 4, TimeoutMS: 30000},
		DesiredState: store.ServiceStopped, State: "created", CreatedBy: "id-alice",
		CreatedAt: registryBase, UpdatedAt: registryBase,
	}
}

// serviceFixture creates domains com.acme and org.ops, the model
// com.acme.m with versions 1.0.0 and 2.0.0.
func serviceFixture(t *testing.T, s store.Store) {
	t.Helper()
	ctx := context.Background()
	createDomain(t, s, "com.acme")
	createDomain(t, s, "org.ops")
	inTx(t, s, func(tx store.Tx) error {
		if err := tx.Models().CreateModel(ctx, model("com.acme.m", "com.acme")); err != nil {
			return err
		}
		for _, v := range []string{"1.0.0", "2.0.0"} {
			if err := tx.Models().CreateModelVersion(ctx, version("com.acme.m", v, "model.onnx")); err != nil {
				return err
			}
		}
		return nil
	})
}

func testServices(t *testing.T, s store.Store) {
	ctx := context.Background()
	serviceFixture(t, s)
	want := []store.Service{
		service("ocr", "org.ops", "com.acme.m", "1.0.0"),
		service("a-1", "*", "com.acme.m", "2.0.0"),
	}
	inTx(t, s, func(tx store.Tx) error {
		for _, sv := range want {
			if err := tx.Services().CreateService(ctx, sv); err != nil {
				return err
			}
		}
		return nil
	})
	for _, tc := range []struct {
		name string
		sv   store.Service
		want error
	}{
		{"taken name", service("ocr", "com.acme", "com.acme.m", "2.0.0"), store.ErrConflict},
		{"unknown domain", service("x", "org.nope", "com.acme.m", "1.0.0"), store.ErrNotFound},
		{"unknown version", service("x", "org.ops", "com.acme.m", "9.0.0"), store.ErrNotFound},
		{"unknown model", service("x", "org.ops", "com.acme.nope", "1.0.0"), store.ErrNotFound},
	} {
		err := s.InTx(ctx, func(tx store.Tx) error { return tx.Services().CreateService(ctx, tc.sv) })
		if !errors.Is(err, tc.want) {
			t.Errorf("CreateService (%s) = %v, want %v", tc.name, err, tc.want)
		}
	}
	later := registryBase.Add(time.Hour)
	inTx(t, s, func(tx store.Tx) error {
		got, err := tx.Services().ListServices(ctx)
		if err != nil {
			return err
		}
		if diff := cmp.Diff([]store.Service{want[1], want[0]}, got, equateTime); diff != "" {
			t.Errorf("ListServices (-want +got):\n%s", diff)
		}
		spec := store.ServiceSpec{Replicas: 3, MemoryBytes: 2 << 30, Threads: 4, MaxConcurrent: 8, TimeoutMS: 1000}
		if err := tx.Services().UpdateServiceSpec(ctx, "ocr", spec, later); err != nil {
			return err
		}
		if err := tx.Services().SetServiceDesired(ctx, "ocr", store.ServiceRunning, later); err != nil {
			return err
		}
		if err := tx.Services().SetServiceState(ctx, "ocr", "failed", "worker exited", later); err != nil {
			return err
		}
		got1, err := tx.Services().ServiceByName(ctx, "ocr")
		if err != nil {
			return err
		}
		w := want[0]
		w.Spec, w.DesiredState, w.State, w.StateReason, w.UpdatedAt = spec, store.ServiceRunning, "failed", "worker exited", later
		if diff := cmp.Diff(w, got1, equateTime); diff != "" {
			t.Errorf("ServiceByName after changes (-want +got):\n%s", diff)
		}
		return nil
	})
	// Unknown names.
	for name, fn := range map[string]func(tx store.Tx) error{
		"ServiceByName": func(tx store.Tx) error { _, err := tx.Services().ServiceByName(ctx, "nope"); return err },
		"UpdateServiceSpec": func(tx store.Tx) error {
			return tx.Services().UpdateServiceSpec(ctx, "nope", want[0].Spec, later)
		},
		"SetServiceDesired": func(tx store.Tx) error {
			return tx.Services().SetServiceDesired(ctx, "nope", store.ServiceRunning, later)
		},
		"SetServiceState": func(tx store.Tx) error { return tx.Services().SetServiceState(ctx, "nope", "ready", "", later) },
		"DeleteService":   func(tx store.Tx) error { return tx.Services().DeleteService(ctx, "nope") },
	} {
		if err := s.InTx(ctx, fn); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("%s(nope) = %v, want ErrNotFound", name, err)
		}
	}
	inTx(t, s, func(tx store.Tx) error { return tx.Services().DeleteService(ctx, "a-1") })
	err := s.InTx(ctx, func(tx store.Tx) error { _, err := tx.Services().ServiceByName(ctx, "a-1"); return err })
	if !errors.Is(err, store.ErrNotFound) {
		t.Errorf("ServiceByName after DeleteService = %v, want ErrNotFound", err)
	}
}

// testServiceReferences: neither the model version a service deploys nor
// the domain it is in can go while it exists.
func testServiceReferences(t *testing.T, s store.Store) {
	ctx := context.Background()
	serviceFixture(t, s)
	inTx(t, s, func(tx store.Tx) error {
		return tx.Services().CreateService(ctx, service("ocr", "org.ops", "com.acme.m", "1.0.0"))
	})
	err := s.InTx(ctx, func(tx store.Tx) error { return tx.Models().DeleteModelVersion(ctx, "com.acme.m", "1.0.0") })
	if !errors.Is(err, store.ErrConflict) {
		t.Errorf("DeleteModelVersion of a deployed version = %v, want ErrConflict", err)
	}
	err = s.InTx(ctx, func(tx store.Tx) error { return tx.Domains().DeleteDomain(ctx, "org.ops") })
	if !errors.Is(err, store.ErrConflict) {
		t.Errorf("DeleteDomain of a service's domain = %v, want ErrConflict", err)
	}
	// A version no service deploys still goes.
	inTx(t, s, func(tx store.Tx) error { return tx.Models().DeleteModelVersion(ctx, "com.acme.m", "2.0.0") })
	// Once the service is gone, so may its version and domain be.
	inTx(t, s, func(tx store.Tx) error {
		if err := tx.Services().DeleteService(ctx, "ocr"); err != nil {
			return err
		}
		if err := tx.Models().DeleteModelVersion(ctx, "com.acme.m", "1.0.0"); err != nil {
			return err
		}
		return tx.Domains().DeleteDomain(ctx, "org.ops")
	})
}
