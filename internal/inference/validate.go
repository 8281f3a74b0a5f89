package inference

import (
	"encoding/binary"
	"math"
	"strconv"
	"strings"

	"github.com/rampart-ml/rampart/internal/tensor"
)

// Signature is what a model accepts and produces, from its metadata.
type Signature struct {
	Inputs, Outputs []IO
	// RejectNonFinite refuses NaN and infinities in floating-point inputs
	// (only the binary forms can carry them; JSON cannot).
	RejectNonFinite bool
}

// IO is one input or output of a model.
type IO struct {
	Name     string
	Datatype tensor.Datatype
	// Shape: -1 is a dimension of any size; nil means any shape at all
	// (a model whose metadata gives no shape).
	Shape []int64
}

// Validate checks a decoded request against the model's signature: every
// input known, given once, of the right datatype, rank and fixed
// dimensions, with exactly the data its shape needs (BYTES lengths
// included); every model input given; every requested output known and
// asked for once. Errors are *Error (400).
func Validate(req *Request, sig Signature) error {
	byName := make(map[string]*IO, len(sig.Inputs))
	for i := range sig.Inputs {
		byName[sig.Inputs[i].Name] = &sig.Inputs[i]
	}
	given := make(map[string]bool, len(req.Inputs))
	for _, t := range req.Inputs {
		q := strconv.Quote(t.Name)
		io, ok := byName[t.Name]
		if !ok {
			return badRequest("unknown input %s; the model's inputs are %s", q, names(sig.Inputs))
		}
		if given[t.Name] {
			return badRequest("input %s is given twice", q)
		}
		given[t.Name] = true
		if t.Datatype != io.Datatype {
			return badRequest("input %s: datatype %s, but the model expects %s", q, t.Datatype, io.Datatype)
		}
		if err := checkShape(q, t.Shape, io.Shape); err != nil {
			return err
		}
		if err := checkData(q, t); err != nil {
			return err
		}
		if sig.RejectNonFinite {
			if i, ok := firstNonFinite(t); ok {
				return badRequest("input %s: element %d is not a finite number", q, i)
			}
		}
	}
	for _, io := range sig.Inputs {
		if !given[io.Name] {
			return badRequest("missing input %s", strconv.Quote(io.Name))
		}
	}
	outs := make(map[string]bool, len(sig.Outputs))
	for _, o := range sig.Outputs {
		outs[o.Name] = true
	}
	asked := make(map[string]bool, len(req.Outputs))
	for _, o := range req.Outputs {
		if !outs[o.Name] {
			return badRequest("unknown output %s; the model's outputs are %s", strconv.Quote(o.Name), names(sig.Outputs))
		}
		if asked[o.Name] {
			return badRequest("output %s is requested twice", strconv.Quote(o.Name))
		}
		asked[o.Name] = true
	}
	return nil
}

func names(ios []IO) string {
	q := make([]string, len(ios))
	for i, io := range ios {
		q[i] = strconv.Quote(io.Name)
	}
	return strings.Join(q, ", ")
}

func checkShape(q string, got, want []int64) error {
	if want == nil {
		return nil
	}
	if len(got) != len(want) {
		return badRequest("input %s: shape %s has %d dimensions, but the model expects %d (%s)", q, formatShape(got), len(got), len(want), formatShape(want))
	}
	for i, d := range want {
		if d >= 0 && got[i] != d {
			return badRequest("input %s: dimension %d of shape %s is %d, but the model expects %d (%s)", q, i, formatShape(got), got[i], d, formatShape(want))
		}
	}
	return nil
}

// checkData is tensor.Validate with the message the client needs.
func checkData(q string, t tensor.Tensor) error {
	n, err := t.Elements()
	if err != nil {
		return badRequest("input %s: invalid shape %s: %v", q, formatShape(t.Shape), err)
	}
	if t.Datatype == tensor.Bytes {
		elems, err := tensor.BytesElements(t.Data)
		if err != nil {
			return badRequest("input %s: invalid BYTES data: %v", q, err)
		}
		if int64(len(elems)) != n {
			return badRequest("input %s: shape %s has %d elements but data has %d", q, formatShape(t.Shape), n, len(elems))
		}
		return nil
	}
	if want := n * int64(t.Datatype.Size()); int64(len(t.Data)) != want {
		return badRequest("input %s: shape %s needs %d bytes of %s but data has %d bytes", q, formatShape(t.Shape), want, t.Datatype, len(t.Data))
	}
	return nil
}

// firstNonFinite finds the first NaN or infinity in a floating-point
// tensor.
func firstNonFinite(t tensor.Tensor) (int, bool) {
	le := binary.LittleEndian
	d := t.Data
	switch t.Datatype {
	case tensor.FP32:
		for i := 0; i+4 <= len(d); i += 4 {
			if le.Uint32(d[i:])&0x7f800000 == 0x7f800000 {
				return i / 4, true
			}
		}
	case tensor.FP64:
		for i := 0; i+8 <= len(d); i += 8 {
			f := math.Float64frombits(le.Uint64(d[i:]))
			if math.IsNaN(f) || math.IsInf(f, 0) {
				return i / 8, true
			}
		}
	case tensor.FP16:
		for i := 0; i+2 <= len(d); i += 2 {
			if le.Uint16(d[i:])&0x7c00 == 0x7c00 {
				return i / 2, true
			}
		}
	case tensor.BF16:
		for i := 0; i+2 <= len(d); i += 2 {
			if le.Uint16(d[i:])&0x7f80 == 0x7f80 {
				return i / 2, true
			}
		}
	}
	return 0, false
}
