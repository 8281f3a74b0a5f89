package registry

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	cdx "github.com/CycloneDX/cyclonedx-go"
	"github.com/google/go-cmp/cmp"

	"github.com/rampart-ml/rampart/internal/onnxmeta"
	"github.com/rampart-ml/rampart/internal/store"
)

var updateGolden = flag.Bool("update", false, "rewrite the golden files in testdata")

func sbomSample(signed bool) SBOMInput {
	created := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	v := store.ModelVersion{
		ModelID:       "com.acme.vision.resnet",
		Version:       "1.2.0",
		State:         store.VersionActive,
		ModelFile:     "model.onnx",
		SubjectDigest: strings.Repeat("ab", 32),
		Signed:        signed,
		VerifiedAt:    created.Add(-time.Minute),
		Files: []store.ModelFile{
			{Path: "labels.txt", Size: 21, Digest: strings.Repeat("01", 32)},
			{Path: "model.onnx", Size: 1234, Digest: strings.Repeat("02", 32)},
			{Path: "weights/w.bin", Size: 1 << 30, Digest: strings.Repeat("03", 32)},
		},
		CreatedBy: "acct-42",
		CreatedAt: created,
	}
	if signed {
		v.SignerKeyID = "acme-release-2026"
	}
	return SBOMInput{
		Model: store.Model{
			ID: "com.acme.vision.resnet", Domain: "com.acme.vision",
			Title: "ResNet", Description: "ResNet-50 image classifier",
			CreatedBy: "acct-42", CreatedAt: created,
		},
		Version: v,
		Card: CardFromONNX(onnxmeta.Model{
			IRVersion: 8, ProducerName: "pytorch", ProducerVersion: "2.4.0",
			Opsets: []onnxmeta.Opset{{Domain: "", Version: 17}, {Domain: "com.microsoft", Version: 1}},
			Inputs: []onnxmeta.Value{{
				Name: "input", Kind: onnxmeta.KindTensor, Datatype: "FP32",
				RankKnown: true, Shape: []int64{-1, 3, 224, 224}, DimParams: []string{"batch", "", "", ""},
			}},
			Outputs: []onnxmeta.Value{
				{Name: "logits", Kind: onnxmeta.KindTensor, Datatype: "FP32", RankKnown: true, Shape: []int64{-1, 1000}},
				{Name: "extra", Kind: onnxmeta.KindSequence, Type: "seq(map(INT64,FP32))"},
			},
		}),
		OnboardedBy: "pseud-7f3a",
		Tool:        "0.7.0",
	}
}

// props returns a component's properties as a map (names are unique here).
func props(t *testing.T, c *cdx.Component) map[string]string {
	t.Helper()
	m := map[string]string{}
	if c.Properties == nil {
		return m
	}
	for _, p := range *c.Properties {
		if _, dup := m[p.Name]; dup {
			t.Errorf("property %s twice", p.Name)
		}
		m[p.Name] = p.Value
	}
	return m
}

func encodeDecode(t *testing.T, bom *cdx.BOM) ([]byte, *cdx.BOM) {
	t.Helper()
	var buf bytes.Buffer
	if err := EncodeSBOM(bom, &buf); err != nil {
		t.Fatalf("EncodeSBOM: %v", err)
	}
	var back cdx.BOM
	if err := cdx.NewBOMDecoder(bytes.NewReader(buf.Bytes()), cdx.BOMFileFormatJSON).Decode(&back); err != nil {
		t.Fatalf("decode: %v", err)
	}
	return buf.Bytes(), &back
}

func TestBuildSBOM(t *testing.T) {
	t.Parallel()
	bom, err := BuildSBOM(sbomSample(true))
	if err != nil {
		t.Fatalf("BuildSBOM: %v", err)
	}
	raw, back := encodeDecode(t, bom)

	if !regexp.MustCompile(`^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`).MatchString(back.SerialNumber) {
		t.Errorf("serial number %q is not a random UUID URN", back.SerialNumber)
	}
	if back.SpecVersion != cdx.SpecVersion1_6 || back.BOMFormat != "CycloneDX" {
		t.Errorf("spec %v format %q, want 1.6 CycloneDX", back.SpecVersion, back.BOMFormat)
	}
	md := back.Metadata
	if md == nil || md.Component == nil {
		t.Fatal("no metadata component")
	}
	if md.Timestamp != "2026-11-20T10:00:00Z" {
		t.Errorf("timestamp %q, want the version's creation time", md.Timestamp)
	}
	if md.Tools == nil || md.Tools.Components == nil || len(*md.Tools.Components) != 1 ||
		(*md.Tools.Components)[0].Name != "rampart" || (*md.Tools.Components)[0].Version != "0.7.0" {
		t.Errorf("tools = %+v, want rampart 0.7.0", md.Tools)
	}

	c := md.Component
	want := struct {
		Ref, Name, Version, Desc string
		Type                     cdx.ComponentType
		Hashes                   []cdx.Hash
	}{
		"model:com.acme.vision.resnet@1.2.0", "com.acme.vision.resnet", "1.2.0", "ResNet-50 image classifier",
		cdx.ComponentTypeMachineLearningModel,
		[]cdx.Hash{{Algorithm: cdx.HashAlgoSHA256, Value: strings.Repeat("02", 32)}},
	}
	got := want
	got.Ref, got.Name, got.Version, got.Desc, got.Type = c.BOMRef, c.Name, c.Version, c.Description, c.Type
	got.Hashes = nil
	if c.Hashes != nil {
		got.Hashes = *c.Hashes
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("model component (-want +got):\n%s", d)
	}

	wantProps := map[string]string{
		PropSigned:                        "true",
		PropSignerKeyID:                   "acme-release-2026",
		PropVerifiedAt:                    "2026-11-20T09:59:00Z",
		PropOnboardedBy:                   "pseud-7f3a",
		PropSubjectDigest:                 "sha256:" + strings.Repeat("ab", 32),
		PropState:                         "active",
		PropIRVersion:                     "8",
		PropProducer:                      "pytorch 2.4.0",
		PropOpsetPrefix + "ai.onnx":       "17",
		PropOpsetPrefix + "com.microsoft": "1",
	}
	if d := cmp.Diff(wantProps, props(t, c)); d != "" {
		t.Errorf("model properties (-want +got):\n%s", d)
	}

	if c.ModelCard == nil || c.ModelCard.ModelParameters == nil {
		t.Fatal("no model card parameters")
	}
	formats := func(p *[]cdx.MLInputOutputParameters) []string {
		var s []string
		if p != nil {
			for _, f := range *p {
				s = append(s, f.Format)
			}
		}
		return s
	}
	mp := c.ModelCard.ModelParameters
	if d := cmp.Diff([]string{"input: FP32[?,3,224,224]"}, formats(mp.Inputs)); d != "" {
		t.Errorf("inputs (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]string{"logits: FP32[?,1000]", "extra: seq(map(INT64,FP32))[*]"}, formats(mp.Outputs)); d != "" {
		t.Errorf("outputs (-want +got):\n%s", d)
	}

	type file struct {
		Ref, Name, Size string
		Type            cdx.ComponentType
		Hashes          []cdx.Hash
	}
	var gotFiles []file
	if c.Components != nil {
		for _, f := range *c.Components {
			ff := file{Ref: f.BOMRef, Name: f.Name, Type: f.Type, Size: props(t, &f)["rampart:size"]}
			if f.Hashes != nil {
				ff.Hashes = *f.Hashes
			}
			gotFiles = append(gotFiles, ff)
		}
	}
	sha := func(s string) []cdx.Hash {
		return []cdx.Hash{{Algorithm: cdx.HashAlgoSHA256, Value: strings.Repeat(s, 32)}}
	}
	wantFiles := []file{
		{"model:com.acme.vision.resnet@1.2.0/labels.txt", "labels.txt", "21", cdx.ComponentTypeFile, sha("01")},
		{"model:com.acme.vision.resnet@1.2.0/model.onnx", "model.onnx", "1234", cdx.ComponentTypeFile, sha("02")},
		{"model:com.acme.vision.resnet@1.2.0/weights/w.bin", "weights/w.bin", "1073741824", cdx.ComponentTypeFile, sha("03")},
	}
	if d := cmp.Diff(wantFiles, gotFiles); d != "" {
		t.Errorf("files (-want +got):\n%s", d)
	}

	checkStructure(t, raw)
	checkGolden(t, filepath.Join("testdata", "sbom.golden.json"), raw)
}

// checkStructure checks the JSON by hand where the library's types could
// hide a mistake: the CycloneDX 1.6 JSON schema ships with cyclonedx-go but
// validating against it would need a JSON-schema library Rampart does not
// otherwise depend on (the golden file was validated against it once, see
// testdata/README).
func checkStructure(t *testing.T, raw []byte) {
	t.Helper()
	var doc struct {
		BOMFormat   string `json:"bomFormat"`
		SpecVersion string `json:"specVersion"`
		Schema      string `json:"$schema"`
		Metadata    struct {
			Component struct {
				Type   string `json:"type"`
				Hashes []struct {
					Alg     string `json:"alg"`
					Content string `json:"content"`
				} `json:"hashes"`
				ModelCard  map[string]any   `json:"modelCard"`
				Components []map[string]any `json:"components"`
			} `json:"component"`
			Tools map[string]any `json:"tools"`
		} `json:"metadata"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("unmarshal: %v", err)
	}
	c := doc.Metadata.Component
	if doc.BOMFormat != "CycloneDX" || doc.SpecVersion != "1.6" || c.Type != "machine-learning-model" ||
		len(c.Hashes) != 1 || c.Hashes[0].Alg != "SHA-256" || c.ModelCard["modelParameters"] == nil ||
		len(c.Components) != 3 || doc.Metadata.Tools["components"] == nil {
		t.Errorf("unexpected structure:\n%s", raw)
	}
	if doc.Schema != "http://cyclonedx.org/schema/bom-1.6.schema.json" {
		t.Errorf("$schema = %q", doc.Schema)
	}
}

// checkGolden compares raw with the golden file, the serial number (random)
// blanked; -update rewrites it.
func checkGolden(t *testing.T, path string, raw []byte) {
	t.Helper()
	norm := regexp.MustCompile(`"urn:uuid:[0-9a-f-]{36}"`).ReplaceAll(raw, []byte(`"urn:uuid:00000000-0000-4000-8000-000000000000"`))
	if *updateGolden {
		if err := os.WriteFile(path, norm, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path) // #nosec G304 -- a fixed test data path
	if err != nil {
		t.Fatalf("golden file (run with -update to create it): %v", err)
	}
	if d := cmp.Diff(string(want), string(norm)); d != "" {
		t.Errorf("BOM differs from %s (-want +got):\n%s", path, d)
	}
}

func TestBuildSBOMUnsigned(t *testing.T) {
	t.Parallel()
	in := sbomSample(false)
	in.OnboardedBy = ""
	bom, err := BuildSBOM(in)
	if err != nil {
		t.Fatalf("BuildSBOM: %v", err)
	}
	_, back := encodeDecode(t, bom)
	p := props(t, back.Metadata.Component)
	if p[PropSigned] != "false" {
		t.Errorf("%s = %q, want false", PropSigned, p[PropSigned])
	}
	for _, name := range []string{PropSignerKeyID, PropOnboardedBy} {
		if v, ok := p[name]; ok {
			t.Errorf("unsigned BOM has %s = %q", name, v)
		}
	}
}

// TestBuildSBOMNoPersonalData: who onboarded the version appears only as
// the pseudonym the caller gave, never as the account id the rows hold, and
// the BOM has no authors, manufacturer or supplier (which would name people).
func TestBuildSBOMNoPersonalData(t *testing.T) {
	t.Parallel()
	in := sbomSample(true)
	in.Model.CreatedBy = "alice@example.com"
	in.Version.CreatedBy = "alice@example.com"
	bom, err := BuildSBOM(in)
	if err != nil {
		t.Fatalf("BuildSBOM: %v", err)
	}
	raw, back := encodeDecode(t, bom)
	if bytes.Contains(raw, []byte("alice")) {
		t.Errorf("BOM holds the account id:\n%s", raw)
	}
	md := back.Metadata
	if md.Authors != nil || md.Manufacturer != nil || md.Supplier != nil ||
		md.Component.Authors != nil || md.Component.Author != "" || md.Component.Manufacturer != nil ||
		md.Component.Supplier != nil || md.Component.Publisher != "" {
		t.Errorf("BOM names people: %+v", md)
	}
}

func TestBuildSBOMInvalid(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		modify func(*SBOMInput)
	}{
		{"no model id", func(in *SBOMInput) { in.Model.ID = "" }},
		{"version of another model", func(in *SBOMInput) { in.Version.ModelID = "com.acme.other" }},
		{"no version", func(in *SBOMInput) { in.Version.Version = "" }},
		{"signed without key", func(in *SBOMInput) { in.Version.SignerKeyID = "" }},
		{"bad subject digest", func(in *SBOMInput) { in.Version.SubjectDigest = "xyz" }},
		{"upper-case digest", func(in *SBOMInput) { in.Version.Files[0].Digest = strings.Repeat("AB", 32) }},
		{"short digest", func(in *SBOMInput) { in.Version.Files[1].Digest = "abcd" }},
		{"negative size", func(in *SBOMInput) { in.Version.Files[2].Size = -1 }},
		{"model file missing", func(in *SBOMInput) { in.Version.ModelFile = "other.onnx" }},
		{"duplicate path", func(in *SBOMInput) { in.Version.Files[0].Path = "model.onnx" }},
		{"empty path", func(in *SBOMInput) { in.Version.Files[0].Path = "" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			in := sbomSample(true)
			tt.modify(&in)
			if _, err := BuildSBOM(in); !errors.Is(err, ErrSBOMInput) {
				t.Errorf("BuildSBOM: %v, want ErrSBOMInput", err)
			}
		})
	}
}

func TestBuildSBOMSerialIsRandom(t *testing.T) {
	t.Parallel()
	a, err := BuildSBOM(sbomSample(true))
	if err != nil {
		t.Fatal(err)
	}
	b, err := BuildSBOM(sbomSample(true))
	if err != nil {
		t.Fatal(err)
	}
	if a.SerialNumber == b.SerialNumber {
		t.Errorf("two BOMs share serial %s", a.SerialNumber)
	}
}

func TestCardFromONNX(t *testing.T) {
	t.Parallel()
	got := CardFromONNX(onnxmeta.Model{
		IRVersion: 9, ProducerName: "tf2onnx", ProducerVersion: "1.16",
		Opsets: []onnxmeta.Opset{{Version: 13}},
		Inputs: []onnxmeta.Value{
			{Name: "x", Kind: onnxmeta.KindTensor, Datatype: "INT64", RankKnown: true, Shape: []int64{}},
			{Name: "y", Kind: onnxmeta.KindTensor, Datatype: "BYTES"},
		},
		Outputs: []onnxmeta.Value{{Name: "m", Kind: onnxmeta.KindMap}},
	})
	want := ModelCard{
		IRVersion: 9, ProducerName: "tf2onnx", ProducerVersion: "1.16",
		Opsets:  []CardOpset{{Version: 13}},
		Inputs:  []CardTensor{{Name: "x", Datatype: "INT64", Shape: []int64{}}, {Name: "y", Datatype: "BYTES"}},
		Outputs: []CardTensor{{Name: "m", Datatype: "map"}},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("CardFromONNX (-want +got):\n%s", d)
	}
	// A scalar (known rank 0) and an unknown rank render differently.
	f := tensorFormats(got.Inputs)
	if d := cmp.Diff([]cdx.MLInputOutputParameters{{Format: "x: INT64[]"}, {Format: "y: BYTES[*]"}}, *f); d != "" {
		t.Errorf("formats (-want +got):\n%s", d)
	}
}

func TestCardFromMetadataJSON(t *testing.T) {
	t.Parallel()
	m := onnxmeta.Model{IRVersion: 7, Opsets: []onnxmeta.Opset{{Version: 11}},
		Inputs: []onnxmeta.Value{{Name: "a", Kind: onnxmeta.KindTensor, Datatype: "FP16", RankKnown: true, Shape: []int64{2}}}}
	raw, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		in      string
		want    ModelCard
		wantErr bool
	}{
		{"empty", "", ModelCard{}, false},
		{"onnxmeta JSON", string(raw), CardFromONNX(m), false},
		{"not JSON", "{", ModelCard{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := CardFromMetadataJSON(tt.in)
			if (err != nil) != tt.wantErr || (err != nil && !errors.Is(err, ErrSBOMInput)) {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if d := cmp.Diff(tt.want, got); d != "" {
				t.Errorf("card (-want +got):\n%s", d)
			}
		})
	}
}

// FuzzBuildSBOM: names, paths and ONNX strings come from uploaders; whatever
// they hold, the BOM encodes to JSON that decodes back to the same strings.
func FuzzBuildSBOM(f *testing.F) {
	s := sbomSample(true)
	f.Add(s.Model.Description, s.Version.Files[0].Path, s.Card.ProducerName, s.Card.Inputs[0].Name, s.OnboardedBy)
	f.Add("<script>&\u2028", "a/../b", "\x00\xff", "\"", "")
	f.Fuzz(func(t *testing.T, desc, path, producer, input, by string) {
		in := sbomSample(true)
		in.Model.Description = desc
		in.Version.Files[0].Path = path
		in.Card.ProducerName = producer
		in.Card.Inputs[0].Name = input
		in.OnboardedBy = by
		bom, err := BuildSBOM(in)
		if path == "" || path == in.Version.Files[1].Path || path == in.Version.Files[2].Path {
			if !errors.Is(err, ErrSBOMInput) {
				t.Fatalf("BuildSBOM with file path %q: %v, want ErrSBOMInput", path, err)
			}
			return
		}
		if err != nil {
			t.Fatalf("BuildSBOM: %v", err)
		}
		var buf bytes.Buffer
		if err := EncodeSBOM(bom, &buf); err != nil {
			t.Fatalf("EncodeSBOM: %v", err)
		}
		var back cdx.BOM
		if err := cdx.NewBOMDecoder(&buf, cdx.BOMFileFormatJSON).Decode(&back); err != nil {
			t.Fatalf("decode: %v", err)
		}
		c := back.Metadata.Component
		if desc != "" && c.Description != viaJSON(t, desc) {
			t.Errorf("description %q came back as %q", desc, c.Description)
		}
		if got := (*c.Components)[0].Name; got != viaJSON(t, path) {
			t.Errorf("path %q came back as %q", path, got)
		}
	})
}

// viaJSON is s after a trip through encoding/json, which replaces each
// invalid UTF-8 byte with U+FFFD.
func viaJSON(t *testing.T, s string) string {
	t.Helper()
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	var out string
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}
