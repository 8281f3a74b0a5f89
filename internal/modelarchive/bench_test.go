package modelarchive

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// BenchmarkExtract256MiB extracts a single 256 MiB file and compares it with
// "bare", an io.Copy of the same bytes into a file on the same disk: the
// ratio is the cost of the checks. B/op and allocs/op stay the same whatever
// the file size (constant memory): compare with BenchmarkExtract16MiB.
func BenchmarkExtract256MiB(b *testing.B) { benchmarkExtract(b, 256<<20) }

// BenchmarkExtract16MiB is the same at 1/16 of the size, to show that memory
// per extraction does not grow with the model.
func BenchmarkExtract16MiB(b *testing.B) { benchmarkExtract(b, 16<<20) }

func benchmarkExtract(b *testing.B, size int) {
	content := make([]byte, size)
	for i := range content {
		content[i] = byte(i*7 + i>>9) // not all zeros, not worth compressing
	}
	lim := DefaultLimits()
	b.Run("bare", func(b *testing.B) {
		dir := b.TempDir()
		buf := make([]byte, copyBufferSize)
		b.SetBytes(int64(size))
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			p := filepath.Join(dir, strconv.Itoa(i))
			f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
			if err != nil {
				b.Fatal(err)
			}
			// Hide WriteTo so both sides copy a stream through a buffer of the
			// same size: the ratio then measures the checks, not buffer sizes.
			if _, err := io.CopyBuffer(f, struct{ io.Reader }{bytes.NewReader(content)}, buf); err != nil {
				b.Fatal(err)
			}
			if err := f.Close(); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			_ = os.Remove(p)
			b.StartTimer()
		}
	})
	for _, format := range []Format{FormatTar, FormatZip} {
		var archive bytes.Buffer
		if format == FormatTar {
			tw := tar.NewWriter(&archive)
			_ = tw.WriteHeader(&tar.Header{Name: "model.onnx", Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(size)})
			_, _ = tw.Write(content)
			_ = tw.Close()
		} else {
			zw := zip.NewWriter(&archive)
			w, _ := zw.CreateHeader(&zip.FileHeader{Name: "model.onnx", Method: zip.Store})
			_, _ = w.Write(content)
			_ = zw.Close()
		}
		b.Run(string(format), func(b *testing.B) {
			dir := b.TempDir()
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				dest := filepath.Join(dir, strconv.Itoa(i))
				if _, err := Extract(context.Background(), struct{ io.Reader }{bytes.NewReader(archive.Bytes())}, dest, lim); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				_ = os.RemoveAll(dest)
				b.StartTimer()
			}
		})
	}
}
