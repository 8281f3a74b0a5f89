package supervisor

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rampart-ml/rampart/internal/identity/identitytest"
	"github.com/rampart-ml/rampart/internal/registry"
	"github.com/rampart-ml/rampart/internal/services"
	"github.com/rampart-ml/rampart/internal/store"
	"github.com/rampart-ml/rampart/internal/store/sqlite"
)

// A service deleted and created again under the same name in another
// domain, before the supervisor reconciled the deletion, must not keep
// the old service's domain: the gateway authorises calls against it.
func TestReconcileReplacesARecreatedService(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "rampart.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	rec := identitytest.NewRecorder(t, st, nil)
	sup, err := New(Options{
		Store: st, Loader: registry.NewLoader(st, nil, rec), Recorder: rec,
		Reporter: services.NewReporter(services.ReporterOptions{Store: st, Recorder: rec}),
		RunDir:   t.TempDir(), Metrics: NewMetrics(prometheus.NewRegistry()),
	})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	create := func(domain string) {
		t.Helper()
		if err := st.InTx(ctx, func(tx store.Tx) error {
			return tx.Services().CreateService(ctx, store.Service{Name: "svc", Domain: domain, ModelID: "com.a.m", ModelVersion: "1",
				Spec: services.DefaultSpec(), DesiredState: store.ServiceStopped, State: string(services.Created), CreatedAt: now, UpdatedAt: now})
		}); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.InTx(ctx, func(tx store.Tx) error {
		for _, d := range []string{"com.a", "org.b"} {
			if err := tx.Domains().CreateDomain(ctx, store.Domain{Name: d, CreatedAt: now}); err != nil {
				return err
			}
		}
		if err := tx.Models().CreateModel(ctx, store.Model{ID: "com.a.m", Domain: "com.a", CreatedAt: now}); err != nil {
			return err
		}
		return tx.Models().CreateModelVersion(ctx, store.ModelVersion{ModelID: "com.a.m", Version: "1", State: store.VersionActive,
			ModelFile: "model.onnx", SubjectDigest: strings.Repeat("ab", 32), CreatedAt: now})
	}); err != nil {
		t.Fatal(err)
	}

	create("com.a")
	sup.reconcile(ctx, "svc")
	if svc, ok := sup.Lookup("svc"); !ok || svc.Domain != "com.a" {
		t.Fatalf("after create: %+v, %v", svc, ok)
	}
	if err := st.InTx(ctx, func(tx store.Tx) error { return tx.Services().DeleteService(ctx, "svc") }); err != nil {
		t.Fatal(err)
	}
	create("org.b")
	sup.reconcile(ctx, "svc")
	if svc, ok := sup.Lookup("svc"); !ok || svc.Domain != "org.b" {
		t.Errorf("after delete and create in another domain: %+v, %v; want domain org.b", svc, ok)
	}
	if err := st.InTx(ctx, func(tx store.Tx) error { return tx.Services().DeleteService(ctx, "svc") }); err != nil {
		t.Fatal(err)
	}
	sup.reconcile(ctx, "svc")
	if _, ok := sup.Lookup("svc"); ok {
		t.Error("a deleted service is still looked up")
	}
}
