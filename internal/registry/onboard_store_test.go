package registry

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"path/filepath"
	"testing"

	"github.com/rampart-ml/rampart/internal/artifact"
	"github.com/rampart-ml/rampart/internal/artifact/artifacttest"
	"github.com/rampart-ml/rampart/internal/modelarchive"
	"github.com/rampart-ml/rampart/internal/modelsign"
)

// TestStoreRefusesUnsignedDigest: a staged file whose digest is not the
// signed one is refused before anything is committed.
func TestStoreRefusesUnsignedDigest(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	arts, err := artifact.NewFS(filepath.Join(t.TempDir(), "artifacts"), artifacttest.NewMaster(t))
	if err != nil {
		t.Fatal(err)
	}
	staged, err := arts.Stage(ctx, "com.acme")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = staged.Abort() }()
	f, err := staged.Create("model.onnx")
	if err != nil {
		t.Fatal(err)
	}
	content := []byte("not what was signed")
	if _, err := f.Write(content); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	m := NewModelsAPI(ModelsOptions{Artifacts: arts})
	signed := sha256.Sum256([]byte("what was signed"))
	up := upload{staged: staged, man: modelarchive.Manifest{Files: []modelarchive.File{{Path: "model.onnx", Size: int64(len(content)), SHA256: f.SHA256()}}}}
	files, err := m.store(ctx, up, signature{signed: true, digest: map[string]string{"model.onnx": hexOf(signed)}})
	if !errors.Is(err, modelsign.ErrDigestMismatch) || len(files) != 0 {
		t.Fatalf("store = %v, %v; want ErrDigestMismatch and nothing committed", files, err)
	}
	for _, d := range []string{hexOf(signed), hexOf(sha256.Sum256(content))} {
		if _, err := arts.Stat(ctx, "com.acme", d); !errors.Is(err, artifact.ErrNotFound) {
			t.Errorf("Stat(%s) = %v, want ErrNotFound", d, err)
		}
	}
}

func hexOf(d [32]byte) string { return hex.EncodeToString(d[:]) }
