package main

// End-to-end test of the registry commands: the built binary against a
// real server started with apptest.

import (
	"archive/zip"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/rampart-ml/rampart/internal/datadir"
	"github.com/rampart-ml/rampart/internal/modelsign"
	"github.com/rampart-ml/rampart/internal/onnxmeta/testmodels"
)

// readDir returns the files under dir by slash path.
func readDir(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		rel, _ := filepath.Rel(dir, p)
		out[filepath.ToSlash(rel)] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func zipDir(t *testing.T, dir, name string) string {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for rel, content := range readDir(t, dir) {
		w, err := zw.Create(rel)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(w, content); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// tamperLargeBlobs flips a byte in every stored blob of at least size
// bytes (the encrypted ONNX file).
func tamperLargeBlobs(t *testing.T, dir string, size int64) {
	t.Helper()
	n := 0
	err := filepath.WalkDir(filepath.Join(dir, "blobs"), func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil || int64(len(b)) < size {
			return err
		}
		b[len(b)/2] ^= 0xff
		n++
		return os.WriteFile(p, b, 0o600)
	})
	if err != nil || n == 0 {
		t.Fatalf("tampered with %d blobs: %v", n, err)
	}
}

// TestModelRegistryCommands walks one model through onboard, list, show,
// download, sbom, update and delete; each step depends on the ones before.
func TestModelRegistryCommands(t *testing.T) {
	t.Parallel()
	onnx, err := os.ReadFile(testmodels.Path(t, testmodels.OCRClassifier))
	if err != nil {
		t.Fatal(err)
	}
	s := startIdentityServer(t)
	creds := credsPath(t)
	s.passwordLogin(t, creds)
	rampart := func(t *testing.T, code int, args ...string) (stdout, stderr string) {
		t.Helper()
		got, stdout, stderr := runRampart(t, nil, append(args, "--credentials", creds)...)
		wantNoCrash(t, stderr)
		if got != code {
			t.Fatalf("rampart %s: exit %d, want %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), got, code, stdout, stderr)
		}
		return stdout, stderr
	}
	rampart(t, 0, "domains", "create", "com.acme")
	priv, pub := writeKeyPair(t, "sec1")
	rampart(t, 0, "model", "keys", "add", "--domain", "com.acme", "--key", pub)

	// A signed model directory, with a subdirectory.
	dir := filepath.Join(t.TempDir(), "ocr")
	if err := os.MkdirAll(filepath.Join(dir, "docs"), 0o700); err != nil {
		t.Fatal(err)
	}
	for name, content := range map[string]string{"model.onnx": string(onnx), "docs/README.md": "text direction\n"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if code, stdout, stderr := runRampart(t, nil, "model", "sign", "--key", priv, dir); code != 0 {
		t.Fatalf("model sign: exit %d\n%s%s", code, stdout, stderr)
	}
	original := readDir(t, dir)
	const id = "com.acme.ocr-cls"

	// ---- onboard: a directory, then a zip; a symlink is refused locally ----
	stdout, stderr := rampart(t, 0, "model", "onboard", "--title", "OCR classifier", id, "1.0", dir)
	wantContains(t, "onboard dir", stdout, "Onboarded "+id+"@1.0: 3 files, signed by key ")
	wantContains(t, "onboard progress", stderr, "uploaded ")
	stdout, _ = rampart(t, 0, "model", "onboard", id, "2.0", zipDir(t, dir, "ocr.zip"))
	wantContains(t, "onboard zip", stdout, "Onboarded "+id+"@2.0: 3 files")
	_, stderr = rampart(t, 1, "model", "onboard", id, "1.0", dir)
	wantContains(t, "onboard again", stderr, "(version_exists)")
	linked := filepath.Join(t.TempDir(), "linked")
	if err := os.Mkdir(linked, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(dir, "model.onnx"), filepath.Join(linked, "model.onnx")); err != nil {
		t.Fatal(err)
	}
	_, stderr = rampart(t, 1, "model", "onboard", id, "3.0", linked)
	wantContains(t, "onboard symlink", stderr, "symbolic link")
	rampart(t, 2, "model", "onboard", id, "3.0")
	rampart(t, 2, "model", "onboard", id, "3.0", filepath.Join(dir, "model.onnx"))

	// ---- list, show ----
	stdout, _ = rampart(t, 0, "model", "list")
	wantContains(t, "list", stdout, id, "com.acme", "OCR classifier")
	stdout, _ = rampart(t, 0, "model", "show", id)
	wantContains(t, "show model", stdout, "OCR classifier", "1.0", "2.0", "active")
	stdout, _ = rampart(t, 0, "model", "show", id+"@1.0")
	wantContains(t, "show version", stdout, "docs/README.md", "model.onnx", modelsign.SignatureFile)
	_, stderr = rampart(t, 1, "model", "show", id+"@9")
	wantContains(t, "show unknown", stderr, "(not_found)")

	// ---- download: unpacked, then verified; and as a tar ----
	out := filepath.Join(t.TempDir(), "downloaded")
	stdout, _ = rampart(t, 0, "model", "download", id+"@1.0", "-o", out)
	wantContains(t, "download dir", stdout, "3 files unpacked")
	if diff := cmp.Diff(original, readDir(t, out)); diff != "" {
		t.Errorf("downloaded directory differs (-onboarded +downloaded):\n%s", diff)
	}
	if code, stdout, stderr := runRampart(t, nil, "model", "verify", "--key", pub, out); code != 0 {
		t.Errorf("model verify of the download: exit %d\n%s%s", code, stdout, stderr)
	}
	_, stderr = rampart(t, 2, "model", "download", id+"@1.0", "-o", out)
	wantContains(t, "download over an existing dir", stderr, "exists already")
	tarFile := filepath.Join(t.TempDir(), "ocr.tar")
	rampart(t, 0, "model", "download", "-o", tarFile, id+"@2.0")
	if fi, err := os.Stat(tarFile); err != nil || fi.Size() < int64(len(onnx)) {
		t.Errorf("downloaded tar: %v %v", fi, err)
	}
	rampart(t, 2, "model", "download", id)

	// ---- sbom, update ----
	stdout, _ = rampart(t, 0, "model", "sbom", id+"@1.0")
	wantContains(t, "sbom", stdout, `"bomFormat": "CycloneDX"`, `"specVersion": "1.6"`, "machine-learning-model")
	rampart(t, 0, "model", "update", id, "--description", "Detects the text direction.")
	stdout, _ = rampart(t, 0, "model", "show", id)
	wantContains(t, "show after update", stdout, "Detects the text direction.")
	rampart(t, 2, "model", "update", id)

	// ---- a tampered blob: the download is cut, nothing is left behind ----
	tamperLargeBlobs(t, filepath.Join(s.DataDir, datadir.ArtifactsDir), int64(len(onnx)))
	cut := filepath.Join(t.TempDir(), "cut")
	_, stderr = rampart(t, 1, "model", "download", id+"@1.0", "-o", cut)
	wantContains(t, "download of a tampered version", stderr, "cut the download short")
	if _, err := os.Lstat(cut); !os.IsNotExist(err) {
		t.Errorf("an aborted download left %s behind: %v", cut, err)
	}
	stdout, _ = rampart(t, 0, "model", "show", id+"@1.0")
	wantContains(t, "show quarantined", stdout, "quarantined (digest_mismatch)")
	_, stderr = rampart(t, 1, "model", "download", id+"@1.0", "-o", cut)
	wantContains(t, "download of a quarantined version", stderr, "(quarantined)")

	// ---- delete ----
	_, stderr = rampart(t, 1, "model", "delete", id)
	wantContains(t, "delete model with versions", stderr, "(model_has_versions)")
	rampart(t, 0, "model", "delete", id+"@1.0")
	rampart(t, 0, "model", "delete", id+"@2.0")
	stdout, _ = rampart(t, 0, "model", "delete", id)
	wantContains(t, "delete model", stdout, "Deleted "+id)
	stdout, _ = rampart(t, 0, "model", "list")
	wantContains(t, "list after delete", stdout, "No models.")
}
