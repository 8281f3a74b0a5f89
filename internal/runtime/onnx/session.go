package onnx

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"sync"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/rampart-ml/rampart/internal/tensor"
)

// ErrRun: ONNX Runtime refused or failed to run the model on inputs that
// matched the model's declared inputs (for example a reshape that does not
// fit the given sizes). The wrapped message is ORT's.
var ErrRun = errors.New("onnx run failed")

// Options tune a session. The zero value is the serving default.
type Options struct {
	// IntraOpThreads is how many threads one Run may use inside an
	// operator; 0 means 1. Serving parallelises across requests
	// (goroutines, worker processes) instead, which scales better.
	IntraOpThreads int
	// InterOpThreads is how many threads run independent operators at
	// once; 0 means 1.
	InterOpThreads int
}

// Validate reports all problems with o at once.
func (o Options) Validate() error {
	var errs []error
	if o.IntraOpThreads < 0 {
		errs = append(errs, fmt.Errorf("IntraOpThreads is %d, want ≥ 0", o.IntraOpThreads))
	}
	if o.InterOpThreads < 0 {
		errs = append(errs, fmt.Errorf("InterOpThreads is %d, want ≥ 0", o.InterOpThreads))
	}
	return errors.Join(errs...)
}

// IO describes one input or output as ORT reports it.
type IO struct {
	Name     string
	Datatype tensor.Datatype
	// Shape has -1 for a dynamic dimension. Empty means a scalar or, for
	// models without shape information, an unknown rank (ORT does not
	// tell the two apart).
	Shape []int64
}

func (io IO) clone() IO { io.Shape = slices.Clone(io.Shape); return io }

// static reports whether every dimension is fixed (a scalar is).
func (io IO) static() bool {
	return !slices.ContainsFunc(io.Shape, func(d int64) bool { return d < 0 })
}

// Session is one loaded model. Its methods are safe for concurrent use; Run
// calls proceed in parallel (ORT sessions are thread-safe), Close waits for
// them.
type Session struct {
	mu      sync.RWMutex
	s       *ort.DynamicAdvancedSession // nil once closed
	inputs  []IO
	outputs []IO
	inIdx   map[string]int
	outIdx  map[string]int
	// skipped holds the model's outputs the session cannot return and so
	// never computes, with the reason.
	skipped map[string]error
}

// Open loads the model at modelPath. Loading by path lets ORT find external
// data files next to the model. The model is refused when it has no inputs,
// a non-tensor input or an input of an element type without a v2 datatype;
// outputs it cannot return (non-tensors such as scikit-learn's ZipMap
// probabilities; FP16 and BF16 outputs of a dynamic shape or scalars) are left out of
// Outputs and never computed.
func Open(modelPath string, o Options) (*Session, error) {
	s, err := load(o, modelLoader{
		info: func(opts *ort.SessionOptions) ([]ort.InputOutputInfo, []ort.InputOutputInfo, error) {
			return ort.GetInputOutputInfoWithOptions(modelPath, opts)
		},
		session: func(in, out []string, opts *ort.SessionOptions) (*ort.DynamicAdvancedSession, error) {
			return ort.NewDynamicAdvancedSession(modelPath, in, out, opts)
		},
	})
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", modelPath, err)
	}
	return s, nil
}

// OpenBytes loads a model from memory, as Open does from a file: for a
// process that was handed exactly the verified bytes. ORT cannot resolve
// external data files for such a model.
func OpenBytes(model []byte, o Options) (*Session, error) {
	if len(model) == 0 {
		return nil, errors.New("open model from memory: no bytes")
	}
	s, err := load(o, modelLoader{
		info: func(*ort.SessionOptions) ([]ort.InputOutputInfo, []ort.InputOutputInfo, error) {
			// The binding takes no options here; the throwaway session
			// uses ORT's defaults.
			return ort.GetInputOutputInfoWithONNXData(model)
		},
		session: func(in, out []string, opts *ort.SessionOptions) (*ort.DynamicAdvancedSession, error) {
			return ort.NewDynamicAdvancedSessionWithONNXData(model, in, out, opts)
		},
	})
	if err != nil {
		return nil, fmt.Errorf("open model from memory: %w", err)
	}
	return s, nil
}

// modelLoader reads a model's inputs and outputs, then makes its session,
// from wherever the model comes from.
type modelLoader struct {
	info    func(*ort.SessionOptions) ([]ort.InputOutputInfo, []ort.InputOutputInfo, error)
	session func(in, out []string, opts *ort.SessionOptions) (*ort.DynamicAdvancedSession, error)
}

func load(o Options, loader modelLoader) (*Session, error) {
	if !initialized() {
		return nil, ErrNotInitialized
	}
	if err := o.Validate(); err != nil {
		return nil, fmt.Errorf("onnx options: %w", err)
	}
	opts, err := sessionOptions(o)
	if err != nil {
		return nil, err
	}
	defer func() { _ = opts.Destroy() }()

	// The binding has no way to ask a session for its inputs and outputs,
	// so ORT loads the model once more for them.
	ins, outs, err := loader.info(opts)
	if err != nil {
		return nil, err
	}
	s := &Session{inIdx: map[string]int{}, outIdx: map[string]int{}, skipped: map[string]error{}}
	for _, in := range ins {
		io, err := tensorIO(in)
		if err != nil {
			return nil, fmt.Errorf("input %q: %w", in.Name, err)
		}
		s.inIdx[io.Name] = len(s.inputs)
		s.inputs = append(s.inputs, io)
	}
	for _, out := range outs {
		io, err := tensorIO(out)
		if err == nil && (!io.static() || len(io.Shape) == 0) && (io.Datatype == tensor.FP16 || io.Datatype == tensor.BF16) {
			// onnxruntime_go v1.27.0 copies an FP16/BF16 tensor that ORT
			// allocated at one byte per element and then fails; only a
			// fixed, non-scalar shape lets the session allocate the output
			// itself.
			err = fmt.Errorf("%w: %s output of shape %v (only fixed shapes of rank ≥ 1)", ErrUnsupported, io.Datatype, io.Shape)
		}
		if err != nil {
			s.skipped[out.Name] = err
			continue
		}
		s.outIdx[io.Name] = len(s.outputs)
		s.outputs = append(s.outputs, io)
	}
	// The binding indexes the first input and output unchecked.
	if len(s.inputs) == 0 {
		return nil, fmt.Errorf("%w: the model has no inputs", ErrUnsupported)
	}
	if len(s.outputs) == 0 {
		return nil, fmt.Errorf("%w: the model has no tensor outputs", ErrUnsupported)
	}
	if s.s, err = loader.session(names(s.inputs), names(s.outputs), opts); err != nil {
		return nil, err
	}
	return s, nil
}

func sessionOptions(o Options) (*ort.SessionOptions, error) {
	opts, err := ort.NewSessionOptions()
	if err != nil {
		return nil, fmt.Errorf("session options: %w", err)
	}
	intra, inter := max(o.IntraOpThreads, 1), max(o.InterOpThreads, 1)
	err = errors.Join(
		opts.SetIntraOpNumThreads(intra),
		opts.SetInterOpNumThreads(inter),
		// Spinning threads burn CPU between requests and steal it from
		// the other sessions of a busy server.
		opts.AddSessionConfigEntry("session.intra_op.allow_spinning", "0"),
		opts.AddSessionConfigEntry("session.inter_op.allow_spinning", "0"),
	)
	if err != nil {
		_ = opts.Destroy()
		return nil, fmt.Errorf("session options: %w", err)
	}
	return opts, nil
}

func tensorIO(info ort.InputOutputInfo) (IO, error) {
	if info.OrtValueType != ort.ONNXTypeTensor {
		return IO{}, fmt.Errorf("%w: it is a %s, not a tensor", ErrUnsupported, info.OrtValueType)
	}
	dt, err := datatypeOf(info.DataType)
	if err != nil {
		return IO{}, err
	}
	shape := make([]int64, len(info.Dimensions))
	for i, d := range info.Dimensions {
		shape[i] = max(d, -1)
	}
	return IO{Name: info.Name, Datatype: dt, Shape: shape}, nil
}

func names(ios []IO) []string {
	n := make([]string, len(ios))
	for i, io := range ios {
		n[i] = io.Name
	}
	return n
}

// Inputs returns the model's inputs in ORT's order.
func (s *Session) Inputs() []IO { return cloneIOs(s.inputs) }

// Outputs returns the model's tensor outputs in ORT's order.
func (s *Session) Outputs() []IO { return cloneIOs(s.outputs) }

func cloneIOs(ios []IO) []IO {
	c := make([]IO, len(ios))
	for i, io := range ios {
		c[i] = io.clone()
	}
	return c
}

// Close releases the session after in-flight Runs finish. Later calls to Run
// fail with ErrClosed; closing twice is harmless.
func (s *Session) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.s == nil {
		return nil
	}
	err := s.s.Destroy()
	s.s = nil
	if err != nil {
		return fmt.Errorf("close onnx session: %w", err)
	}
	return nil
}

// Run runs the model. inputs must name every model input exactly once, with
// its datatype, rank and fixed dimensions; outputs names the outputs wanted,
// in the order returned (empty: all, in Outputs order). Every tensor output
// is computed either way: the binding fixes the output list per session.
//
// Datatypes: all v2 datatypes, except (ErrUnsupported; limits of the
// binding) BYTES (ONNX string) elements containing a NUL byte, FP16, BF16
// and BYTES scalar inputs (shape []), and FP16/BF16 outputs of a dynamic
// shape or scalars (see Open). Errors wrap ErrInput, ErrOutput, ErrUnsupported,
// tensor.ErrShape/ErrDataSize (checked before ORT sees anything), ErrRun
// (ORT failed) or ErrClosed.
func (s *Session) Run(inputs []tensor.Tensor, outputs []string) ([]tensor.Tensor, error) {
	return s.RunContext(context.Background(), inputs, outputs)
}

// RunContext is Run, stopped early when ctx ends: ORT is asked to terminate
// the run, which it does between operators. The error then wraps ctx.Err()
// as well as ErrRun.
func (s *Session) RunContext(ctx context.Context, inputs []tensor.Tensor, outputs []string) ([]tensor.Tensor, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.s == nil {
		return nil, ErrClosed
	}
	want, err := s.selectOutputs(outputs)
	if err != nil {
		return nil, err
	}

	var pin runtime.Pinner
	defer pin.Unpin()
	in := make([]ort.Value, len(s.inputs))
	defer destroyAll(in)
	for _, t := range inputs {
		i, ok := s.inIdx[t.Name]
		if !ok {
			return nil, fmt.Errorf("%w: the model has no input %q (it has %s)", ErrInput, t.Name, strings.Join(names(s.inputs), ", "))
		}
		if in[i] != nil {
			return nil, fmt.Errorf("%w: input %q given twice", ErrInput, t.Name)
		}
		if in[i], err = newInputValue(s.inputs[i], t, &pin); err != nil {
			return nil, err
		}
	}
	var missing []string
	for i, v := range in {
		if v == nil {
			missing = append(missing, s.inputs[i].Name)
		}
	}
	if missing != nil {
		return nil, fmt.Errorf("%w: missing %s", ErrInput, strings.Join(missing, ", "))
	}

	out := make([]ort.Value, len(s.outputs))
	defer destroyAll(out)
	// Outputs of a fixed shape are allocated here for ORT to write into:
	// no copy at all.
	for i, io := range s.outputs {
		if io.static() {
			if out[i], err = newOutputValue(io.Datatype, io.Shape, &pin); err != nil {
				return nil, fmt.Errorf("output %q: %w", io.Name, err)
			}
		}
	}
	if err := s.run(ctx, in, out); err != nil {
		return nil, err
	}

	res := make([]tensor.Tensor, len(want))
	for k, i := range want {
		if res[k], err = toTensor(s.outputs[i], out[i]); err != nil {
			return nil, fmt.Errorf("output %q: %w", s.outputs[i].Name, err)
		}
	}
	return res, nil
}

// run runs ORT, terminating it when ctx ends.
func (s *Session) run(ctx context.Context, in, out []ort.Value) error {
	if ctx.Done() == nil {
		// Never cancelled: skip the run options (a C allocation).
		if err := s.s.Run(in, out); err != nil {
			return fmt.Errorf("%w: %w", ErrRun, err)
		}
		return nil
	}
	ro, err := ort.NewRunOptions()
	if err != nil {
		return fmt.Errorf("run options: %w", err)
	}
	defer func() { _ = ro.Destroy() }()
	// The binding's RunOptions has no lock of its own; termination may
	// race Destroy, so both go through mu.
	var mu sync.Mutex
	done := false
	stop := context.AfterFunc(ctx, func() {
		mu.Lock()
		defer mu.Unlock()
		if !done {
			_ = ro.Terminate()
		}
	})
	err = s.s.RunWithOptions(in, out, ro)
	stop()
	// Waits for a Terminate in progress; a later one sees done.
	mu.Lock()
	done = true
	mu.Unlock()
	if err != nil {
		if cerr := ctx.Err(); cerr != nil {
			return fmt.Errorf("%w: %w: %w", ErrRun, cerr, err)
		}
		return fmt.Errorf("%w: %w", ErrRun, err)
	}
	return nil
}

func (s *Session) selectOutputs(outputs []string) ([]int, error) {
	if len(outputs) == 0 {
		all := make([]int, len(s.outputs))
		for i := range all {
			all[i] = i
		}
		return all, nil
	}
	want := make([]int, len(outputs))
	for k, name := range outputs {
		i, ok := s.outIdx[name]
		if !ok {
			if err, skipped := s.skipped[name]; skipped {
				return nil, fmt.Errorf("output %q: %w", name, err)
			}
			return nil, fmt.Errorf("%w %q (the model has %s)", ErrOutput, name, strings.Join(names(s.outputs), ", "))
		}
		want[k] = i
	}
	return want, nil
}

// destroyAll releases every value. After a failed Run the binding can leave
// typed nil pointers in the slice, which must not be called.
func destroyAll(vs []ort.Value) {
	for _, v := range vs {
		if !isNil(v) {
			_ = v.Destroy()
		}
	}
}

func isNil(v ort.Value) bool {
	if v == nil {
		return true
	}
	rv := reflect.ValueOf(v)
	return rv.Kind() == reflect.Pointer && rv.IsNil()
}
