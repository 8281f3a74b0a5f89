package onnxmeta

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"
)

// Read decodes the metadata of the ONNX model read from r, which it reads to
// the end exactly once: protobuf does not fix the order of fields, so the
// graph's inputs may come after gigabytes of weights. A model longer than
// limit bytes is refused with ErrLimit before more than limit+1 bytes are
// read. Weights and every other field not reported are skipped by length,
// never held in memory.
func Read(r io.Reader, limit int64) (Model, error) {
	if limit <= 0 {
		return Model{}, fmt.Errorf("onnxmeta: size limit %d must be positive", limit)
	}
	d := &decoder{
		// One byte past the limit, so that a longer model is seen as such.
		br:       bufio.NewReaderSize(io.LimitReader(r, limit+1), 64<<10),
		limit:    limit,
		inits:    make(map[string]struct{}),
		external: make(map[string]struct{}),
	}
	return d.model()
}

type decoder struct {
	br    *bufio.Reader
	off   int64 // bytes consumed so far
	limit int64
	kept  int64 // bytes of strings and values kept, against MaxKept

	// recognised is set once the first field was found to be a ModelProto
	// field: errors before that mean the file is something else.
	recognised bool
	sawIR      bool
	sawGraph   bool
	rawInputs  []Value
	inits      map[string]struct{}
	external   map[string]struct{}
	m          Model
}

// handler is given each field of a message: its number, wire type, and for a
// varint its value v or for a length-delimited field its length n, checked
// to fit in its message; at is the offset of its tag. For a length-delimited field it either consumes exactly
// the field's bytes and returns true, or consumes nothing and returns false
// to have the field skipped.
type handler func(num protowire.Number, typ protowire.Type, v uint64, n int64, at int64) (bool, error)

func (d *decoder) errAt(sentinel error, off int64, format string, args ...any) error {
	return &DecodeError{Offset: off, Err: sentinel, Msg: fmt.Sprintf(format, args...)}
}

// readErr turns an error of the underlying reader into the decoder's.
func (d *decoder) readErr(err error, off int64) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return d.errAt(ErrMalformed, off, "unexpected end of file (truncated model?)")
	}
	return fmt.Errorf("onnxmeta: read model at byte %d: %w", off, err)
}

// advance records n bytes consumed and enforces the size limit.
func (d *decoder) advance(n int64, from int64) error {
	d.off += n
	if d.off > d.limit {
		return d.errAt(ErrLimit, from, "model is larger than the %d-byte limit", d.limit)
	}
	return nil
}

// varint reads one protobuf varint.
func (d *decoder) varint() (uint64, error) {
	at := d.off
	b, err := d.br.Peek(binary64)
	if len(b) == 0 {
		return 0, d.readErr(err, at)
	}
	v, n := protowire.ConsumeVarint(b)
	if n < 0 {
		if len(b) < binary64 && err != nil {
			return 0, d.readErr(err, at) // the file ends inside the varint
		}
		return 0, d.errAt(ErrMalformed, at, "varint longer than 64 bits")
	}
	if _, err := d.br.Discard(n); err != nil {
		return 0, d.readErr(err, at)
	}
	return v, d.advance(int64(n), at)
}

// binary64 is the longest a varint encoding of 64 bits can be.
const binary64 = 10

// skip discards n bytes, reading through them: weights are skipped this way.
func (d *decoder) skip(n int64) error {
	at := d.off
	if n > d.limit-d.off {
		return d.errAt(ErrLimit, at, "a %d-byte field makes the model larger than the %d-byte limit", n, d.limit)
	}
	for n > 0 {
		chunk := min(n, 1<<30)
		got, err := d.br.Discard(int(chunk))
		d.off += int64(got)
		n -= int64(got)
		if err != nil {
			return d.readErr(err, d.off)
		}
	}
	return nil
}

// take reads the first keep bytes of an n-byte field and skips the rest.
func (d *decoder) take(n, keep int64) ([]byte, error) {
	at := d.off
	keep = min(n, keep)
	if err := d.charge(keep, at); err != nil {
		return nil, err
	}
	buf := make([]byte, keep)
	if _, err := io.ReadFull(d.br, buf); err != nil {
		return nil, d.readErr(err, at)
	}
	if err := d.advance(keep, at); err != nil {
		return nil, err
	}
	return buf, d.skip(n - keep)
}

// charge counts n bytes kept against MaxKept.
func (d *decoder) charge(n, at int64) error {
	d.kept += n
	if d.kept > MaxKept {
		return d.errAt(ErrLimit, at, "more than %d bytes of names and metadata", MaxKept)
	}
	return nil
}

// str reads an n-byte identifier (a name, a domain, a key): one longer than
// MaxString or not UTF-8 is refused.
func (d *decoder) str(n int64, at int64) (string, error) {
	if n > MaxString {
		return "", d.errAt(ErrLimit, at, "a %d-byte string is longer than the %d-byte limit", n, MaxString)
	}
	b, err := d.take(n, MaxString)
	if err != nil {
		return "", err
	}
	if !utf8.Valid(b) {
		return "", d.errAt(ErrMalformed, at, "string is not valid UTF-8")
	}
	return string(b), nil
}

// text reads the first keep bytes of an n-byte free text (documentation, a
// metadata value), invalid UTF-8 replaced, and says whether it was cut.
func (d *decoder) text(n int64, keep int64) (string, bool, error) {
	b, err := d.take(n, keep)
	if err != nil {
		return "", false, err
	}
	return strings.ToValidUTF8(string(b), "\uFFFD"), n > keep, nil
}

// fields decodes the fields of a message ending at byte end (-1: at the end
// of the file) and nested depth deep, calling fn for each.
func (d *decoder) fields(end int64, depth int, fn handler) error {
	if depth > MaxDepth {
		return d.errAt(ErrMalformed, d.off, "messages nested more than %d deep", MaxDepth)
	}
	for {
		if end < 0 {
			if _, err := d.br.Peek(1); errors.Is(err, io.EOF) {
				return nil
			} else if err != nil {
				return d.readErr(err, d.off)
			}
		} else if d.off == end {
			return nil
		}
		at := d.off
		tag, err := d.varint()
		if err != nil {
			return err
		}
		num, typ := protowire.DecodeTag(tag)
		if num < protowire.MinValidNumber {
			return d.errAt(ErrMalformed, at, "invalid field number %d", tag>>3)
		}
		var v uint64
		var n int64
		switch typ {
		case protowire.VarintType:
			v, err = d.varint()
		case protowire.Fixed32Type:
			err = d.skip(4)
		case protowire.Fixed64Type:
			err = d.skip(8)
		case protowire.BytesType:
			if v, err = d.varint(); err == nil {
				n, err = d.fits(v, end, at)
			}
		case protowire.StartGroupType, protowire.EndGroupType:
			err = d.errAt(ErrMalformed, at, "field %d is a protobuf group, which ONNX does not use", num)
		default:
			err = d.errAt(ErrMalformed, at, "field %d has invalid wire type %d", num, typ)
		}
		if err != nil {
			return err
		}
		if end >= 0 && d.off > end {
			return d.errAt(ErrMalformed, at, "field %d overruns its message", num)
		}
		start := d.off
		handled, err := fn(num, typ, v, n, at)
		if err != nil {
			return err
		}
		if typ != protowire.BytesType {
			continue
		}
		if !handled {
			if err := d.skip(n); err != nil {
				return err
			}
		} else if d.off != start+n {
			// Every handler consumes its field through fields(), take or skip.
			return d.errAt(ErrMalformed, at, "field %d was not decoded to its end", num)
		}
	}
}

// fits checks that a field whose declared length is v fits in its message
// (ending at end, or at the end of the file when end < 0) before anything is
// read, and returns the length.
func (d *decoder) fits(v uint64, end, at int64) (int64, error) {
	left := end - d.off
	if end < 0 {
		left = d.limit - d.off
	}
	if v > math.MaxInt64 || int64(v) > left { // #nosec G115 -- v <= MaxInt64 checked first
		if end < 0 {
			return 0, d.errAt(ErrLimit, at, "a %d-byte field makes the model larger than the %d-byte limit", v, d.limit)
		}
		return 0, d.errAt(ErrMalformed, at, "a %d-byte field overruns its message (%d bytes left)", v, left)
	}
	return int64(v), nil // #nosec G115 -- v <= left checked above
}

// int64Of decodes a protobuf int64 field's value.
func int64Of(v uint64) int64 {
	return int64(v) // #nosec G115 -- protobuf int64 is the varint's bits as two's complement
}

// int32Of decodes a protobuf int32 field's value.
func int32Of(v uint64) int32 {
	return int32(v) // #nosec G115 -- protobuf int32 is the varint's low 32 bits, as protobuf parsers read it
}

// want checks a known field's wire type.
func (d *decoder) want(num protowire.Number, typ, want protowire.Type, at int64) error {
	if typ != want {
		return d.errAt(ErrMalformed, at, "field %d has wire type %d, want %d", num, typ, want)
	}
	return nil
}

// modelFields are the ModelProto field numbers (onnx.proto, message
// ModelProto) with their wire types, to recognise an ONNX file by its first
// field: ir_version=1, producer_name=2, producer_version=3, domain=4,
// model_version=5, doc_string=6, graph=7, opset_import=8, metadata_props=14,
// training_info=20, functions=25, configuration=26,
// global_mutable_initializer_name=30.
var modelFields = map[protowire.Number]protowire.Type{
	1: protowire.VarintType, 2: protowire.BytesType, 3: protowire.BytesType,
	4: protowire.BytesType, 5: protowire.VarintType, 6: protowire.BytesType,
	7: protowire.BytesType, 8: protowire.BytesType, 14: protowire.BytesType,
	20: protowire.BytesType, 25: protowire.BytesType, 26: protowire.BytesType,
	30: protowire.BytesType,
}

// model decodes the whole file as a ModelProto.
func (d *decoder) model() (Model, error) {
	head, err := d.br.Peek(512)
	if len(head) == 0 {
		if errors.Is(err, io.EOF) {
			return Model{}, d.errAt(ErrNotONNX, 0, "the file is empty")
		}
		return Model{}, d.readErr(err, 0)
	}
	if what := sniff(head); what != "" {
		return Model{}, d.errAt(ErrNotONNX, 0, "the file looks like %s", what)
	}

	err = d.fields(-1, 0, func(num protowire.Number, typ protowire.Type, v uint64, n int64, at int64) (bool, error) {
		if !d.recognised {
			if want, ok := modelFields[num]; !ok || want != typ {
				return false, d.errAt(ErrNotONNX, at, "the file starts with protobuf field %d of wire type %d, which no ONNX model has", num, typ)
			}
			d.recognised = true
		}
		return d.modelField(num, typ, v, n, at)
	})
	var de *DecodeError
	if err != nil && !d.recognised && errors.As(err, &de) && errors.Is(de.Err, ErrMalformed) {
		// Garbage from the first byte: say what the file is not.
		de.Err = ErrNotONNX
	}
	if err != nil {
		return Model{}, err
	}
	switch {
	case !d.sawIR && !d.sawGraph:
		return Model{}, d.errAt(ErrNotONNX, d.off, "the file has neither an ir_version nor a graph")
	case !d.sawGraph:
		return Model{}, d.errAt(ErrMalformed, d.off, "the model has no graph")
	case !d.sawIR:
		return Model{}, d.errAt(ErrMalformed, d.off, "the model has no ir_version")
	}
	// Before IR version 4 initializers were listed among the inputs; they
	// are weights, not inputs a caller feeds.
	for _, in := range d.rawInputs {
		if _, ok := d.inits[in.Name]; !ok {
			d.m.Inputs = append(d.m.Inputs, in)
		}
	}
	if len(d.m.Inputs) > MaxValues {
		return Model{}, d.errAt(ErrLimit, d.off, "the graph has %d inputs, more than %d", len(d.m.Inputs), MaxValues)
	}
	d.m.Initializers = len(d.inits)
	if d.m.Inputs == nil {
		d.m.Inputs = []Value{}
	}
	if d.m.Outputs == nil {
		d.m.Outputs = []Value{}
	}
	if d.m.Opsets == nil {
		d.m.Opsets = []Opset{}
	}
	return d.m, nil
}

// modelField decodes one field of ModelProto.
func (d *decoder) modelField(num protowire.Number, typ protowire.Type, v uint64, n int64, at int64) (bool, error) {
	var err error
	switch num {
	case 1: // int64 ir_version = 1
		if err = d.want(num, typ, protowire.VarintType, at); err == nil {
			d.m.IRVersion, d.sawIR = int64Of(v), true
		}
	case 2: // string producer_name = 2
		if err = d.want(num, typ, protowire.BytesType, at); err == nil {
			d.m.ProducerName, err = d.str(n, at)
		}
	case 3: // string producer_version = 3
		if err = d.want(num, typ, protowire.BytesType, at); err == nil {
			d.m.ProducerVersion, err = d.str(n, at)
		}
	case 4: // string domain = 4
		if err = d.want(num, typ, protowire.BytesType, at); err == nil {
			d.m.Domain, err = d.str(n, at)
		}
	case 5: // int64 model_version = 5
		if err = d.want(num, typ, protowire.VarintType, at); err == nil {
			d.m.ModelVersion = int64Of(v)
		}
	case 6: // string doc_string = 6
		if err = d.want(num, typ, protowire.BytesType, at); err == nil {
			d.m.DocString, d.m.DocTruncated, err = d.text(n, MaxDocString)
		}
	case 7: // GraphProto graph = 7
		if err = d.want(num, typ, protowire.BytesType, at); err == nil {
			d.sawGraph = true
			err = d.fields(d.off+n, 1, d.graphField)
		}
	case 8: // repeated OperatorSetIdProto opset_import = 8
		if err = d.want(num, typ, protowire.BytesType, at); err == nil {
			err = d.opset(n, at)
		}
	case 14: // repeated StringStringEntryProto metadata_props = 14
		if err = d.want(num, typ, protowire.BytesType, at); err == nil {
			err = d.metadata(n, at)
		}
	default: // training_info, functions...: not reported
		return false, nil
	}
	return true, err
}

// opset decodes an OperatorSetIdProto: string domain = 1; int64 version = 2.
func (d *decoder) opset(n int64, at int64) error {
	if len(d.m.Opsets) >= MaxValues {
		return d.errAt(ErrLimit, at, "more than %d opset imports", MaxValues)
	}
	var o Opset
	err := d.fields(d.off+int64(n), 1, func(num protowire.Number, typ protowire.Type, v uint64, n int64, at int64) (bool, error) {
		var err error
		switch num {
		case 1:
			if err = d.want(num, typ, protowire.BytesType, at); err == nil {
				o.Domain, err = d.str(n, at)
			}
		case 2:
			if err = d.want(num, typ, protowire.VarintType, at); err == nil {
				o.Version = int64Of(v)
			}
		default:
			return false, nil
		}
		return true, err
	})
	d.m.Opsets = append(d.m.Opsets, o)
	return err
}

// metadata decodes a StringStringEntryProto: string key = 1; string value = 2.
func (d *decoder) metadata(n int64, at int64) error {
	if len(d.m.Metadata) >= MaxValues {
		return d.errAt(ErrLimit, at, "more than %d metadata entries", MaxValues)
	}
	var e Metadata
	err := d.fields(d.off+int64(n), 1, func(num protowire.Number, typ protowire.Type, v uint64, n int64, at int64) (bool, error) {
		var err error
		switch num {
		case 1:
			if err = d.want(num, typ, protowire.BytesType, at); err == nil {
				e.Key, err = d.str(n, at)
			}
		case 2:
			if err = d.want(num, typ, protowire.BytesType, at); err == nil {
				e.Value, e.Truncated, err = d.text(n, MaxString)
			}
		default:
			return false, nil
		}
		return true, err
	})
	d.m.Metadata = append(d.m.Metadata, e)
	return err
}

// graphField decodes one field of GraphProto (onnx.proto, message
// GraphProto).
func (d *decoder) graphField(num protowire.Number, typ protowire.Type, v uint64, n int64, at int64) (bool, error) {
	end := d.off + n
	var err error
	switch num {
	case 2: // string name = 2
		if err = d.want(num, typ, protowire.BytesType, at); err == nil {
			d.m.GraphName, err = d.str(n, at)
		}
	case 5: // repeated TensorProto initializer = 5
		if err = d.want(num, typ, protowire.BytesType, at); err == nil {
			err = d.initializer(end, 2, at)
		}
	case 15: // repeated SparseTensorProto sparse_initializer = 15
		if err = d.want(num, typ, protowire.BytesType, at); err == nil {
			// SparseTensorProto: TensorProto values = 1 carries the name.
			err = d.fields(end, 2, func(num protowire.Number, typ protowire.Type, v uint64, n int64, at int64) (bool, error) {
				if num != 1 {
					return false, nil
				}
				if err := d.want(num, typ, protowire.BytesType, at); err != nil {
					return false, err
				}
				return true, d.initializer(d.off+n, 3, at)
			})
		}
	case 11, 12: // repeated ValueInfoProto input = 11; output = 12
		if err = d.want(num, typ, protowire.BytesType, at); err == nil {
			err = d.valueInfo(num == 11, end, at)
		}
	default: // node = 1, value_info = 13...: not reported
		return false, nil
	}
	return true, err
}

// initializer records the name of a TensorProto (string name = 8) and the
// file its data is in when stored outside the model (repeated
// StringStringEntryProto external_data = 13, key "location"), skipping its
// data (raw_data = 9 and the typed *_data fields) by length.
func (d *decoder) initializer(end int64, depth int, at int64) error {
	if len(d.inits) >= MaxInitializers {
		return d.errAt(ErrLimit, at, "more than %d initializers", MaxInitializers)
	}
	var name string
	err := d.fields(end, depth, func(num protowire.Number, typ protowire.Type, v uint64, n int64, at int64) (bool, error) {
		if num != 8 && num != 13 {
			return false, nil
		}
		if err := d.want(num, typ, protowire.BytesType, at); err != nil {
			return false, err
		}
		if num == 13 {
			return true, d.externalData(d.off+n, depth+1)
		}
		var err error
		name, err = d.str(n, at)
		return true, err
	})
	if err != nil {
		return err
	}
	if err := d.charge(mapEntryCost, at); err != nil {
		return err
	}
	d.inits[name] = struct{}{}
	return nil
}

// externalData records the "location" of a TensorProto.external_data entry
// (StringStringEntryProto: key = 1, value = 2), once per distinct file.
func (d *decoder) externalData(end int64, depth int) error {
	var key, value string
	err := d.fields(end, depth, func(num protowire.Number, typ protowire.Type, v uint64, n int64, at int64) (bool, error) {
		if num != 1 && num != 2 {
			return false, nil
		}
		if err := d.want(num, typ, protowire.BytesType, at); err != nil {
			return false, err
		}
		s, err := d.str(n, at)
		if num == 1 {
			key = s
		} else {
			value = s
		}
		return true, err
	})
	if err != nil || key != "location" {
		return err
	}
	if _, seen := d.external[value]; seen {
		return nil
	}
	if len(d.external) >= MaxValues {
		return d.errAt(ErrLimit, end, "more than %d external data files", MaxValues)
	}
	d.external[value] = struct{}{}
	d.m.ExternalData = append(d.m.ExternalData, value)
	return nil
}

// Rough costs in bytes of what is kept besides strings, charged against
// MaxKept so that memory stays bounded however many entries a model lists.
const (
	mapEntryCost = 48
	valueCost    = 160
	dimCost      = 24
)

// valueInfo decodes a ValueInfoProto: string name = 1; TypeProto type = 2.
func (d *decoder) valueInfo(input bool, end, at int64) error {
	// Inputs may include initializers, excluded at the end: allow more.
	if input && len(d.rawInputs) >= 10*MaxValues || !input && len(d.m.Outputs) >= MaxValues {
		return d.errAt(ErrLimit, at, "more than %d graph inputs or outputs", MaxValues)
	}
	if err := d.charge(valueCost, at); err != nil {
		return err
	}
	val := Value{Kind: KindUnknown}
	err := d.fields(end, 2, func(num protowire.Number, typ protowire.Type, v uint64, n int64, at int64) (bool, error) {
		var err error
		switch num {
		case 1:
			if err = d.want(num, typ, protowire.BytesType, at); err == nil {
				val.Name, err = d.str(n, at)
			}
		case 2:
			if err = d.want(num, typ, protowire.BytesType, at); err == nil {
				err = d.typeProto(d.off+n, 3, &val)
			}
		default:
			return false, nil
		}
		return true, err
	})
	if err != nil {
		return err
	}
	if input {
		d.rawInputs = append(d.rawInputs, val)
	} else {
		d.m.Outputs = append(d.m.Outputs, val)
	}
	return nil
}

// typeProto decodes a TypeProto (onnx.proto, message TypeProto) into val:
// tensor_type = 1, sequence_type = 4, map_type = 5, sparse_tensor_type = 8,
// optional_type = 9 (denotation = 6, opaque_type = 7: not reported).
func (d *decoder) typeProto(end int64, depth int, val *Value) error {
	return d.fields(end, depth, func(num protowire.Number, typ protowire.Type, v uint64, n int64, at int64) (bool, error) {
		if num != 1 && num != 4 && num != 5 && num != 8 && num != 9 {
			return false, nil
		}
		if err := d.want(num, typ, protowire.BytesType, at); err != nil {
			return false, err
		}
		end := d.off + n
		switch num {
		case 1, 8: // Tensor, SparseTensor: int32 elem_type = 1; TensorShapeProto shape = 2
			val.Kind = KindTensor
			if num == 8 {
				val.Kind = KindSparseTensor
			}
			return true, d.tensorType(end, depth+1, val)
		case 4, 9: // Sequence, Optional: TypeProto elem_type = 1
			elem := Value{Kind: KindUnknown}
			err := d.fields(end, depth+1, func(num protowire.Number, typ protowire.Type, v uint64, n int64, at int64) (bool, error) {
				if num != 1 {
					return false, nil
				}
				if err := d.want(num, typ, protowire.BytesType, at); err != nil {
					return false, err
				}
				return true, d.typeProto(d.off+n, depth+2, &elem)
			})
			val.Kind, val.Type = KindSequence, "seq("+typeString(&elem)+")"
			if num == 9 {
				val.Kind, val.Type = KindOptional, "optional("+typeString(&elem)+")"
			}
			return true, err
		default: // 5, Map: int32 key_type = 1; TypeProto value_type = 2
			var key int32
			elem := Value{Kind: KindUnknown}
			err := d.fields(end, depth+1, func(num protowire.Number, typ protowire.Type, v uint64, n int64, at int64) (bool, error) {
				switch num {
				case 1:
					if err := d.want(num, typ, protowire.VarintType, at); err != nil {
						return false, err
					}
					key = int32Of(v)
				case 2:
					if err := d.want(num, typ, protowire.BytesType, at); err != nil {
						return false, err
					}
					return true, d.typeProto(d.off+n, depth+2, &elem)
				default:
					return false, nil
				}
				return true, nil
			})
			val.Kind, val.Type = KindMap, "map("+DatatypeName(key)+","+typeString(&elem)+")"
			return true, err
		}
	})
}

// tensorType decodes TypeProto.Tensor (and SparseTensor, same fields):
// int32 elem_type = 1; TensorShapeProto shape = 2.
func (d *decoder) tensorType(end int64, depth int, val *Value) error {
	return d.fields(end, depth, func(num protowire.Number, typ protowire.Type, v uint64, n int64, at int64) (bool, error) {
		switch num {
		case 1:
			if err := d.want(num, typ, protowire.VarintType, at); err != nil {
				return false, err
			}
			val.ElemType = int32Of(v)
			val.Datatype = DatatypeName(val.ElemType)
			return true, nil
		case 2:
			if err := d.want(num, typ, protowire.BytesType, at); err != nil {
				return false, err
			}
			val.RankKnown = true
			if val.Shape == nil {
				val.Shape = []int64{}
			}
			// TensorShapeProto: repeated Dimension dim = 1.
			return true, d.fields(d.off+n, depth+1, func(num protowire.Number, typ protowire.Type, v uint64, n int64, at int64) (bool, error) {
				if num != 1 {
					return false, nil
				}
				if err := d.want(num, typ, protowire.BytesType, at); err != nil {
					return false, err
				}
				return true, d.dim(d.off+n, depth+2, val, at)
			})
		}
		return false, nil
	})
}

// dim decodes a TensorShapeProto.Dimension: int64 dim_value = 1 or string
// dim_param = 2 (denotation = 3 not reported). A symbolic or missing size is
// -1, the symbol kept in DimParams.
func (d *decoder) dim(end int64, depth int, val *Value, at int64) error {
	if len(val.Shape) >= MaxRank {
		return d.errAt(ErrLimit, at, "a shape has more than %d dimensions", MaxRank)
	}
	if err := d.charge(dimCost, at); err != nil {
		return err
	}
	size, param := int64(-1), ""
	err := d.fields(end, depth, func(num protowire.Number, typ protowire.Type, v uint64, n int64, at int64) (bool, error) {
		var err error
		switch num {
		case 1:
			if err = d.want(num, typ, protowire.VarintType, at); err == nil {
				// Some exporters write -1 for "unknown": keep every
				// negative size as -1.
				size = max(int64Of(v), -1)
			}
		case 2:
			if err = d.want(num, typ, protowire.BytesType, at); err == nil {
				param, err = d.str(n, at)
			}
		default:
			return false, nil
		}
		return true, err
	})
	if err != nil {
		return err
	}
	if param != "" {
		size = -1 // dim_value and dim_param are a oneof: the symbol wins
		if val.DimParams == nil {
			val.DimParams = make([]string, len(val.Shape), cap(val.Shape)+1)
		}
	}
	val.Shape = append(val.Shape, size)
	if val.DimParams != nil {
		val.DimParams = append(val.DimParams, param)
	}
	return nil
}
