package artifact

import (
	"crypto/sha256"
	"encoding/hex"
)

// asyncHash computes SHA-256 in its own goroutine. SHA-256 and
// ChaCha20-Poly1305 cost about the same per byte, so hashing beside
// encryption (Put) or decryption (Open) makes a stream run at close to the
// speed of the slower of the two instead of their sum, on two cores or
// more. Write copies its input, so the caller may reuse its buffer at once;
// at most pipeDepth buffers of hashChunk bytes are in flight.
type asyncHash struct {
	free   chan []byte
	work   chan []byte
	sum    chan string
	result string
	done   bool
}

const (
	pipeDepth = 8
	hashChunk = 128 << 10 // 1 MiB in flight
)

func newAsyncHash() *asyncHash {
	a := &asyncHash{
		free: make(chan []byte, pipeDepth),
		work: make(chan []byte, pipeDepth),
		sum:  make(chan string, 1),
	}
	for range pipeDepth {
		a.free <- make([]byte, hashChunk)
	}
	go func() {
		h := sha256.New()
		for b := range a.work {
			h.Write(b)
			a.free <- b[:cap(b)]
		}
		a.sum <- hex.EncodeToString(h.Sum(nil))
	}()
	return a
}

// Write queues a copy of p for hashing. It must not be called after Sum.
func (a *asyncHash) Write(p []byte) {
	for len(p) > 0 {
		buf := <-a.free
		n := copy(buf, p)
		a.work <- buf[:n]
		p = p[n:]
	}
}

// Sum waits for everything written and returns the hex digest. It also
// stops the goroutine, so every asyncHash must end with a Sum; calling it
// again returns the same digest.
func (a *asyncHash) Sum() string {
	if !a.done {
		close(a.work)
		a.result = <-a.sum
		a.done = true
	}
	return a.result
}
