package onnx

import (
	"fmt"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/rampart-ml/rampart/internal/tensor"
)

// ortTypes maps each v2 datatype to its ONNX element type. BYTES is the
// ONNX string type (a string tensor, not raw bytes).
var ortTypes = map[tensor.Datatype]ort.TensorElementDataType{
	tensor.Bool:   ort.TensorElementDataTypeBool,
	tensor.Uint8:  ort.TensorElementDataTypeUint8,
	tensor.Uint16: ort.TensorElementDataTypeUint16,
	tensor.Uint32: ort.TensorElementDataTypeUint32,
	tensor.Uint64: ort.TensorElementDataTypeUint64,
	tensor.Int8:   ort.TensorElementDataTypeInt8,
	tensor.Int16:  ort.TensorElementDataTypeInt16,
	tensor.Int32:  ort.TensorElementDataTypeInt32,
	tensor.Int64:  ort.TensorElementDataTypeInt64,
	tensor.FP16:   ort.TensorElementDataTypeFloat16,
	tensor.BF16:   ort.TensorElementDataTypeBFloat16,
	tensor.FP32:   ort.TensorElementDataTypeFloat,
	tensor.FP64:   ort.TensorElementDataTypeDouble,
	tensor.Bytes:  ort.TensorElementDataTypeString,
}

// datatypeOf is the v2 datatype of an ONNX element type; complex, float8 and
// int4 types have none.
func datatypeOf(t ort.TensorElementDataType) (tensor.Datatype, error) {
	for d, o := range ortTypes {
		if o == t {
			return d, nil
		}
	}
	return tensor.Invalid, fmt.Errorf("%w: ONNX element type %s has no v2 datatype", ErrUnsupported, t)
}
