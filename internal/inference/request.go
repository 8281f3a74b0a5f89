package inference

import (
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"strconv"

	"github.com/rampart-ml/rampart/internal/tensor"
)

// Request is a decoded inference request.
type Request struct {
	// ID is the client's request id, echoed in the response ("" if none).
	ID string
	// Inputs in request order. For the binary extension and gRPC raw
	// contents, Data is a sub-slice of the body, not a copy: the body must
	// not be reused while the request is in use.
	Inputs []tensor.Tensor
	// Outputs the client asked for; empty means all of the model's.
	Outputs []RequestedOutput
	// BinaryOutputs is the request parameter binary_data_output: outputs
	// not listed in Outputs are returned in the binary extension.
	BinaryOutputs bool
}

// RequestedOutput is one output the client asked for.
type RequestedOutput struct {
	Name string
	// Binary: return this output in the binary extension (its parameter
	// binary_data, else the request's binary_data_output).
	Binary bool
}

// WantBinary says whether output name goes into the binary extension; it
// is the binary argument EncodeResponse takes.
func (r *Request) WantBinary(name string) bool {
	for _, o := range r.Outputs {
		if o.Name == name {
			return o.Binary
		}
	}
	return r.BinaryOutputs
}

// ReadBody reads a request body of at most lim.MaxBodyBytes, refusing a
// larger one with 413. (A handler should also wrap the body in
// http.MaxBytesReader; this is the codec's own bound.)
func ReadBody(r io.Reader, lim Limits) ([]byte, error) {
	lim = lim.withDefaults()
	body, err := io.ReadAll(io.LimitReader(r, lim.MaxBodyBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read request body: %w", err)
	}
	if int64(len(body)) > lim.MaxBodyBytes {
		return nil, tooLarge("request body is larger than %d bytes", lim.MaxBodyBytes)
	}
	return body, nil
}

// The fields each object may have; any other is refused.
var (
	requestFields  = []string{"id", "parameters", "inputs", "outputs"}
	responseFields = []string{"model_name", "model_version", "id", "parameters", "outputs"}
	inputFields    = []string{"name", "shape", "datatype", "parameters", "data"}
	outputFields   = []string{"name", "parameters"}
)

// once checks that key is one of fields (at most 32) and was not seen
// before in this object, recording it in seen; the object is named by
// where and, unless it is -1, its index. A bit set instead of a map: this
// runs for every field of every request.
func once(seen *uint32, fields []string, key, where string, index int) error {
	for i, f := range fields {
		if f == key {
			if *seen&(1<<i) == 0 {
				*seen |= 1 << i
				return nil
			}
			return badRequest("duplicate field %q in %s", key, objectName(where, index))
		}
	}
	return badRequest("unknown field %q in %s", key, objectName(where, index))
}

func objectName(where string, index int) string {
	if index < 0 {
		return where
	}
	return where + " " + itoa(index)
}

// rawInput is an input as the JSON header describes it, before its data
// is converted (its fields may come in any order).
type rawInput struct {
	name, datatype string
	shape          []int64
	hasShape       bool
	data           []byte // the JSON text of "data"
	dataAt         int    // its offset in the body
	binarySize     int64  // parameters.binary_data_size, -1 if absent
}

// rawOutput is a requested output; binary is -1 absent, 0 false, 1 true.
type rawOutput struct {
	name   string
	binary int
}

// DecodeRequest decodes a v2 REST inference request body. headerLen is
// the Inference-Header-Content-Length header, -1 when absent: then the
// whole body is JSON; otherwise the first headerLen bytes are the JSON
// header and the rest the binary data of the inputs that have a
// parameters.binary_data_size, concatenated in input order.
//
// Every error is an *Error. Unknown fields of the request, of an input or
// of an output are refused (a typo must not silently change a request);
// unknown parameters are ignored, as the protocol allows.
func DecodeRequest(body []byte, headerLen int64, lim Limits) (*Request, error) {
	lim = lim.withDefaults()
	if int64(len(body)) > lim.MaxBodyBytes {
		return nil, tooLarge("request body is larger than %d bytes", lim.MaxBodyBytes)
	}
	header, bin := body, []byte(nil)
	switch {
	case headerLen < -1:
		return nil, badRequest("Inference-Header-Content-Length %d is negative", headerLen)
	case headerLen > int64(len(body)):
		return nil, badRequest("Inference-Header-Content-Length %d is longer than the body (%d bytes)", headerLen, len(body))
	case headerLen >= 0:
		header, bin = body[:headerLen], body[headerLen:]
	}

	s := &scanner{buf: header, maxDepth: lim.MaxJSONDepth}
	req := &Request{}
	var inputs []rawInput
	var outputs []rawOutput
	var seen uint32
	err := s.object(func(key string) error {
		if err := once(&seen, requestFields, key, "the request", -1); err != nil {
			return err
		}
		switch key {
		case "id":
			id, err := s.readString()
			if err != nil {
				return err
			}
			req.ID = id
			return nil
		case "parameters":
			return s.object(func(name string) error {
				if name != "binary_data_output" {
					return s.skip()
				}
				b, ok := s.boolean()
				if !ok {
					return badRequest("parameter binary_data_output must be true or false")
				}
				req.BinaryOutputs = b
				return nil
			})
		case "inputs":
			return s.array(func(i int) error {
				if i >= lim.MaxInputs {
					return tooLarge("more than %d inputs", lim.MaxInputs)
				}
				in, err := decodeInput(s, i, lim)
				inputs = append(inputs, in)
				return err
			})
		case "outputs":
			return s.array(func(i int) error {
				if i >= lim.MaxOutputs {
					return tooLarge("more than %d requested outputs", lim.MaxOutputs)
				}
				out, err := decodeOutput(s, i)
				outputs = append(outputs, out)
				return err
			})
		default:
			return badRequest("unknown field %q in the request", key)
		}
	})
	if err != nil {
		return nil, err
	}
	if !s.atEnd() {
		return nil, s.errorf("data after the request object (binary tensor data needs the Inference-Header-Content-Length header)")
	}
	if len(inputs) == 0 {
		return nil, badRequest("the request has no inputs")
	}

	req.Inputs = make([]tensor.Tensor, len(inputs))
	var total int64
	for i, in := range inputs {
		t, err := convertInput(in, headerLen >= 0, &bin, lim)
		if err != nil {
			return nil, err
		}
		n, _ := t.Elements() // checked by convertInput
		if total += n; total > lim.MaxElements {
			return nil, tooLarge("the inputs have more than %d elements together", lim.MaxElements)
		}
		req.Inputs[i] = t
	}
	if len(bin) > 0 {
		return nil, badRequest("%d bytes of binary data follow the last input's binary data", len(bin))
	}

	req.Outputs = make([]RequestedOutput, len(outputs))
	names := make(map[string]bool, len(outputs))
	for i, o := range outputs {
		if names[o.name] {
			return nil, badRequest("output %q is requested twice", o.name)
		}
		names[o.name] = true
		req.Outputs[i] = RequestedOutput{Name: o.name, Binary: o.binary == 1 || (o.binary == -1 && req.BinaryOutputs)}
	}
	return req, nil
}

func decodeInput(s *scanner, i int, lim Limits) (rawInput, error) {
	in := rawInput{binarySize: -1}
	var seen uint32
	err := s.object(func(key string) error {
		if err := once(&seen, inputFields, key, "input", i); err != nil {
			return err
		}
		var err error
		switch key {
		case "name":
			in.name, err = s.readString()
		case "datatype":
			in.datatype, err = s.readString()
		case "shape":
			in.hasShape = true
			err = s.array(func(j int) error {
				if j >= lim.MaxRank {
					return badRequest("input %d: shape has more than %d dimensions", i, lim.MaxRank)
				}
				num, integer, err := s.number()
				if err != nil {
					return err
				}
				d, perr := strconv.ParseInt(string(num), 10, 64)
				if !integer || perr != nil || d < 0 {
					return badRequest("input %d: shape dimension %d is %s, want a non-negative integer", i, j, num)
				}
				in.shape = append(in.shape, d)
				return nil
			})
		case "data":
			s.ws()
			in.dataAt = s.pos
			in.data, err = s.arraySpan()
		case "parameters":
			err = s.object(func(name string) error {
				if name != "binary_data_size" {
					return s.skip()
				}
				num, integer, err := s.number()
				if err != nil {
					return err
				}
				n, perr := strconv.ParseInt(string(num), 10, 64)
				if !integer || perr != nil || n < 0 {
					return badRequest("input %d: binary_data_size is %s, want a non-negative integer", i, num)
				}
				in.binarySize = n
				return nil
			})
		default:
			err = badRequest("unknown field %q in input %d", key, i)
		}
		return err
	})
	return in, err
}

func decodeOutput(s *scanner, i int) (rawOutput, error) {
	out := rawOutput{binary: -1}
	var seen uint32
	err := s.object(func(key string) error {
		if err := once(&seen, outputFields, key, "output", i); err != nil {
			return err
		}
		var err error
		switch key {
		case "name":
			out.name, err = s.readString()
		case "parameters":
			err = s.object(func(name string) error {
				if name != "binary_data" {
					return s.skip()
				}
				b, ok := s.boolean()
				if !ok {
					return badRequest("output %d: parameter binary_data must be true or false", i)
				}
				out.binary = 0
				if b {
					out.binary = 1
				}
				return nil
			})
		default:
			err = badRequest("unknown field %q in output %d", key, i)
		}
		return err
	})
	if err == nil && out.name == "" {
		err = badRequest("output %d has no name", i)
	}
	return out, err
}

// convertInput turns a raw input into a tensor, taking its binary data
// from the front of *bin.
func convertInput(in rawInput, binaryAllowed bool, bin *[]byte, lim Limits) (tensor.Tensor, error) {
	if in.name == "" {
		return tensor.Tensor{}, badRequest("an input has no name")
	}
	q := strconv.Quote(in.name)
	if in.datatype == "" {
		return tensor.Tensor{}, badRequest("input %s has no datatype", q)
	}
	dt, err := tensor.ParseDatatype(in.datatype)
	if err != nil {
		return tensor.Tensor{}, badRequest("input %s: unknown datatype %q", q, in.datatype)
	}
	if !in.hasShape {
		return tensor.Tensor{}, badRequest("input %s has no shape", q)
	}
	n, err := tensor.ElementCount(in.shape)
	if err != nil || n > lim.MaxElements {
		return tensor.Tensor{}, tooLarge("input %s: shape %s has more than %d elements", q, formatShape(in.shape), lim.MaxElements)
	}
	t := tensor.Tensor{Name: in.name, Datatype: dt, Shape: in.shape}
	if t.Shape == nil {
		t.Shape = []int64{} // a scalar; keeps round trips exact
	}
	switch {
	case in.binarySize >= 0 && in.data != nil:
		return t, badRequest("input %s has both data and binary_data_size", q)
	case in.binarySize >= 0:
		if !binaryAllowed {
			return t, badRequest("input %s has binary_data_size but the request has no Inference-Header-Content-Length", q)
		}
		if in.binarySize > int64(len(*bin)) {
			return t, badRequest("input %s: binary_data_size is %d but only %d bytes of binary data remain", q, in.binarySize, len(*bin))
		}
		t.Data = (*bin)[:in.binarySize:in.binarySize]
		*bin = (*bin)[in.binarySize:]
		if dt != tensor.Bytes {
			if want := n * int64(dt.Size()); want != in.binarySize {
				return t, badRequest("input %s: shape %s needs %d bytes of %s but binary_data_size is %d", q, formatShape(in.shape), want, dt, in.binarySize)
			}
		} else if err := t.Validate(); err != nil {
			return t, badRequest("input %s: invalid BYTES data: %v", q, err)
		}
		return t, nil
	case in.data != nil:
		data, got, err := decodeData(in.data, in.dataAt, dt, in.shape, n, lim.MaxJSONDepth)
		if err != nil {
			err.Msg = "input " + q + ": " + err.Msg
			return t, err
		}
		if got != n {
			return t, badRequest("input %s: shape %s has %d elements but data has %d", q, formatShape(in.shape), n, got)
		}
		t.Data = data
		return t, nil
	default:
		return t, badRequest("input %s has neither data nor binary_data_size", q)
	}
}

// decodeData converts a JSON data array (flat, or nested exactly as the
// shape) of datatype dt into the v2 binary layout. It returns the element
// count it found; the caller compares it with the shape's.
func decodeData(text []byte, at int, dt tensor.Datatype, shape []int64, want int64, maxDepth int) ([]byte, int64, *Error) {
	s := &scanner{buf: text, maxDepth: maxDepth, base: at}
	// The nesting depth is the number of leading brackets; every leaf must
	// sit at that depth.
	depth := 0
	for s.ws() == '[' {
		depth++
		s.pos++
	}
	s.pos = 0
	if depth == 0 {
		return nil, 0, badRequest("data must be an array")
	}
	if depth > 1 && depth != len(shape) {
		return nil, 0, badRequest("data is nested %d deep but shape %s has %d dimensions", depth, formatShape(shape), len(shape))
	}
	// Never allocate more than the text could hold: an element takes at
	// least two bytes ("1,").
	capElems := min(want, int64(len(text)/2+1))
	d := dataDecoder{s: s, dt: dt, out: make([]byte, 0, capElems*int64(max(dt.Size(), 4)))}
	if err := d.level(0, depth, shape); err != nil {
		return nil, 0, err
	}
	if !s.atEnd() {
		return nil, 0, s.errorf("data after the data array")
	}
	return d.out, d.n, nil
}

type dataDecoder struct {
	s   *scanner
	dt  tensor.Datatype
	out []byte
	n   int64
}

func (d *dataDecoder) level(l, depth int, shape []int64) *Error {
	s := d.s
	if !s.consume('[') {
		if l < depth {
			return badRequest("element %d: want an array at nesting level %d", d.n, l+1)
		}
		return s.errorf("want an array")
	}
	if s.depth++; s.depth > s.maxDepth {
		return s.errorf("nested deeper than %d", s.maxDepth)
	}
	count := int64(0)
	if !s.consume(']') {
		for {
			var err *Error
			if l+1 < depth {
				err = d.level(l+1, depth, shape)
			} else {
				err = d.leaf()
			}
			if err != nil {
				return err
			}
			count++
			if s.consume(']') {
				break
			}
			if !s.consume(',') {
				return s.errorf("want ',' or ']' in data")
			}
		}
	}
	s.depth--
	if depth > 1 && count != shape[l] {
		return badRequest("data dimension %d has %d elements but shape %s says %d", l, count, formatShape(shape), shape[l])
	}
	return nil
}

// leaf converts one element.
func (d *dataDecoder) leaf() *Error {
	s := d.s
	switch c := s.ws(); {
	case c == '[':
		return badRequest("element %d: data is nested deeper than its first element", d.n)
	case d.dt == tensor.Bytes:
		if c != '"' {
			return badRequest("element %d: BYTES data must be a string", d.n)
		}
		lenAt := len(d.out)
		d.out = append(d.out, 0, 0, 0, 0)
		var err error
		if d.out, err = s.appendString(d.out); err != nil {
			return asError(err)
		}
		l := len(d.out) - lenAt - 4
		if int64(l) > math.MaxUint32 {
			return badRequest("element %d: a BYTES element is longer than 4 GiB", d.n)
		}
		binary.LittleEndian.PutUint32(d.out[lenAt:], uint32(l)) // #nosec G115 -- checked above
	case d.dt == tensor.Bool:
		b, ok := s.boolean()
		if !ok {
			return badRequest("element %d: BOOL data must be true or false", d.n)
		}
		v := byte(0)
		if b {
			v = 1
		}
		d.out = append(d.out, v)
	default:
		if c == '"' || c == 't' || c == 'f' || c == 'n' {
			return badRequest("element %d: %s data must be a number", d.n, d.dt)
		}
		num, integer, err := s.number()
		if err != nil {
			return asError(err)
		}
		if d.out, err = appendNumber(d.out, d.dt, num, integer); err != nil {
			return badRequest("element %d: %v", d.n, err)
		}
	}
	d.n++
	return nil
}

// HeaderInferenceHeaderContentLength names the binary extension's header.
const HeaderInferenceHeaderContentLength = "Inference-Header-Content-Length"

// ParseHeaderLength parses the Inference-Header-Content-Length header's
// value for DecodeRequest: -1 when absent (""), else a non-negative decimal
// integer.
func ParseHeaderLength(v string) (int64, error) {
	if v == "" {
		return -1, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 || v[0] == '+' {
		return 0, badRequest("%s %q is not a non-negative integer", HeaderInferenceHeaderContentLength, v)
	}
	return n, nil
}
