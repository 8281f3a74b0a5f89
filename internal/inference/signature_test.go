package inference

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/rampart-ml/rampart/internal/onnxmeta"
	"github.com/rampart-ml/rampart/internal/onnxmeta/testmodels"
	"github.com/rampart-ml/rampart/internal/tensor"
)

func TestSignatureFromONNX(t *testing.T) {
	t.Parallel()
	m := onnxmeta.Model{
		Inputs: []onnxmeta.Value{{Name: "x", Kind: onnxmeta.KindTensor, Datatype: "FP32", RankKnown: true, Shape: []int64{-1, 3}},
			{Name: "any", Kind: onnxmeta.KindTensor, Datatype: "BYTES"}},
		Outputs: []onnxmeta.Value{{Name: "y", Kind: onnxmeta.KindTensor, Datatype: "INT64", RankKnown: true, Shape: []int64{}}},
	}
	got, err := SignatureFromONNX(m)
	if err != nil {
		t.Fatal(err)
	}
	want := Signature{
		Inputs:  []IO{{Name: "x", Datatype: tensor.FP32, Shape: []int64{-1, 3}}, {Name: "any", Datatype: tensor.Bytes}},
		Outputs: []IO{{Name: "y", Datatype: tensor.Int64, Shape: []int64{}}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("SignatureFromONNX (-want +got):\n%s", diff)
	}
	for _, bad := range []onnxmeta.Value{
		{Name: "s", Kind: onnxmeta.KindSequence},
		{Name: "c", Kind: onnxmeta.KindTensor, Datatype: "COMPLEX64"},
	} {
		if _, err := SignatureFromONNX(onnxmeta.Model{Outputs: []onnxmeta.Value{bad}}); !errors.Is(err, ErrUnsupported) {
			t.Errorf("SignatureFromONNX(%v) = %v, want ErrUnsupported", bad, err)
		}
	}
}

// A request for the real PaddleOCR direction classifier passes validation
// against the signature read from the model file; a wrong one is refused
// with a precise message.
func TestValidateRealModel(t *testing.T) {
	t.Parallel()
	f, err := os.Open(testmodels.Path(t, testmodels.OCRClassifier))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	meta, err := onnxmeta.Read(f, 64<<20)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := SignatureFromONNX(meta)
	if err != nil {
		t.Fatal(err)
	}
	in := sig.Inputs[0]
	img := benchTensor(1, 3, 48, 192)
	img.Name = in.Name
	body, hl := binaryBody(`{"inputs":[{"name":"`+in.Name+`","shape":[1,3,48,192],"datatype":"FP32","parameters":{"binary_data_size":110592}}]}`, img.Data)
	req, err := DecodeRequest(body, hl, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if err := Validate(req, sig); err != nil {
		t.Errorf("Validate: %v", err)
	}
	req.Inputs[0].Shape = []int64{1, 4, 48, 144}
	if err := Validate(req, sig); err == nil || !strings.Contains(err.Error(), "dimension 1 of shape [1,4,48,144] is 4, but the model expects 3") {
		t.Errorf("Validate(4 channels) = %v", err)
	}
}
