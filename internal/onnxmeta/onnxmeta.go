// Package onnxmeta reads the metadata of an ONNX model (producer, opsets,
// graph inputs and outputs with their datatypes and shapes) from an untrusted
// model file.
//
// It owns a bounded, streaming decoder of the ONNX ModelProto protobuf built
// on protowire: it reads the file once, front to back, keeps only the small
// fields it reports and skips everything else by length (weights can be
// gigabytes), so its memory stays small whatever the model's size. It never
// executes, loads or validates the model's graph, and performs no I/O beyond
// reading the io.Reader it is given.
//
// Field numbers are those of onnx/onnx.proto (github.com/onnx/onnx,
// onnx/onnx.in.proto); each is cited next to its use.
package onnxmeta

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors, checked with errors.Is.
var (
	// ErrMalformed: the file is not a well-formed protobuf ModelProto (truncated,
	// a varint overflow, a field of the wrong wire type, a length that overruns
	// its message, nesting too deep...). The error says at which byte.
	ErrMalformed = errors.New("malformed ONNX model")
	// ErrNotONNX: the file is something else (a zip, a pickle, random bytes...).
	ErrNotONNX = errors.New("not an ONNX model")
	// ErrLimit: the model exceeds a limit of the decoder (total size, string
	// length, number of inputs...).
	ErrLimit = errors.New("ONNX model exceeds a limit")
)

// Limits of the decoder beyond the caller's total size limit. They bound the
// memory Read uses, not the model's size: weights are skipped, never kept.
const (
	// MaxString is the longest name, domain or key kept (64 KiB); a longer one
	// is refused with ErrLimit.
	MaxString = 64 << 10
	// MaxDocString is how much of the model's doc_string is kept; the rest is
	// dropped (DocTruncated says so). Metadata values are cut at MaxString
	// the same way.
	MaxDocString = 4 << 10
	// MaxValues bounds the graph's inputs, outputs, opset imports and
	// metadata entries, each.
	MaxValues = 10_000
	// MaxRank bounds the number of dimensions of one shape.
	MaxRank = 1024
	// MaxInitializers bounds the initializer names recorded (to tell them
	// from real inputs).
	MaxInitializers = 1_000_000
	// MaxKept bounds the bytes of all strings kept together (names of inputs,
	// outputs and initializers, metadata...).
	MaxKept = 64 << 20
	// MaxDepth bounds the nesting of the messages decoded (types nest:
	// sequence of map of...).
	MaxDepth = 32
)

// Model is the metadata of an ONNX model.
type Model struct {
	IRVersion       int64  `json:"ir_version"`
	ProducerName    string `json:"producer_name,omitempty"`
	ProducerVersion string `json:"producer_version,omitempty"`
	Domain          string `json:"domain,omitempty"`
	ModelVersion    int64  `json:"model_version,omitempty"`
	// DocString is the model's documentation, cut at MaxDocString bytes.
	DocString    string `json:"doc_string,omitempty"`
	DocTruncated bool   `json:"doc_truncated,omitempty"`
	// Opsets are the operator sets imported; Domain "" is the default
	// ai.onnx set.
	Opsets    []Opset `json:"opsets"`
	GraphName string  `json:"graph_name,omitempty"`
	// Inputs are the graph inputs a caller must feed: initializers listed
	// among the inputs (as models before IR version 4 do) are left out.
	Inputs   []Value    `json:"inputs"`
	Outputs  []Value    `json:"outputs"`
	Metadata []Metadata `json:"metadata,omitempty"`
	// Initializers is how many distinct initializers (weights) the graph
	// holds.
	Initializers int `json:"initializers"`
	// ExternalData lists, in order of first use, the files that the graph's
	// initializers keep their data in (TensorProto external_data
	// "location"), exactly as written in the model: relative to the model's
	// directory by the ONNX spec, but untrusted (they may be absolute or
	// climb out with ".."). Tensors inside node attributes are not looked at.
	ExternalData []string `json:"external_data,omitempty"`
}

// Opset is one OperatorSetIdProto.
type Opset struct {
	Domain  string `json:"domain"`
	Version int64  `json:"version"`
}

// Metadata is one entry of metadata_props.
type Metadata struct {
	Key   string `json:"key"`
	Value string `json:"value"`
	// Truncated says Value was cut at MaxString bytes.
	Truncated bool `json:"truncated,omitempty"`
}

// Kind is the kind of an ONNX type (TypeProto's oneof).
type Kind string

// Kinds of value.
const (
	KindTensor       Kind = "tensor"
	KindSparseTensor Kind = "sparse_tensor"
	KindSequence     Kind = "sequence"
	KindMap          Kind = "map"
	KindOptional     Kind = "optional"
	KindUnknown      Kind = "unknown" // no type, or one this decoder does not know
)

// Value is a graph input or output (ValueInfoProto).
type Value struct {
	Name string `json:"name"`
	Kind Kind   `json:"kind"`
	// Datatype is the element type of a tensor named as in the KServe Open
	// Inference Protocol v2 (FP32, INT64, BYTES...); types v2 has no name for
	// keep their ONNX name (COMPLEX64, FLOAT8E4M3FN...). Empty for non-tensors.
	Datatype string `json:"datatype,omitempty"`
	// ElemType is the ONNX TensorProto.DataType code of the elements.
	ElemType int32 `json:"elem_type,omitempty"`
	// RankKnown says the shape is known; Shape is then its dimensions (empty
	// for a scalar), -1 for a dimension of unknown or symbolic size.
	RankKnown bool    `json:"rank_known"`
	Shape     []int64 `json:"shape"`
	// DimParams holds the symbolic name of each dimension ("" for a fixed or
	// anonymous one); nil when no dimension is symbolic.
	DimParams []string `json:"dim_params,omitempty"`
	// Type is the full type for a non-tensor, e.g. "seq(map(INT64,FP32))".
	Type string `json:"type,omitempty"`
}

// DecodeError is what Read returns for a malformed or refused model. It
// matches ErrMalformed, ErrNotONNX or ErrLimit with errors.Is.
type DecodeError struct {
	Offset int64 // byte offset in the file where the problem was found
	Err    error // one of the sentinels
	Msg    string
}

func (e *DecodeError) Error() string {
	return fmt.Sprintf("%v at byte %d: %s", e.Err, e.Offset, e.Msg)
}

func (e *DecodeError) Unwrap() error { return e.Err }

// datatypes maps ONNX TensorProto.DataType codes (onnx.proto, enum DataType)
// to KServe v2 datatype names, or to the ONNX name where v2 has none.
var datatypes = map[int32]string{
	1:  "FP32",   // FLOAT
	2:  "UINT8",  // UINT8
	3:  "INT8",   // INT8
	4:  "UINT16", // UINT16
	5:  "INT16",  // INT16
	6:  "INT32",  // INT32
	7:  "INT64",  // INT64
	8:  "BYTES",  // STRING
	9:  "BOOL",   // BOOL
	10: "FP16",   // FLOAT16
	11: "FP64",   // DOUBLE
	12: "UINT32", // UINT32
	13: "UINT64", // UINT64
	14: "COMPLEX64",
	15: "COMPLEX128",
	16: "BF16", // BFLOAT16 (as Triton names it)
	17: "FLOAT8E4M3FN",
	18: "FLOAT8E4M3FNUZ",
	19: "FLOAT8E5M2",
	20: "FLOAT8E5M2FNUZ",
	21: "UINT4",
	22: "INT4",
	23: "FLOAT4E2M1",
}

// DatatypeName names the ONNX element type code t as Value.Datatype does.
func DatatypeName(t int32) string {
	if n, ok := datatypes[t]; ok {
		return n
	}
	if t == 0 {
		return "UNDEFINED"
	}
	return fmt.Sprintf("ONNX_TYPE_%d", t)
}

// typeString renders a (possibly nested) type for Value.Type.
func typeString(v *Value) string {
	switch v.Kind {
	case KindTensor, KindSparseTensor:
		return string(v.Kind) + "(" + v.Datatype + ")"
	default:
		if v.Type != "" {
			return v.Type
		}
		return string(v.Kind)
	}
}

// signatures of formats that are not ONNX, for a clear refusal.
var signatures = []struct {
	prefix, what string
}{
	{"PK\x03\x04", "a zip archive (a PyTorch, Keras or NumPy .npz file?)"},
	{"PK\x05\x06", "an empty zip archive"},
	{"\x1f\x8b", "a gzip file"},
	{"\x89HDF\r\n\x1a\n", "an HDF5 file (Keras .h5?)"},
	{"\x93NUMPY", "a NumPy .npy file"},
	{"GGUF", "a GGUF file"},
	{"\x80\x02", "a Python pickle"},
	{"\x80\x03", "a Python pickle"},
	{"\x80\x04", "a Python pickle"},
	{"\x80\x05", "a Python pickle"},
	{"{", "a JSON document"},
	{"<", "an XML or HTML document"},
}

// sniff names the format of a file that starts with head, or "".
func sniff(head []byte) string {
	for _, s := range signatures {
		if strings.HasPrefix(string(head), s.prefix) {
			return s.what
		}
	}
	// safetensors: an 8-byte little-endian header length, then JSON.
	if len(head) >= 10 && string(head[8:10]) == `{"` {
		return "a safetensors file"
	}
	if len(head) >= 262 && string(head[257:262]) == "ustar" {
		return "a tar archive"
	}
	return ""
}
