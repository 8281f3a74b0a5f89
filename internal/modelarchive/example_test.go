package modelarchive_test

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/rampart-ml/rampart/internal/modelarchive"
)

// The registry's onboarding step: unpack the upload into a fresh directory
// of its staging area, apply the file-type policy, then verify the
// signature over the manifest's files (not shown).
func ExampleExtract() {
	var upload bytes.Buffer
	tw := tar.NewWriter(&upload)
	for name, body := range map[string]string{"resnet/model.onnx": "\x08\x07", "resnet/labels.txt": "cat\n"} {
		_ = tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(body))})
		_, _ = tw.Write([]byte(body))
	}
	_ = tw.Close()

	staging, _ := os.MkdirTemp("", "staging")
	defer os.RemoveAll(staging)
	dir := filepath.Join(staging, "upload-1")

	m, err := modelarchive.Extract(context.Background(), &upload, dir, modelarchive.DefaultLimits())
	if err != nil {
		fmt.Println("refused:", err) // dir does not exist
		return
	}
	if err := modelarchive.CheckFiles(m); err != nil {
		fmt.Println("refused:", err)
		return
	}
	model, _ := modelarchive.ModelFile(m)
	fmt.Println(m.Format, m.Stripped, model)
	for _, f := range m.Files {
		fmt.Println(f.Path, f.Size)
	}
	// Output:
	// tar resnet model.onnx
	// labels.txt 4
	// model.onnx 2
}
