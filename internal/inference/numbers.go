package inference

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strconv"

	"github.com/rampart-ml/rampart/internal/tensor"
)

// appendNumber converts one JSON number (its text) to dt and appends it in
// the v2 binary layout. Integers must be written as integers and fit dt;
// floats must fit dt's range (JSON has no NaN or infinity).
func appendNumber(out []byte, dt tensor.Datatype, num []byte, integer bool) ([]byte, error) {
	le := binary.LittleEndian
	switch dt {
	case tensor.FP32:
		f, err := strconv.ParseFloat(string(num), 32)
		if err != nil {
			return out, rangeError(num, dt)
		}
		return le.AppendUint32(out, math.Float32bits(float32(f))), nil
	case tensor.FP64:
		f, err := strconv.ParseFloat(string(num), 64)
		if err != nil {
			return out, rangeError(num, dt)
		}
		return le.AppendUint64(out, math.Float64bits(f)), nil
	case tensor.FP16, tensor.BF16:
		f, err := strconv.ParseFloat(string(num), 64)
		if err != nil {
			return out, rangeError(num, dt)
		}
		var h uint16
		var ok bool
		if dt == tensor.FP16 {
			h, ok = toHalf(f, fp16Exp, fp16Mant)
		} else {
			h, ok = toHalf(f, bf16Exp, bf16Mant)
		}
		if !ok {
			return out, rangeError(num, dt)
		}
		return le.AppendUint16(out, h), nil
	}
	if !integer {
		return out, fmt.Errorf("%s is not an integer, as %s needs", num, dt)
	}
	bits := dt.Size() * 8
	switch dt {
	case tensor.Int8, tensor.Int16, tensor.Int32, tensor.Int64:
		v, err := strconv.ParseInt(string(num), 10, bits)
		if err != nil {
			return out, rangeError(num, dt)
		}
		return appendInt(out, uint64(v), dt.Size()), nil // #nosec G115 -- two's complement bits, truncated to size
	case tensor.Uint8, tensor.Uint16, tensor.Uint32, tensor.Uint64:
		if string(num) == "-0" {
			num = num[1:]
		}
		v, err := strconv.ParseUint(string(num), 10, bits)
		if err != nil {
			return out, rangeError(num, dt)
		}
		return appendInt(out, v, dt.Size()), nil
	}
	return out, fmt.Errorf("datatype %s cannot hold a number", dt)
}

func appendInt(out []byte, v uint64, size int) []byte {
	le := binary.LittleEndian
	switch size {
	case 1:
		return append(out, byte(v)) // #nosec G115 -- range checked by the caller
	case 2:
		return le.AppendUint16(out, uint16(v)) // #nosec G115 -- range checked by the caller
	case 4:
		return le.AppendUint32(out, uint32(v)) // #nosec G115 -- range checked by the caller
	default:
		return le.AppendUint64(out, v)
	}
}

var errRange = errors.New("out of range")

func rangeError(num []byte, dt tensor.Datatype) error {
	return fmt.Errorf("%s is %w for %s", num, errRange, dt)
}
