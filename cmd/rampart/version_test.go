package main

import (
	"encoding/json"
	"testing"
)

// TestVersionSBOM: the built binary describes what it is made of, with the
// go.sum hash of every module, for offline scanners.
func TestVersionSBOM(t *testing.T) {
	t.Parallel()
	code, stdout, stderr := runRampart(t, nil, "version", "--sbom")
	if code != 0 {
		t.Fatalf("rampart version --sbom: exit %d: %s", code, stderr)
	}
	var bom struct {
		SpecVersion string `json:"specVersion"`
		Components  []struct {
			Name, Version, Purl string
			Hashes              []struct{ Alg, Content string }
		}
	}
	if err := json.Unmarshal([]byte(stdout), &bom); err != nil {
		t.Fatalf("not JSON: %v", err)
	}
	hashed := map[string]bool{}
	for _, c := range bom.Components {
		hashed[c.Name] = len(c.Hashes) == 1 && c.Hashes[0].Alg == "SHA-256" && len(c.Hashes[0].Content) == 64
	}
	for _, m := range []string{"google.golang.org/grpc", "github.com/yalue/onnxruntime_go", "modernc.org/sqlite",
		"github.com/sigstore/sigstore-go", "filippo.io/age", "onnxruntime"} {
		if !hashed[m] {
			t.Errorf("the SBOM does not list %s with its SHA-256", m)
		}
	}
	if bom.SpecVersion != "1.6" || len(bom.Components) < 50 {
		t.Errorf("spec %s, %d components", bom.SpecVersion, len(bom.Components))
	}
}
