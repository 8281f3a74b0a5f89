package ipc

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"net"

	"github.com/rampart-ml/rampart/internal/tensor"
)

// Type is a frame's type.
type Type uint8

// The frame types. Hello carries the model's metadata (worker → client,
// request id 0); Error answers a request (or, with id 0, replaces Hello
// when the worker cannot open its model).
const (
	TypeHello    Type = 1 // worker → client: Metadata
	TypeInfer    Type = 2 // client → worker: inputs and requested output names
	TypeResult   Type = 3 // worker → client: output tensors
	TypeError    Type = 4 // worker → client: code and message
	TypePing     Type = 5 // client → worker: empty
	TypePong     Type = 6 // worker → client: empty
	TypeShutdown Type = 7 // client → worker: finish in-flight requests, then exit
	TypeCancel   Type = 8 // client → worker: the caller gave up on this request id
)

func (t Type) String() string {
	switch t {
	case TypeHello:
		return "hello"
	case TypeInfer:
		return "infer"
	case TypeResult:
		return "result"
	case TypeError:
		return "error"
	case TypePing:
		return "ping"
	case TypePong:
		return "pong"
	case TypeShutdown:
		return "shutdown"
	case TypeCancel:
		return "cancel"
	}
	return fmt.Sprintf("Type(%d)", uint8(t))
}

// Wire limits. A name or a rank above these is malformed, not merely
// large: no real model needs them, and they bound the decoder's work.
const (
	headerSize  = 4 + 1 + 8
	maxNameLen  = 1024
	MaxRank     = 32
	maxTensors  = 4096
	maxErrorLen = 4096
	// DefaultMaxFrameBytes bounds a frame when Options leave it zero.
	DefaultMaxFrameBytes = 256 << 20
	// maxFrameLimit is the largest bound a u32 length can express.
	maxFrameLimit = math.MaxUint32
)

// ErrMalformed: a frame or a tensor in it does not follow the wire format.
var ErrMalformed = errors.New("malformed ipc frame")

// ErrFrameTooLarge: a frame exceeds the configured bound.
var ErrFrameTooLarge = errors.New("ipc frame too large")

// Frame is one decoded frame. Payload is owned by the frame (one buffer per
// frame); tensors decoded from it alias it.
type Frame struct {
	Type    Type
	ID      uint64
	Payload []byte
}

// TensorSpec describes one model input or output; -1 is a dynamic
// dimension.
type TensorSpec struct {
	Name     string
	Datatype tensor.Datatype
	Shape    []int64
}

// Metadata is what a worker says about its model once it has opened it.
type Metadata struct {
	Inputs  []TensorSpec
	Outputs []TensorSpec
}

// encoder builds a frame as net.Buffers: small fields go into one growing
// scratch slice, large tensor data are appended as their own buffers so
// writev sends them from where they are.
type encoder struct {
	bufs    net.Buffers
	scratch []byte
	start   int // start of the scratch not yet appended to bufs
	size    int // total bytes after the length field
}

// bigData is the size from which tensor data gets its own iovec instead of
// being copied into the scratch buffer.
const bigData = 4 << 10

func newEncoder(t Type, id uint64) *encoder {
	e := &encoder{scratch: make([]byte, 0, 256)}
	e.scratch = binary.LittleEndian.AppendUint32(e.scratch, 0) // patched in finish
	e.scratch = append(e.scratch, byte(t))
	e.scratch = binary.LittleEndian.AppendUint64(e.scratch, id)
	e.size = 1 + 8
	return e
}

func (e *encoder) u8(v uint8) { e.scratch = append(e.scratch, v); e.size++ }
func (e *encoder) u16(v uint16) {
	e.scratch = binary.LittleEndian.AppendUint16(e.scratch, v)
	e.size += 2
}
func (e *encoder) u32(v uint32) {
	e.scratch = binary.LittleEndian.AppendUint32(e.scratch, v)
	e.size += 4
}
func (e *encoder) u64(v uint64) {
	e.scratch = binary.LittleEndian.AppendUint64(e.scratch, v)
	e.size += 8
}

func (e *encoder) bytes(b []byte) {
	if len(b) < bigData {
		e.scratch = append(e.scratch, b...)
		e.size += len(b)
		return
	}
	// Flush the scratch so far, then reference b without copying. The
	// scratch is never appended to again in place (cut off its capacity) so
	// the slice already in bufs stays intact.
	e.bufs = append(e.bufs, e.scratch[e.start:len(e.scratch):len(e.scratch)], b)
	e.scratch = e.scratch[len(e.scratch):len(e.scratch):len(e.scratch)]
	e.start = 0
	e.size += len(b)
}

func (e *encoder) name(s string) error {
	if len(s) > maxNameLen {
		return fmt.Errorf("%w: name of %d bytes exceeds %d", ErrMalformed, len(s), maxNameLen)
	}
	e.u16(uint16(len(s))) // #nosec G115 -- bounded by maxNameLen
	e.scratch = append(e.scratch, s...)
	e.size += len(s)
	return nil
}

func (e *encoder) spec(name string, dt tensor.Datatype, shape []int64) error {
	if err := e.name(name); err != nil {
		return err
	}
	if len(shape) > MaxRank {
		return fmt.Errorf("%w: tensor %q has rank %d, more than %d", ErrMalformed, name, len(shape), MaxRank)
	}
	e.u8(uint8(dt))
	e.u8(uint8(len(shape))) // #nosec G115 -- bounded by MaxRank
	for _, d := range shape {
		e.u64(uint64(d)) // #nosec G115 -- two's complement round trip; -1 marks a dynamic dimension
	}
	return nil
}

func (e *encoder) tensors(ts []tensor.Tensor) error {
	if len(ts) > maxTensors {
		return fmt.Errorf("%w: %d tensors, more than %d", ErrMalformed, len(ts), maxTensors)
	}
	e.u32(uint32(len(ts))) // #nosec G115 -- bounded by maxTensors
	for _, t := range ts {
		if err := t.Validate(); err != nil {
			return err
		}
		if err := e.spec(t.Name, t.Datatype, t.Shape); err != nil {
			return err
		}
		e.u64(uint64(len(t.Data)))
		e.bytes(t.Data)
	}
	return nil
}

func (e *encoder) names(ns []string) error {
	if len(ns) > maxTensors {
		return fmt.Errorf("%w: %d names, more than %d", ErrMalformed, len(ns), maxTensors)
	}
	e.u32(uint32(len(ns))) // #nosec G115 -- bounded by maxTensors
	for _, n := range ns {
		if err := e.name(n); err != nil {
			return err
		}
	}
	return nil
}

// finish patches the length and returns the buffers to write; it checks
// the frame against maxFrame.
func (e *encoder) finish(maxFrame int) (net.Buffers, error) {
	if e.size > maxFrame {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrFrameTooLarge, e.size, maxFrame)
	}
	bufs := e.bufs
	if len(bufs) > 0 {
		binary.LittleEndian.PutUint32(bufs[0], uint32(e.size)) // #nosec G115 -- bounded by maxFrame ≤ MaxUint32
	} else {
		binary.LittleEndian.PutUint32(e.scratch, uint32(e.size)) // #nosec G115 -- bounded by maxFrame ≤ MaxUint32
	}
	if len(e.scratch) > e.start {
		bufs = append(bufs, e.scratch[e.start:])
	}
	return bufs, nil
}

// decoder reads fields from one frame's payload; every read is bounds
// checked and the first failure sticks.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: "+format, append([]any{ErrMalformed}, args...)...)
	}
}

func (d *decoder) take(n uint64, what string) []byte {
	if d.err != nil {
		return nil
	}
	if n > uint64(len(d.b)) {
		d.fail("%s needs %d bytes, %d left", what, n, len(d.b))
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}

func (d *decoder) u8(what string) uint8 {
	if b := d.take(1, what); b != nil {
		return b[0]
	}
	return 0
}

func (d *decoder) u16(what string) uint16 {
	if b := d.take(2, what); b != nil {
		return binary.LittleEndian.Uint16(b)
	}
	return 0
}

func (d *decoder) u32(what string) uint32 {
	if b := d.take(4, what); b != nil {
		return binary.LittleEndian.Uint32(b)
	}
	return 0
}

func (d *decoder) u64(what string) uint64 {
	if b := d.take(8, what); b != nil {
		return binary.LittleEndian.Uint64(b)
	}
	return 0
}

func (d *decoder) name() string {
	n := d.u16("name length")
	if n > maxNameLen {
		d.fail("name of %d bytes exceeds %d", n, maxNameLen)
		return ""
	}
	return string(d.take(uint64(n), "name"))
}

func (d *decoder) count(what string) int {
	n := d.u32(what)
	if n > maxTensors {
		d.fail("%d %s, more than %d", n, what, maxTensors)
		return 0
	}
	return int(n)
}

func (d *decoder) spec(dynamic bool) TensorSpec {
	var s TensorSpec
	s.Name = d.name()
	s.Datatype = tensor.Datatype(d.u8("datatype"))
	rank := d.u8("rank")
	if d.err != nil {
		return s
	}
	if !s.Datatype.Valid() {
		d.fail("tensor %q: datatype %d", s.Name, uint8(s.Datatype))
		return s
	}
	if rank > MaxRank {
		d.fail("tensor %q: rank %d exceeds %d", s.Name, rank, MaxRank)
		return s
	}
	s.Shape = make([]int64, rank)
	for i := range s.Shape {
		v := int64(d.u64("dimension")) // #nosec G115 -- two's complement round trip
		if v < 0 && !(dynamic && v == -1) {
			d.fail("tensor %q: dimension %d is %d", s.Name, i, v)
			return s
		}
		s.Shape[i] = v
	}
	return s
}

func (d *decoder) tensors() []tensor.Tensor {
	n := d.count("tensors")
	out := make([]tensor.Tensor, 0, min(n, 64))
	for range n {
		s := d.spec(false)
		size := d.u64("data length")
		data := d.take(size, "tensor data")
		if d.err != nil {
			return nil
		}
		t := tensor.Tensor{Name: s.Name, Datatype: s.Datatype, Shape: s.Shape, Data: data}
		if err := t.Validate(); err != nil {
			d.fail("%v", err)
			return nil
		}
		out = append(out, t)
	}
	return out
}

func (d *decoder) names() []string {
	n := d.count("names")
	out := make([]string, 0, min(n, 64))
	for range n {
		s := d.name()
		if d.err != nil {
			return nil
		}
		out = append(out, s)
	}
	return out
}

func (d *decoder) end() error {
	if d.err == nil && len(d.b) != 0 {
		d.fail("%d trailing bytes", len(d.b))
	}
	return d.err
}

// EncodeInfer builds an infer frame.
func EncodeInfer(id uint64, inputs []tensor.Tensor, outputs []string, maxFrame int) (net.Buffers, error) {
	e := newEncoder(TypeInfer, id)
	if err := e.tensors(inputs); err != nil {
		return nil, fmt.Errorf("encode inputs: %w", err)
	}
	if err := e.names(outputs); err != nil {
		return nil, fmt.Errorf("encode output names: %w", err)
	}
	return e.finish(maxFrame)
}

// DecodeInfer parses an infer frame's payload.
func DecodeInfer(p []byte) (inputs []tensor.Tensor, outputs []string, err error) {
	d := decoder{b: p}
	inputs = d.tensors()
	outputs = d.names()
	if err := d.end(); err != nil {
		return nil, nil, err
	}
	return inputs, outputs, nil
}

// EncodeResult builds a result frame.
func EncodeResult(id uint64, outputs []tensor.Tensor, maxFrame int) (net.Buffers, error) {
	e := newEncoder(TypeResult, id)
	if err := e.tensors(outputs); err != nil {
		return nil, fmt.Errorf("encode outputs: %w", err)
	}
	return e.finish(maxFrame)
}

// DecodeResult parses a result frame's payload.
func DecodeResult(p []byte) ([]tensor.Tensor, error) {
	d := decoder{b: p}
	ts := d.tensors()
	if err := d.end(); err != nil {
		return nil, err
	}
	return ts, nil
}

// EncodeHello builds a hello frame carrying the model's metadata.
func EncodeHello(m Metadata, maxFrame int) (net.Buffers, error) {
	e := newEncoder(TypeHello, 0)
	for _, list := range [][]TensorSpec{m.Inputs, m.Outputs} {
		if len(list) > maxTensors {
			return nil, fmt.Errorf("%w: %d tensors, more than %d", ErrMalformed, len(list), maxTensors)
		}
		e.u32(uint32(len(list))) // #nosec G115 -- bounded by maxTensors
		for _, s := range list {
			if err := e.spec(s.Name, s.Datatype, s.Shape); err != nil {
				return nil, err
			}
		}
	}
	return e.finish(maxFrame)
}

// DecodeHello parses a hello frame's payload.
func DecodeHello(p []byte) (Metadata, error) {
	d := decoder{b: p}
	var m Metadata
	for _, list := range []*[]TensorSpec{&m.Inputs, &m.Outputs} {
		n := d.count("tensor specs")
		for range n {
			s := d.spec(true)
			if d.err != nil {
				break
			}
			*list = append(*list, s)
		}
	}
	if err := d.end(); err != nil {
		return Metadata{}, err
	}
	return m, nil
}

// Code classifies an error the worker reports.
type Code uint16

// Error codes.
const (
	CodeInternal        Code = 1 // the engine failed
	CodeInvalidArgument Code = 2 // the request does not fit the model
	CodeCanceled        Code = 3 // the request was cancelled before it ran
	CodeUnavailable     Code = 4 // the worker is shutting down or could not open its model
)

// EncodeError builds an error frame; long messages are cut.
func EncodeError(id uint64, code Code, msg string) net.Buffers {
	if len(msg) > maxErrorLen {
		msg = msg[:maxErrorLen]
	}
	e := newEncoder(TypeError, id)
	e.u16(uint16(code))
	e.u16(uint16(len(msg))) // #nosec G115 -- bounded by maxErrorLen
	e.scratch = append(e.scratch, msg...)
	e.size += len(msg)
	bufs, _ := e.finish(maxFrameLimit)
	return bufs
}

// DecodeError parses an error frame's payload.
func DecodeError(p []byte) (*RemoteError, error) {
	d := decoder{b: p}
	code := Code(d.u16("error code"))
	n := d.u16("message length")
	if n > maxErrorLen {
		d.fail("error message of %d bytes exceeds %d", n, maxErrorLen)
	}
	msg := string(d.take(uint64(n), "error message"))
	if err := d.end(); err != nil {
		return nil, err
	}
	return &RemoteError{Code: code, Msg: msg}, nil
}

// EncodeEmpty builds a frame without payload (ping, pong, shutdown, cancel).
func EncodeEmpty(t Type, id uint64) net.Buffers {
	bufs, _ := newEncoder(t, id).finish(maxFrameLimit)
	return bufs
}
