package registry

// This file builds the ML-BOM of a model version: a CycloneDX 1.6 BOM
// describing the version as a machine-learning-model component with its
// files, hashes, model card, signature facts and who onboarded it. It is a
// pure function of what the registry already stores: no I/O, no clock.

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	cdx "github.com/CycloneDX/cyclonedx-go"

	"github.com/rampart-ml/rampart/internal/onnxmeta"
	"github.com/rampart-ml/rampart/internal/store"
)

// ErrSBOMInput means the version handed to BuildSBOM is inconsistent (a
// digest that is not SHA-256 hex, an ONNX file missing from the file list,
// a version of another model...). It is a bug of the caller or a corrupted
// row, never something an uploader controls once the version is admitted.
var ErrSBOMInput = errors.New("invalid ML-BOM input")

// Property names of the BOM. They live in the "rampart:" namespace, as
// CycloneDX asks of properties that are not in its official taxonomy.
const (
	PropSigned        = "rampart:signed"
	PropSignerKeyID   = "rampart:signer-key-id"
	PropVerifiedAt    = "rampart:verified-at"
	PropOnboardedBy   = "rampart:onboarded-by"
	PropSubjectDigest = "rampart:subject-digest"
	PropState         = "rampart:state"
	PropIRVersion     = "rampart:onnx:ir-version"
	PropProducer      = "rampart:onnx:producer"
	PropOpsetPrefix   = "rampart:onnx:opset:" // + domain ("ai.onnx" for the default set)
)

// ModelCard is what the ML-BOM says about a model's interface: the part of
// its ONNX metadata a consumer of the BOM needs to know what the model takes
// and returns and what produced it.
type ModelCard struct {
	IRVersion       int64
	ProducerName    string
	ProducerVersion string
	Opsets          []CardOpset
	Inputs          []CardTensor
	Outputs         []CardTensor
}

// CardOpset is one operator set the model imports.
type CardOpset struct {
	Domain  string // "" for the default ai.onnx set
	Version int64
}

// CardTensor is one input or output of the model.
type CardTensor struct {
	Name     string
	Datatype string  // KServe v2 name (FP32, INT64...); for a non-tensor its full type
	Shape    []int64 // -1 for a dimension of unknown or symbolic size; nil if the rank is unknown
}

// CardFromONNX keeps the part of an ONNX model's metadata that goes in the
// ML-BOM.
func CardFromONNX(m onnxmeta.Model) ModelCard {
	c := ModelCard{
		IRVersion:       m.IRVersion,
		ProducerName:    m.ProducerName,
		ProducerVersion: m.ProducerVersion,
	}
	for _, o := range m.Opsets {
		c.Opsets = append(c.Opsets, CardOpset{Domain: o.Domain, Version: o.Version})
	}
	conv := func(vs []onnxmeta.Value) []CardTensor {
		var out []CardTensor
		for _, v := range vs {
			t := CardTensor{Name: v.Name, Datatype: v.Datatype}
			if v.Kind != onnxmeta.KindTensor {
				// Sparse tensors, sequences, maps... have no v2 datatype;
				// their full type says what they are.
				t.Datatype = v.Type
				if t.Datatype == "" {
					t.Datatype = string(v.Kind)
				}
			}
			if v.RankKnown {
				t.Shape = append([]int64{}, v.Shape...)
			}
			out = append(out, t)
		}
		return out
	}
	c.Inputs = conv(m.Inputs)
	c.Outputs = conv(m.Outputs)
	return c
}

// CardFromMetadataJSON is CardFromONNX of a version's stored metadata
// (store.ModelVersion.Metadata: an onnxmeta.Model as JSON). Empty metadata
// gives an empty card.
func CardFromMetadataJSON(metadata string) (ModelCard, error) {
	if metadata == "" {
		return ModelCard{}, nil
	}
	var m onnxmeta.Model
	if err := json.Unmarshal([]byte(metadata), &m); err != nil {
		return ModelCard{}, fmt.Errorf("%w: metadata: %w", ErrSBOMInput, err)
	}
	return CardFromONNX(m), nil
}

// SBOMInput is what an ML-BOM is built from: rows the registry stores.
type SBOMInput struct {
	Model   store.Model
	Version store.ModelVersion // with its Files
	Card    ModelCard
	// OnboardedBy names who onboarded the version as the caller chooses to
	// publish it: a pseudonym or a subject id, never a person's name or
	// e-mail address (the BOM is handed to anyone who may read the model).
	OnboardedBy string
	// Tool is Rampart's version, recorded as the tool that made the BOM.
	Tool string
}

// BuildSBOM returns the CycloneDX 1.6 ML-BOM of a model version. Its serial
// number is random (each BOM is a new document); everything else is a
// function of in, the timestamp being the version's creation time.
func BuildSBOM(in SBOMInput) (*cdx.BOM, error) {
	if err := checkSBOMInput(in); err != nil {
		return nil, err
	}
	v := in.Version
	serial, err := newURNUUID()
	if err != nil {
		return nil, fmt.Errorf("ML-BOM of %s@%s: %w", v.ModelID, v.Version, err)
	}

	ref := "model:" + in.Model.ID + "@" + v.Version
	files := make([]cdx.Component, 0, len(v.Files))
	var modelHashes []cdx.Hash
	for _, f := range v.Files {
		h := []cdx.Hash{{Algorithm: cdx.HashAlgoSHA256, Value: f.Digest}}
		if f.Path == v.ModelFile {
			modelHashes = h
		}
		files = append(files, cdx.Component{
			BOMRef: ref + "/" + f.Path,
			Type:   cdx.ComponentTypeFile,
			Name:   f.Path,
			Hashes: &h,
			Properties: &[]cdx.Property{
				{Name: "rampart:size", Value: strconv.FormatInt(f.Size, 10)},
			},
		})
	}

	props := []cdx.Property{
		{Name: PropSigned, Value: strconv.FormatBool(v.Signed)},
	}
	if v.Signed {
		props = append(props, cdx.Property{Name: PropSignerKeyID, Value: v.SignerKeyID})
	}
	if !v.VerifiedAt.IsZero() {
		props = append(props, cdx.Property{Name: PropVerifiedAt, Value: rfc3339(v.VerifiedAt)})
	}
	if in.OnboardedBy != "" {
		props = append(props, cdx.Property{Name: PropOnboardedBy, Value: in.OnboardedBy})
	}
	if v.SubjectDigest != "" {
		props = append(props, cdx.Property{Name: PropSubjectDigest, Value: "sha256:" + v.SubjectDigest})
	}
	if v.State != "" {
		props = append(props, cdx.Property{Name: PropState, Value: v.State})
	}
	// cyclonedx-go's MLModelCard has no properties (the 1.6 schema does), so
	// the ONNX facts the card has no field for sit on the component.
	props = append(props, cardProperties(in.Card)...)

	model := cdx.Component{
		BOMRef:      ref,
		Type:        cdx.ComponentTypeMachineLearningModel,
		Name:        in.Model.ID,
		Version:     v.Version,
		Description: in.Model.Description,
		Hashes:      &modelHashes,
		ModelCard: &cdx.MLModelCard{
			BOMRef: ref + "#model-card",
			ModelParameters: &cdx.MLModelParameters{
				Inputs:  tensorFormats(in.Card.Inputs),
				Outputs: tensorFormats(in.Card.Outputs),
			},
		},
		Properties: &props,
		Components: &files,
	}
	if model.Description == "" {
		model.Description = in.Model.Title
	}

	bom := cdx.NewBOM() // spec version 1.6, the library's default
	bom.SerialNumber = serial
	bom.Metadata = &cdx.Metadata{
		Timestamp: rfc3339(v.CreatedAt),
		Tools: &cdx.ToolsChoice{Components: &[]cdx.Component{{
			Type:    cdx.ComponentTypeApplication,
			Name:    "rampart",
			Version: in.Tool,
		}}},
		Component: &model,
	}
	return bom, nil
}

// EncodeSBOM writes bom as indented CycloneDX 1.6 JSON.
func EncodeSBOM(bom *cdx.BOM, w io.Writer) error {
	enc := cdx.NewBOMEncoder(w, cdx.BOMFileFormatJSON)
	enc.SetPretty(true)
	if err := enc.EncodeVersion(bom, cdx.SpecVersion1_6); err != nil {
		return fmt.Errorf("encode ML-BOM: %w", err)
	}
	return nil
}

// checkSBOMInput reports every inconsistency of in at once.
func checkSBOMInput(in SBOMInput) error {
	v := in.Version
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrSBOMInput}, args...)...))
	}
	if in.Model.ID == "" {
		bad("no model id")
	}
	if v.ModelID != in.Model.ID {
		bad("version of model %q given with model %q", v.ModelID, in.Model.ID)
	}
	if v.Version == "" {
		bad("no version")
	}
	if v.Signed && v.SignerKeyID == "" {
		bad("signed version without a signer key id")
	}
	if v.SubjectDigest != "" && !isSHA256Hex(v.SubjectDigest) {
		bad("subject digest %q is not SHA-256 hex", v.SubjectDigest)
	}
	found := false
	seen := make(map[string]bool, len(v.Files))
	for _, f := range v.Files {
		if f.Path == v.ModelFile {
			found = true
		}
		if f.Path == "" {
			bad("a file without a path")
		} else if seen[f.Path] {
			bad("file %q listed twice", f.Path)
		}
		seen[f.Path] = true
		if !isSHA256Hex(f.Digest) {
			bad("file %q: digest %q is not SHA-256 hex", f.Path, f.Digest)
		}
		if f.Size < 0 {
			bad("file %q: negative size", f.Path)
		}
	}
	if !found {
		bad("model file %q is not among the version's files", v.ModelFile)
	}
	return errors.Join(errs...)
}

func cardProperties(c ModelCard) []cdx.Property {
	var props []cdx.Property
	if c.IRVersion != 0 {
		props = append(props, cdx.Property{Name: PropIRVersion, Value: strconv.FormatInt(c.IRVersion, 10)})
	}
	if p := strings.TrimSpace(c.ProducerName + " " + c.ProducerVersion); p != "" {
		props = append(props, cdx.Property{Name: PropProducer, Value: p})
	}
	for _, o := range c.Opsets {
		d := o.Domain
		if d == "" {
			d = "ai.onnx"
		}
		props = append(props, cdx.Property{Name: PropOpsetPrefix + d, Value: strconv.FormatInt(o.Version, 10)})
	}
	return props
}

// tensorFormats renders each tensor as "name: FP32[1,3,224,224]" (? for a
// dimension of unknown size, [*] for an unknown rank): CycloneDX's format is
// free text.
func tensorFormats(ts []CardTensor) *[]cdx.MLInputOutputParameters {
	if len(ts) == 0 {
		return nil
	}
	out := make([]cdx.MLInputOutputParameters, 0, len(ts))
	for _, t := range ts {
		var b strings.Builder
		b.WriteString(t.Name + ": " + t.Datatype + "[")
		if t.Shape == nil {
			b.WriteString("*")
		}
		for i, d := range t.Shape {
			if i > 0 {
				b.WriteByte(',')
			}
			if d < 0 {
				b.WriteByte('?')
			} else {
				b.WriteString(strconv.FormatInt(d, 10))
			}
		}
		b.WriteByte(']')
		out = append(out, cdx.MLInputOutputParameters{Format: b.String()})
	}
	return &out
}

func rfc3339(t time.Time) string { return t.UTC().Format(time.RFC3339) }

func isSHA256Hex(s string) bool {
	if len(s) != 64 || strings.ToLower(s) != s {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}

// newURNUUID returns a random (version 4) UUID as a URN, the form CycloneDX
// requires of serial numbers.
func newURNUUID() (string, error) {
	var u [16]byte
	if _, err := rand.Read(u[:]); err != nil {
		return "", fmt.Errorf("serial number: %w", err)
	}
	u[6] = u[6]&0x0f | 0x40 // version 4
	u[8] = u[8]&0x3f | 0x80 // RFC 9562 variant
	h := hex.EncodeToString(u[:])
	return "urn:uuid:" + h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:], nil
}
