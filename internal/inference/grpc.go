package inference

import (
	"encoding/binary"
	"math"
	"net/http"
	"strconv"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/rampart-ml/rampart/internal/inference/oippb"
	"github.com/rampart-ml/rampart/internal/tensor"
)

// FromGRPC converts a gRPC ModelInferRequest into a Request under the same
// limits and rules as DecodeRequest. Input data comes either from
// raw_input_contents (one entry per input, in order; used as is, not
// copied) or from each input's typed contents, never both; a typed input
// must fill exactly the contents field of its datatype (FP16 and BF16 have
// none and must be raw). Every error is an *Error.
//
// The gRPC server's MaxRecvMsgSize should be lim.MaxBodyBytes, so that an
// oversized message is refused before it is decoded at all.
func FromGRPC(m *oippb.ModelInferRequest, lim Limits) (*Request, error) {
	lim = lim.withDefaults()
	if m == nil {
		return nil, badRequest("empty request")
	}
	ins, raw := m.GetInputs(), m.GetRawInputContents()
	switch {
	case len(ins) == 0:
		return nil, badRequest("the request has no inputs")
	case len(ins) > lim.MaxInputs:
		return nil, tooLarge("more than %d inputs", lim.MaxInputs)
	case len(m.GetOutputs()) > lim.MaxOutputs:
		return nil, tooLarge("more than %d requested outputs", lim.MaxOutputs)
	case len(raw) > 0 && len(raw) != len(ins):
		return nil, badRequest("raw_input_contents has %d entries for %d inputs", len(raw), len(ins))
	}
	var rawBytes int64
	for _, r := range raw {
		rawBytes += int64(len(r))
	}
	if rawBytes > lim.MaxBodyBytes {
		return nil, tooLarge("raw_input_contents is larger than %d bytes", lim.MaxBodyBytes)
	}

	req := &Request{ID: m.GetId(), Inputs: make([]tensor.Tensor, len(ins))}
	if p := m.GetParameters()["binary_data_output"]; p != nil {
		req.BinaryOutputs = p.GetBoolParam()
	}
	var total int64
	for i, in := range ins {
		t, n, err := grpcInputHeader(in, i, lim)
		if err != nil {
			return nil, err
		}
		if total += n; total > lim.MaxElements {
			return nil, tooLarge("the inputs have more than %d elements together", lim.MaxElements)
		}
		q := strconv.Quote(t.Name)
		c := in.GetContents()
		if len(raw) > 0 {
			if used := contentFields(c); len(used) > 0 {
				return nil, badRequest("input %s has %s but the request uses raw_input_contents", q, strings.Join(used, " and "))
			}
			t.Data = raw[i][:len(raw[i]):len(raw[i])]
			if err := checkData(q, t); err != nil {
				return nil, err
			}
		} else if t.Data, err = fromContents(q, t.Datatype, n, c); err != nil {
			return nil, err
		}
		req.Inputs[i] = t
	}

	req.Outputs = make([]RequestedOutput, len(m.GetOutputs()))
	seen := make(map[string]bool, len(req.Outputs))
	for i, o := range m.GetOutputs() {
		name := o.GetName()
		switch {
		case name == "":
			return nil, badRequest("output %d has no name", i)
		case seen[name]:
			return nil, badRequest("output %s is requested twice", strconv.Quote(name))
		}
		seen[name] = true
		req.Outputs[i] = RequestedOutput{Name: name, Binary: req.BinaryOutputs}
		if p := o.GetParameters()["binary_data"]; p != nil {
			req.Outputs[i].Binary = p.GetBoolParam()
		}
	}
	return req, nil
}

// grpcInputHeader checks an input's name, datatype and shape.
func grpcInputHeader(in *oippb.ModelInferRequest_InferInputTensor, i int, lim Limits) (tensor.Tensor, int64, error) {
	name := in.GetName()
	if name == "" {
		return tensor.Tensor{}, 0, badRequest("input %d has no name", i)
	}
	q := strconv.Quote(name)
	if in.GetDatatype() == "" {
		return tensor.Tensor{}, 0, badRequest("input %s has no datatype", q)
	}
	dt, err := tensor.ParseDatatype(in.GetDatatype())
	if err != nil {
		return tensor.Tensor{}, 0, badRequest("input %s: unknown datatype %q", q, in.GetDatatype())
	}
	shape := in.GetShape()
	if len(shape) > lim.MaxRank {
		return tensor.Tensor{}, 0, badRequest("input %s: shape has more than %d dimensions", q, lim.MaxRank)
	}
	for j, d := range shape {
		if d < 0 {
			return tensor.Tensor{}, 0, badRequest("input %s: shape dimension %d is %d, want a non-negative integer", q, j, d)
		}
	}
	n, err := tensor.ElementCount(shape)
	if err != nil || n > lim.MaxElements {
		return tensor.Tensor{}, 0, tooLarge("input %s: shape %s has more than %d elements", q, formatShape(shape), lim.MaxElements)
	}
	if shape == nil {
		shape = []int64{}
	}
	return tensor.Tensor{Name: name, Datatype: dt, Shape: shape}, n, nil
}

// contentFields names the non-empty fields of c.
func contentFields(c *oippb.InferTensorContents) []string {
	var used []string
	for _, f := range []struct {
		name string
		n    int
	}{
		{"bool_contents", len(c.GetBoolContents())},
		{"int_contents", len(c.GetIntContents())},
		{"int64_contents", len(c.GetInt64Contents())},
		{"uint_contents", len(c.GetUintContents())},
		{"uint64_contents", len(c.GetUint64Contents())},
		{"fp32_contents", len(c.GetFp32Contents())},
		{"fp64_contents", len(c.GetFp64Contents())},
		{"bytes_contents", len(c.GetBytesContents())},
	} {
		if f.n > 0 {
			used = append(used, f.name)
		}
	}
	return used
}

// contentsField is the InferTensorContents field that carries dt.
func contentsField(dt tensor.Datatype) string {
	switch dt {
	case tensor.Bool:
		return "bool_contents"
	case tensor.Int8, tensor.Int16, tensor.Int32:
		return "int_contents"
	case tensor.Int64:
		return "int64_contents"
	case tensor.Uint8, tensor.Uint16, tensor.Uint32:
		return "uint_contents"
	case tensor.Uint64:
		return "uint64_contents"
	case tensor.FP32:
		return "fp32_contents"
	case tensor.FP64:
		return "fp64_contents"
	case tensor.Bytes:
		return "bytes_contents"
	}
	return "" // FP16, BF16: raw only
}

// fromContents converts typed contents to the v2 binary layout.
func fromContents(q string, dt tensor.Datatype, n int64, c *oippb.InferTensorContents) ([]byte, error) {
	field := contentsField(dt)
	used := contentFields(c)
	switch {
	case field == "":
		return nil, badRequest("input %s: %s data must be sent in raw_input_contents", q, dt)
	case len(used) > 1 || (len(used) == 1 && used[0] != field):
		return nil, badRequest("input %s: datatype %s takes %s, but the request has %s", q, dt, field, strings.Join(used, " and "))
	}
	// Check the count before allocating: the shape alone must not make
	// the server allocate.
	if count := contentsLen(c, dt); int64(count) != n {
		return nil, badRequest("input %s: shape has %d elements but %s has %d", q, n, field, count)
	}
	le := binary.LittleEndian
	out := make([]byte, 0, n*int64(dt.Size()))
	switch dt {
	case tensor.Bool:
		v := c.GetBoolContents()
		for _, b := range v {
			x := byte(0)
			if b {
				x = 1
			}
			out = append(out, x)
		}
	case tensor.Int8, tensor.Int16, tensor.Int32:
		v := c.GetIntContents()
		bits := dt.Size() * 8
		lo, hi := int32(math.MinInt32)>>(32-bits), int32(math.MaxInt32)>>(32-bits)
		for i, x := range v {
			if x < lo || x > hi {
				return nil, badRequest("input %s: element %d: %d is out of range for %s", q, i, x, dt)
			}
			out = appendInt(out, uint64(x), dt.Size()) // #nosec G115 -- two's complement bits, range checked
		}
	case tensor.Int64:
		v := c.GetInt64Contents()
		for _, x := range v {
			out = le.AppendUint64(out, uint64(x)) // #nosec G115 -- two's complement bits
		}
	case tensor.Uint8, tensor.Uint16, tensor.Uint32:
		v := c.GetUintContents()
		hi := uint32(math.MaxUint32) >> (32 - dt.Size()*8)
		for i, x := range v {
			if x > hi {
				return nil, badRequest("input %s: element %d: %d is out of range for %s", q, i, x, dt)
			}
			out = appendInt(out, uint64(x), dt.Size())
		}
	case tensor.Uint64:
		v := c.GetUint64Contents()
		for _, x := range v {
			out = le.AppendUint64(out, x)
		}
	case tensor.FP32:
		v := c.GetFp32Contents()
		for _, x := range v {
			out = le.AppendUint32(out, math.Float32bits(x))
		}
	case tensor.FP64:
		v := c.GetFp64Contents()
		for _, x := range v {
			out = le.AppendUint64(out, math.Float64bits(x))
		}
	case tensor.Bytes:
		v := c.GetBytesContents()
		for i, x := range v {
			var err error
			if out, err = tensor.AppendBytesElement(out, x); err != nil {
				return nil, badRequest("input %s: element %d: %v", q, i, err)
			}
		}
	}
	return out, nil
}

// contentsLen is the length of the contents field that carries dt.
func contentsLen(c *oippb.InferTensorContents, dt tensor.Datatype) int {
	switch contentsField(dt) {
	case "bool_contents":
		return len(c.GetBoolContents())
	case "int_contents":
		return len(c.GetIntContents())
	case "int64_contents":
		return len(c.GetInt64Contents())
	case "uint_contents":
		return len(c.GetUintContents())
	case "uint64_contents":
		return len(c.GetUint64Contents())
	case "fp32_contents":
		return len(c.GetFp32Contents())
	case "fp64_contents":
		return len(c.GetFp64Contents())
	case "bytes_contents":
		return len(c.GetBytesContents())
	}
	return 0
}

// ToGRPC builds a ModelInferResponse with the outputs in
// raw_output_contents (their Data, not copied).
func ToGRPC(modelName, modelVersion, id string, outputs []tensor.Tensor) *oippb.ModelInferResponse {
	resp := &oippb.ModelInferResponse{
		ModelName:         modelName,
		ModelVersion:      modelVersion,
		Id:                id,
		Outputs:           make([]*oippb.ModelInferResponse_InferOutputTensor, len(outputs)),
		RawOutputContents: make([][]byte, len(outputs)),
	}
	for i, t := range outputs {
		resp.Outputs[i] = &oippb.ModelInferResponse_InferOutputTensor{Name: t.Name, Datatype: t.Datatype.String(), Shape: t.Shape}
		resp.RawOutputContents[i] = t.Data
	}
	return resp
}

// RequestToGRPC is the client side of FromGRPC: req as a ModelInferRequest
// with raw_input_contents (not copied). For clients and tests.
func RequestToGRPC(modelName, modelVersion string, req *Request) *oippb.ModelInferRequest {
	m := &oippb.ModelInferRequest{
		ModelName:        modelName,
		ModelVersion:     modelVersion,
		Id:               req.ID,
		Inputs:           make([]*oippb.ModelInferRequest_InferInputTensor, len(req.Inputs)),
		RawInputContents: make([][]byte, len(req.Inputs)),
	}
	for i, t := range req.Inputs {
		m.Inputs[i] = &oippb.ModelInferRequest_InferInputTensor{Name: t.Name, Datatype: t.Datatype.String(), Shape: t.Shape}
		m.RawInputContents[i] = t.Data
	}
	for _, o := range req.Outputs {
		m.Outputs = append(m.Outputs, &oippb.ModelInferRequest_InferRequestedOutputTensor{Name: o.Name})
	}
	return m
}

// GRPCError turns an error from this package into a gRPC status error:
// 400 and 422 are InvalidArgument, 413 ResourceExhausted; anything else is
// Internal with a generic message (the caller logs the original).
func GRPCError(err error) error {
	code, msg := StatusAndMessage(err)
	switch code {
	case http.StatusBadRequest, http.StatusUnprocessableEntity:
		return status.Error(codes.InvalidArgument, msg)
	case http.StatusRequestEntityTooLarge:
		return status.Error(codes.ResourceExhausted, msg)
	}
	return status.Error(codes.Internal, msg)
}
