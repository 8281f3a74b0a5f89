package inference

import (
	"errors"
	"fmt"

	"github.com/rampart-ml/rampart/internal/onnxmeta"
	"github.com/rampart-ml/rampart/internal/tensor"
)

// ErrUnsupported: a model input or output the protocol cannot carry (a
// sequence, a map, a datatype v2 has no name for).
var ErrUnsupported = errors.New("not servable over the Open Inference Protocol v2")

// SignatureFromONNX is the Signature of an ONNX model from its metadata
// (onnxmeta.Read). An input or output that is not a tensor of a v2
// datatype is ErrUnsupported: such a model cannot be served.
func SignatureFromONNX(m onnxmeta.Model) (Signature, error) {
	var sig Signature
	var err error
	if sig.Inputs, err = iosFromONNX("input", m.Inputs); err != nil {
		return Signature{}, err
	}
	if sig.Outputs, err = iosFromONNX("output", m.Outputs); err != nil {
		return Signature{}, err
	}
	return sig, nil
}

func iosFromONNX(what string, vals []onnxmeta.Value) ([]IO, error) {
	ios := make([]IO, len(vals))
	for i, v := range vals {
		if v.Kind != onnxmeta.KindTensor {
			return nil, fmt.Errorf("%s %q is a %s: %w", what, v.Name, v.Kind, ErrUnsupported)
		}
		dt, err := tensor.ParseDatatype(v.Datatype)
		if err != nil {
			return nil, fmt.Errorf("%s %q has element type %s: %w", what, v.Name, v.Datatype, ErrUnsupported)
		}
		ios[i] = IO{Name: v.Name, Datatype: dt}
		if v.RankKnown {
			ios[i].Shape = append([]int64{}, v.Shape...)
		}
	}
	return ios, nil
}
