package gateway

import (
	"errors"
	"net/http"
	"slices"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/rampart-ml/rampart/internal/httpapi"
	"github.com/rampart-ml/rampart/internal/inference"
	"github.com/rampart-ml/rampart/internal/inference/oippb"
	"github.com/rampart-ml/rampart/internal/tensor"
)

// fuzzSig is a signature with a dynamic FP32 image input, a fixed INT64
// input and a BYTES input, like the models the end-to-end tests serve.
var fuzzSig = inference.Signature{
	Inputs: []inference.IO{
		{Name: "x", Datatype: tensor.FP32, Shape: []int64{-1, 3, -1, -1}},
		{Name: "n", Datatype: tensor.Int64, Shape: []int64{2}},
		{Name: "s", Datatype: tensor.Bytes, Shape: []int64{-1}},
	},
	Outputs: []inference.IO{{Name: "y", Datatype: tensor.FP32, Shape: []int64{-1, 2}}},
}

// fuzzLimits are small, so the fuzzer reaches them.
var fuzzLimits = inference.Limits{MaxBodyBytes: 1 << 16, MaxElements: 1 << 12}

// checkDecoded is the invariant of the gateway's decoding: a refusal is a
// client error (4xx, never a 500), and an accepted request holds exactly
// the signature's inputs, each a valid tensor of its datatype and shape.
func checkDecoded(t *testing.T, req *inference.Request, err error) {
	t.Helper()
	if err != nil {
		var he *httpapi.HTTPError
		if !errors.As(err, &he) || he.Status < 400 || he.Status > 499 || he.Msg == "" {
			t.Fatalf("refusal %v is not a client error", err)
		}
		return
	}
	if len(req.Inputs) != len(fuzzSig.Inputs) {
		t.Fatalf("accepted %d inputs, the signature has %d", len(req.Inputs), len(fuzzSig.Inputs))
	}
	for _, in := range req.Inputs {
		i := slices.IndexFunc(fuzzSig.Inputs, func(io inference.IO) bool { return io.Name == in.Name })
		if i < 0 || in.Datatype != fuzzSig.Inputs[i].Datatype || len(in.Shape) != len(fuzzSig.Inputs[i].Shape) {
			t.Fatalf("accepted input %q %s%v against %+v", in.Name, in.Datatype, in.Shape, fuzzSig.Inputs)
		}
		if err := in.Validate(); err != nil {
			t.Fatalf("accepted an invalid tensor %q: %v", in.Name, err)
		}
	}
	for _, o := range req.Outputs {
		if o.Name != "y" {
			t.Fatalf("accepted unknown output %q", o.Name)
		}
	}
}

func FuzzDecodeREST(f *testing.F) {
	f.Add([]byte(`{"inputs":[{"name":"x","datatype":"FP32","shape":[1,3,1,1],"data":[1,2,3]},`+
		`{"name":"n","datatype":"INT64","shape":[2],"data":[1,2]},{"name":"s","datatype":"BYTES","shape":[1],"data":["a"]}]}`), int64(-1))
	f.Add([]byte(`{"inputs":[{"name":"x","datatype":"FP32","shape":[1,3,1,1],"parameters":{"binary_data_size":12}},`+
		`{"name":"n","datatype":"INT64","shape":[2],"data":[1,2]},{"name":"s","datatype":"BYTES","shape":[1],"data":["a"]}],`+
		`"outputs":[{"name":"y","parameters":{"binary_data":true}}]}`+"\x00\x00\x80\x3f\x00\x00\x00\x40\x00\x00\x40\x40"), int64(233))
	f.Add([]byte(`{"inputs":[{"name":"x","datatype":"FP32","shape":[1099511627776,3,1099511627776,1],"data":[1]}]}`), int64(-1))
	f.Add([]byte(`{"inputs":[{"name":"x","datatype":"FP64","shape":[1,3,1,1],"data":[1,2,3]}]}`), int64(-1))
	f.Add([]byte(`{"inputs": [`), int64(-1))
	f.Add([]byte(`{"inputs":[]}`), int64(20))
	f.Fuzz(func(t *testing.T, body []byte, headerLen int64) {
		req, err := decodeREST(body, headerLen, fuzzLimits, fuzzSig)
		checkDecoded(t, req, err)
	})
}

func FuzzDecodeGRPC(f *testing.F) {
	good := &oippb.ModelInferRequest{
		Inputs: []*oippb.ModelInferRequest_InferInputTensor{
			{Name: "x", Datatype: "FP32", Shape: []int64{1, 3, 1, 1}, Contents: &oippb.InferTensorContents{Fp32Contents: []float32{1, 2, 3}}},
			{Name: "n", Datatype: "INT64", Shape: []int64{2}, Contents: &oippb.InferTensorContents{Int64Contents: []int64{1, 2}}},
			{Name: "s", Datatype: "BYTES", Shape: []int64{1}, Contents: &oippb.InferTensorContents{BytesContents: [][]byte{[]byte("a")}}},
		},
		Outputs: []*oippb.ModelInferRequest_InferRequestedOutputTensor{{Name: "y"}},
	}
	raw := &oippb.ModelInferRequest{
		Inputs:           []*oippb.ModelInferRequest_InferInputTensor{{Name: "x", Datatype: "FP32", Shape: []int64{1, 3, 1, 1}}},
		RawInputContents: [][]byte{make([]byte, 12)},
	}
	huge := &oippb.ModelInferRequest{Inputs: []*oippb.ModelInferRequest_InferInputTensor{{Name: "x", Datatype: "FP32", Shape: []int64{1 << 40, 3, 1 << 40, 1}}}}
	for _, m := range []*oippb.ModelInferRequest{good, raw, huge, {}} {
		b, err := proto.Marshal(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var in oippb.ModelInferRequest
		if proto.Unmarshal(b, &in) != nil {
			return // gRPC itself refuses what does not unmarshal
		}
		req, err := decodeGRPC(&in, fuzzLimits, fuzzSig)
		checkDecoded(t, req, err)
	})
}

// TestDecodeSeeds pins what the fuzz seeds decode to.
func TestDecodeSeeds(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		body   string
		status int
	}{
		{"valid", `{"inputs":[{"name":"x","datatype":"FP32","shape":[2,3,1,1],"data":[1,2,3,4,5,6]},` +
			`{"name":"n","datatype":"INT64","shape":[2],"data":[1,2]},{"name":"s","datatype":"BYTES","shape":[2],"data":["a","b"]}]}`, http.StatusOK},
		{"missing input", `{"inputs":[{"name":"n","datatype":"INT64","shape":[2],"data":[1,2]}]}`, http.StatusBadRequest},
		{"too many elements", `{"inputs":[{"name":"x","datatype":"FP32","shape":[4096,3,1,1],"data":[1]}]}`, http.StatusRequestEntityTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			req, err := decodeREST([]byte(tc.body), -1, fuzzLimits, fuzzSig)
			checkDecoded(t, req, err)
			if got := httpStatusOf(err); err != nil && got != tc.status || err == nil && tc.status != http.StatusOK {
				t.Errorf("status %d (%v), want %d", got, err, tc.status)
			}
		})
	}
}
