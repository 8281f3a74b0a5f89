package onnx

import (
	"bytes"
	"fmt"
	"runtime"
	"unsafe"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/rampart-ml/rampart/internal/tensor"
)

// checkInput compares t with the model's declaration io.
func checkInput(io IO, t tensor.Tensor) error {
	if t.Datatype != io.Datatype {
		return fmt.Errorf("%w: input %q is %s, the model wants %s", ErrInput, t.Name, t.Datatype, io.Datatype)
	}
	// An empty declared shape may also mean "rank unknown"; ORT checks.
	if len(io.Shape) > 0 {
		if len(t.Shape) != len(io.Shape) {
			return fmt.Errorf("%w: input %q has shape %v, the model wants %v", ErrInput, t.Name, t.Shape, io.Shape)
		}
		for i, d := range io.Shape {
			if d >= 0 && t.Shape[i] != d {
				return fmt.Errorf("%w: input %q has shape %v, the model wants %v", ErrInput, t.Name, t.Shape, io.Shape)
			}
		}
	}
	if err := t.Validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrInput, err)
	}
	if t.Datatype == tensor.Bool {
		// Anything but 0 and 1 in a C++ bool is undefined behaviour.
		if i := bytes.IndexFunc(t.Data, func(r rune) bool { return r != 0 && r != 1 }); i >= 0 {
			return fmt.Errorf("%w: input %q: BOOL bytes must be 0 or 1", ErrInput, t.Name)
		}
	}
	return nil
}

// newInputValue wraps t for ORT. Numeric tensors are handed over without a
// copy: ORT reads tensor.Data in place, pinned for the duration of the run.
func newInputValue(io IO, t tensor.Tensor, pin *runtime.Pinner) (ort.Value, error) {
	if err := checkInput(io, t); err != nil {
		return nil, err
	}
	v, err := newValue(t, pin)
	if err != nil {
		return nil, fmt.Errorf("input %q: %w", t.Name, err)
	}
	return v, nil
}

func newValue(t tensor.Tensor, pin *runtime.Pinner) (ort.Value, error) {
	if t.Datatype == tensor.Bytes {
		return newStringValue(t)
	}
	if len(t.Shape) == 0 {
		return newScalarValue(t.Datatype, t.Data)
	}
	n, err := t.Elements()
	if err != nil {
		return nil, err
	}
	data := t.Data
	size := t.Datatype.Size()
	switch {
	case n == 0:
		// The binding wants at least one byte even when ORT reads none.
		data = make([]byte, size)
	case uintptr(unsafe.Pointer(unsafe.SliceData(data)))%uintptr(size) != 0: // #nosec G103 -- reads the address only
		// A slice of a request body can start anywhere; ORT's kernels
		// expect naturally aligned elements.
		data = bytes.Clone(data)
	}
	pin.Pin(unsafe.SliceData(data)) // #nosec G103 -- pins the buffer ORT reads during the run
	return ort.NewCustomDataTensor(t.Shape, data, ortTypes[t.Datatype])
}

func newStringValue(t tensor.Tensor) (ort.Value, error) {
	if len(t.Shape) == 0 {
		return nil, fmt.Errorf("%w: BYTES scalars", ErrUnsupported)
	}
	elems, err := tensor.BytesElements(t.Data)
	if err != nil {
		return nil, err
	}
	strs := make([]string, len(elems))
	for i, e := range elems {
		// The binding passes strings as C strings, which end at a NUL.
		if bytes.IndexByte(e, 0) >= 0 {
			return nil, fmt.Errorf("%w: BYTES element %d contains a NUL byte", ErrUnsupported, i)
		}
		strs[i] = string(e)
	}
	st, err := ort.NewStringTensor(t.Shape)
	if err != nil {
		return nil, err
	}
	if err := st.SetContents(strs); err != nil {
		_ = st.Destroy()
		return nil, err
	}
	return st, nil
}

// newScalarValue makes a rank-0 tensor holding the element in data (one
// element, little-endian: the binding's Scalar copies it).
func newScalarValue(dt tensor.Datatype, data []byte) (ort.Value, error) {
	switch dt {
	case tensor.Bool:
		return scalar[bool](data)
	case tensor.Uint8:
		return scalar[uint8](data)
	case tensor.Uint16:
		return scalar[uint16](data)
	case tensor.Uint32:
		return scalar[uint32](data)
	case tensor.Uint64:
		return scalar[uint64](data)
	case tensor.Int8:
		return scalar[int8](data)
	case tensor.Int16:
		return scalar[int16](data)
	case tensor.Int32:
		return scalar[int32](data)
	case tensor.Int64:
		return scalar[int64](data)
	case tensor.FP32:
		return scalar[float32](data)
	case tensor.FP64:
		return scalar[float64](data)
	}
	return nil, fmt.Errorf("%w: %s scalars", ErrUnsupported, dt)
}

func scalar[T ort.TensorData](data []byte) (ort.Value, error) {
	var v T
	b := bytesOf([]T{v})
	if len(data) != len(b) {
		return nil, fmt.Errorf("%w: scalar of %d bytes, want %d", ErrInput, len(data), len(b))
	}
	// Through a byte copy, not a pointer cast: data need not be aligned.
	copy(unsafe.Slice((*byte)(unsafe.Pointer(&v)), len(b)), data) // #nosec G103 -- len(b) is sizeof(v)
	return ort.NewScalar(v)
}

// newOutputValue allocates an output of a known shape for ORT to write into.
// It returns nil (let ORT allocate) where the binding cannot preallocate.
func newOutputValue(dt tensor.Datatype, shape []int64, pin *runtime.Pinner) (ort.Value, error) {
	if dt == tensor.Bytes {
		return nil, nil
	}
	if len(shape) == 0 {
		if dt == tensor.FP16 || dt == tensor.BF16 {
			return nil, nil
		}
		return newScalarValue(dt, make([]byte, dt.Size()))
	}
	return newValue(tensor.Tensor{Datatype: dt, Shape: shape, Data: make([]byte, mustBytes(dt, shape))}, pin)
}

// mustBytes is the data size of a shape ORT reported; ORT allocated or will
// allocate it, so it cannot overflow. It answers 0 for a bad shape, which
// newValue then refuses.
func mustBytes(dt tensor.Datatype, shape []int64) int64 {
	n, err := tensor.ElementCount(shape)
	if err != nil {
		return 0
	}
	return n * int64(dt.Size())
}

// toTensor copies an output into a tensor.Tensor (at most once: values ORT
// wrote into preallocated Go memory are taken over as they are).
func toTensor(io IO, v ort.Value) (tensor.Tensor, error) {
	if isNil(v) {
		return tensor.Tensor{}, fmt.Errorf("%w: ONNX Runtime returned no value", ErrRun)
	}
	t := tensor.Tensor{Name: io.Name, Datatype: io.Datatype, Shape: []int64(v.GetShape())}
	if t.Shape == nil {
		t.Shape = []int64{}
	}
	var err error
	switch v := v.(type) {
	case *ort.CustomDataTensor:
		t.Data = v.GetData()
		// Zero-element buffers were padded to one element.
		t.Data = t.Data[:min(int64(len(t.Data)), mustBytes(io.Datatype, t.Shape))]
	case *ort.StringTensor:
		var strs []string
		if strs, err = v.GetContents(); err == nil {
			t.Data = []byte{}
			for _, s := range strs {
				if t.Data, err = tensor.AppendBytesElement(t.Data, []byte(s)); err != nil {
					break
				}
			}
		}
	case *ort.Tensor[bool]:
		t.Data = bytesOf(v.GetData())
	case *ort.Tensor[uint8]:
		t.Data = bytesOf(v.GetData())
	case *ort.Tensor[uint16]:
		t.Data = bytesOf(v.GetData())
	case *ort.Tensor[uint32]:
		t.Data = bytesOf(v.GetData())
	case *ort.Tensor[uint64]:
		t.Data = bytesOf(v.GetData())
	case *ort.Tensor[int8]:
		t.Data = bytesOf(v.GetData())
	case *ort.Tensor[int16]:
		t.Data = bytesOf(v.GetData())
	case *ort.Tensor[int32]:
		t.Data = bytesOf(v.GetData())
	case *ort.Tensor[int64]:
		t.Data = bytesOf(v.GetData())
	case *ort.Tensor[float32]:
		t.Data = bytesOf(v.GetData())
	case *ort.Tensor[float64]:
		t.Data = bytesOf(v.GetData())
	case *ort.Scalar[bool]:
		t.Data = bytesOf([]bool{v.GetData()})
	case *ort.Scalar[uint8]:
		t.Data = bytesOf([]uint8{v.GetData()})
	case *ort.Scalar[uint16]:
		t.Data = bytesOf([]uint16{v.GetData()})
	case *ort.Scalar[uint32]:
		t.Data = bytesOf([]uint32{v.GetData()})
	case *ort.Scalar[uint64]:
		t.Data = bytesOf([]uint64{v.GetData()})
	case *ort.Scalar[int8]:
		t.Data = bytesOf([]int8{v.GetData()})
	case *ort.Scalar[int16]:
		t.Data = bytesOf([]int16{v.GetData()})
	case *ort.Scalar[int32]:
		t.Data = bytesOf([]int32{v.GetData()})
	case *ort.Scalar[int64]:
		t.Data = bytesOf([]int64{v.GetData()})
	case *ort.Scalar[float32]:
		t.Data = bytesOf([]float32{v.GetData()})
	case *ort.Scalar[float64]:
		t.Data = bytesOf([]float64{v.GetData()})
	default:
		return tensor.Tensor{}, fmt.Errorf("%w: ONNX Runtime returned a %T", ErrUnsupported, v)
	}
	if err != nil {
		return tensor.Tensor{}, err
	}
	// The declared datatype and the value's must agree; a mismatch is a
	// bug here or in the binding, not something to pass on.
	if err := t.Validate(); err != nil {
		return tensor.Tensor{}, fmt.Errorf("%w: %w", ErrRun, err)
	}
	return t, nil
}

// bytesOf views s as its bytes (the v2 binary layout on a little-endian
// host, which Init insists on) without copying.
func bytesOf[T any](s []T) []byte {
	if len(s) == 0 {
		return []byte{}
	}
	var zero T
	return unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(s))), len(s)*int(unsafe.Sizeof(zero))) // #nosec G103 -- exactly the bytes of s
}
