package inference

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"strconv"
	"syscall"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/rampart-ml/rampart/internal/inference/oippb"
	"github.com/rampart-ml/rampart/internal/tensor"
)

// benchTensor is an FP32 tensor of the shape with random values, as an
// image model receives.
func benchTensor(shape ...int64) tensor.Tensor {
	n, _ := tensor.ElementCount(shape)
	r := rand.New(rand.NewPCG(1, 2))
	v := make([]float32, n)
	for i := range v {
		v[i] = r.Float32()*2 - 1
	}
	return tensor.Tensor{Name: "x", Datatype: tensor.FP32, Shape: shape, Data: f32s(v...)}
}

// jsonRequest is the JSON request body of t (its values as a client's
// JSON library would print them).
func jsonRequest(t tensor.Tensor) []byte {
	var w bytes.Buffer
	if _, _, err := EncodeResponse(&w, "m", "", "", []tensor.Tensor{t}, nil); err != nil {
		panic(err)
	}
	// The response's outputs array is a valid inputs array.
	out := w.Bytes()[bytes.Index(w.Bytes(), []byte(`[{"name"`)) : w.Len()-1]
	return append(append([]byte(`{"inputs":`), out...), '}')
}

func binaryRequest(t tensor.Tensor) ([]byte, int64) {
	header := fmt.Sprintf(`{"inputs":[{"name":"x","shape":%s,"datatype":"FP32","parameters":{"binary_data_size":%d}}]}`,
		formatShape(t.Shape), len(t.Data))
	return binaryBody(header, t.Data)
}

// reportCPU adds a cpu-ns/op metric: the process's CPU time (user and
// system, GC included) per operation. On a shared, loaded machine ns/op
// measures the queue for a core as much as the code; CPU time does not.
// Call it after the loop.
func reportCPU(b *testing.B, start syscall.Rusage) {
	var end syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &end); err != nil || b.N == 0 {
		return
	}
	cpu := func(r syscall.Rusage) time.Duration {
		return time.Duration(r.Utime.Nano() + r.Stime.Nano())
	}
	b.ReportMetric(float64(cpu(end)-cpu(start))/float64(b.N), "cpu-ns/op")
}

func rusage() syscall.Rusage {
	var r syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &r)
	return r
}

var benchShapes = []struct {
	name  string
	shape []int64
}{
	{"image_1x3x224x224", []int64{1, 3, 224, 224}},
	{"forest_1x4", []int64{1, 4}},
}

func BenchmarkDecodeRequest(b *testing.B) {
	for _, s := range benchShapes {
		t := benchTensor(s.shape...)
		js := jsonRequest(t)
		bin, hl := binaryRequest(t)
		b.Run(s.name+"/json", func(b *testing.B) {
			b.SetBytes(int64(len(js)))
			b.ReportAllocs()
			defer reportCPU(b, rusage())
			for b.Loop() {
				if _, err := DecodeRequest(js, -1, Limits{}); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(s.name+"/binary", func(b *testing.B) {
			b.SetBytes(int64(len(bin)))
			b.ReportAllocs()
			defer reportCPU(b, rusage())
			for b.Loop() {
				if _, err := DecodeRequest(bin, hl, Limits{}); err != nil {
					b.Fatal(err)
				}
			}
		})
		wire, _ := proto.Marshal(RequestToGRPC("m", "", &Request{Inputs: []tensor.Tensor{t}}))
		b.Run(s.name+"/grpc_raw", func(b *testing.B) {
			b.SetBytes(int64(len(wire)))
			b.ReportAllocs()
			defer reportCPU(b, rusage())
			for b.Loop() {
				var m oippb.ModelInferRequest
				if err := proto.Unmarshal(wire, &m); err != nil {
					b.Fatal(err)
				}
				if _, err := FromGRPC(&m, Limits{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkEncodeResponse(b *testing.B) {
	for _, s := range benchShapes {
		t := []tensor.Tensor{benchTensor(s.shape...)}
		for _, binary := range []bool{false, true} {
			name := s.name + "/json"
			var f func(string) bool
			if binary {
				name, f = s.name+"/binary", func(string) bool { return true }
			}
			b.Run(name, func(b *testing.B) {
				b.ReportAllocs()
				defer reportCPU(b, rusage())
				for b.Loop() {
					if _, _, err := EncodeResponse(io.Discard, "m", "1", "", t, f); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkValidate: the signature check on the hot path.
func BenchmarkValidate(b *testing.B) {
	t := benchTensor(1, 3, 224, 224)
	req := &Request{Inputs: []tensor.Tensor{t}}
	sig := Signature{Inputs: []IO{{Name: "x", Datatype: tensor.FP32, Shape: []int64{-1, 3, 224, 224}}}, RejectNonFinite: true}
	b.ReportAllocs()
	defer reportCPU(b, rusage())
	for b.Loop() {
		if err := Validate(req, sig); err != nil {
			b.Fatal(err)
		}
	}
}

// Baselines for the JSON image decode, from the same data: strconv alone
// on each number (the floor for any decoder that uses it), and
// encoding/json into a typed struct (what a handler would do without this
// package; it does not even check ranges, shapes or counts).
func BenchmarkJSONBaselines(b *testing.B) {
	t := benchTensor(1, 3, 224, 224)
	js := jsonRequest(t)
	data := js[bytes.Index(js, []byte(`"data":[`))+8 : bytes.LastIndexByte(js, ']')-2]
	nums := bytes.Split(data, []byte(","))
	b.Run("strconv_only", func(b *testing.B) {
		b.ReportAllocs()
		defer reportCPU(b, rusage())
		for b.Loop() {
			for _, n := range nums {
				if _, err := strconv.ParseFloat(string(n), 32); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
	b.Run("encoding_json_typed", func(b *testing.B) {
		b.ReportAllocs()
		defer reportCPU(b, rusage())
		for b.Loop() {
			var req struct {
				Inputs []struct {
					Name     string    `json:"name"`
					Shape    []int64   `json:"shape"`
					Datatype string    `json:"datatype"`
					Data     []float32 `json:"data"`
				} `json:"inputs"`
			}
			if err := json.Unmarshal(js, &req); err != nil {
				b.Fatal(err)
			}
		}
	})
}
