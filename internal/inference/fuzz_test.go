package inference

import (
	"bytes"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// fuzzLimits keep the fuzzer from spending its time on huge allocations.
var fuzzLimits = Limits{MaxElements: 1 << 16, MaxBodyBytes: 1 << 20}

// checkDecoded is the property every decoded request has: only *Error
// errors; tensors that pass tensor.Validate; and encoding them (as a
// response, JSON or binary) then decoding gives them back.
func checkDecoded(t *testing.T, req *Request, err error) {
	t.Helper()
	if err != nil {
		if _, ok := errors.AsType[*Error](err); !ok {
			t.Fatalf("error %v is not an *Error", err)
		}
		return
	}
	for _, in := range req.Inputs {
		if err := in.Validate(); err != nil {
			t.Fatalf("decoded an invalid tensor: %v", err)
		}
	}
	for _, binary := range []func(string) bool{nil, func(string) bool { return true }} {
		var w bytes.Buffer
		hl, _, err := EncodeResponse(&w, "m", "", req.ID, req.Inputs, binary)
		if err != nil {
			if _, ok := errors.AsType[*Error](err); ok && binary == nil {
				continue // NaN or non-UTF-8 BYTES from binary input: JSON cannot carry them
			}
			t.Fatalf("EncodeResponse: %v", err)
		}
		resp, err := DecodeResponse(w.Bytes(), hl, Limits{MaxJSONDepth: 64})
		if err != nil {
			t.Fatalf("DecodeResponse of an encoded response: %v", err)
		}
		if diff := cmp.Diff(req.Inputs, resp.Outputs, cmpopts.EquateEmpty()); diff != "" {
			t.Fatalf("round trip (-decoded +re-decoded):\n%s", diff)
		}
	}
}

func FuzzDecodeRequestJSON(f *testing.F) {
	for _, tc := range decodeCases {
		if tc.bin == nil {
			f.Add([]byte(tc.body))
		}
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := DecodeRequest(body, -1, fuzzLimits)
		checkDecoded(t, req, err)
	})
}

func FuzzDecodeRequestBinary(f *testing.F) {
	for _, tc := range decodeCases {
		if tc.bin != nil {
			f.Add([]byte(tc.body), bytes.Join(tc.bin, nil))
		}
	}
	f.Fuzz(func(t *testing.T, header, bin []byte) {
		body := append(header[:len(header):len(header)], bin...)
		req, err := DecodeRequest(body, int64(len(header)), fuzzLimits)
		checkDecoded(t, req, err)
	})
}
