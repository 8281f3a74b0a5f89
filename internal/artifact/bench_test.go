package artifact_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/rampart-ml/rampart/internal/artifact"
	"github.com/rampart-ml/rampart/internal/artifact/artifacttest"
)

// patternReader yields n bytes by repeating a 1 MiB pseudo-random block,
// so the benchmark input costs no memory of its own.
type patternReader struct {
	block []byte
	left  int64
	off   int
}

func newPattern(n int64) *patternReader {
	return &patternReader{block: artifacttest.Content("42", 1<<20), left: n}
}

func (p *patternReader) Read(b []byte) (int, error) {
	if p.left == 0 {
		return 0, io.EOF
	}
	if int64(len(b)) > p.left {
		b = b[:p.left]
	}
	n := copy(b, p.block[p.off:])
	p.off = (p.off + n) % len(p.block)
	p.left -= int64(n)
	return n, nil
}

var benchSizes = []int64{16 << 20, 256 << 20}

// BenchmarkSHA256 is the baseline: what sha256sum does (read + hash).
func BenchmarkSHA256(b *testing.B) {
	for _, size := range benchSizes {
		b.Run(fmt.Sprintf("%dMiB", size>>20), func(b *testing.B) {
			b.SetBytes(size)
			b.ReportAllocs()
			for b.Loop() {
				h := sha256.New()
				buf := make([]byte, 256<<10)
				if _, err := io.CopyBuffer(h, newPattern(size), buf); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkPut measures hash + encrypt + write + fsync + rename, and
// reports its throughput as a fraction of plain SHA-256 measured in the
// same run (put/sha256; the goal is >= 0.5 overall). B/op staying
// the same from 16 to 256 MiB shows memory does not grow with the size.
func BenchmarkPut(b *testing.B) {
	for _, size := range benchSizes {
		b.Run(fmt.Sprintf("%dMiB", size>>20), func(b *testing.B) {
			s, err := artifact.NewFS(filepath.Join(b.TempDir(), "a"), artifacttest.NewMaster(b))
			if err != nil {
				b.Fatal(err)
			}
			shaTime := timeSHA256(b, size)
			b.SetBytes(size)
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			for b.Loop() {
				if _, err := s.Put(context.Background(), "com.bench", newPattern(size)); err != nil {
					b.Fatal(err)
				}
			}
			perOp := time.Since(start) / time.Duration(b.N)
			b.ReportMetric(float64(shaTime)/float64(perOp), "put/sha256")
			reportPeakRSS(b)
		})
	}
}

// BenchmarkOpen measures decrypt + authenticate + digest check, reading to
// EOF.
func BenchmarkOpen(b *testing.B) {
	for _, size := range benchSizes {
		b.Run(fmt.Sprintf("%dMiB", size>>20), func(b *testing.B) {
			s, err := artifact.NewFS(filepath.Join(b.TempDir(), "a"), artifacttest.NewMaster(b))
			if err != nil {
				b.Fatal(err)
			}
			blob, err := s.Put(context.Background(), "com.bench", newPattern(size))
			if err != nil {
				b.Fatal(err)
			}
			shaTime := timeSHA256(b, size)
			buf := make([]byte, 256<<10)
			b.SetBytes(size)
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			for b.Loop() {
				rc, err := s.Open(context.Background(), "com.bench", blob.Digest)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := io.CopyBuffer(io.Discard, rc, buf); err != nil {
					b.Fatal(err)
				}
				rc.Close()
			}
			perOp := time.Since(start) / time.Duration(b.N)
			b.ReportMetric(float64(shaTime)/float64(perOp), "open/sha256")
			reportPeakRSS(b)
		})
	}
}

// timeSHA256 is the best of three baseline runs, so the ratio is not
// flattered by one slow baseline.
func timeSHA256(b *testing.B, size int64) time.Duration {
	b.Helper()
	best := time.Duration(1<<63 - 1)
	buf := make([]byte, 256<<10)
	for range 3 {
		start := time.Now()
		h := sha256.New()
		if _, err := io.CopyBuffer(h, newPattern(size), buf); err != nil {
			b.Fatal(err)
		}
		best = min(best, time.Since(start))
	}
	return best
}

// BenchmarkEncryptStream is Put without the disk: hash + encrypt into
// io.Discard. On a disk slower than SHA-256 (fsync included), Put is
// disk-bound and this is the part Rampart controls.
func BenchmarkEncryptStream(b *testing.B) {
	id, err := age.GenerateX25519Identity()
	if err != nil {
		b.Fatal(err)
	}
	for _, size := range benchSizes {
		b.Run(fmt.Sprintf("%dMiB", size>>20), func(b *testing.B) {
			shaTime := timeSHA256(b, size)
			b.SetBytes(size)
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			for b.Loop() {
				if _, err := artifact.EncryptTo(context.Background(), io.Discard, id.Recipient(), newPattern(size)); err != nil {
					b.Fatal(err)
				}
			}
			perOp := time.Since(start) / time.Duration(b.N)
			b.ReportMetric(float64(shaTime)/float64(perOp), "encrypt/sha256")
			reportPeakRSS(b)
		})
	}
}

// reportPeakRSS reports the process's peak resident set so far (VmHWM):
// with 256 MiB blobs and a 1 MiB input pattern, a value far below 256
// shows that nothing holds a whole blob in memory.
func reportPeakRSS(b *testing.B) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return // not Linux
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := bytes.CutPrefix(sc.Bytes(), []byte("VmHWM:")); ok {
			kb, err := strconv.Atoi(string(bytes.TrimSpace(bytes.TrimSuffix(bytes.TrimSpace(v), []byte("kB")))))
			if err == nil {
				b.ReportMetric(float64(kb)/1024, "peakRSS-MiB")
			}
		}
	}
}
