package inference

import (
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/rampart-ml/rampart/internal/tensor"
)

func TestValidate(t *testing.T) {
	t.Parallel()
	sig := Signature{
		Inputs: []IO{
			{Name: "x", Datatype: tensor.FP32, Shape: []int64{-1, 3}},
			{Name: "s", Datatype: tensor.Bytes, Shape: nil},
		},
		Outputs:         []IO{{Name: "y", Datatype: tensor.FP32}, {Name: "z", Datatype: tensor.Int64}},
		RejectNonFinite: true,
	}
	x := tensor.Tensor{Name: "x", Datatype: tensor.FP32, Shape: []int64{2, 3}, Data: f32s(1, 2, 3, 4, 5, 6)}
	s := tensor.Tensor{Name: "s", Datatype: tensor.Bytes, Shape: []int64{1}, Data: bytesData("a")}
	with := func(t tensor.Tensor, f func(*tensor.Tensor)) tensor.Tensor { f(&t); return t }
	tests := []struct {
		name    string
		req     Request
		wantErr string
	}{
		{name: "ok", req: Request{Inputs: []tensor.Tensor{s, x}, Outputs: []RequestedOutput{{Name: "z"}}}},
		{name: "unknown input", req: Request{Inputs: []tensor.Tensor{x, s, {Name: "w"}}}, wantErr: `unknown input "w"; the model's inputs are "x", "s"`},
		{name: "duplicate input", req: Request{Inputs: []tensor.Tensor{x, x}}, wantErr: `input "x" is given twice`},
		{name: "missing input", req: Request{Inputs: []tensor.Tensor{x}}, wantErr: `missing input "s"`},
		{name: "datatype", req: Request{Inputs: []tensor.Tensor{s, with(x, func(t *tensor.Tensor) { t.Datatype = tensor.FP64 })}}, wantErr: `input "x": datatype FP64, but the model expects FP32`},
		{name: "rank", req: Request{Inputs: []tensor.Tensor{s, with(x, func(t *tensor.Tensor) { t.Shape = []int64{6} })}}, wantErr: `input "x": shape [6] has 1 dimensions, but the model expects 2 ([-1,3])`},
		{name: "fixed dim", req: Request{Inputs: []tensor.Tensor{s, with(x, func(t *tensor.Tensor) { t.Shape = []int64{3, 2} })}}, wantErr: `input "x": dimension 1 of shape [3,2] is 2, but the model expects 3 ([-1,3])`},
		{name: "data length", req: Request{Inputs: []tensor.Tensor{s, with(x, func(t *tensor.Tensor) { t.Data = t.Data[:20] })}}, wantErr: `input "x": shape [2,3] needs 24 bytes of FP32 but data has 20 bytes`},
		{name: "bytes count", req: Request{Inputs: []tensor.Tensor{x, with(s, func(t *tensor.Tensor) { t.Shape = []int64{2} })}}, wantErr: `input "s": shape [2] has 2 elements but data has 1`},
		{name: "bytes malformed", req: Request{Inputs: []tensor.Tensor{x, with(s, func(t *tensor.Tensor) { t.Data = []byte{9, 0, 0, 0} })}}, wantErr: `input "s": invalid BYTES data`},
		{name: "nan", req: Request{Inputs: []tensor.Tensor{s, with(x, func(t *tensor.Tensor) { t.Data = f32s(1, 2, 3, 4, float32(math.NaN()), 6) })}}, wantErr: `input "x": element 4 is not a finite number`},
		{name: "inf", req: Request{Inputs: []tensor.Tensor{s, with(x, func(t *tensor.Tensor) { t.Data = f32s(float32(math.Inf(-1)), 2, 3, 4, 5, 6) })}}, wantErr: `element 0 is not a finite number`},
		{name: "unknown output", req: Request{Inputs: []tensor.Tensor{x, s}, Outputs: []RequestedOutput{{Name: "q"}}}, wantErr: `unknown output "q"; the model's outputs are "y", "z"`},
		{name: "duplicate output", req: Request{Inputs: []tensor.Tensor{x, s}, Outputs: []RequestedOutput{{Name: "y"}, {Name: "y"}}}, wantErr: `output "y" is requested twice`},
	}
	for _, tc := range tests {
		err := Validate(&tc.req, sig)
		if tc.wantErr == "" {
			if err != nil {
				t.Errorf("%s: Validate = %v", tc.name, err)
			}
			continue
		}
		if _, ok := errors.AsType[*Error](err); !ok || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("%s: Validate = %v, want an *Error containing %q", tc.name, err, tc.wantErr)
		}
	}
}

func TestFirstNonFinite(t *testing.T) {
	t.Parallel()
	h := func(v uint16) []byte { return []byte{byte(v), byte(v >> 8)} }
	tests := []struct {
		t    tensor.Tensor
		want int
		ok   bool
	}{
		{tensor.Tensor{Datatype: tensor.FP16, Data: append(h(0x3c00), h(0x7c00)...)}, 1, true},
		{tensor.Tensor{Datatype: tensor.FP16, Data: h(0x7bff)}, 0, false},
		{tensor.Tensor{Datatype: tensor.BF16, Data: append(h(0x3f80), h(0xffc1)...)}, 1, true},
		{tensor.Tensor{Datatype: tensor.FP64, Data: i64s(0, int64(math.Float64bits(math.NaN())))}, 1, true},
		{tensor.Tensor{Datatype: tensor.FP32, Data: f32s(math.MaxFloat32)}, 0, false},
		{tensor.Tensor{Datatype: tensor.Int32, Data: []byte{0xff, 0xff, 0x80, 0x7f}}, 0, false},
	}
	for i, tc := range tests {
		if got, ok := firstNonFinite(tc.t); got != tc.want || ok != tc.ok {
			t.Errorf("case %d: firstNonFinite = %d, %v; want %d, %v", i, got, ok, tc.want, tc.ok)
		}
	}
}
