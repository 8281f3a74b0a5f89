package onnx

import (
	"os"
	"path/filepath"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
)

// ONNX element types (onnx.proto TensorProto.DataType).
const (
	onnxFloat   = 1
	onnxUint8   = 2
	onnxInt8    = 3
	onnxUint16  = 4
	onnxInt16   = 5
	onnxInt32   = 6
	onnxInt64   = 7
	onnxString  = 8
	onnxBool    = 9
	onnxFloat16 = 10
	onnxDouble  = 11
	onnxUint32  = 12
	onnxUint64  = 13
	onnxBF16    = 16
)

// identityModel writes a model whose output "y" is its input "x" (ONNX
// Identity), both of element type elem and shape dims (-1: a named dynamic
// dimension; nil dims: a scalar), and returns its path. It exercises every
// element type without a model file per type.
func identityModel(t testing.TB, elem int32, dims []int64) string {
	t.Helper()
	node := concat(
		bytesField(1, []byte("x")), bytesField(2, []byte("y")), bytesField(4, []byte("Identity")))
	graph := concat(
		bytesField(1, node),
		bytesField(2, []byte("identity")),
		bytesField(11, valueInfo("x", elem, dims)),
		bytesField(12, valueInfo("y", elem, dims)))
	return writeModel(t, graph)
}

// constantModel writes a model without inputs whose output "c" is an
// initializer (one FP32 element).
func constantModel(t testing.TB) string {
	t.Helper()
	init := concat(
		varintField(1, 1), varintField(2, onnxFloat),
		bytesField(4, []byte{0, 0, 0x80, 0x3f}), // float_data: 1.0, packed
		bytesField(8, []byte("c")))
	graph := concat(
		bytesField(2, []byte("constant")),
		bytesField(5, init),
		bytesField(12, valueInfo("c", onnxFloat, []int64{1})))
	return writeModel(t, graph)
}

func writeModel(t testing.TB, graph []byte) string {
	t.Helper()
	opset := concat(bytesField(1, nil), varintField(2, 17))
	model := concat(
		varintField(1, 8), // IR version 8
		bytesField(2, []byte("rampart-test")),
		bytesField(7, graph),
		bytesField(8, opset))
	p := filepath.Join(t.TempDir(), "model.onnx")
	if err := os.WriteFile(p, model, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func valueInfo(name string, elem int32, dims []int64) []byte {
	var shape []byte
	for i, d := range dims {
		if d < 0 {
			shape = append(shape, bytesField(1, bytesField(2, []byte{'d', byte('0' + i)}))...)
		} else {
			shape = append(shape, bytesField(1, varintField(1, uint64(d)))...)
		}
	}
	tensorType := concat(varintField(1, uint64(elem)), bytesField(2, shape))
	return concat(bytesField(1, []byte(name)), bytesField(2, bytesField(1, tensorType)))
}

func bytesField(num protowire.Number, b []byte) []byte {
	return protowire.AppendBytes(protowire.AppendTag(nil, num, protowire.BytesType), b)
}

func varintField(num protowire.Number, v uint64) []byte {
	return protowire.AppendVarint(protowire.AppendTag(nil, num, protowire.VarintType), v)
}

func concat(parts ...[]byte) []byte {
	var b []byte
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}
