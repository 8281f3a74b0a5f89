package onnx

import (
	"context"
	"encoding/binary"
	"errors"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/rampart-ml/rampart/internal/onnxmeta/testmodels"
	"github.com/rampart-ml/rampart/internal/tensor"
)

func open(t testing.TB, path string) *Session {
	t.Helper()
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

func fp32(name string, shape []int64, vals ...float32) tensor.Tensor {
	data := make([]byte, 0, 4*len(vals))
	for _, v := range vals {
		data = binary.LittleEndian.AppendUint32(data, math.Float32bits(v))
	}
	return tensor.Tensor{Name: name, Datatype: tensor.FP32, Shape: shape, Data: data}
}

func int64s(name string, shape []int64, vals ...int64) tensor.Tensor {
	data := make([]byte, 0, 8*len(vals))
	for _, v := range vals {
		data = binary.LittleEndian.AppendUint64(data, uint64(v))
	}
	return tensor.Tensor{Name: name, Datatype: tensor.Int64, Shape: shape, Data: data}
}

func floats(t testing.TB, tt tensor.Tensor) []float32 {
	t.Helper()
	if tt.Datatype != tensor.FP32 {
		t.Fatalf("tensor %q is %s, want FP32", tt.Name, tt.Datatype)
	}
	f := make([]float32, len(tt.Data)/4)
	for i := range f {
		f[i] = math.Float32frombits(binary.LittleEndian.Uint32(tt.Data[4*i:]))
	}
	return f
}

// clsInput is a deterministic 1×3×48×192 image for the OCR classifier; seed
// varies it.
func clsInput(seed int) tensor.Tensor {
	vals := make([]float32, 3*48*192)
	for i := range vals {
		vals[i] = float32((i*7+seed*13)%255)/127.5 - 1
	}
	return fp32("x", []int64{1, 3, 48, 192}, vals...)
}

func TestLibraryPath(t *testing.T) {
	t.Setenv(LibraryEnv, "")
	t.Setenv("RAMPART_CACHE", "/cache")
	if got, want := LibraryPath(), "/cache/onnxruntime/1.24.1/libonnxruntime.so.1"; got != want {
		t.Errorf("LibraryPath() = %q, want %q", got, want)
	}
	t.Setenv(LibraryEnv, "/opt/ort.so")
	if got := LibraryPath(); got != "/opt/ort.so" {
		t.Errorf("LibraryPath() with %s = %q", LibraryEnv, got)
	}
}

func TestInitAgain(t *testing.T) {
	t.Parallel()
	if err := Init(LibraryPath()); err != nil {
		t.Errorf("Init with the same path again: %v", err)
	}
	if err := Init(LibraryPath() + ".other"); !errors.Is(err, ErrLibrary) {
		t.Errorf("Init with another path: %v, want ErrLibrary", err)
	}
}

// TestInitFailures runs Init in fresh helper processes (see TestMain).
func TestInitFailures(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	notLib := filepath.Join(dir, "libonnxruntime.so.1")
	if err := os.WriteFile(notLib, []byte("not a shared library"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, path string
		want       []string
	}{
		{"missing", filepath.Join(dir, "nope.so"), []string{"onnx runtime library", "no such file", "fetch-onnxruntime.sh"}},
		{"empty path", "", []string{"no library path"}},
		{"directory", dir, []string{"not a regular file"}},
		{"not a library", notLib, []string{"onnx runtime library", "1.24.1 required"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cmd := exec.Command(os.Args[0], "-test.run=^$") // #nosec G204 -- the test binary itself
			cmd.Env = append(os.Environ(), initEnv+"="+tt.path)
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("helper: %v\n%s", err, out)
			}
			for _, w := range tt.want {
				if !strings.Contains(string(out), w) {
					t.Errorf("Init(%q) said %q, want it to contain %q", tt.path, out, w)
				}
			}
		})
	}
}

func TestOpenRefuses(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, path string
		want       error
	}{
		{"no inputs", constantModel(t), ErrUnsupported},
		{"missing file", filepath.Join(t.TempDir(), "nope.onnx"), nil},
		{"not a model", writeFile(t, "garbage"), nil},
	}
	for _, tt := range tests {
		s, err := Open(tt.path, Options{})
		if err == nil {
			s.Close()
			t.Errorf("%s: Open succeeded", tt.name)
			continue
		}
		if tt.want != nil && !errors.Is(err, tt.want) {
			t.Errorf("%s: Open: %v, want %v", tt.name, err, tt.want)
		}
	}
	if _, err := Open(testmodels.RandomForest(t), Options{IntraOpThreads: -1, InterOpThreads: -2}); err == nil ||
		!strings.Contains(err.Error(), "IntraOpThreads") || !strings.Contains(err.Error(), "InterOpThreads") {
		t.Errorf("Open with negative threads: %v, want both problems", err)
	}
}

func writeFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "model.onnx")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestInputsOutputs(t *testing.T) {
	t.Parallel()
	tests := []struct {
		path      string
		ins, outs []IO
	}{
		{testmodels.Path(t, testmodels.OCRClassifier),
			[]IO{{"x", tensor.FP32, []int64{-1, 3, -1, -1}}},
			[]IO{{"softmax_0.tmp_0", tensor.FP32, []int64{-1, 2}}}},
		{testmodels.Path(t, testmodels.SileroVADv5),
			[]IO{{"input", tensor.FP32, []int64{-1, -1}}, {"state", tensor.FP32, []int64{2, -1, 128}}, {"sr", tensor.Int64, []int64{}}},
			[]IO{{"output", tensor.FP32, []int64{-1, 1}}, {"stateN", tensor.FP32, []int64{-1, -1, -1}}}},
		// output_probability, a sequence of maps, is left out.
		{testmodels.RandomForest(t),
			[]IO{{"X", tensor.FP32, []int64{-1, 4}}},
			[]IO{{"output_label", tensor.Int64, []int64{-1}}}},
	}
	for _, tt := range tests {
		s := open(t, tt.path)
		if diff := cmp.Diff(tt.ins, s.Inputs()); diff != "" {
			t.Errorf("%s: Inputs (-want +got):\n%s", filepath.Base(tt.path), diff)
		}
		if diff := cmp.Diff(tt.outs, s.Outputs()); diff != "" {
			t.Errorf("%s: Outputs (-want +got):\n%s", filepath.Base(tt.path), diff)
		}
	}
}

func TestPaddleCls(t *testing.T) {
	t.Parallel()
	s := open(t, testmodels.Path(t, testmodels.OCRClassifier))
	out, err := s.Run([]tensor.Tensor{clsInput(0)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 1 || out[0].Name != "softmax_0.tmp_0" || !cmp.Equal(out[0].Shape, []int64{1, 2}) {
		t.Fatalf("outputs = %+v", out)
	}
	p := floats(t, out[0])
	if sum := p[0] + p[1]; math.Abs(float64(sum)-1) > 1e-3 || p[0] < 0 || p[1] < 0 {
		t.Errorf("class probabilities %v do not sum to 1", p)
	}
}

func TestSileroVAD(t *testing.T) {
	t.Parallel()
	s := open(t, testmodels.Path(t, testmodels.SileroVADv5))
	audio := make([]float32, 512)
	for i := range audio {
		audio[i] = float32(0.5 * math.Sin(float64(i)*2*math.Pi*440/16000))
	}
	state := fp32("state", []int64{2, 1, 128}, make([]float32, 256)...)
	for step := range 3 {
		out, err := s.Run([]tensor.Tensor{
			fp32("input", []int64{1, 512}, audio...),
			state,
			int64s("sr", []int64{}, 16000),
		}, []string{"stateN", "output"})
		if err != nil {
			t.Fatalf("step %d: %v", step, err)
		}
		if out[0].Name != "stateN" || !cmp.Equal(out[0].Shape, []int64{2, 1, 128}) {
			t.Fatalf("step %d: state output %s %v", step, out[0].Name, out[0].Shape)
		}
		if p := floats(t, out[1]); len(p) != 1 || p[0] < 0 || p[0] > 1 {
			t.Fatalf("step %d: speech probability %v", step, p)
		}
		state = out[0]
		state.Name = "state"
	}
}

func TestRandomForest(t *testing.T) {
	t.Parallel()
	s := open(t, testmodels.RandomForest(t))
	// Inputs and labels from the binding's own test of this model.
	x := fp32("X", []int64{6, 4},
		5.9, 3.0, 5.1, 1.8,
		6.8, 2.8, 4.8, 1.4,
		6.3, 2.3, 4.4, 1.3,
		6.5, 3.0, 5.5, 1.8,
		7.7, 2.8, 6.7, 2.0,
		5.5, 2.5, 4.0, 1.3)
	out, err := s.Run([]tensor.Tensor{x}, []string{"output_label"})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]tensor.Tensor{int64s("output_label", []int64{6}, 2, 1, 1, 2, 2, 1)}, out); diff != "" {
		t.Errorf("Run (-want +got):\n%s", diff)
	}
	if _, err := s.Run([]tensor.Tensor{x}, []string{"output_probability"}); !errors.Is(err, ErrUnsupported) {
		t.Errorf("asking for the sequence output: %v, want ErrUnsupported", err)
	}
}

// TestMultitype: UINT8 and FP64 in, INT16 and INT64 out, fixed shapes (ORT
// writes into preallocated outputs).
func TestMultitype(t *testing.T) {
	t.Parallel()
	s := open(t, testmodels.BindingTestData(t, "example_multitype.onnx"))
	b := make([]byte, 0, 32)
	for _, v := range []float64{1, 2, 4, 600} {
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(v))
	}
	out, err := s.Run([]tensor.Tensor{
		{Name: "InputA", Datatype: tensor.Uint8, Shape: []int64{1, 1, 1}, Data: []byte{3}},
		{Name: "InputB", Datatype: tensor.FP64, Shape: []int64{1, 2, 2}, Data: b},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	// OutputA = int16(B*A[0] - 512), OutputB = int64(A) * 1234.
	var a []byte
	for _, v := range []int16{3 - 512, 6 - 512, 12 - 512, 1800 - 512} {
		a = binary.LittleEndian.AppendUint16(a, uint16(v))
	}
	want := []tensor.Tensor{
		{Name: "OutputA", Datatype: tensor.Int16, Shape: []int64{1, 2, 2}, Data: a},
		int64s("OutputB", []int64{1, 1, 1}, 3*1234),
	}
	if diff := cmp.Diff(want, out); diff != "" {
		t.Errorf("Run (-want +got):\n%s", diff)
	}
}

func TestZeroElementOutput(t *testing.T) {
	t.Parallel()
	s := open(t, testmodels.BindingTestData(t, "example_0_dim_output.onnx"))
	out, err := s.Run([]tensor.Tensor{fp32("x", []int64{2, 8}, make([]float32, 16)...)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []tensor.Tensor{{Name: "y", Datatype: tensor.FP32, Shape: []int64{2, 0, 8}, Data: []byte{}}}
	if diff := cmp.Diff(want, out); diff != "" {
		t.Errorf("Run (-want +got):\n%s", diff)
	}
}

// TestDatatypes round-trips every v2 datatype through an Identity model, at
// a dynamic shape, a fixed shape and as a scalar.
func TestDatatypes(t *testing.T) {
	t.Parallel()
	onnxTypes := map[tensor.Datatype]int32{
		tensor.Bool: onnxBool, tensor.Uint8: onnxUint8, tensor.Uint16: onnxUint16, tensor.Uint32: onnxUint32,
		tensor.Uint64: onnxUint64, tensor.Int8: onnxInt8, tensor.Int16: onnxInt16, tensor.Int32: onnxInt32,
		tensor.Int64: onnxInt64, tensor.FP16: onnxFloat16, tensor.BF16: onnxBF16, tensor.FP32: onnxFloat,
		tensor.FP64: onnxDouble, tensor.Bytes: onnxString,
	}
	for dt := tensor.Bool; dt <= tensor.Bytes; dt++ {
		var data []byte
		if dt == tensor.Bytes {
			for _, s := range []string{"héllo", "", "\xff\x01", "x", "yz", "Rampart"} {
				data, _ = tensor.AppendBytesElement(data, []byte(s))
			}
		} else {
			for i := range 6 * dt.Size() {
				data = append(data, byte(i*37+1))
			}
			if dt == tensor.Bool {
				data = []byte{1, 0, 0, 1, 1, 1}
			}
		}
		shapes := []struct {
			name        string
			model, have []int64
		}{
			{"dynamic", []int64{-1, 3}, []int64{2, 3}},
			{"fixed", []int64{3, 2}, []int64{3, 2}},
			{"scalar", nil, []int64{}},
		}
		if dt == tensor.FP16 || dt == tensor.BF16 {
			// See TestDynamicHalfOutput.
			shapes = shapes[1:2]
		}
		for _, sh := range shapes {
			t.Run(dt.String()+"/"+sh.name, func(t *testing.T) {
				t.Parallel()
				in := tensor.Tensor{Name: "x", Datatype: dt, Shape: sh.have, Data: data}
				if sh.name == "scalar" {
					if dt == tensor.Bytes {
						in.Data, _ = tensor.AppendBytesElement(nil, []byte("one"))
					} else {
						in.Data = data[:dt.Size()]
					}
				}
				s := open(t, identityModel(t, onnxTypes[dt], sh.model))
				out, err := s.Run([]tensor.Tensor{in}, nil)
				if sh.name == "scalar" && (dt == tensor.FP16 || dt == tensor.BF16 || dt == tensor.Bytes) {
					if !errors.Is(err, ErrUnsupported) {
						t.Fatalf("Run: %v, want ErrUnsupported", err)
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				in.Name = "y"
				if diff := cmp.Diff([]tensor.Tensor{in}, out); diff != "" {
					t.Errorf("Run (-want +got):\n%s", diff)
				}
			})
		}
	}
}

func TestRunErrors(t *testing.T) {
	t.Parallel()
	silero := open(t, testmodels.Path(t, testmodels.SileroVADv5))
	input := fp32("input", []int64{1, 512}, make([]float32, 512)...)
	state := fp32("state", []int64{2, 1, 128}, make([]float32, 256)...)
	sr := int64s("sr", []int64{}, 16000)
	str := identityModel(t, onnxString, []int64{-1})
	boolean := identityModel(t, onnxBool, []int64{-1})
	nul, _ := tensor.AppendBytesElement(nil, []byte("a\x00b"))

	tests := []struct {
		name    string
		model   string // default: silero
		inputs  []tensor.Tensor
		outputs []string
		want    error
		msg     string
	}{
		{name: "unknown input", inputs: []tensor.Tensor{input, state, sr, fp32("extra", []int64{1}, 1)}, want: ErrInput, msg: `no input "extra"`},
		{name: "twice", inputs: []tensor.Tensor{input, state, sr, sr}, want: ErrInput, msg: `"sr" given twice`},
		{name: "missing", inputs: []tensor.Tensor{input}, want: ErrInput, msg: "missing state, sr"},
		{name: "datatype", inputs: []tensor.Tensor{input, state, fp32("sr", []int64{}, 16000)}, want: ErrInput, msg: "is FP32, the model wants INT64"},
		{name: "rank", inputs: []tensor.Tensor{fp32("input", []int64{512}, make([]float32, 512)...), state, sr}, want: ErrInput, msg: "has shape [512]"},
		{name: "fixed dim", inputs: []tensor.Tensor{input, fp32("state", []int64{1, 2, 128}, make([]float32, 256)...), sr}, want: ErrInput, msg: "the model wants [2 -1 128]"},
		{name: "data size", inputs: []tensor.Tensor{fp32("input", []int64{1, 513}, make([]float32, 512)...), state, sr}, want: tensor.ErrDataSize},
		{name: "negative dim", inputs: []tensor.Tensor{fp32("input", []int64{1, -512}), state, sr}, want: tensor.ErrShape},
		{name: "unknown output", inputs: []tensor.Tensor{input, state, sr}, outputs: []string{"nope"}, want: ErrOutput},
		{name: "ort refuses", inputs: []tensor.Tensor{input, fp32("state", []int64{2, 3, 128}, make([]float32, 768)...), sr}, want: ErrRun},
		{name: "nul in string", model: str, inputs: []tensor.Tensor{{Name: "x", Datatype: tensor.Bytes, Shape: []int64{1}, Data: nul}}, want: ErrUnsupported, msg: "NUL"},
		{name: "bool not 0/1", model: boolean, inputs: []tensor.Tensor{{Name: "x", Datatype: tensor.Bool, Shape: []int64{2}, Data: []byte{1, 2}}}, want: ErrInput, msg: "0 or 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := silero
			if tt.model != "" {
				s = open(t, tt.model)
			}
			out, err := s.Run(tt.inputs, tt.outputs)
			if !errors.Is(err, tt.want) || !strings.Contains(errString(err), tt.msg) {
				t.Errorf("Run: %v, want %v containing %q", err, tt.want, tt.msg)
			}
			if out != nil {
				t.Errorf("Run returned outputs with an error: %v", out)
			}
		})
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func TestClosed(t *testing.T) {
	t.Parallel()
	s, err := Open(testmodels.RandomForest(t), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := s.Run([]tensor.Tensor{fp32("X", []int64{1, 4}, 1, 2, 3, 4)}, nil); !errors.Is(err, ErrClosed) {
		t.Errorf("Run after Close: %v, want ErrClosed", err)
	}
}

// TestConcurrentRuns: 8 goroutines running one session give the serial
// results.
func TestConcurrentRuns(t *testing.T) {
	t.Parallel()
	s := open(t, testmodels.Path(t, testmodels.OCRClassifier))
	const n = 16
	want := make([][]tensor.Tensor, n)
	for i := range n {
		out, err := s.Run([]tensor.Tensor{clsInput(i)}, nil)
		if err != nil {
			t.Fatal(err)
		}
		want[i] = out
	}
	got := make([][][]tensor.Tensor, 8)
	errs := make([]error, 8)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			got[g] = make([][]tensor.Tensor, n)
			for i := range n {
				// Each goroutine starts elsewhere so different inputs overlap.
				k := (i + g) % n
				if got[g][k], errs[g] = s.Run([]tensor.Tensor{clsInput(k)}, nil); errs[g] != nil {
					return
				}
			}
		})
	}
	wg.Wait()
	for g := range 8 {
		if errs[g] != nil {
			t.Fatalf("goroutine %d: %v", g, errs[g])
		}
		if diff := cmp.Diff(want, got[g]); diff != "" {
			t.Errorf("goroutine %d differs from the serial runs (-want +got):\n%s", g, diff)
		}
	}
}

// TestDynamicHalfOutput: FP16/BF16 outputs of a dynamic shape are left out
// (the binding cannot copy them); asking for one says why.
func TestDynamicHalfOutput(t *testing.T) {
	t.Parallel()
	for _, elem := range []int32{onnxFloat16, onnxBF16} {
		_, err := Open(identityModel(t, elem, []int64{-1, 3}), Options{})
		if !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), "no tensor outputs") {
			t.Errorf("Open(identity %d): %v, want ErrUnsupported (no outputs)", elem, err)
		}
		_, err = Open(identityModel(t, elem, nil), Options{})
		if !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), "no tensor outputs") {
			t.Errorf("Open(identity %d): %v, want ErrUnsupported (no outputs)", elem, err)
		}
	}
}

func TestOpenBytes(t *testing.T) {
	t.Parallel()
	model, err := os.ReadFile(testmodels.RandomForest(t))
	if err != nil {
		t.Fatal(err)
	}
	s, err := OpenBytes(model, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	out, err := s.Run([]tensor.Tensor{fp32("X", []int64{1, 4}, 5.9, 3.0, 5.1, 1.8)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]tensor.Tensor{int64s("output_label", []int64{1}, 2)}, out); diff != "" {
		t.Errorf("Run (-want +got):\n%s", diff)
	}
	for _, bad := range [][]byte{nil, []byte("not a model")} {
		if s, err := OpenBytes(bad, Options{}); err == nil {
			s.Close()
			t.Errorf("OpenBytes(%q) succeeded", bad)
		}
	}
}

func TestRunContextCancelled(t *testing.T) {
	t.Parallel()
	s := open(t, testmodels.Path(t, testmodels.OCRRecognizer))
	const width = 1200 // a run of many milliseconds
	in := []tensor.Tensor{fp32("x", []int64{1, 3, 48, width}, make([]float32, 3*48*width)...)}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.RunContext(ctx, in, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("RunContext with a cancelled context: %v, want context.Canceled", err)
	}

	// Cancel while ORT runs: it stops between operators. A run can still
	// win the race on a fast machine, so a few attempts are allowed.
	for attempt := range 10 {
		ctx, cancel := context.WithCancel(context.Background())
		go cancel()
		out, err := s.RunContext(ctx, in, nil)
		if err == nil {
			if len(out) != 1 {
				t.Fatalf("attempt %d: %d outputs", attempt, len(out))
			}
			continue
		}
		if !errors.Is(err, ErrRun) && !errors.Is(err, context.Canceled) {
			t.Fatalf("attempt %d: %v, want ErrRun and context.Canceled", attempt, err)
		}
		if errors.Is(err, ErrRun) && !errors.Is(err, context.Canceled) {
			t.Fatalf("attempt %d: %v does not wrap context.Canceled", attempt, err)
		}
		t.Logf("attempt %d terminated: %v", attempt, err)
		// The session still works afterwards.
		if _, err := s.Run(in[:1], nil); err != nil {
			t.Fatalf("Run after a terminated run: %v", err)
		}
		return
	}
	t.Errorf("no run out of 10 was terminated by its cancelled context")
}
