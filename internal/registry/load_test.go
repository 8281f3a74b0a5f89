package registry_test

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/rampart-ml/rampart/internal/app/apptest"
	"github.com/rampart-ml/rampart/internal/datadir"
	"github.com/rampart-ml/rampart/internal/registry"
	"github.com/rampart-ml/rampart/internal/store"
)

// blobPath finds the file of the blob with digest under the server's
// artifact store (its layout hides the domain name, so search for it).
func blobPath(t *testing.T, s *apptest.Server, digest string) string {
	t.Helper()
	var found string
	root := filepath.Join(s.DataDir, datadir.ArtifactsDir)
	if err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Name() == digest {
			found = p
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if found == "" {
		t.Fatalf("blob %s not found under %s", digest, root)
	}
	return found
}

func TestMaterialize(t *testing.T) {
	t.Parallel()
	s, admin := startWithAdmin(t)
	apptest.WantStatus(t, s.Do(t, "POST", "/api/v1/domains", admin, map[string]string{"name": "com.acme"}), http.StatusCreated)
	key := signingKey(t)
	apptest.WantStatus(t, s.Do(t, "POST", "/api/v1/signer-keys", admin,
		map[string]string{"domain": "com.acme", "public_key": publicPEM(t, key.Public())}), http.StatusCreated)
	files := modelDir(t, key, map[string]string{"classes.txt": "0\n180\n"})
	apptest.Decode[registry.ModelVersion](t, upload(t, s, admin, "com.acme.cls", "1.0", tarOf(t, files)), http.StatusCreated)
	// A second version with one file of its own, to tamper with.
	other := modelDir(t, key, map[string]string{"classes.txt": "0\n90\n180\n270\n"})
	apptest.WantStatus(t, upload(t, s, admin, "com.acme.cls", "2.0", tarOf(t, other)), http.StatusCreated)
	// A third, whose own file gets a damaged encryption header.
	third := modelDir(t, key, map[string]string{"classes.txt": "0\n45\n"})
	apptest.WantStatus(t, upload(t, s, admin, "com.acme.cls", "3.0", tarOf(t, third)), http.StatusCreated)
	loader := s.App.ModelLoader()
	ctx := t.Context()

	t.Run("happy path", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "model")
		got, err := loader.Materialize(ctx, "com.acme.cls", "1.0", dir)
		if err != nil {
			t.Fatal(err)
		}
		if got.Dir != dir || got.ModelFile != filepath.Join(dir, "model.onnx") || len(got.Metadata.Inputs) == 0 || len(got.Files) != len(files) {
			t.Errorf("Materialize = %+v", got)
		}
		if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
			t.Errorf("directory mode = %v, %v; want 0700", fi.Mode().Perm(), err)
		}
		for name, want := range files {
			p := filepath.Join(dir, filepath.FromSlash(name))
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(sha256.Sum256(want), sha256.Sum256(b)); diff != "" {
				t.Errorf("%s differs from what was uploaded", name)
			}
			if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != 0o400 {
				t.Errorf("%s mode = %v, %v; want 0400", name, fi.Mode().Perm(), err)
			}
		}
		// An existing directory is refused: the Loader writes into
		// nothing it did not create.
		if _, err := loader.Materialize(ctx, "com.acme.cls", "1.0", dir); !errors.Is(err, fs.ErrExist) {
			t.Errorf("Materialize into an existing directory: %v", err)
		}
	})

	t.Run("unknown version", func(t *testing.T) {
		if _, err := loader.Materialize(ctx, "com.acme.cls", "9.9", filepath.Join(t.TempDir(), "m")); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Materialize(unknown) = %v, want ErrNotFound", err)
		}
	})

	t.Run("tampered blob quarantines", func(t *testing.T) {
		sum := sha256.Sum256(other["classes.txt"])
		p := blobPath(t, s, hex.EncodeToString(sum[:]))
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		b[len(b)-1] ^= 1
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		dir := filepath.Join(t.TempDir(), "model")
		_, err = loader.Materialize(ctx, "com.acme.cls", "2.0", dir)
		if !errors.Is(err, registry.ErrQuarantined) {
			t.Fatalf("Materialize(tampered) = %v, want ErrQuarantined", err)
		}
		if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("directory left after a failed load: %v", err)
		}
		got := apptest.Decode[registry.ModelVersion](t, s.Do(t, "GET", "/api/v1/models/com.acme.cls/versions/2.0", admin, nil), http.StatusOK)
		if got.State != store.VersionQuarantined || got.StateReason != "file classes.txt is corrupt in the artifact store" {
			t.Errorf("version after tampering: state %q reason %q", got.State, got.StateReason)
		}
		n := apptest.CountAudit(s.AuditRecords(t, store.AuditQuery{}), func(r store.AuditRecord) bool {
			return r.Action == registry.ActionModelQuarantine && r.TargetID == "com.acme.cls@2.0" && r.Reason == "corrupt_blob file=classes.txt"
		})
		if n != 1 {
			t.Errorf("%d quarantine records, want 1", n)
		}
		// Later loads are refused without reading a byte.
		if _, err := loader.Materialize(ctx, "com.acme.cls", "2.0", filepath.Join(t.TempDir(), "again")); !errors.Is(err, registry.ErrQuarantined) {
			t.Errorf("Materialize(quarantined) = %v, want ErrQuarantined", err)
		}
		// The other version, sharing its other files, still loads.
		if _, err := loader.Materialize(ctx, "com.acme.cls", "1.0", filepath.Join(t.TempDir(), "v1")); err != nil {
			t.Errorf("Materialize(1.0) after 2.0 was quarantined: %v", err)
		}
	})

	// A damaged header fails when the blob is opened, before any byte is
	// read: it quarantines like damaged content.
	t.Run("tampered header quarantines", func(t *testing.T) {
		sum := sha256.Sum256(third["classes.txt"])
		p := blobPath(t, s, hex.EncodeToString(sum[:]))
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		b[0] ^= 1 // "age-encryption.org/v1" no longer
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := loader.Materialize(ctx, "com.acme.cls", "3.0", filepath.Join(t.TempDir(), "model")); !errors.Is(err, registry.ErrQuarantined) {
			t.Fatalf("Materialize(tampered header) = %v, want ErrQuarantined", err)
		}
		n := apptest.CountAudit(s.AuditRecords(t, store.AuditQuery{}), func(r store.AuditRecord) bool {
			return r.Action == registry.ActionModelQuarantine && r.TargetID == "com.acme.cls@3.0" && r.Reason == "corrupt_blob file=classes.txt"
		})
		if n != 1 {
			t.Errorf("%d quarantine records, want 1", n)
		}
	})

	t.Run("revoked key refused", func(t *testing.T) {
		apptest.WantStatus(t, s.Do(t, "POST", "/api/v1/signer-keys/"+keyID(t, key.Public())+"/revoke", admin, nil), http.StatusOK)
		dir := filepath.Join(t.TempDir(), "model")
		if _, err := loader.Materialize(ctx, "com.acme.cls", "1.0", dir); !errors.Is(err, registry.ErrKeyRevoked) || errors.Is(err, registry.ErrQuarantined) {
			t.Errorf("Materialize(revoked key) = %v, want ErrKeyRevoked", err)
		}
		if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("directory created for a refused load: %v", err)
		}
		got := apptest.Decode[registry.ModelVersion](t, s.Do(t, "GET", "/api/v1/models/com.acme.cls/versions/1.0", admin, nil), http.StatusOK)
		if got.State != store.VersionActive {
			t.Errorf("a revoked key quarantined the version: %q", got.State)
		}
	})
}
