package ipc

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/rampart-ml/rampart/internal/tensor"
)

// ErrWorkerDied: the connection to the worker broke (it exited, was
// killed, or sent something malformed). Every call in flight and every
// later call gets it.
var ErrWorkerDied = errors.New("runtime worker died")

// ErrInvalidArgument: the worker refused a request as not fitting the
// model (wrong names, datatypes or shapes). A *RemoteError with
// CodeInvalidArgument matches it with errors.Is.
var ErrInvalidArgument = errors.New("invalid inference request")

// RemoteError is an error the worker reported for one request. Its
// message comes from the engine; it never contains tensor data.
type RemoteError struct {
	Code Code
	Msg  string
}

func (e *RemoteError) Error() string { return fmt.Sprintf("runtime worker: %s", e.Msg) }

// Is lets errors.Is(err, ErrInvalidArgument) classify a refusal.
func (e *RemoteError) Is(target error) bool {
	return target == ErrInvalidArgument && e.Code == CodeInvalidArgument
}

// reply is what the read loop hands a waiting call.
type reply struct {
	f   Frame
	err error
}

// Client is the supervisor's end of one worker connection. Its methods are
// safe for concurrent use.
type Client struct {
	conn *Conn
	meta Metadata

	nextID atomic.Uint64

	mu      sync.Mutex
	pending map[uint64]chan reply
	dead    error         // set once, under mu, when the read loop ends
	done    chan struct{} // closed when dead is set
}

// NewClient waits for the worker's hello (or its error, when it could not
// open the model), then serves replies in a goroutine. It gives up when
// ctx ends; the caller then closes conn (or kills the worker).
func NewClient(ctx context.Context, conn *Conn) (*Client, error) {
	type hello struct {
		m   Metadata
		err error
	}
	ch := make(chan hello, 1)
	go func() {
		f, err := conn.Read()
		if err != nil {
			ch <- hello{err: fmt.Errorf("%w: before its hello: %w", ErrWorkerDied, err)}
			return
		}
		switch f.Type {
		case TypeHello:
			m, err := DecodeHello(f.Payload)
			ch <- hello{m: m, err: err}
		case TypeError:
			re, err := DecodeError(f.Payload)
			if err == nil {
				err = re
			}
			ch <- hello{err: fmt.Errorf("runtime worker could not start: %w", err)}
		default:
			ch <- hello{err: fmt.Errorf("%w: %s frame before hello", ErrMalformed, f.Type)}
		}
	}()
	var h hello
	select {
	case h = <-ch:
	case <-ctx.Done():
		// The reading goroutine ends when the caller closes conn.
		return nil, fmt.Errorf("wait for runtime worker hello: %w", ctx.Err())
	}
	if h.err != nil {
		return nil, h.err
	}
	c := &Client{conn: conn, meta: h.m, pending: map[uint64]chan reply{}, done: make(chan struct{})}
	go c.readLoop()
	return c, nil
}

// Metadata is the model's metadata from the worker's hello.
func (c *Client) Metadata() Metadata { return c.meta }

// Done is closed when the connection broke; Err then says why.
func (c *Client) Done() <-chan struct{} { return c.done }

// Err is nil while the connection works, then an error matching
// ErrWorkerDied.
func (c *Client) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.dead
}

func (c *Client) readLoop() {
	for {
		f, err := c.conn.Read()
		if err != nil {
			c.fail(err)
			return
		}
		switch f.Type {
		case TypeResult, TypeError, TypePong:
		default:
			c.fail(fmt.Errorf("%w: unexpected %s frame", ErrMalformed, f.Type))
			return
		}
		c.mu.Lock()
		ch, ok := c.pending[f.ID]
		delete(c.pending, f.ID)
		c.mu.Unlock()
		// A reply to a request whose caller gave up is dropped.
		if ok {
			ch <- reply{f: f}
		}
	}
}

// fail marks the client dead and wakes every waiting call.
func (c *Client) fail(cause error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.dead != nil {
		return
	}
	c.dead = fmt.Errorf("%w: %w", ErrWorkerDied, cause)
	for id, ch := range c.pending {
		ch <- reply{err: c.dead}
		delete(c.pending, id)
	}
	close(c.done)
	_ = c.conn.Close()
}

// roundTrip registers id, sends the frame and waits for the reply, the
// caller's ctx or the worker's death, whichever comes first.
func (c *Client) roundTrip(ctx context.Context, id uint64, send func() error) (Frame, error) {
	ch := make(chan reply, 1)
	c.mu.Lock()
	if c.dead != nil {
		c.mu.Unlock()
		return Frame{}, c.dead
	}
	c.pending[id] = ch
	c.mu.Unlock()

	if err := send(); err != nil {
		c.forget(id)
		// A write that fails means the stream is broken for everyone.
		c.fail(err)
		return Frame{}, c.Err()
	}
	select {
	case r := <-ch:
		return r.f, r.err
	case <-ctx.Done():
		if c.forget(id) {
			// Tell the worker, so that a request still queued there is
			// skipped; best effort: a failure shows up in the read loop.
			_ = c.conn.Write(EncodeEmpty(TypeCancel, id))
		}
		return Frame{}, ctx.Err()
	}
}

// forget removes id from the pending calls; false if a reply or the
// worker's death already claimed it.
func (c *Client) forget(id uint64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.pending[id]
	delete(c.pending, id)
	return ok
}

// Infer runs the model on inputs and returns the outputs named (all of
// them, in the model's order, when outputs is empty). The tensors returned
// share one buffer per call. It returns ctx.Err() when ctx ends first (the
// connection stays usable), an error matching ErrWorkerDied when the worker
// is gone, and a *RemoteError when the worker refused or failed the
// request.
func (c *Client) Infer(ctx context.Context, inputs []tensor.Tensor, outputs []string) ([]tensor.Tensor, error) {
	id := c.nextID.Add(1)
	bufs, err := EncodeInfer(id, inputs, outputs, c.conn.MaxFrame())
	if err != nil {
		return nil, err
	}
	f, err := c.roundTrip(ctx, id, func() error { return c.conn.Write(bufs) })
	if err != nil {
		return nil, err
	}
	switch f.Type {
	case TypeResult:
		ts, err := DecodeResult(f.Payload)
		if err != nil {
			return nil, fmt.Errorf("runtime worker result: %w", err)
		}
		return ts, nil
	case TypeError:
		re, err := DecodeError(f.Payload)
		if err != nil {
			return nil, fmt.Errorf("runtime worker error: %w", err)
		}
		return nil, re
	}
	return nil, fmt.Errorf("%w: %s frame answers infer", ErrMalformed, f.Type)
}

// Ping checks that the worker answers.
func (c *Client) Ping(ctx context.Context) error {
	id := c.nextID.Add(1)
	f, err := c.roundTrip(ctx, id, func() error { return c.conn.Write(EncodeEmpty(TypePing, id)) })
	if err != nil {
		return err
	}
	if f.Type != TypePong {
		return fmt.Errorf("%w: %s frame answers ping", ErrMalformed, f.Type)
	}
	return nil
}

// Shutdown asks the worker to finish its requests in flight and exit;
// the connection then ends (Done). It does not wait.
func (c *Client) Shutdown() error {
	return c.conn.Write(EncodeEmpty(TypeShutdown, 0))
}

// Close breaks the connection: calls in flight get ErrWorkerDied, and the
// worker sees EOF and exits.
func (c *Client) Close() error {
	c.fail(errors.New("client closed"))
	return nil
}
