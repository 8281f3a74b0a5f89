package inference

import (
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"unicode/utf8"

	"github.com/rampart-ml/rampart/internal/tensor"
)

// Content types of a response: JSON alone, or a JSON header followed by
// binary tensor data.
const (
	ContentTypeJSON   = "application/json"
	ContentTypeBinary = "application/octet-stream"
)

// EncodeResponse writes a v2 inference response to w: PrepareResponse
// then WriteTo. headerLen is the JSON header's length when there is binary
// data (for Inference-Header-Content-Length) and -1 for plain JSON;
// contentType is the body's. An HTTP handler, which must set its headers
// before the body, calls PrepareResponse itself.
func EncodeResponse(w io.Writer, modelName, modelVersion, id string, outputs []tensor.Tensor, binary func(name string) bool) (headerLen int64, contentType string, err error) {
	r, err := PrepareResponse(modelName, modelVersion, id, outputs, binary)
	if err != nil {
		return 0, "", err
	}
	if _, err := r.WriteTo(w); err != nil {
		return 0, "", err
	}
	return r.HeaderLen, r.ContentType, nil
}

// EncodedResponse is a response ready to send: set the headers from its
// fields and Len, then WriteTo the body. The binary data is not copied: it
// is the outputs' Data.
type EncodedResponse struct {
	// HeaderLen is the JSON header's length when the body has binary data
	// (the Inference-Header-Content-Length header), else -1.
	HeaderLen int64
	// ContentType is the body's: ContentTypeJSON or ContentTypeBinary.
	ContentType string
	json        []byte
	binary      [][]byte
}

// Len is the body's length (the Content-Length header).
func (r *EncodedResponse) Len() int64 {
	n := int64(len(r.json))
	for _, b := range r.binary {
		n += int64(len(b))
	}
	return n
}

// WriteTo writes the body.
func (r *EncodedResponse) WriteTo(w io.Writer) (int64, error) {
	n, err := w.Write(r.json)
	total := int64(n)
	for _, b := range r.binary {
		if err != nil {
			break
		}
		n, err = w.Write(b)
		total += int64(n)
	}
	if err != nil {
		return total, fmt.Errorf("write response: %w", err)
	}
	return total, nil
}

// PrepareResponse encodes a v2 inference response. Outputs for which
// binary(name) is true (binary may be nil: none) go into the binary tensor
// data extension: the JSON header gives their binary_data_size and their
// bytes follow it, in output order.
//
// An output JSON cannot carry (NaN, infinity, BYTES that are not UTF-8) is
// an *Error (422) telling the client to ask for binary output; an output
// whose data does not match its shape is a plain error (the worker's
// fault, a 500).
func PrepareResponse(modelName, modelVersion, id string, outputs []tensor.Tensor, binary func(name string) bool) (*EncodedResponse, error) {
	size := 128
	anyBinary := false
	isBinary := make([]bool, len(outputs))
	for i, t := range outputs {
		if err := t.Validate(); err != nil {
			return nil, fmt.Errorf("encode output %d: %w", i, err)
		}
		isBinary[i] = binary != nil && binary(t.Name)
		anyBinary = anyBinary || isBinary[i]
		if !isBinary[i] {
			size += len(t.Data) * 3 // a rough guess at the JSON text
		}
	}
	b := make([]byte, 0, size)
	b = append(b, `{"model_name":`...)
	b = appendJSONString(b, modelName)
	if modelVersion != "" {
		b = append(b, `,"model_version":`...)
		b = appendJSONString(b, modelVersion)
	}
	if id != "" {
		b = append(b, `,"id":`...)
		b = appendJSONString(b, id)
	}
	b = append(b, `,"outputs":[`...)
	for i, t := range outputs {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"name":`...)
		b = appendJSONString(b, t.Name)
		b = append(b, `,"datatype":"`...)
		b = append(b, t.Datatype.String()...)
		b = append(b, `","shape":[`...)
		for j, d := range t.Shape {
			if j > 0 {
				b = append(b, ',')
			}
			b = strconv.AppendInt(b, d, 10)
		}
		b = append(b, ']')
		if isBinary[i] {
			b = append(b, `,"parameters":{"binary_data_size":`...)
			b = strconv.AppendInt(b, int64(len(t.Data)), 10)
			b = append(b, "}}"...)
			continue
		}
		b = append(b, `,"data":`...)
		var err error
		if b, err = appendJSONData(b, t); err != nil {
			return nil, err
		}
		b = append(b, '}')
	}
	b = append(b, "]}"...)
	r := &EncodedResponse{HeaderLen: -1, ContentType: ContentTypeJSON, json: b}
	if anyBinary {
		r.HeaderLen, r.ContentType = int64(len(b)), ContentTypeBinary
		for i, t := range outputs {
			if isBinary[i] {
				r.binary = append(r.binary, t.Data)
			}
		}
	}
	return r, nil
}

// ErrorBody is the protocol's error body, {"error":"..."}.
func ErrorBody(msg string) []byte {
	b := append([]byte(`{"error":`), nil...)
	b = appendJSONString(b, msg)
	return append(b, '}')
}

func notJSON(t tensor.Tensor, i int, what string) *Error {
	return &Error{Status: http.StatusUnprocessableEntity, Msg: fmt.Sprintf(
		"output %s: element %d is %s, which JSON cannot carry; ask for it as binary data (parameter binary_data)",
		strconv.Quote(t.Name), i, what)}
}

// appendJSONData appends t's elements as a flat JSON array.
func appendJSONData(b []byte, t tensor.Tensor) ([]byte, error) {
	le := binary.LittleEndian
	d := t.Data
	b = append(b, '[')
	if t.Datatype == tensor.Bytes {
		elems, err := tensor.BytesElements(d)
		if err != nil {
			return b, fmt.Errorf("encode output %q: %w", t.Name, err)
		}
		for i, e := range elems {
			if i > 0 {
				b = append(b, ',')
			}
			if !utf8.Valid(e) {
				return b, notJSON(t, i, "not UTF-8 text")
			}
			b = appendJSONString(b, string(e))
		}
		return append(b, ']'), nil
	}
	n, _ := t.Elements() // t is valid
	for i := range int(n) {
		if i > 0 {
			b = append(b, ',')
		}
		var f float64
		var bits int
		switch t.Datatype {
		case tensor.Bool:
			if d[i] != 0 {
				b = append(b, "true"...)
			} else {
				b = append(b, "false"...)
			}
			continue
		case tensor.Uint8:
			b = strconv.AppendUint(b, uint64(d[i]), 10)
			continue
		case tensor.Uint16:
			b = strconv.AppendUint(b, uint64(le.Uint16(d[2*i:])), 10)
			continue
		case tensor.Uint32:
			b = strconv.AppendUint(b, uint64(le.Uint32(d[4*i:])), 10)
			continue
		case tensor.Uint64:
			b = strconv.AppendUint(b, le.Uint64(d[8*i:]), 10)
			continue
		case tensor.Int8:
			b = strconv.AppendInt(b, int64(int8(d[i])), 10) // #nosec G115 -- reinterpreting two's complement bits
			continue
		case tensor.Int16:
			b = strconv.AppendInt(b, int64(int16(le.Uint16(d[2*i:]))), 10) // #nosec G115 -- two's complement bits
			continue
		case tensor.Int32:
			b = strconv.AppendInt(b, int64(int32(le.Uint32(d[4*i:]))), 10) // #nosec G115 -- two's complement bits
			continue
		case tensor.Int64:
			b = strconv.AppendInt(b, int64(le.Uint64(d[8*i:])), 10) // #nosec G115 -- two's complement bits
			continue
		case tensor.FP16:
			f, bits = fromHalf(le.Uint16(d[2*i:]), fp16Exp, fp16Mant), 32
		case tensor.BF16:
			f, bits = fromHalf(le.Uint16(d[2*i:]), bf16Exp, bf16Mant), 32
		case tensor.FP32:
			f, bits = float64(math.Float32frombits(le.Uint32(d[4*i:]))), 32
		case tensor.FP64:
			f, bits = math.Float64frombits(le.Uint64(d[8*i:])), 64
		}
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return b, notJSON(t, i, "not a finite number")
		}
		b = strconv.AppendFloat(b, f, 'g', -1, bits)
	}
	return append(b, ']'), nil
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string. Invalid UTF-8 becomes
// U+FFFD (callers that must not lose bytes check utf8.Valid first); <, >
// and & are escaped so the body is safe even if sniffed as HTML.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c == '\n':
				b = append(b, '\\', 'n')
			case c == '\r':
				b = append(b, '\\', 'r')
			case c == '\t':
				b = append(b, '\\', 't')
			case c < 0x20 || c == '<' || c == '>' || c == '&':
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
		default:
			b = append(b, s[i:i+n]...)
		}
		i += n
	}
	return append(b, '"')
}

// Response is a decoded inference response (the client side; the gateway
// only encodes them).
type Response struct {
	ModelName, ModelVersion, ID string
	Outputs                     []tensor.Tensor
}

// DecodeResponse decodes what EncodeResponse writes, under the same rules
// and limits as DecodeRequest (headerLen -1: plain JSON). For clients and
// tests.
func DecodeResponse(body []byte, headerLen int64, lim Limits) (*Response, error) {
	lim = lim.withDefaults()
	if int64(len(body)) > lim.MaxBodyBytes {
		return nil, tooLarge("response body is larger than %d bytes", lim.MaxBodyBytes)
	}
	if headerLen < -1 || headerLen > int64(len(body)) {
		return nil, badRequest("Inference-Header-Content-Length %d does not fit a %d-byte body", headerLen, len(body))
	}
	header, bin := body, []byte(nil)
	if headerLen >= 0 {
		header, bin = body[:headerLen], body[headerLen:]
	}
	s := &scanner{buf: header, maxDepth: lim.MaxJSONDepth}
	resp := &Response{}
	var outs []rawInput
	var seen uint32
	err := s.object(func(key string) error {
		if err := once(&seen, responseFields, key, "the response", -1); err != nil {
			return err
		}
		var err error
		switch key {
		case "model_name":
			resp.ModelName, err = s.readString()
		case "model_version":
			resp.ModelVersion, err = s.readString()
		case "id":
			resp.ID, err = s.readString()
		case "parameters":
			err = s.skip()
		case "outputs":
			err = s.array(func(i int) error {
				if i >= lim.MaxOutputs {
					return tooLarge("more than %d outputs", lim.MaxOutputs)
				}
				o, err := decodeInput(s, i, lim)
				outs = append(outs, o)
				return err
			})
		default:
			err = badRequest("unknown field %q in the response", key)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	if !s.atEnd() {
		return nil, s.errorf("data after the response object")
	}
	resp.Outputs = make([]tensor.Tensor, len(outs))
	for i, o := range outs {
		if resp.Outputs[i], err = convertInput(o, headerLen >= 0, &bin, lim); err != nil {
			return nil, err
		}
	}
	if len(bin) > 0 {
		return nil, badRequest("%d bytes of binary data follow the last output's binary data", len(bin))
	}
	return resp, nil
}
