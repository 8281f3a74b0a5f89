package version

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func TestSBOM(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	if err := WriteSBOM(&buf); err != nil {
		t.Fatal(err)
	}
	var bom struct {
		BOMFormat   string `json:"bomFormat"`
		SpecVersion string `json:"specVersion"`
		Metadata    struct {
			Component struct{ Name, Type, Purl string }
		}
		Components []struct {
			Name, Version, Purl string
			Hashes              []struct{ Alg, Content string }
		}
		Dependencies []struct {
			Ref       string
			DependsOn []string
		}
	}
	if err := json.Unmarshal(buf.Bytes(), &bom); err != nil {
		t.Fatalf("SBOM is not JSON: %v", err)
	}
	if bom.BOMFormat != "CycloneDX" || bom.SpecVersion != "1.6" || bom.Metadata.Component.Name != "rampart" ||
		!strings.HasPrefix(bom.Metadata.Component.Purl, "pkg:golang/github.com/rampart-ml/rampart@") {
		t.Errorf("SBOM header: %s %s %+v", bom.BOMFormat, bom.SpecVersion, bom.Metadata.Component)
	}
	seen := map[string]bool{}
	for _, c := range bom.Components {
		seen[c.Name] = true
		if c.Purl == "" || c.Version == "" {
			t.Errorf("component %s has no purl or version", c.Name)
		}
		for _, h := range c.Hashes {
			if h.Alg != "SHA-256" || len(h.Content) != 64 {
				t.Errorf("component %s hash %+v", c.Name, h)
			}
		}
	}
	// The toolchain and the ORT library the workers load. (A test binary
	// records no modules; cmd/rampart's TestVersionSBOM checks them in
	// the real binary.)
	for _, want := range []string{"std", "onnxruntime"} {
		if !seen[want] {
			t.Errorf("SBOM lacks %s", want)
		}
	}
	if len(bom.Dependencies) != 1 || len(bom.Dependencies[0].DependsOn) != len(bom.Components) {
		t.Errorf("dependencies: %+v", bom.Dependencies)
	}
}

func TestGoSumHash(t *testing.T) {
	t.Parallel()
	if h, ok := goSumHash("h1:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="); !ok || h != "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" {
		t.Errorf("goSumHash = %q, %v", h, ok)
	}
	for _, bad := range []string{"", "h1:", "h2:abc", "h1:!!!", "h1:AAAA"} {
		if _, ok := goSumHash(bad); ok {
			t.Errorf("goSumHash(%q) accepted", bad)
		}
	}
}
