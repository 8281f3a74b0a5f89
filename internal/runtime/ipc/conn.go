package ipc

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
)

// Conn reads and writes frames on one stream. Writes are serialised by a
// mutex (one frame is one writev); reads must come from one goroutine.
type Conn struct {
	c        net.Conn
	r        *bufio.Reader
	maxFrame int

	wmu sync.Mutex
}

// NewConn wraps c (a *net.UnixConn, so that net.Buffers become writev).
// maxFrame ≤ 0 means DefaultMaxFrameBytes.
func NewConn(c net.Conn, maxFrame int) *Conn {
	if maxFrame <= 0 || maxFrame > maxFrameLimit {
		maxFrame = DefaultMaxFrameBytes
	}
	return &Conn{c: c, r: bufio.NewReaderSize(c, 64<<10), maxFrame: maxFrame}
}

// MaxFrame is the bound on frames this side writes and accepts.
func (c *Conn) MaxFrame() int { return c.maxFrame }

// Write sends one frame built by an Encode function.
func (c *Conn) Write(bufs net.Buffers) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if _, err := bufs.WriteTo(c.c); err != nil {
		return fmt.Errorf("write ipc frame: %w", err)
	}
	return nil
}

// Read reads the next frame into a buffer of its own. It returns io.EOF
// when the peer closed the stream between frames.
func (c *Conn) Read() (Frame, error) {
	var hdr [headerSize]byte
	if _, err := io.ReadFull(c.r, hdr[:]); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return Frame{}, fmt.Errorf("read ipc frame header: %w", err)
		}
		return Frame{}, err // io.EOF: a clean end
	}
	f, n, err := parseHeader(hdr[:], c.maxFrame)
	if err != nil {
		return Frame{}, err
	}
	f.Payload = make([]byte, n)
	if _, err := io.ReadFull(c.r, f.Payload); err != nil {
		return Frame{}, fmt.Errorf("read ipc %s frame: %w", f.Type, noEOF(err))
	}
	return f, nil
}

// parseHeader checks a frame header and returns the payload length.
func parseHeader(hdr []byte, maxFrame int) (Frame, int, error) {
	size := binary.LittleEndian.Uint32(hdr)
	f := Frame{Type: Type(hdr[4]), ID: binary.LittleEndian.Uint64(hdr[5:])}
	if size < 1+8 {
		return Frame{}, 0, fmt.Errorf("%w: frame length %d is shorter than its header", ErrMalformed, size)
	}
	if uint64(size) > uint64(maxFrame) { // #nosec G115 -- maxFrame is positive (NewConn)
		return Frame{}, 0, fmt.Errorf("%w: %d bytes, limit %d", ErrFrameTooLarge, size, maxFrame)
	}
	if f.Type < TypeHello || f.Type > TypeCancel {
		return Frame{}, 0, fmt.Errorf("%w: unknown frame type %d", ErrMalformed, uint8(f.Type))
	}
	return f, int(size) - 1 - 8, nil
}

// Close closes the underlying stream.
func (c *Conn) Close() error { return c.c.Close() }

func noEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}
