package onnxmeta_test

import (
	"bytes"
	"errors"
	"io"
	"os"
	"runtime"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/rampart-ml/rampart/internal/onnxmeta"
	"github.com/rampart-ml/rampart/internal/onnxmeta/testmodels"
)

// Protobuf builders for synthetic models. Field numbers: onnx.proto.

func vint(num protowire.Number, v uint64) []byte {
	b := protowire.AppendTag(nil, num, protowire.VarintType)
	return protowire.AppendVarint(b, v)
}

func msg(num protowire.Number, parts ...[]byte) []byte {
	body := bytes.Join(parts, nil)
	b := protowire.AppendTag(nil, num, protowire.BytesType)
	return protowire.AppendBytes(b, body)
}

func str(num protowire.Number, s string) []byte { return msg(num, []byte(s)) }

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// dim is a TensorShapeProto.Dimension: dim_value = 1 or dim_param = 2, or
// neither for nil.
func dim(v any) []byte {
	if v == nil {
		return msg(1)
	}
	if s, ok := v.(string); ok {
		return msg(1, str(2, s))
	}
	return msg(1, vint(1, uint64(int64(v.(int)))))
}

// tensorType is a TypeProto with tensor_type = 1 {elem_type = 1, shape = 2}.
func tensorType(elem int, dims ...any) []byte {
	var ds [][]byte
	for _, d := range dims {
		ds = append(ds, dim(d))
	}
	return msg(1, vint(1, uint64(elem)), msg(2, ds...))
}

// value is a ValueInfoProto (name = 1, type = 2) as graph field num.
func value(num protowire.Number, name string, typ []byte) []byte {
	return msg(num, str(1, name), msg(2, typ))
}

func input(name string, typ []byte) []byte  { return value(11, name, typ) }
func output(name string, typ []byte) []byte { return value(12, name, typ) }

// initializer is a TensorProto (dims = 1, data_type = 2, name = 8,
// raw_data = 9) as graph field 5.
func initializer(name string, raw []byte) []byte {
	return msg(5, vint(1, uint64(len(raw)/4)), vint(2, 1), str(8, name), msg(9, raw))
}

func graph(parts ...[]byte) []byte { return msg(7, parts...) }

func opset(domain string, v int) []byte { return msg(8, str(1, domain), vint(2, uint64(v))) }

// minimal is a small valid model: ir_version 9, opset 17, x FP32[N,4] → y.
func minimal() []byte {
	return cat(vint(1, 9), opset("", 17), graph(str(2, "g"),
		input("x", tensorType(1, "N", 4)), output("y", tensorType(1, "N", 2))))
}

var minimalModel = onnxmeta.Model{
	IRVersion: 9,
	Opsets:    []onnxmeta.Opset{{Domain: "", Version: 17}},
	GraphName: "g",
	Inputs: []onnxmeta.Value{{Name: "x", Kind: onnxmeta.KindTensor, Datatype: "FP32", ElemType: 1,
		RankKnown: true, Shape: []int64{-1, 4}, DimParams: []string{"N", ""}}},
	Outputs: []onnxmeta.Value{{Name: "y", Kind: onnxmeta.KindTensor, Datatype: "FP32", ElemType: 1,
		RankKnown: true, Shape: []int64{-1, 2}, DimParams: []string{"N", ""}}},
}

func readFile(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(testmodels.Path(t, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestReadRealModels(t *testing.T) {
	t.Parallel()
	tests := []struct {
		file string
		want onnxmeta.Model
	}{
		{testmodels.OCRClassifier, onnxmeta.Model{
			IRVersion: 8,
			Opsets:    []onnxmeta.Opset{{Version: 9}},
			GraphName: "Model from PaddlePaddle.",
			Inputs: []onnxmeta.Value{{Name: "x", Kind: onnxmeta.KindTensor, Datatype: "FP32", ElemType: 1,
				RankKnown: true, Shape: []int64{-1, 3, -1, -1},
				DimParams: []string{"p2o.DynamicDimension.0", "", "p2o.DynamicDimension.1", "p2o.DynamicDimension.2"}}},
			Outputs: []onnxmeta.Value{{Name: "softmax_0.tmp_0", Kind: onnxmeta.KindTensor, Datatype: "FP32", ElemType: 1,
				RankKnown: true, Shape: []int64{-1, 2}, DimParams: []string{"p2o.DynamicDimension.3", ""}}},
		}},
		{testmodels.OCRRecognizer, onnxmeta.Model{
			IRVersion: 8,
			Opsets:    []onnxmeta.Opset{{Version: 9}},
			GraphName: "Model from PaddlePaddle.",
			Inputs: []onnxmeta.Value{{Name: "x", Kind: onnxmeta.KindTensor, Datatype: "FP32", ElemType: 1,
				RankKnown: true, Shape: []int64{-1, 3, 48, -1},
				DimParams: []string{"p2o.DynamicDimension.0", "", "", "p2o.DynamicDimension.1"}}},
			Outputs: []onnxmeta.Value{{Name: "softmax_11.tmp_0", Kind: onnxmeta.KindTensor, Datatype: "FP32", ElemType: 1,
				RankKnown: true, Shape: []int64{-1, -1, 6625},
				DimParams: []string{"p2o.DynamicDimension.2", "p2o.DynamicDimension.3", ""}}},
		}},
		{testmodels.SileroVADv5, onnxmeta.Model{
			IRVersion:    8,
			ProducerName: "spox",
			Opsets:       []onnxmeta.Opset{{Version: 16}},
			GraphName:    "spox_graph",
			Inputs: []onnxmeta.Value{
				{Name: "input", Kind: onnxmeta.KindTensor, Datatype: "FP32", ElemType: 1, RankKnown: true, Shape: []int64{-1, -1}},
				{Name: "state", Kind: onnxmeta.KindTensor, Datatype: "FP32", ElemType: 1, RankKnown: true, Shape: []int64{2, -1, 128}},
				{Name: "sr", Kind: onnxmeta.KindTensor, Datatype: "INT64", ElemType: 7, RankKnown: true, Shape: []int64{}},
			},
			Outputs: []onnxmeta.Value{
				{Name: "output", Kind: onnxmeta.KindTensor, Datatype: "FP32", ElemType: 1, RankKnown: true, Shape: []int64{-1, 1}},
				{Name: "stateN", Kind: onnxmeta.KindTensor, Datatype: "FP32", ElemType: 1, RankKnown: true, Shape: []int64{-1, -1, -1}},
			},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			t.Parallel()
			f, err := os.Open(testmodels.Path(t, tt.file))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			got, err := onnxmeta.Read(f, 1<<30)
			if err != nil {
				t.Fatalf("Read: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Read mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestReadSynthetic(t *testing.T) {
	t.Parallel()
	full := minimalModel
	full.ProducerName, full.ProducerVersion, full.Domain, full.ModelVersion = "pytorch", "2.5", "com.acme", 3
	full.DocString = "a model"
	full.Metadata = []onnxmeta.Metadata{{Key: "labels", Value: "cat,dog"}}

	tests := []struct {
		name string
		in   []byte
		want func(m *onnxmeta.Model)
	}{
		{"minimal", minimal(), func(m *onnxmeta.Model) {}},
		{"all model fields, unknown ones skipped", cat(
			vint(1, 9), str(2, "pytorch"), str(3, "2.5"), str(4, "com.acme"), vint(5, 3), str(6, "a model"),
			opset("", 17),
			protowire.AppendFixed32(protowire.AppendTag(nil, 99, protowire.Fixed32Type), 7),
			protowire.AppendFixed64(protowire.AppendTag(nil, 98, protowire.Fixed64Type), 7),
			msg(20, msg(1, str(2, "training graph"))), // training_info: skipped
			msg(14, str(1, "labels"), str(2, "cat,dog")),
			graph(str(2, "g"), msg(1, str(4, "Relu")), input("x", tensorType(1, "N", 4)), output("y", tensorType(1, "N", 2))),
		), func(m *onnxmeta.Model) { *m = full }},
		{"graph before ir_version, initializers before inputs", cat(
			graph(initializer("w", make([]byte, 4096)), str(2, "g"), input("x", tensorType(1, "N", 4)),
				output("y", tensorType(1, "N", 2))),
			opset("", 17), vint(1, 9),
		), func(m *onnxmeta.Model) { m.Initializers = 1 }},
		{"initializers listed among inputs are not inputs", cat(vint(1, 3), opset("", 8), graph(str(2, "g"),
			input("x", tensorType(1, "N", 4)), input("w", tensorType(1, 4, 2)), input("s", tensorType(1, 2)),
			output("y", tensorType(1, "N", 2)),
			initializer("w", make([]byte, 32)),
			msg(15, msg(1, str(8, "s"), vint(2, 1)), vint(3, 2)), // sparse_initializer
		)), func(m *onnxmeta.Model) { m.IRVersion, m.Opsets[0].Version, m.Initializers = 3, 8, 2 }},
		{"types: unknown rank, scalar, symbolic, negative, sequence, map, optional, sparse, strings", cat(vint(1, 9), graph(
			input("any", msg(1, vint(1, 8))),                                 // string tensor, no shape
			input("scalar", tensorType(7)),                                   // int64 scalar
			input("neg", tensorType(10, -1, 5, nil)),                         // -1 written as a size, and a size-less dim below
			input("seq", msg(4, msg(1, tensorType(1, "B")))),                 // seq(tensor(FP32))
			input("map", msg(5, vint(1, 7), msg(2, msg(1, vint(1, 1))))),     // map(INT64, tensor(FP32))
			input("opt", msg(9, msg(1, msg(4, msg(1, msg(1, vint(1, 9))))))), // optional(seq(tensor(BOOL)))
			input("sparse", msg(8, vint(1, 11), msg(2, dim(3)))),
			input("untyped", nil),
			output("y", tensorType(16, 1)),
		)), func(m *onnxmeta.Model) {
			*m = onnxmeta.Model{IRVersion: 9, Opsets: []onnxmeta.Opset{}, Inputs: []onnxmeta.Value{
				{Name: "any", Kind: onnxmeta.KindTensor, Datatype: "BYTES", ElemType: 8},
				{Name: "scalar", Kind: onnxmeta.KindTensor, Datatype: "INT64", ElemType: 7, RankKnown: true, Shape: []int64{}},
				{Name: "neg", Kind: onnxmeta.KindTensor, Datatype: "FP16", ElemType: 10, RankKnown: true, Shape: []int64{-1, 5, -1}},
				{Name: "seq", Kind: onnxmeta.KindSequence, Type: "seq(tensor(FP32))"},
				{Name: "map", Kind: onnxmeta.KindMap, Type: "map(INT64,tensor(FP32))"},
				{Name: "opt", Kind: onnxmeta.KindOptional, Type: "optional(seq(tensor(BOOL)))"},
				{Name: "sparse", Kind: onnxmeta.KindSparseTensor, Datatype: "FP64", ElemType: 11, RankKnown: true, Shape: []int64{3}},
				{Name: "untyped", Kind: onnxmeta.KindUnknown},
			}, Outputs: []onnxmeta.Value{
				{Name: "y", Kind: onnxmeta.KindTensor, Datatype: "BF16", ElemType: 16, RankKnown: true, Shape: []int64{1}},
			}}
		}},
		{"external data files, each once, as written", cat(minimal(), graph(
			// TensorProto: name = 8, external_data = 13 {key = 1, value = 2}, data_location = 14
			msg(5, str(8, "w1"), msg(13, str(1, "location"), str(2, "weights.bin")), msg(13, str(1, "offset"), str(2, "0")), vint(14, 1)),
			msg(5, str(8, "w2"), msg(13, str(2, "weights.bin"), str(1, "location")), vint(14, 1)),
			msg(5, str(8, "w3"), msg(13, str(1, "location"), str(2, "../../etc/passwd")), vint(14, 1)),
		)), func(m *onnxmeta.Model) {
			m.Initializers = 3
			m.ExternalData = []string{"weights.bin", "../../etc/passwd"}
		}},
		{"long doc string and metadata value are cut", cat(minimal(),
			str(6, strings.Repeat("d", onnxmeta.MaxDocString+10)),
			msg(14, str(1, "k"), str(2, strings.Repeat("v", onnxmeta.MaxString+1))),
		), func(m *onnxmeta.Model) {
			m.DocString, m.DocTruncated = strings.Repeat("d", onnxmeta.MaxDocString), true
			m.Metadata = []onnxmeta.Metadata{{Key: "k", Value: strings.Repeat("v", onnxmeta.MaxString), Truncated: true}}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			want := minimalModel
			want.Inputs = append([]onnxmeta.Value(nil), minimalModel.Inputs...)
			want.Opsets = append([]onnxmeta.Opset(nil), minimalModel.Opsets...)
			tt.want(&want)
			got, err := onnxmeta.Read(bytes.NewReader(tt.in), 1<<30)
			if err != nil {
				t.Fatalf("Read: %v", err)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("Read mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// nested returns a TypeProto nesting n sequences around a tensor.
func nested(n int) []byte {
	typ := tensorType(1)
	for range n {
		typ = msg(4, msg(1, typ))
	}
	return typ
}

type errorCase struct {
	name   string
	in     []byte
	limit  int64
	want   error
	offset int64 // -1: not checked
}

func errorCases() []errorCase {
	m := minimal()
	many := [][]byte{vint(1, 9)}
	var outs [][]byte
	for range onnxmeta.MaxValues + 1 {
		outs = append(outs, output("o", nil))
	}
	many = append(many, graph(outs...))
	huge := protowire.AppendVarint(protowire.AppendTag(vint(1, 9), 7, protowire.BytesType), 1<<62)
	return []errorCase{
		{"empty", nil, 0, onnxmeta.ErrNotONNX, 0},
		{"zip (PyTorch)", []byte("PK\x03\x04\x14\x00\x00\x00archive/data.pkl"), 0, onnxmeta.ErrNotONNX, 0},
		{"pickle", []byte("\x80\x04\x95\x10\x00\x00\x00\x00\x00\x00\x00}\x94."), 0, onnxmeta.ErrNotONNX, 0},
		{"gzip", []byte("\x1f\x8b\x08\x00\x00\x00"), 0, onnxmeta.ErrNotONNX, 0},
		{"safetensors", []byte("\x10\x00\x00\x00\x00\x00\x00\x00{\"a\":{}}      "), 0, onnxmeta.ErrNotONNX, 0},
		{"text", []byte("hello, world"), 0, onnxmeta.ErrNotONNX, 0},
		{"random bytes", []byte{0xde, 0xad, 0xbe, 0xef, 0x01, 0x02}, 0, onnxmeta.ErrNotONNX, -1},
		{"not a model field first", vint(12, 1), 0, onnxmeta.ErrNotONNX, 0},
		{"valid protobuf, no model fields", cat(vint(1, 9)[:0], str(2, "just a name")), 0, onnxmeta.ErrNotONNX, -1},
		{"truncated in a field", m[:len(m)-3], 0, onnxmeta.ErrMalformed, -1},
		{"truncated in a length", cat(vint(1, 9), []byte{0x3a, 0x80}), 0, onnxmeta.ErrMalformed, 3},
		{"varint overflow", cat(vint(1, 9), []byte{0x28, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f}), 0, onnxmeta.ErrMalformed, 3},
		{"wrong wire type for ir_version", cat(vint(1, 9), str(1, "nine"), m), 0, onnxmeta.ErrMalformed, 2},
		{"wrong wire type for graph", cat(vint(1, 9), vint(7, 1)), 0, onnxmeta.ErrMalformed, 2},
		{"wrong wire type in a dim", cat(vint(1, 9), graph(input("x", msg(1, msg(2, msg(1, str(1, "4"))))))), 0, onnxmeta.ErrMalformed, -1},
		{"group", cat(vint(1, 9), protowire.AppendTag(nil, 40, protowire.StartGroupType)), 0, onnxmeta.ErrMalformed, 2},
		{"invalid wire type", cat(vint(1, 9), []byte{0x0e}), 0, onnxmeta.ErrMalformed, 2},
		{"field number 0", cat(vint(1, 9), []byte{0x00}), 0, onnxmeta.ErrMalformed, 2},
		{"nesting too deep", cat(vint(1, 9), graph(input("x", nested(onnxmeta.MaxDepth)))), 0, onnxmeta.ErrMalformed, -1},
		{"length overruns its message", cat(vint(1, 9), graph(protowire.AppendVarint(protowire.AppendTag(nil, 2, protowire.BytesType), 1000))), 0, onnxmeta.ErrMalformed, 4},
		{"huge declared length", huge, 0, onnxmeta.ErrLimit, 2},
		{"larger than the limit", m, int64(len(m) - 1), onnxmeta.ErrLimit, -1},
		{"name longer than 64 KiB", cat(vint(1, 9), graph(input(strings.Repeat("x", onnxmeta.MaxString+1), nil))), 0, onnxmeta.ErrLimit, -1},
		{"name not UTF-8", cat(vint(1, 9), graph(input("x\xff", nil))), 0, onnxmeta.ErrMalformed, -1},
		{"too many outputs", cat(many...), 0, onnxmeta.ErrLimit, -1},
		{"no graph", cat(vint(1, 9), opset("", 17)), 0, onnxmeta.ErrMalformed, -1},
		{"no ir_version", graph(input("x", nil)), 0, onnxmeta.ErrMalformed, -1},
	}
}

func TestReadErrors(t *testing.T) {
	t.Parallel()
	for _, tt := range errorCases() {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			limit := tt.limit
			if limit == 0 {
				limit = 1 << 30
			}
			_, err := onnxmeta.Read(bytes.NewReader(tt.in), limit)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Read = %v, want %v", err, tt.want)
			}
			var de *onnxmeta.DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("Read = %T, want a *DecodeError", err)
			}
			if tt.offset >= 0 && de.Offset != tt.offset {
				t.Errorf("offset = %d, want %d (%v)", de.Offset, tt.offset, err)
			}
		})
	}
}

func TestReadTruncatedRealModel(t *testing.T) {
	t.Parallel()
	b := readFile(t, testmodels.SileroVADv5)
	for _, n := range []int{1, 2, 3, 100, 1000, len(b) / 2, len(b) - 1} {
		_, err := onnxmeta.Read(bytes.NewReader(b[:n]), 1<<30)
		if !errors.Is(err, onnxmeta.ErrMalformed) && !errors.Is(err, onnxmeta.ErrNotONNX) {
			t.Errorf("Read(first %d bytes) = %v, want ErrMalformed or ErrNotONNX", n, err)
		}
		if n > 2 && !errors.Is(err, onnxmeta.ErrMalformed) {
			t.Errorf("Read(first %d bytes) = %v, want ErrMalformed", n, err)
		}
	}
}

func TestReadPassesReaderErrors(t *testing.T) {
	t.Parallel()
	boom := errors.New("disk on fire")
	r := io.MultiReader(bytes.NewReader(minimal()[:5]), errReader{boom})
	_, err := onnxmeta.Read(r, 1<<30)
	if !errors.Is(err, boom) {
		t.Fatalf("Read = %v, want it to wrap %v", err, boom)
	}
}

type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }

// zeros reads as an endless run of zero bytes.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// TestReadStreamsLargeInitializer feeds a model whose graph inputs come after
// a 64 MiB initializer, generated on the fly: Read must find the inputs
// while allocating far less than the weights. Not parallel, so that the
// allocation count is Read's alone.
func TestReadStreamsLargeInitializer(t *testing.T) {
	const size = 64 << 20
	// initializer = 5 { name = 8, raw_data = 9 <size bytes> }, the bytes
	// themselves streamed from zeros.
	raw := protowire.AppendVarint(protowire.AppendTag(nil, 9, protowire.BytesType), size)
	init := cat(str(8, "w"), raw)
	initHdr := protowire.AppendVarint(protowire.AppendTag(nil, 5, protowire.BytesType), uint64(len(init)+size))
	tail := cat(input("x", tensorType(1, "N", 4)), input("w", tensorType(1, 4)), output("y", tensorType(1, "N", 2)), str(2, "g"))
	graphLen := len(initHdr) + len(init) + size + len(tail)
	graphHdr := protowire.AppendVarint(protowire.AppendTag(nil, 7, protowire.BytesType), uint64(graphLen))
	r := io.MultiReader(
		bytes.NewReader(cat(vint(1, 9), opset("", 17), graphHdr, initHdr, init)),
		io.LimitReader(zeros{}, size),
		bytes.NewReader(tail),
	)

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	got, err := onnxmeta.Read(r, 1<<30)
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	want := minimalModel
	want.Initializers = 1
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Read mismatch (-want +got):\n%s", diff)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 1<<20 {
		t.Errorf("Read allocated %d bytes for a %d-byte model; want under 1 MiB", alloc, size)
	}
}

func FuzzRead(f *testing.F) {
	for _, name := range []string{testmodels.OCRClassifier, testmodels.SileroVADv5} {
		b := readFile(f, name)
		f.Add(b[:min(len(b), 4096)])
	}
	f.Add(minimal())
	for _, tt := range errorCases() {
		if len(tt.in) < 1<<16 {
			f.Add(tt.in)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := onnxmeta.Read(bytes.NewReader(data), 1<<20)
		if err != nil {
			if !errors.Is(err, onnxmeta.ErrMalformed) && !errors.Is(err, onnxmeta.ErrNotONNX) && !errors.Is(err, onnxmeta.ErrLimit) {
				t.Fatalf("Read: error %v matches no sentinel", err)
			}
			return
		}
		if len(m.Inputs) > onnxmeta.MaxValues || len(m.Outputs) > onnxmeta.MaxValues {
			t.Fatalf("Read kept %d inputs and %d outputs", len(m.Inputs), len(m.Outputs))
		}
		for _, v := range append(m.Inputs, m.Outputs...) {
			if v.DimParams != nil && len(v.DimParams) != len(v.Shape) {
				t.Fatalf("value %q: %d dim params for %d dims", v.Name, len(v.DimParams), len(v.Shape))
			}
		}
	})
}

func BenchmarkRead(b *testing.B) {
	for _, name := range []string{testmodels.OCRClassifier, testmodels.OCRRecognizer} {
		data := readFile(b, name)
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := onnxmeta.Read(bytes.NewReader(data), 1<<30); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkReadFile reads the 10.8 MB recogniser from its file, as the
// registry will (the page cache warm after the first round).
func BenchmarkReadFile(b *testing.B) {
	p := testmodels.Path(b, testmodels.OCRRecognizer)
	st, err := os.Stat(p)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(st.Size())
	b.ReportAllocs()
	for b.Loop() {
		f, err := os.Open(p)
		if err != nil {
			b.Fatal(err)
		}
		_, err = onnxmeta.Read(f, 1<<30)
		f.Close()
		if err != nil {
			b.Fatal(err)
		}
	}
}
