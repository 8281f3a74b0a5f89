//go:build !linux

package worker

import (
	"context"
	"errors"
	"io"
)

// Start refuses: workers are sandboxed with Linux features only, and a
// worker never runs unconfined.
func Start(context.Context, Spec, io.Writer) (*Process, error) {
	return nil, errors.New("model workers need Linux")
}
