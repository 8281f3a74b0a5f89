package ipc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/rampart-ml/rampart/internal/tensor"
)

// Handler runs one inference in the worker. ctx ends when the client
// cancels the request or the connection ends.
type Handler func(ctx context.Context, inputs []tensor.Tensor, outputs []string) ([]tensor.Tensor, error)

// StatusError lets a Handler choose the code the client sees; any other
// error is CodeInternal.
type StatusError struct {
	Code Code
	Err  error
}

func (e *StatusError) Error() string { return e.Err.Error() }
func (e *StatusError) Unwrap() error { return e.Err }

// Serve answers frames on conn (after the caller sent the hello) with at
// most maxConcurrent handlers running at once; further requests wait for a
// slot (or their cancellation). It returns nil after a shutdown frame once
// the requests in flight are answered; nil on EOF and an error when the
// stream breaks or the client sends something malformed, in both cases at
// once, leaving cancelled handlers behind (the worker then exits).
func Serve(conn *Conn, h Handler, maxConcurrent int) error {
	if maxConcurrent < 1 {
		maxConcurrent = 1
	}
	ctx, cancelAll := context.WithCancel(context.Background())
	var (
		wg      sync.WaitGroup
		slots   = make(chan struct{}, maxConcurrent)
		mu      sync.Mutex
		cancels = map[uint64]context.CancelFunc{}
		werr    error // the first write failure
	)
	reply := func(id uint64, outs []tensor.Tensor, err error) {
		var out error
		if err == nil {
			bufs, encErr := EncodeResult(id, outs, conn.MaxFrame())
			if encErr == nil {
				out = conn.Write(bufs)
			} else {
				err = &StatusError{Code: CodeInternal, Err: encErr}
			}
		}
		if err != nil {
			code := CodeInternal
			var se *StatusError
			switch {
			case errors.As(err, &se):
				code = se.Code
			case errors.Is(err, context.Canceled):
				code = CodeCanceled
			}
			out = conn.Write(EncodeError(id, code, err.Error()))
		}
		if out != nil {
			mu.Lock()
			if werr == nil {
				werr = out
			}
			mu.Unlock()
			_ = conn.Close() // wakes the read loop
		}
	}
	shutdown, err := serveLoop(conn, func(f Frame) {
		switch f.Type {
		case TypeCancel:
			mu.Lock()
			if cancel, ok := cancels[f.ID]; ok {
				cancel()
			}
			mu.Unlock()
		case TypeInfer:
			inputs, outputs, err := DecodeInfer(f.Payload)
			if err != nil {
				// The frame was read whole, so the stream is still in
				// step: refuse this request only.
				reply(f.ID, nil, &StatusError{Code: CodeInvalidArgument, Err: err})
				return
			}
			rctx, cancel := context.WithCancel(ctx)
			mu.Lock()
			cancels[f.ID] = cancel
			mu.Unlock()
			wg.Add(1)
			go func(id uint64) {
				defer wg.Done()
				defer func() {
					mu.Lock()
					delete(cancels, id)
					mu.Unlock()
					cancel()
				}()
				// Wait for a slot here, not in the read loop: the loop
				// keeps reading, so a request cancelled while queued is
				// dropped and the client's writes never stall behind a
				// busy engine. The supervisor bounds how many it sends.
				select {
				case slots <- struct{}{}:
				case <-rctx.Done():
					reply(id, nil, rctx.Err())
					return
				}
				defer func() { <-slots }()
				if rctx.Err() != nil {
					reply(id, nil, rctx.Err())
					return
				}
				outs, err := h(rctx, inputs, outputs)
				reply(id, outs, err)
			}(f.ID)
		}
	})
	// After a shutdown frame the requests in flight are answered. On EOF
	// or a broken stream nobody waits for the answers: cancel them and
	// return at once, so that a worker whose engine ignores its context
	// still exits.
	if shutdown {
		wg.Wait()
	}
	cancelAll()
	mu.Lock()
	defer mu.Unlock()
	if err == nil || werr == nil {
		return err
	}
	return werr
}

// serveLoop reads frames, answers pings itself and hands infer and cancel
// frames to handle. It returns (true, nil) after a shutdown frame, (false,
// nil) on EOF.
func serveLoop(conn *Conn, handle func(Frame)) (bool, error) {
	for {
		f, err := conn.Read()
		if errors.Is(err, io.EOF) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		switch f.Type {
		case TypePing:
			if err := conn.Write(EncodeEmpty(TypePong, f.ID)); err != nil {
				return false, err
			}
		case TypeShutdown:
			return true, nil
		case TypeCancel, TypeInfer:
			handle(f)
		default:
			return false, fmt.Errorf("%w: unexpected %s frame", ErrMalformed, f.Type)
		}
	}
}
