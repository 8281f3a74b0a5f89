package modelarchive

import "crypto/sha256"

// asyncHash computes SHA-256 in its own goroutine, so that hashing a file
// while it is extracted overlaps with reading the upload and writing the
// file instead of adding to them. Write copies its input, so the caller
// may reuse its buffer at once; at most pipeDepth buffers of hashChunk
// bytes are in flight, whatever the file size.
type asyncHash struct {
	free   chan []byte
	work   chan []byte
	sum    chan [32]byte
	result [32]byte
	done   bool
}

const (
	pipeDepth = 4
	hashChunk = copyBufferSize // 1 MiB in flight
)

func newAsyncHash() *asyncHash {
	a := &asyncHash{
		free: make(chan []byte, pipeDepth),
		work: make(chan []byte, pipeDepth),
		sum:  make(chan [32]byte, 1),
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
		var d [32]byte
		h.Sum(d[:0])
		a.sum <- d
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

// Sum waits for everything written and returns the digest. It also stops
// the goroutine, so every asyncHash must end with a Sum; calling it again
// returns the same digest.
func (a *asyncHash) Sum() [32]byte {
	if !a.done {
		close(a.work)
		a.result = <-a.sum
		a.done = true
	}
	return a.result
}
