package artifact

import "io"

// writebackWindow is how much of a blob is written before the kernel is
// asked to start writing it to disk. Without it a large blob sits in the
// page cache as dirty pages (below the kernel's background threshold,
// often gigabytes) until the final fsync, which then waits for all of it:
// encryption and disk writes would add up instead of overlapping.
const writebackWindow = 8 << 20

// writeback passes writes through to f and, every writebackWindow bytes,
// starts the disk write of the window just completed and waits for the
// one before it. So the disk works while the next window is encrypted,
// dirty pages stay bounded at about two windows, and the closing fsync
// has little left to do. Where the operating system offers no such call
// (startWriteback is a no-op) it is a plain pass-through; it never
// replaces the fsync, which alone makes the blob durable.
type writeback struct {
	w       io.Writer
	fd      uintptr
	ok      bool  // fd is usable
	written int64 // bytes written
	flushed int64 // start of the window not yet handed to the kernel
}

// newWriteback wraps w; fd is w's file descriptor, if it has one.
func newWriteback(w io.Writer) *writeback {
	wb := &writeback{w: w}
	if f, ok := w.(interface{ Fd() uintptr }); ok {
		wb.fd, wb.ok = f.Fd(), true
	}
	return wb
}

func (wb *writeback) Write(p []byte) (int, error) {
	n, err := wb.w.Write(p)
	wb.written += int64(n)
	if err == nil && wb.ok && wb.written-wb.flushed >= writebackWindow {
		end := wb.written - wb.written%writebackWindow
		// Errors are ignored: this only schedules I/O early; the fsync
		// at the end reports any write failure.
		startWriteback(wb.fd, wb.flushed, end-wb.flushed)
		if prev := wb.flushed - writebackWindow; prev >= 0 {
			waitWriteback(wb.fd, prev, writebackWindow)
		}
		wb.flushed = end
	}
	return n, err
}
