package version

import (
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"strings"

	cdx "github.com/CycloneDX/cyclonedx-go"
)

// The ONNX Runtime library the workers load is not a Go module; the SBOM
// names the one scripts/fetch-onnxruntime.sh installs (checked against
// this digest there).
const (
	onnxRuntimeVersion = "1.24.1"
	onnxRuntimeSHA256  = "53ef1ac028dd1b05554b8da28d9159eb3876f99868193d2aaa6e67f0243c23d4"
)

// SBOM is a CycloneDX 1.6 bill of materials of this binary, built from
// its embedded build information: the module itself, every Go module
// compiled in (with its go.sum hash), the Go toolchain, and the ONNX
// Runtime library its workers load. Offline scanners (e.g. ones that read
// purls) consume it as is.
func SBOM() (*cdx.BOM, error) {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return nil, fmt.Errorf("this binary carries no build information")
	}
	info := Get()
	root := cdx.Component{
		BOMRef: purl(bi.Main.Path, info.Version), Type: cdx.ComponentTypeApplication,
		Name: "rampart", Version: info.Version, PackageURL: purl(bi.Main.Path, info.Version),
		Properties: &[]cdx.Property{{Name: "rampart:commit", Value: info.Commit}},
	}
	var props []cdx.Property
	for _, s := range bi.Settings {
		if strings.HasPrefix(s.Key, "-") || s.Key == "CGO_ENABLED" || s.Key == "GOOS" || s.Key == "GOARCH" || s.Key == "GOAMD64" {
			props = append(props, cdx.Property{Name: "rampart:build:" + s.Key, Value: s.Value})
		}
	}
	if len(props) > 0 {
		*root.Properties = append(*root.Properties, props...)
	}

	components := []cdx.Component{{
		BOMRef: "pkg:golang/std@" + runtime.Version(), Type: cdx.ComponentTypeLibrary, Name: "std",
		Version: runtime.Version(), PackageURL: "pkg:golang/std@" + runtime.Version(),
		Description: "the Go standard library and runtime",
	}}
	for _, d := range bi.Deps {
		if d.Replace != nil {
			d = d.Replace
		}
		c := cdx.Component{BOMRef: purl(d.Path, d.Version), Type: cdx.ComponentTypeLibrary, Name: d.Path,
			Version: d.Version, PackageURL: purl(d.Path, d.Version)}
		if h, ok := goSumHash(d.Sum); ok {
			c.Hashes = &[]cdx.Hash{{Algorithm: cdx.HashAlgoSHA256, Value: h}}
		}
		components = append(components, c)
	}
	components = append(components, cdx.Component{
		BOMRef: "pkg:npm/onnxruntime-node@" + onnxRuntimeVersion, Type: cdx.ComponentTypeLibrary,
		Name: "onnxruntime", Version: onnxRuntimeVersion, PackageURL: "pkg:npm/onnxruntime-node@" + onnxRuntimeVersion,
		Description: "libonnxruntime.so.1 from the npm package onnxruntime-node, loaded by the model workers",
		Hashes:      &[]cdx.Hash{{Algorithm: cdx.HashAlgoSHA256, Value: onnxRuntimeSHA256}},
	})

	deps := make([]string, 0, len(components))
	for _, c := range components {
		deps = append(deps, c.BOMRef)
	}
	bom := cdx.NewBOM()
	bom.SpecVersion = cdx.SpecVersion1_6
	bom.Metadata = &cdx.Metadata{Component: &root}
	bom.Components = &components
	bom.Dependencies = &[]cdx.Dependency{{Ref: root.BOMRef, Dependencies: &deps}}
	return bom, nil
}

// WriteSBOM writes SBOM() as indented JSON.
func WriteSBOM(w io.Writer) error {
	bom, err := SBOM()
	if err != nil {
		return err
	}
	enc := cdx.NewBOMEncoder(w, cdx.BOMFileFormatJSON)
	enc.SetPretty(true)
	return enc.EncodeVersion(bom, cdx.SpecVersion1_6)
}

// purl is the package URL of a Go module version.
func purl(path, version string) string {
	if version == "" || version == "(devel)" {
		version = "devel"
	}
	return "pkg:golang/" + path + "@" + version
}

// goSumHash turns a go.sum "h1:" hash (base64 SHA-256 of the module's
// file tree) into hex, as SBOM tools report it.
func goSumHash(sum string) (string, bool) {
	b64, ok := strings.CutPrefix(sum, "h1:")
	if !ok {
		return "", false
	}
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || len(raw) != 32 {
		return "", false
	}
	return hex.EncodeToString(raw), true
}
