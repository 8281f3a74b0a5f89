package inference

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// Error is a request the protocol refuses: Status is the HTTP status
// (400, 413, 422) and Msg a precise, client-safe explanation. The gRPC
// gateway maps Status with GRPCCode.
type Error struct {
	Status int
	Msg    string
}

func (e *Error) Error() string { return e.Msg }

func badRequest(format string, args ...any) *Error {
	return &Error{Status: http.StatusBadRequest, Msg: fmt.Sprintf(format, args...)}
}

func tooLarge(format string, args ...any) *Error {
	return &Error{Status: http.StatusRequestEntityTooLarge, Msg: fmt.Sprintf(format, args...)}
}

// StatusAndMessage is what a handler sends for err: an *Error's own status
// and message, otherwise 500 with a generic message (the caller logs err;
// its text never reaches the client).
func StatusAndMessage(err error) (int, string) {
	if e, ok := errors.AsType[*Error](err); ok {
		return e.Status, e.Msg
	}
	return http.StatusInternalServerError, "internal error"
}

// Limits bound what one request may ask of the server. A zero field takes
// its value from DefaultLimits, so the zero Limits is safe.
type Limits struct {
	// MaxBodyBytes bounds the whole request body (JSON header plus binary
	// data) and, for gRPC, the request's tensor bytes.
	MaxBodyBytes int64
	// MaxElements bounds the element count of all inputs together.
	MaxElements int64
	// MaxInputs and MaxOutputs bound the input tensors and the requested
	// outputs.
	MaxInputs, MaxOutputs int
	// MaxRank bounds the number of dimensions of an input's shape.
	MaxRank int
	// MaxJSONDepth bounds the nesting of JSON arrays and objects.
	MaxJSONDepth int
}

// DefaultLimits: 64 MiB bodies, 16 Mi elements (64 MiB of FP32), 64 inputs
// and outputs, rank 16, JSON nested 32 deep.
func DefaultLimits() Limits {
	return Limits{
		MaxBodyBytes: 64 << 20,
		MaxElements:  16 << 20,
		MaxInputs:    64,
		MaxOutputs:   64,
		MaxRank:      16,
		MaxJSONDepth: 32,
	}
}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	if l.MaxBodyBytes <= 0 {
		l.MaxBodyBytes = d.MaxBodyBytes
	}
	if l.MaxElements <= 0 {
		l.MaxElements = d.MaxElements
	}
	if l.MaxInputs <= 0 {
		l.MaxInputs = d.MaxInputs
	}
	if l.MaxOutputs <= 0 {
		l.MaxOutputs = d.MaxOutputs
	}
	if l.MaxRank <= 0 {
		l.MaxRank = d.MaxRank
	}
	if l.MaxJSONDepth <= 0 {
		l.MaxJSONDepth = d.MaxJSONDepth
	}
	return l
}

// formatShape writes a shape as the messages show it: [1,3,224,224].
func formatShape(shape []int64) string {
	var b strings.Builder
	b.WriteByte('[')
	for i, d := range shape {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.FormatInt(d, 10))
	}
	b.WriteByte(']')
	return b.String()
}

func itoa(i int) string { return strconv.Itoa(i) }

// asError is err as an *Error; the scanner only returns *Error, so the
// fallback is defensive.
func asError(err error) *Error {
	if e, ok := errors.AsType[*Error](err); ok {
		return e
	}
	return badRequest("%v", err)
}
