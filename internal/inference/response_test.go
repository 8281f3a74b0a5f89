package inference

import (
	"bytes"
	"errors"
	"math"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/rampart-ml/rampart/internal/tensor"
)

func TestEncodeResponseJSON(t *testing.T) {
	t.Parallel()
	outs := []tensor.Tensor{
		{Name: "y", Datatype: tensor.FP32, Shape: []int64{1, 2}, Data: f32s(0.5, -1e6)},
		{Name: "b", Datatype: tensor.Bool, Shape: []int64{2}, Data: []byte{1, 0}},
		{Name: "i", Datatype: tensor.Int8, Shape: []int64{1}, Data: []byte{0xff}},
		{Name: "s", Datatype: tensor.Bytes, Shape: []int64{1}, Data: bytesData("<a\"\n>")},
	}
	var w bytes.Buffer
	hl, ct, err := EncodeResponse(&w, "m", "2", "r1", outs, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"model_name":"m","model_version":"2","id":"r1","outputs":[` +
		`{"name":"y","datatype":"FP32","shape":[1,2],"data":[0.5,-1e+06]},` +
		`{"name":"b","datatype":"BOOL","shape":[2],"data":[true,false]},` +
		`{"name":"i","datatype":"INT8","shape":[1],"data":[-1]},` +
		`{"name":"s","datatype":"BYTES","shape":[1],"data":["\u003ca\"\n\u003e"]}]}`
	if hl != -1 || ct != ContentTypeJSON || w.String() != want {
		t.Errorf("EncodeResponse = %d, %q,\n%s\nwant -1, %q,\n%s", hl, ct, w.String(), ContentTypeJSON, want)
	}
}

func TestEncodeResponseBinary(t *testing.T) {
	t.Parallel()
	outs := []tensor.Tensor{
		{Name: "y", Datatype: tensor.FP32, Shape: []int64{2}, Data: f32s(1, 2)},
		{Name: "z", Datatype: tensor.Int64, Shape: []int64{1}, Data: i64s(3)},
	}
	var w bytes.Buffer
	hl, ct, err := EncodeResponse(&w, "m", "", "", outs, func(name string) bool { return name == "y" })
	if err != nil {
		t.Fatal(err)
	}
	header := `{"model_name":"m","outputs":[{"name":"y","datatype":"FP32","shape":[2],"parameters":{"binary_data_size":8}},` +
		`{"name":"z","datatype":"INT64","shape":[1],"data":[3]}]}`
	if ct != ContentTypeBinary || hl != int64(len(header)) || w.String() != header+string(f32s(1, 2)) {
		t.Errorf("EncodeResponse = %d, %q, %q", hl, ct, w.String())
	}
	r, err := PrepareResponse("m", "", "", outs, func(name string) bool { return name == "y" })
	if err != nil {
		t.Fatal(err)
	}
	if r.Len() != int64(w.Len()) || r.HeaderLen != hl || r.ContentType != ct {
		t.Errorf("PrepareResponse: Len %d, HeaderLen %d, ContentType %q; want %d, %d, %q", r.Len(), r.HeaderLen, r.ContentType, w.Len(), hl, ct)
	}
}

func TestEncodeResponseErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		out  tensor.Tensor
		code int
		msg  string
	}{
		{"nan", tensor.Tensor{Name: "y", Datatype: tensor.FP32, Shape: []int64{2}, Data: f32s(1, float32(math.NaN()))}, http.StatusUnprocessableEntity,
			`output "y": element 1 is not a finite number, which JSON cannot carry; ask for it as binary data (parameter binary_data)`},
		{"fp16 inf", tensor.Tensor{Name: "h", Datatype: tensor.FP16, Shape: []int64{1}, Data: []byte{0x00, 0x7c}}, http.StatusUnprocessableEntity, `element 0 is not a finite number`},
		{"not utf8", tensor.Tensor{Name: "s", Datatype: tensor.Bytes, Shape: []int64{1}, Data: bytesData("\xff")}, http.StatusUnprocessableEntity, `element 0 is not UTF-8 text`},
		{"bad size", tensor.Tensor{Name: "y", Datatype: tensor.FP32, Shape: []int64{2}, Data: f32s(1)}, http.StatusInternalServerError, "internal error"},
	}
	for _, tc := range tests {
		_, _, err := EncodeResponse(&bytes.Buffer{}, "m", "", "", []tensor.Tensor{tc.out}, nil)
		code, msg := StatusAndMessage(err)
		if code != tc.code || !strings.Contains(msg, tc.msg) {
			t.Errorf("%s: EncodeResponse error = %d %q, want %d containing %q", tc.name, code, msg, tc.code, tc.msg)
		}
	}
}

func TestErrorBody(t *testing.T) {
	t.Parallel()
	if got, want := string(ErrorBody(`input "x": bad`)), `{"error":"input \"x\": bad"}`; got != want {
		t.Errorf("ErrorBody = %s, want %s", got, want)
	}
}

func TestAppendJSONString(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"":             `""`,
		"héllo":        `"héllo"`,
		"\x00\x1f\t":   `"\u0000\u001f\t"`,
		"a\xffb":       `"a\ufffdb"`,
		"\u2028&":      `"\u2028\u0026"`,
		`back\slash"q`: `"back\\slash\"q"`,
	} {
		if got := string(appendJSONString(nil, in)); got != want {
			t.Errorf("appendJSONString(%q) = %s, want %s", in, got, want)
		}
	}
}

// roundTripOutputs are tensors of every datatype, with values JSON can
// carry.
func roundTripOutputs() []tensor.Tensor {
	return []tensor.Tensor{
		{Name: "b", Datatype: tensor.Bool, Shape: []int64{2}, Data: []byte{1, 0}},
		{Name: "u8", Datatype: tensor.Uint8, Shape: []int64{2}, Data: []byte{0, 255}},
		{Name: "u16", Datatype: tensor.Uint16, Shape: []int64{1}, Data: []byte{1, 2}},
		{Name: "u32", Datatype: tensor.Uint32, Shape: []int64{1}, Data: []byte{1, 2, 3, 4}},
		{Name: "u64", Datatype: tensor.Uint64, Shape: []int64{1}, Data: []byte{1, 2, 3, 4, 5, 6, 7, 0xff}},
		{Name: "i8", Datatype: tensor.Int8, Shape: []int64{2}, Data: []byte{0x80, 0x7f}},
		{Name: "i16", Datatype: tensor.Int16, Shape: []int64{1}, Data: []byte{1, 0x80}},
		{Name: "i32", Datatype: tensor.Int32, Shape: []int64{1}, Data: []byte{1, 2, 3, 0x84}},
		{Name: "i64", Datatype: tensor.Int64, Shape: []int64{2, 1}, Data: i64s(math.MinInt64, math.MaxInt64)},
		{Name: "h", Datatype: tensor.FP16, Shape: []int64{3}, Data: []byte{0x01, 0x00, 0xff, 0x7b, 0x66, 0xae}},
		{Name: "bf", Datatype: tensor.BF16, Shape: []int64{2}, Data: []byte{0x01, 0x00, 0xcd, 0x3d}},
		{Name: "f", Datatype: tensor.FP32, Shape: []int64{1, 3}, Data: f32s(0.1, math.MaxFloat32, math.SmallestNonzeroFloat32)},
		{Name: "d", Datatype: tensor.FP64, Shape: []int64{}, Data: i64s(int64(math.Float64bits(1.0 / 3)))},
		{Name: "s", Datatype: tensor.Bytes, Shape: []int64{3}, Data: bytesData("", "a\u2028<\x01", "😀")},
		{Name: "e", Datatype: tensor.FP32, Shape: []int64{0, 4}, Data: []byte{}},
	}
}

// Encode then decode gives the same tensors, as JSON, as binary, and mixed.
func TestResponseRoundTrip(t *testing.T) {
	t.Parallel()
	outs := roundTripOutputs()
	for _, tc := range []struct {
		name   string
		binary func(string) bool
	}{
		{"json", nil},
		{"binary", func(string) bool { return true }},
		{"mixed", func(name string) bool { return strings.HasPrefix(name, "u") || name == "s" }},
	} {
		var w bytes.Buffer
		hl, _, err := EncodeResponse(&w, "m", "1", "id", outs, tc.binary)
		if err != nil {
			t.Fatalf("%s: EncodeResponse: %v", tc.name, err)
		}
		got, err := DecodeResponse(w.Bytes(), hl, Limits{})
		if err != nil {
			t.Fatalf("%s: DecodeResponse: %v\n%s", tc.name, err, w.String())
		}
		want := &Response{ModelName: "m", ModelVersion: "1", ID: "id", Outputs: outs}
		if diff := cmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("%s: round trip (-want +got):\n%s", tc.name, diff)
		}
	}
}

func TestDecodeResponseErrors(t *testing.T) {
	t.Parallel()
	for body, want := range map[string]string{
		`{"outputs":[],"x":1}`: `unknown field "x" in the response`,
		`{"outputs":[{"name":"y","datatype":"FP32","shape":[1],"parameters":{"binary_data_size":4}}]}`: `no Inference-Header-Content-Length`,
		`{"id":1}`: `malformed JSON`,
	} {
		_, err := DecodeResponse([]byte(body), -1, Limits{})
		if _, ok := errors.AsType[*Error](err); !ok || !strings.Contains(err.Error(), want) {
			t.Errorf("DecodeResponse(%s) = %v, want %q", body, err, want)
		}
	}
}
