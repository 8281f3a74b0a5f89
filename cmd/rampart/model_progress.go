package main

// The progress display of model uploads and downloads: a live line on a
// terminal, a single final line otherwise (CI logs, pipes).

import (
	"fmt"
	"io"
	"sync"
	"time"
)

// progressRedraw is the least time between two redraws of the live line.
const progressRedraw = 100 * time.Millisecond

// progress counts bytes through reader. It is safe for concurrent use:
// an HTTP transport reads a request body on its own goroutine.
type progress struct {
	w    io.Writer
	verb string // "uploaded", "downloaded"
	live bool

	mu    sync.Mutex
	total int64 // -1 or 0: unknown
	n     int64
	start time.Time
	drawn time.Time
}

func newProgress(w io.Writer, verb string, total int64, live bool) *progress {
	return &progress{w: w, verb: verb, live: live, total: total, start: time.Now()}
}

// reset starts over (a request sent again after a token refresh).
func (p *progress) reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.n, p.start = 0, time.Now()
}

func (p *progress) reader(r io.Reader) io.Reader { return &progressReader{r: r, p: p} }

type progressReader struct {
	r io.Reader
	p *progress
}

func (pr *progressReader) Read(b []byte) (int, error) {
	n, err := pr.r.Read(b)
	pr.p.add(int64(n))
	return n, err
}

func (p *progress) add(n int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.n += n
	if !p.live {
		return
	}
	if now := time.Now(); now.Sub(p.drawn) >= progressRedraw {
		p.drawn = now
		fmt.Fprintf(p.w, "\r\x1b[K%s", p.line(now))
	}
}

// finish ends the display: the live line is replaced by the final one;
// without a terminal only the final line is written, and only on success
// (a failure is reported by the command's error).
func (p *progress) finish(ok bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.live {
		fmt.Fprint(p.w, "\r\x1b[K")
	}
	if ok {
		fmt.Fprintln(p.w, p.line(time.Now()))
	}
}

// line is "uploaded 12.0 MiB / 40.0 MiB (30%), 8.1 MiB/s"; the caller
// holds mu.
func (p *progress) line(now time.Time) string {
	s := p.verb + " " + formatBytes(p.n)
	if p.total > 0 {
		pct := min(100, p.n*100/p.total)
		s += fmt.Sprintf(" / %s (%d%%)", formatBytes(p.total), pct)
	}
	if d := now.Sub(p.start); d > 0 {
		s += fmt.Sprintf(" in %.1fs, %s/s", d.Seconds(), formatBytes(int64(float64(p.n)/d.Seconds())))
	}
	return s
}

// formatBytes writes n in binary units, one decimal.
func formatBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 4; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTP"[exp])
}
