package inference

import (
	"errors"
	"math"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/rampart-ml/rampart/internal/inference/oippb"
	"github.com/rampart-ml/rampart/internal/tensor"
)

type (
	inT = oippb.ModelInferRequest_InferInputTensor
	cT  = oippb.InferTensorContents
)

func grpcReq(raw [][]byte, ins ...*inT) *oippb.ModelInferRequest {
	return &oippb.ModelInferRequest{ModelName: "m", Inputs: ins, RawInputContents: raw}
}

var grpcCases = []struct {
	name     string
	req      *oippb.ModelInferRequest
	lim      Limits
	want     []tensor.Tensor
	wantErr  string
	wantCode int
}{
	{
		name: "raw",
		req:  grpcReq([][]byte{f32s(1, 2), bytesData("a")}, &inT{Name: "x", Datatype: "FP32", Shape: []int64{1, 2}}, &inT{Name: "s", Datatype: "BYTES", Shape: []int64{1}}),
		want: []tensor.Tensor{{Name: "x", Datatype: tensor.FP32, Shape: []int64{1, 2}, Data: f32s(1, 2)}, {Name: "s", Datatype: tensor.Bytes, Shape: []int64{1}, Data: bytesData("a")}},
	},
	{
		name: "typed, every datatype",
		req: grpcReq(nil,
			&inT{Name: "b", Datatype: "BOOL", Shape: []int64{2}, Contents: &cT{BoolContents: []bool{true, false}}},
			&inT{Name: "i8", Datatype: "INT8", Shape: []int64{2}, Contents: &cT{IntContents: []int32{-128, 127}}},
			&inT{Name: "i16", Datatype: "INT16", Shape: []int64{1}, Contents: &cT{IntContents: []int32{-2}}},
			&inT{Name: "i32", Datatype: "INT32", Shape: []int64{1}, Contents: &cT{IntContents: []int32{math.MinInt32}}},
			&inT{Name: "i64", Datatype: "INT64", Shape: []int64{2}, Contents: &cT{Int64Contents: []int64{1, 2}}},
			&inT{Name: "u8", Datatype: "UINT8", Shape: []int64{1}, Contents: &cT{UintContents: []uint32{255}}},
			&inT{Name: "u16", Datatype: "UINT16", Shape: []int64{1}, Contents: &cT{UintContents: []uint32{65535}}},
			&inT{Name: "u32", Datatype: "UINT32", Shape: []int64{1}, Contents: &cT{UintContents: []uint32{1}}},
			&inT{Name: "u64", Datatype: "UINT64", Shape: []int64{1}, Contents: &cT{Uint64Contents: []uint64{math.MaxUint64}}},
			&inT{Name: "f", Datatype: "FP32", Shape: []int64{1}, Contents: &cT{Fp32Contents: []float32{1.5}}},
			&inT{Name: "d", Datatype: "FP64", Shape: []int64{}, Contents: &cT{Fp64Contents: []float64{2}}},
			&inT{Name: "s", Datatype: "BYTES", Shape: []int64{2}, Contents: &cT{BytesContents: [][]byte{[]byte("x"), {}}}},
			&inT{Name: "e", Datatype: "FP32", Shape: []int64{0}},
		),
		want: []tensor.Tensor{
			{Name: "b", Datatype: tensor.Bool, Shape: []int64{2}, Data: []byte{1, 0}},
			{Name: "i8", Datatype: tensor.Int8, Shape: []int64{2}, Data: []byte{0x80, 0x7f}},
			{Name: "i16", Datatype: tensor.Int16, Shape: []int64{1}, Data: []byte{0xfe, 0xff}},
			{Name: "i32", Datatype: tensor.Int32, Shape: []int64{1}, Data: []byte{0, 0, 0, 0x80}},
			{Name: "i64", Datatype: tensor.Int64, Shape: []int64{2}, Data: i64s(1, 2)},
			{Name: "u8", Datatype: tensor.Uint8, Shape: []int64{1}, Data: []byte{255}},
			{Name: "u16", Datatype: tensor.Uint16, Shape: []int64{1}, Data: []byte{255, 255}},
			{Name: "u32", Datatype: tensor.Uint32, Shape: []int64{1}, Data: []byte{1, 0, 0, 0}},
			{Name: "u64", Datatype: tensor.Uint64, Shape: []int64{1}, Data: []byte{255, 255, 255, 255, 255, 255, 255, 255}},
			{Name: "f", Datatype: tensor.FP32, Shape: []int64{1}, Data: f32s(1.5)},
			{Name: "d", Datatype: tensor.FP64, Shape: []int64{}, Data: []byte{0, 0, 0, 0, 0, 0, 0, 0x40}},
			{Name: "s", Datatype: tensor.Bytes, Shape: []int64{2}, Data: bytesData("x", "")},
			{Name: "e", Datatype: tensor.FP32, Shape: []int64{0}, Data: []byte{}},
		},
	},
	{name: "nil", req: nil, wantErr: "empty request"},
	{name: "no inputs", req: grpcReq(nil), wantErr: "the request has no inputs"},
	{name: "too many inputs", lim: Limits{MaxInputs: 1}, req: grpcReq(nil, &inT{}, &inT{}), wantErr: "more than 1 inputs", wantCode: 413},
	{name: "raw count", req: grpcReq([][]byte{{}}, &inT{Name: "a"}, &inT{Name: "b"}), wantErr: "raw_input_contents has 1 entries for 2 inputs"},
	{name: "raw too big", lim: Limits{MaxBodyBytes: 3}, req: grpcReq([][]byte{f32s(1)}, &inT{Name: "x", Datatype: "FP32", Shape: []int64{1}}), wantErr: "larger than 3 bytes", wantCode: 413},
	{name: "raw and typed", req: grpcReq([][]byte{f32s(1)}, &inT{Name: "x", Datatype: "FP32", Shape: []int64{1}, Contents: &cT{Fp32Contents: []float32{1}}}), wantErr: `input "x" has fp32_contents but the request uses raw_input_contents`},
	{name: "raw size", req: grpcReq([][]byte{f32s(1)}, &inT{Name: "x", Datatype: "FP32", Shape: []int64{2}}), wantErr: `input "x": shape [2] needs 8 bytes of FP32 but data has 4 bytes`},
	{name: "raw bytes malformed", req: grpcReq([][]byte{{5, 0, 0, 0}}, &inT{Name: "s", Datatype: "BYTES", Shape: []int64{1}}), wantErr: `input "s": invalid BYTES data`},
	{name: "no name", req: grpcReq(nil, &inT{Datatype: "FP32"}), wantErr: "input 0 has no name"},
	{name: "no datatype", req: grpcReq(nil, &inT{Name: "x"}), wantErr: `input "x" has no datatype`},
	{name: "bad datatype", req: grpcReq(nil, &inT{Name: "x", Datatype: "fp32"}), wantErr: `unknown datatype "fp32"`},
	{name: "negative dim", req: grpcReq(nil, &inT{Name: "x", Datatype: "FP32", Shape: []int64{-1}}), wantErr: "shape dimension 0 is -1"},
	{name: "huge shape", req: grpcReq(nil, &inT{Name: "x", Datatype: "INT64", Shape: []int64{1 << 40}, Contents: &cT{Int64Contents: []int64{1}}}), wantErr: "has more than", wantCode: 413},
	{name: "big shape, few elements", req: grpcReq(nil, &inT{Name: "x", Datatype: "INT64", Shape: []int64{1 << 20}, Contents: &cT{Int64Contents: []int64{1}}}), wantErr: "shape has 1048576 elements but int64_contents has 1"},
	{name: "too deep", lim: Limits{MaxRank: 2}, req: grpcReq(nil, &inT{Name: "x", Datatype: "FP32", Shape: []int64{1, 1, 1}}), wantErr: "more than 2 dimensions"},
	{name: "wrong field", req: grpcReq(nil, &inT{Name: "x", Datatype: "INT8", Shape: []int64{1}, Contents: &cT{Fp32Contents: []float32{1}}}), wantErr: `datatype INT8 takes int_contents, but the request has fp32_contents`},
	{name: "two fields", req: grpcReq(nil, &inT{Name: "x", Datatype: "INT64", Shape: []int64{1}, Contents: &cT{Int64Contents: []int64{1}, IntContents: []int32{1}}}), wantErr: `takes int64_contents, but the request has int_contents and int64_contents`},
	{name: "fp16 typed", req: grpcReq(nil, &inT{Name: "x", Datatype: "FP16", Shape: []int64{1}, Contents: &cT{Fp32Contents: []float32{1}}}), wantErr: `FP16 data must be sent in raw_input_contents`},
	{name: "int8 range", req: grpcReq(nil, &inT{Name: "x", Datatype: "INT8", Shape: []int64{2}, Contents: &cT{IntContents: []int32{1, 128}}}), wantErr: `element 1: 128 is out of range for INT8`},
	{name: "uint8 range", req: grpcReq(nil, &inT{Name: "x", Datatype: "UINT8", Shape: []int64{1}, Contents: &cT{UintContents: []uint32{300}}}), wantErr: `element 0: 300 is out of range for UINT8`},
	{name: "count", req: grpcReq(nil, &inT{Name: "x", Datatype: "FP32", Shape: []int64{1, 3}, Contents: &cT{Fp32Contents: []float32{1, 2, 3, 4}}}), wantErr: `shape has 3 elements but fp32_contents has 4`},
	{name: "duplicate output", req: &oippb.ModelInferRequest{
		Inputs:  []*inT{{Name: "x", Datatype: "FP32", Shape: []int64{1}, Contents: &cT{Fp32Contents: []float32{1}}}},
		Outputs: []*oippb.ModelInferRequest_InferRequestedOutputTensor{{Name: "y"}, {Name: "y"}},
	}, wantErr: `output "y" is requested twice`},
}

func TestFromGRPC(t *testing.T) {
	t.Parallel()
	for _, tc := range grpcCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := FromGRPC(tc.req, tc.lim)
			if tc.wantErr != "" {
				e, ok := errors.AsType[*Error](err)
				code := tc.wantCode
				if code == 0 {
					code = http.StatusBadRequest
				}
				if !ok || e.Status != code || !strings.Contains(e.Msg, tc.wantErr) {
					t.Errorf("FromGRPC error = %v, want %d containing %q", err, code, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("FromGRPC: %v", err)
			}
			if diff := cmp.Diff(tc.want, got.Inputs, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("FromGRPC inputs (-want +got):\n%s", diff)
			}
			for _, in := range got.Inputs {
				if err := in.Validate(); err != nil {
					t.Errorf("decoded input does not validate: %v", err)
				}
			}
		})
	}
}

func TestGRPCRoundTrip(t *testing.T) {
	t.Parallel()
	req := &Request{ID: "7", Inputs: []tensor.Tensor{
		{Name: "x", Datatype: tensor.FP16, Shape: []int64{2}, Data: []byte{0, 0x3c, 0, 0xc0}},
		{Name: "s", Datatype: tensor.Bytes, Shape: []int64{1}, Data: bytesData("héllo")},
	}, Outputs: []RequestedOutput{{Name: "y"}}}
	wire, err := proto.Marshal(RequestToGRPC("m", "1", req))
	if err != nil {
		t.Fatal(err)
	}
	var m oippb.ModelInferRequest
	if err := proto.Unmarshal(wire, &m); err != nil {
		t.Fatal(err)
	}
	got, err := FromGRPC(&m, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(req, got); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}

	resp := ToGRPC("m", "1", "7", req.Inputs)
	if resp.GetModelName() != "m" || resp.GetId() != "7" || len(resp.GetRawOutputContents()) != 2 ||
		resp.GetOutputs()[0].GetDatatype() != "FP16" || string(resp.GetRawOutputContents()[1]) != string(req.Inputs[1].Data) {
		t.Errorf("ToGRPC = %v", resp)
	}
}

func TestGRPCError(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		err  error
		code codes.Code
		msg  string
	}{
		{badRequest("bad"), codes.InvalidArgument, "bad"},
		{tooLarge("big"), codes.ResourceExhausted, "big"},
		{errors.New("secret detail"), codes.Internal, "internal error"},
	} {
		s := status.Convert(GRPCError(tc.err))
		if s.Code() != tc.code || s.Message() != tc.msg {
			t.Errorf("GRPCError(%v) = %v %q, want %v %q", tc.err, s.Code(), s.Message(), tc.code, tc.msg)
		}
	}
}

func FuzzFromGRPC(f *testing.F) {
	for _, tc := range grpcCases {
		if tc.req == nil {
			continue
		}
		b, err := proto.Marshal(tc.req)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var m oippb.ModelInferRequest
		if proto.Unmarshal(b, &m) != nil {
			return
		}
		req, err := FromGRPC(&m, Limits{MaxElements: 1 << 16})
		if err != nil {
			if _, ok := errors.AsType[*Error](err); !ok {
				t.Fatalf("FromGRPC error %v is not an *Error", err)
			}
			return
		}
		for _, in := range req.Inputs {
			if err := in.Validate(); err != nil {
				t.Fatalf("FromGRPC accepted an invalid tensor: %v", err)
			}
		}
	})
}
