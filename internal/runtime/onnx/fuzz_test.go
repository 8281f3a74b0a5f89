package onnx

import (
	"testing"

	"github.com/rampart-ml/rampart/internal/tensor"
)

// FuzzRun feeds arbitrary tensors (name, datatype, shape, data: what a
// client controls) to an Identity model of each datatype: Run must return
// an error or the input unchanged, never panic.
func FuzzRun(f *testing.F) {
	onnxTypes := []int32{onnxBool, onnxUint8, onnxFloat, onnxInt64, onnxString, onnxFloat16}
	datatypes := []tensor.Datatype{tensor.Bool, tensor.Uint8, tensor.FP32, tensor.Int64, tensor.Bytes, tensor.FP16}
	sessions := make([]*Session, len(onnxTypes))
	for i, elem := range onnxTypes {
		dims := []int64{-1, 2}
		if elem == onnxFloat16 {
			dims = []int64{2, 2}
		}
		s, err := Open(identityModel(f, elem, dims), Options{})
		if err != nil {
			f.Fatal(err)
		}
		f.Cleanup(func() { _ = s.Close() })
		sessions[i] = s
	}
	two, _ := tensor.AppendBytesElement(nil, []byte("ab"))
	two, _ = tensor.AppendBytesElement(two, []byte("c"))
	f.Add(uint8(0), "x", uint8(tensor.Bool), int64(1), int64(2), []byte{1, 0})
	f.Add(uint8(2), "x", uint8(tensor.FP32), int64(1), int64(2), make([]byte, 8))
	f.Add(uint8(3), "x", uint8(tensor.Int64), int64(0), int64(2), []byte{})
	f.Add(uint8(4), "x", uint8(tensor.Bytes), int64(1), int64(2), two)
	f.Add(uint8(5), "x", uint8(tensor.FP16), int64(2), int64(2), make([]byte, 8))
	f.Add(uint8(1), "y", uint8(tensor.Uint8), int64(-1), int64(2), []byte{1, 2})
	f.Fuzz(func(t *testing.T, model uint8, name string, dt uint8, d0, d1 int64, data []byte) {
		i := int(model) % len(sessions)
		in := tensor.Tensor{Name: name, Datatype: tensor.Datatype(dt), Shape: []int64{d0, d1}, Data: data}
		// Keep the work bounded: ORT would allocate what the shape says.
		if n, err := in.Elements(); err == nil && n > 1<<16 {
			return
		}
		out, err := sessions[i].Run([]tensor.Tensor{in}, nil)
		if err != nil {
			return
		}
		if in.Datatype != datatypes[i] || len(out) != 1 || string(out[0].Data) != string(in.Data) ||
			len(out[0].Shape) != 2 || out[0].Shape[0] != d0 || out[0].Shape[1] != d1 {
			t.Fatalf("Run(%v %v, %d bytes) = %+v", in.Datatype, in.Shape, len(in.Data), out)
		}
	})
}
