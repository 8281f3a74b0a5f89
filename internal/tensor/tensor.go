// Package tensor is the one in-memory form of a tensor that the inference
// gateway, the supervisor and the runtime worker share: a name, an Open
// Inference Protocol v2 datatype, a shape and the raw bytes of the elements.
//
// The bytes are laid out exactly as the v2 binary tensor data extension
// lays them out (row-major, little-endian; BOOL one byte per element;
// BYTES a 4-byte little-endian length before each element), so a tensor
// moves from an HTTP body to the worker's socket and back without being
// converted.
package tensor

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// Sentinel errors, checked with errors.Is.
var (
	// ErrShape: a dimension is negative, or the element count overflows.
	ErrShape = errors.New("invalid tensor shape")
	// ErrDataSize: the data does not hold exactly the elements the shape
	// says.
	ErrDataSize = errors.New("tensor data size does not match its shape")
	// ErrDatatype: a datatype name v2 does not define.
	ErrDatatype = errors.New("unknown tensor datatype")
)

// Datatype is an element type, named as in the Open Inference Protocol v2.
type Datatype uint8

// The datatypes of the Open Inference Protocol v2. Invalid is the zero
// value, so a forgotten datatype is never mistaken for a real one.
const (
	Invalid Datatype = iota
	Bool
	Uint8
	Uint16
	Uint32
	Uint64
	Int8
	Int16
	Int32
	Int64
	FP16
	BF16
	FP32
	FP64
	Bytes
)

var names = [...]string{
	Invalid: "INVALID", Bool: "BOOL", Uint8: "UINT8", Uint16: "UINT16", Uint32: "UINT32", Uint64: "UINT64",
	Int8: "INT8", Int16: "INT16", Int32: "INT32", Int64: "INT64",
	FP16: "FP16", BF16: "BF16", FP32: "FP32", FP64: "FP64", Bytes: "BYTES",
}

var sizes = [...]int{
	Bool: 1, Uint8: 1, Uint16: 2, Uint32: 4, Uint64: 8, Int8: 1, Int16: 2, Int32: 4, Int64: 8,
	FP16: 2, BF16: 2, FP32: 4, FP64: 8, Bytes: 0,
}

// String is the v2 name ("FP32").
func (d Datatype) String() string {
	if int(d) < len(names) {
		return names[d]
	}
	return fmt.Sprintf("Datatype(%d)", uint8(d))
}

// Valid says d is one of the v2 datatypes.
func (d Datatype) Valid() bool { return d > Invalid && d <= Bytes }

// Size is the size of one element in bytes; 0 for BYTES, whose elements
// have their own lengths.
func (d Datatype) Size() int {
	if !d.Valid() {
		return 0
	}
	return sizes[d]
}

// ParseDatatype returns the datatype of a v2 name ("FP32"), or ErrDatatype.
func ParseDatatype(s string) (Datatype, error) {
	for d := Bool; d <= Bytes; d++ {
		if names[d] == s {
			return d, nil
		}
	}
	return Invalid, fmt.Errorf("%w %q", ErrDatatype, s)
}

// Tensor is one named tensor. Data holds the elements in the v2 binary
// layout (see the package comment).
type Tensor struct {
	Name     string
	Datatype Datatype
	Shape    []int64
	Data     []byte
}

// MaxElements bounds the element count of any shape, so that a count times
// an element size never overflows an int64.
const MaxElements = math.MaxInt64 / 8

// ElementCount is the product of shape's dimensions (1 for a scalar). It
// refuses a negative dimension and a product above MaxElements with
// ErrShape.
func ElementCount(shape []int64) (int64, error) {
	n := int64(1)
	for i, d := range shape {
		if d < 0 {
			return 0, fmt.Errorf("%w: dimension %d is %d", ErrShape, i, d)
		}
		if d != 0 && n > MaxElements/d {
			return 0, fmt.Errorf("%w: more than %d elements", ErrShape, int64(MaxElements))
		}
		n *= d
	}
	return n, nil
}

// Elements is t's element count (see ElementCount).
func (t Tensor) Elements() (int64, error) { return ElementCount(t.Shape) }

// Validate checks that t's datatype is valid and that Data holds exactly
// the elements its shape says: for fixed-size types, count × size bytes;
// for BYTES, count length-prefixed elements that end exactly at the end of
// Data.
func (t Tensor) Validate() error {
	if !t.Datatype.Valid() {
		return fmt.Errorf("tensor %q: %w", t.Name, ErrDatatype)
	}
	n, err := t.Elements()
	if err != nil {
		return fmt.Errorf("tensor %q: %w", t.Name, err)
	}
	if t.Datatype != Bytes {
		want := n * int64(t.Datatype.Size())
		if int64(len(t.Data)) != want {
			return fmt.Errorf("tensor %q: %w: %d bytes, want %d for %d %s elements", t.Name, ErrDataSize, len(t.Data), want, n, t.Datatype)
		}
		return nil
	}
	got, err := countBytesElements(t.Data)
	if err != nil {
		return fmt.Errorf("tensor %q: %w", t.Name, err)
	}
	if got != n {
		return fmt.Errorf("tensor %q: %w: %d BYTES elements, want %d", t.Name, ErrDataSize, got, n)
	}
	return nil
}

// countBytesElements counts the length-prefixed elements of BYTES data and
// checks that the last one ends exactly at its end.
func countBytesElements(data []byte) (int64, error) {
	var n int64
	for len(data) > 0 {
		if len(data) < 4 {
			return 0, fmt.Errorf("%w: %d trailing bytes are too short for an element length", ErrDataSize, len(data))
		}
		l := binary.LittleEndian.Uint32(data)
		data = data[4:]
		if uint64(l) > uint64(len(data)) {
			return 0, fmt.Errorf("%w: element %d is %d bytes long but only %d remain", ErrDataSize, n, l, len(data))
		}
		data = data[l:]
		n++
	}
	return n, nil
}

// BytesElements splits BYTES data into its elements (sub-slices of data,
// not copies). It fails like Validate on a malformed layout.
func BytesElements(data []byte) ([][]byte, error) {
	if _, err := countBytesElements(data); err != nil {
		return nil, err
	}
	var out [][]byte
	for len(data) > 0 {
		l := binary.LittleEndian.Uint32(data)
		out = append(out, data[4:4+l])
		data = data[4+l:]
	}
	return out, nil
}

// AppendBytesElement appends one BYTES element (its length, then its
// bytes) to data; an element of 4 GiB or more cannot be encoded.
func AppendBytesElement(data, elem []byte) ([]byte, error) {
	if uint64(len(elem)) > math.MaxUint32 {
		return data, fmt.Errorf("%w: a BYTES element of %d bytes is longer than 4 GiB", ErrDataSize, len(elem))
	}
	data = binary.LittleEndian.AppendUint32(data, uint32(len(elem))) // #nosec G115 -- checked above
	return append(data, elem...), nil
}
