package supervisor

import (
	"bytes"
	"io"
	"log/slog"
	"sync"
)

// maxLogLine bounds one logged line of a worker's stderr.
const maxLogLine = 2048

// workerLog returns the writer a worker's stderr goes to: each line is
// logged with the service and replica it came from, cut at maxLogLine
// (a worker is untrusted: its output must not flood the log).
func (s *Supervisor) workerLog(service string, replica int) io.Writer {
	return &lineLogger{log: s.log.With(slog.String("service", service), slog.Int("replica", replica))}
}

type lineLogger struct {
	log *slog.Logger
	mu  sync.Mutex
	buf []byte
}

func (l *lineLogger) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			room := maxLogLine - len(l.buf)
			l.buf = append(l.buf, p[:min(len(p), max(room, 0))]...)
			break
		}
		l.buf = append(l.buf, p[:min(i, max(maxLogLine-len(l.buf), 0))]...)
		l.log.Warn("model worker", slog.String("stderr", string(l.buf)))
		l.buf = l.buf[:0]
		p = p[i+1:]
	}
	return n, nil
}
