package registry

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/rampart-ml/rampart/internal/artifact"
	"github.com/rampart-ml/rampart/internal/artifact/artifacttest"
	"github.com/rampart-ml/rampart/internal/modelarchive"
	"github.com/rampart-ml/rampart/internal/modelsign"
)

// TestStoreRefusesChangedFile: a staged file that no longer has the digest
// verification saw (changed between verification and storage) is refused
// by the artifact store before it becomes visible.
func TestStoreRefusesChangedFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "model.onnx"), []byte("changed after verification"), 0o600); err != nil {
		t.Fatal(err)
	}
	arts, err := artifact.NewFS(filepath.Join(t.TempDir(), "artifacts"), artifacttest.NewMaster(t))
	if err != nil {
		t.Fatal(err)
	}
	m := NewModelsAPI(ModelsOptions{Artifacts: arts})
	verified := sha256.Sum256([]byte("what was verified"))
	man := modelarchive.Manifest{Files: []modelarchive.File{{Path: "model.onnx", Size: 26, SHA256: verified}}}
	for _, tc := range []struct {
		name string
		sig  signature
	}{
		{"unsigned", signature{}},
		{"signed", signature{signed: true, digest: map[string]string{"model.onnx": hexOf(verified)}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := m.store(context.Background(), dir, "com.acme", man, tc.sig)
			if !errors.Is(err, modelsign.ErrDigestMismatch) || !errors.Is(err, artifact.ErrDigestMismatch) {
				t.Fatalf("store = %v, want ErrDigestMismatch", err)
			}
			for _, d := range []string{hexOf(verified), hexOf(sha256.Sum256([]byte("changed after verification")))} {
				if _, err := arts.Stat(context.Background(), "com.acme", d); !errors.Is(err, artifact.ErrNotFound) {
					t.Errorf("Stat(%s) = %v, want ErrNotFound", d, err)
				}
			}
		})
	}
}

func hexOf(d [32]byte) string { return hex.EncodeToString(d[:]) }
