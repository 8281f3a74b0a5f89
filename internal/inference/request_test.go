package inference

import (
	"encoding/binary"
	"errors"
	"math"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/rampart-ml/rampart/internal/tensor"
)

func f32s(v ...float32) []byte {
	var b []byte
	for _, f := range v {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(f))
	}
	return b
}

func i64s(v ...int64) []byte {
	var b []byte
	for _, x := range v {
		b = binary.LittleEndian.AppendUint64(b, uint64(x))
	}
	return b
}

func bytesData(elems ...string) []byte {
	var b []byte
	for _, e := range elems {
		b, _ = tensor.AppendBytesElement(b, []byte(e))
	}
	return b
}

// binaryBody builds a binary-extension body: JSON header, then data.
func binaryBody(header string, data ...[]byte) ([]byte, int64) {
	b := []byte(header)
	for _, d := range data {
		b = append(b, d...)
	}
	return b, int64(len(header))
}

type decodeCase struct {
	name      string
	body      string
	bin       [][]byte // binary data after the header; nil: no header length
	want      *Request
	wantErr   string // substring of the message
	wantCode  int    // 400 unless given
	lim       Limits
	noBinHead bool
}

var decodeCases = []decodeCase{
	{
		name: "fp32 flat",
		body: `{"id":"r1","inputs":[{"name":"x","shape":[1,3],"datatype":"FP32","data":[1,2.5,-3e2]}]}`,
		want: &Request{ID: "r1", Inputs: []tensor.Tensor{{Name: "x", Datatype: tensor.FP32, Shape: []int64{1, 3}, Data: f32s(1, 2.5, -300)}}, Outputs: []RequestedOutput{}},
	},
	{
		name: "fields in any order, nested data",
		body: ` { "inputs" : [ { "data" : [[1, 2], [3, 4]], "datatype" : "INT64", "shape" : [2, 2], "name" : "x" } ] } `,
		want: &Request{Inputs: []tensor.Tensor{{Name: "x", Datatype: tensor.Int64, Shape: []int64{2, 2}, Data: i64s(1, 2, 3, 4)}}, Outputs: []RequestedOutput{}},
	},
	{
		name: "all the small types",
		body: `{"inputs":[
			{"name":"b","shape":[3],"datatype":"BOOL","data":[true,false,true]},
			{"name":"u8","shape":[2],"datatype":"UINT8","data":[0,255]},
			{"name":"i8","shape":[2],"datatype":"INT8","data":[-128,127]},
			{"name":"u16","shape":[1],"datatype":"UINT16","data":[65535]},
			{"name":"i32","shape":[1],"datatype":"INT32","data":[-2147483648]},
			{"name":"u64","shape":[1],"datatype":"UINT64","data":[18446744073709551615]},
			{"name":"h","shape":[2],"datatype":"FP16","data":[1,-2]},
			{"name":"bf","shape":[1],"datatype":"BF16","data":[1.5]},
			{"name":"d","shape":[1],"datatype":"FP64","data":[0.1]},
			{"name":"s","shape":[2],"datatype":"BYTES","data":["héllo","a\"\u00e9\n"]}]}`,
		want: &Request{Inputs: []tensor.Tensor{
			{Name: "b", Datatype: tensor.Bool, Shape: []int64{3}, Data: []byte{1, 0, 1}},
			{Name: "u8", Datatype: tensor.Uint8, Shape: []int64{2}, Data: []byte{0, 255}},
			{Name: "i8", Datatype: tensor.Int8, Shape: []int64{2}, Data: []byte{0x80, 0x7f}},
			{Name: "u16", Datatype: tensor.Uint16, Shape: []int64{1}, Data: []byte{0xff, 0xff}},
			{Name: "i32", Datatype: tensor.Int32, Shape: []int64{1}, Data: []byte{0, 0, 0, 0x80}},
			{Name: "u64", Datatype: tensor.Uint64, Shape: []int64{1}, Data: []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}},
			{Name: "h", Datatype: tensor.FP16, Shape: []int64{2}, Data: []byte{0x00, 0x3c, 0x00, 0xc0}},
			{Name: "bf", Datatype: tensor.BF16, Shape: []int64{1}, Data: []byte{0xc0, 0x3f}},
			{Name: "d", Datatype: tensor.FP64, Shape: []int64{1}, Data: binary.LittleEndian.AppendUint64(nil, math.Float64bits(0.1))},
			{Name: "s", Datatype: tensor.Bytes, Shape: []int64{2}, Data: bytesData("héllo", "a\"é\n")},
		}, Outputs: []RequestedOutput{}},
	},
	{
		name: "scalar and empty",
		body: `{"inputs":[{"name":"s","shape":[],"datatype":"INT64","data":[7]},{"name":"e","shape":[0,3],"datatype":"FP32","data":[]}]}`,
		want: &Request{Inputs: []tensor.Tensor{
			{Name: "s", Datatype: tensor.Int64, Shape: []int64{}, Data: i64s(7)},
			{Name: "e", Datatype: tensor.FP32, Shape: []int64{0, 3}, Data: []byte{}},
		}, Outputs: []RequestedOutput{}},
	},
	{
		name: "outputs and binary_data_output",
		body: `{"parameters":{"binary_data_output":true,"other":{"a":[1,null]}},"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1]}],
			"outputs":[{"name":"a"},{"name":"b","parameters":{"binary_data":false}}]}`,
		want: &Request{Inputs: []tensor.Tensor{{Name: "x", Datatype: tensor.FP32, Shape: []int64{1}, Data: f32s(1)}},
			Outputs: []RequestedOutput{{Name: "a", Binary: true}, {Name: "b"}}, BinaryOutputs: true},
	},
	{
		name: "binary extension",
		body: `{"inputs":[{"name":"x","shape":[2],"datatype":"FP32","parameters":{"binary_data_size":8}},
			{"name":"j","shape":[1],"datatype":"INT64","data":[5]},
			{"name":"s","shape":[2],"datatype":"BYTES","parameters":{"binary_data_size":10}}],
			"outputs":[{"name":"y","parameters":{"binary_data":true}}]}`,
		bin: [][]byte{f32s(1, 2), bytesData("ab", "")},
		want: &Request{Inputs: []tensor.Tensor{
			{Name: "x", Datatype: tensor.FP32, Shape: []int64{2}, Data: f32s(1, 2)},
			{Name: "j", Datatype: tensor.Int64, Shape: []int64{1}, Data: i64s(5)},
			{Name: "s", Datatype: tensor.Bytes, Shape: []int64{2}, Data: bytesData("ab", "")},
		}, Outputs: []RequestedOutput{{Name: "y", Binary: true}}},
	},
	{name: "empty body", body: ``, wantErr: "malformed JSON at byte 0"},
	{name: "not an object", body: `[1]`, wantErr: `unexpected '[', want '{'`},
	{name: "trailing", body: `{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1]}]} x`, wantErr: "data after the request object"},
	{name: "trailing NUL", body: "{\"inputs\":[{\"name\":\"x\",\"shape\":[1],\"datatype\":\"FP32\",\"data\":[1]}]}\x00", wantErr: "data after the request object"},
	{name: "NUL in data", body: "{\"inputs\":[{\"name\":\"x\",\"shape\":[1],\"datatype\":\"FP32\",\"data\":[1\x00]}]}", wantErr: "want ',' or ']' in data"},
	{name: "no inputs", body: `{"inputs":[]}`, wantErr: "the request has no inputs"},
	{name: "unknown field", body: `{"input":[]}`, wantErr: `unknown field "input" in the request`},
	{name: "unknown input field", body: `{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1],"dtype":"x"}]}`, wantErr: `unknown field "dtype" in input 0`},
	{name: "duplicate field", body: `{"inputs":[{"name":"x","name":"y"}]}`, wantErr: `duplicate field "name" in input 0`},
	{name: "no name", body: `{"inputs":[{"shape":[1],"datatype":"FP32","data":[1]}]}`, wantErr: "an input has no name"},
	{name: "no datatype", body: `{"inputs":[{"name":"x","shape":[1],"data":[1]}]}`, wantErr: `input "x" has no datatype`},
	{name: "bad datatype", body: `{"inputs":[{"name":"x","shape":[1],"datatype":"FLOAT","data":[1]}]}`, wantErr: `input "x": unknown datatype "FLOAT"`},
	{name: "no shape", body: `{"inputs":[{"name":"x","datatype":"FP32","data":[1]}]}`, wantErr: `input "x" has no shape`},
	{name: "negative dim", body: `{"inputs":[{"name":"x","shape":[-1],"datatype":"FP32","data":[1]}]}`, wantErr: "shape dimension 0 is -1, want a non-negative integer"},
	{name: "fractional dim", body: `{"inputs":[{"name":"x","shape":[1.5],"datatype":"FP32","data":[1]}]}`, wantErr: "shape dimension 0 is 1.5"},
	{name: "huge shape", body: `{"inputs":[{"name":"x","shape":[4294967296,4294967296],"datatype":"FP32","data":[1]}]}`, wantErr: "has more than", wantCode: 413},
	{name: "overflowing shape", body: `{"inputs":[{"name":"x","shape":[9223372036854775807,9223372036854775807],"datatype":"FP32","data":[1]}]}`, wantCode: 413, wantErr: "has more than"},
	{name: "too many elements", lim: Limits{MaxElements: 3}, body: `{"inputs":[{"name":"x","shape":[2],"datatype":"FP32","data":[1,2]},{"name":"y","shape":[2],"datatype":"FP32","data":[1,2]}]}`, wantCode: 413, wantErr: "more than 3 elements together"},
	{name: "too many inputs", lim: Limits{MaxInputs: 1}, body: `{"inputs":[{"name":"x"},{"name":"y"}]}`, wantCode: 413, wantErr: "more than 1 inputs"},
	{name: "too deep", lim: Limits{MaxJSONDepth: 4}, body: `{"parameters":{"a":[[[[1]]]]}}`, wantErr: "nested deeper than 4"},
	{name: "too big", lim: Limits{MaxBodyBytes: 10}, body: `{"inputs":[]}`, wantCode: 413, wantErr: "larger than 10 bytes"},
	{name: "count mismatch", body: `{"inputs":[{"name":"x","shape":[1,3],"datatype":"FP32","data":[1,2,3,4]}]}`, wantErr: `input "x": shape [1,3] has 3 elements but data has 4`},
	{name: "count short", body: `{"inputs":[{"name":"x","shape":[4],"datatype":"FP32","data":[1]}]}`, wantErr: `shape [4] has 4 elements but data has 1`},
	{name: "uint8 range", body: `{"inputs":[{"name":"x","shape":[2],"datatype":"UINT8","data":[1,300]}]}`, wantErr: `input "x": element 1: 300 is out of range for UINT8`},
	{name: "uint negative", body: `{"inputs":[{"name":"x","shape":[1],"datatype":"UINT32","data":[-1]}]}`, wantErr: `element 0: -1 is out of range for UINT32`},
	{name: "int not integer", body: `{"inputs":[{"name":"x","shape":[1],"datatype":"INT64","data":[1.5]}]}`, wantErr: `element 0: 1.5 is not an integer, as INT64 needs`},
	{name: "int exponent", body: `{"inputs":[{"name":"x","shape":[1],"datatype":"INT32","data":[1e3]}]}`, wantErr: `1e3 is not an integer`},
	{name: "fp32 overflow", body: `{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1e39]}]}`, wantErr: `1e39 is out of range for FP32`},
	{name: "fp16 overflow", body: `{"inputs":[{"name":"x","shape":[1],"datatype":"FP16","data":[65520]}]}`, wantErr: `65520 is out of range for FP16`},
	{name: "string for number", body: `{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":["1"]}]}`, wantErr: `element 0: FP32 data must be a number`},
	{name: "number for bool", body: `{"inputs":[{"name":"x","shape":[1],"datatype":"BOOL","data":[1]}]}`, wantErr: `BOOL data must be true or false`},
	{name: "number for bytes", body: `{"inputs":[{"name":"x","shape":[1],"datatype":"BYTES","data":[1]}]}`, wantErr: `BYTES data must be a string`},
	{name: "data not array", body: `{"inputs":[{"name":"x","shape":[],"datatype":"FP32","data":1}]}`, wantErr: `data must be an array`},
	{name: "ragged", body: `{"inputs":[{"name":"x","shape":[2,2],"datatype":"FP32","data":[[1,2],[3]]}]}`, wantErr: `data dimension 1 has 1 elements but shape [2,2] says 2`},
	{name: "mixed nesting", body: `{"inputs":[{"name":"x","shape":[2,2],"datatype":"FP32","data":[[1,2],3,4]}]}`, wantErr: `element 2: want an array at nesting level 2`},
	{name: "deeper later", body: `{"inputs":[{"name":"x","shape":[2],"datatype":"FP32","data":[1,[2]]}]}`, wantErr: `element 1: data is nested deeper than its first element`},
	{name: "nesting vs rank", body: `{"inputs":[{"name":"x","shape":[4],"datatype":"FP32","data":[[1,2],[3,4]]}]}`, wantErr: `data is nested 2 deep but shape [4] has 1 dimensions`},
	{name: "bad number", body: `{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[01]}]}`, wantErr: `input "x": malformed JSON at byte 62: want ',' or ']' in data`},
	{name: "NaN literal", body: `{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[NaN]}]}`, wantErr: `unexpected 'N', want a value`},
	{name: "bad escape", body: `{"id":"\x"}`, wantErr: `invalid escape \x`},
	{name: "lone surrogate", body: `{"id":"\ud800"}`, wantErr: `unpaired UTF-16 surrogate`},
	{name: "invalid utf8", body: "{\"id\":\"\xff\"}", wantErr: `invalid UTF-8 in string`},
	{name: "no data", body: `{"inputs":[{"name":"x","shape":[1],"datatype":"FP32"}]}`, wantErr: `input "x" has neither data nor binary_data_size`},
	{name: "binary without header", noBinHead: true, body: `{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","parameters":{"binary_data_size":4}}]}`, wantErr: `no Inference-Header-Content-Length`},
	{name: "binary and data", body: `{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1],"parameters":{"binary_data_size":4}}]}`, bin: [][]byte{f32s(1)}, wantErr: `has both data and binary_data_size`},
	{name: "binary truncated", body: `{"inputs":[{"name":"x","shape":[2],"datatype":"FP32","parameters":{"binary_data_size":8}}]}`, bin: [][]byte{f32s(1)}, wantErr: `binary_data_size is 8 but only 4 bytes of binary data remain`},
	{name: "binary trailing", body: `{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","parameters":{"binary_data_size":4}}]}`, bin: [][]byte{f32s(1, 2)}, wantErr: `4 bytes of binary data follow the last input's binary data`},
	{name: "binary size vs shape", body: `{"inputs":[{"name":"x","shape":[2],"datatype":"FP32","parameters":{"binary_data_size":4}}]}`, bin: [][]byte{f32s(1)}, wantErr: `shape [2] needs 8 bytes of FP32 but binary_data_size is 4`},
	{name: "binary bytes malformed", body: `{"inputs":[{"name":"x","shape":[1],"datatype":"BYTES","parameters":{"binary_data_size":5}}]}`, bin: [][]byte{{9, 0, 0, 0, 'a'}}, wantErr: `invalid BYTES data`},
	{name: "binary size negative", body: `{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","parameters":{"binary_data_size":-4}}]}`, bin: [][]byte{}, wantErr: `binary_data_size is -4`},
	{name: "duplicate output", body: `{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1]}],"outputs":[{"name":"y"},{"name":"y"}]}`, wantErr: `output "y" is requested twice`},
	{name: "binary_data not bool", body: `{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1]}],"outputs":[{"name":"y","parameters":{"binary_data":1}}]}`, wantErr: `output 0: parameter binary_data must be true or false`},
}

func (tc decodeCase) input() ([]byte, int64) {
	if tc.bin == nil {
		return []byte(tc.body), -1
	}
	return binaryBody(tc.body, tc.bin...)
}

func TestDecodeRequest(t *testing.T) {
	t.Parallel()
	for _, tc := range decodeCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			body, hl := tc.input()
			got, err := DecodeRequest(body, hl, tc.lim)
			if tc.wantErr != "" {
				e, ok := errors.AsType[*Error](err)
				if !ok {
					t.Fatalf("DecodeRequest error = %v, want an *Error containing %q", err, tc.wantErr)
				}
				code := tc.wantCode
				if code == 0 {
					code = http.StatusBadRequest
				}
				if e.Status != code || !strings.Contains(e.Msg, tc.wantErr) {
					t.Errorf("DecodeRequest error = %d %q, want %d containing %q", e.Status, e.Msg, code, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("DecodeRequest: %v", err)
			}
			if diff := cmp.Diff(tc.want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("DecodeRequest (-want +got):\n%s", diff)
			}
			for _, in := range got.Inputs {
				if err := in.Validate(); err != nil {
					t.Errorf("decoded input does not validate: %v", err)
				}
			}
		})
	}
}

// The binary extension's data is not copied: a decoded tensor's Data is
// part of the body.
func TestDecodeRequestBinaryIsZeroCopy(t *testing.T) {
	t.Parallel()
	body, hl := binaryBody(`{"inputs":[{"name":"x","shape":[2],"datatype":"FP32","parameters":{"binary_data_size":8}}]}`, f32s(1, 2))
	req, err := DecodeRequest(body, hl, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if &req.Inputs[0].Data[0] != &body[hl] {
		t.Error("binary input data is a copy, want a sub-slice of the body")
	}
	if cap(req.Inputs[0].Data) != 8 {
		t.Errorf("cap(Data) = %d, want 8 (an append must not write into the body)", cap(req.Inputs[0].Data))
	}
}

func TestDecodeRequestHeaderLength(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		hl   int64
		want string
	}{
		{-2, "Inference-Header-Content-Length -2 is negative"},
		{100, "Inference-Header-Content-Length 100 is longer than the body (2 bytes)"},
	} {
		_, err := DecodeRequest([]byte(`{}`), tc.hl, Limits{})
		if err == nil || err.Error() != tc.want {
			t.Errorf("DecodeRequest(hl=%d) = %v, want %q", tc.hl, err, tc.want)
		}
	}
}

func TestReadBody(t *testing.T) {
	t.Parallel()
	if _, err := ReadBody(strings.NewReader("12345"), Limits{MaxBodyBytes: 4}); err == nil || !strings.Contains(err.Error(), "larger than 4 bytes") {
		t.Errorf("ReadBody over the limit = %v, want a 413", err)
	}
	b, err := ReadBody(strings.NewReader("1234"), Limits{MaxBodyBytes: 4})
	if err != nil || string(b) != "1234" {
		t.Errorf("ReadBody = %q, %v", b, err)
	}
}

func TestWantBinary(t *testing.T) {
	t.Parallel()
	r := &Request{Outputs: []RequestedOutput{{Name: "a", Binary: true}, {Name: "b"}}, BinaryOutputs: true}
	for name, want := range map[string]bool{"a": true, "b": false, "c": true} {
		if got := r.WantBinary(name); got != want {
			t.Errorf("WantBinary(%q) = %v, want %v", name, got, want)
		}
	}
}

var headerLengthCases = []struct {
	in   string
	want int64
	ok   bool
}{
	{"", -1, true}, {"0", 0, true}, {"123", 123, true},
	{"-1", 0, false}, {"+5", 0, false}, {"1e3", 0, false}, {" 5", 0, false}, {"99999999999999999999", 0, false},
}

func TestParseHeaderLength(t *testing.T) {
	t.Parallel()
	for _, tc := range headerLengthCases {
		got, err := ParseHeaderLength(tc.in)
		if (err == nil) != tc.ok || (tc.ok && got != tc.want) {
			t.Errorf("ParseHeaderLength(%q) = %d, %v; want %d, ok %v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

func FuzzParseHeaderLength(f *testing.F) {
	for _, tc := range headerLengthCases {
		f.Add(tc.in)
	}
	f.Fuzz(func(t *testing.T, v string) {
		n, err := ParseHeaderLength(v)
		if err == nil && n < -1 {
			t.Fatalf("ParseHeaderLength(%q) = %d", v, n)
		}
		if err == nil && v != "" && strconv.FormatInt(n, 10) != strings.TrimLeft(v, "0") && !(n == 0 && strings.Trim(v, "0") == "") {
			t.Fatalf("ParseHeaderLength(%q) = %d, not the same number", v, n)
		}
	})
}
