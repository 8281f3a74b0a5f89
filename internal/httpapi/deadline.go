package httpapi

import (
	"io"
	"net/http"
	"time"
)

// Streams longer than the server's ReadTimeout/WriteTimeout (a 1 GiB model
// upload or download) push the connection's deadline back before each
// read or write instead, so a slow or stalled peer is still cut off after
// per of inactivity, while a steady transfer of any size completes.
// ErrNotSupported (no connection behind w) leaves the server's own
// timeouts in force, which is the safe side.

// DeadlineReader returns r (a request body) reading with a per-read
// deadline. The write deadline moves with it: the server's WriteTimeout
// runs from the start of the request, and the answer to a long upload is
// written only after it.
func DeadlineReader(w http.ResponseWriter, r io.Reader, per time.Duration) io.Reader {
	return &deadlineReader{r: r, rc: http.NewResponseController(w), per: per}
}

// DeadlineWriter returns w writing with a per-write deadline.
func DeadlineWriter(w http.ResponseWriter, per time.Duration) io.Writer {
	return &deadlineWriter{w: w, rc: http.NewResponseController(w), per: per}
}

type deadlineReader struct {
	r   io.Reader
	rc  *http.ResponseController
	per time.Duration
}

func (d *deadlineReader) Read(p []byte) (int, error) {
	until := time.Now().Add(d.per)
	_ = d.rc.SetReadDeadline(until)
	_ = d.rc.SetWriteDeadline(until)
	return d.r.Read(p)
}

type deadlineWriter struct {
	w   io.Writer
	rc  *http.ResponseController
	per time.Duration
}

func (d *deadlineWriter) Write(p []byte) (int, error) {
	_ = d.rc.SetWriteDeadline(time.Now().Add(d.per))
	return d.w.Write(p)
}
