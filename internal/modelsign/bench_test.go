package modelsign

import (
	"crypto/rand"
	"crypto/sha256"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// benchFile writes a 256 MiB model file once per benchmark.
func benchFile(b *testing.B) (dir, file string) {
	b.Helper()
	dir = b.TempDir()
	file = filepath.Join(dir, "model.onnx")
	f, err := os.Create(file)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := io.CopyN(f, rand.Reader, 256<<20); err != nil {
		b.Fatal(err)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	return dir, file
}

// BenchmarkDigestDirectory against BenchmarkPlainSHA256 (io.Copy of the same
// file into SHA-256) gives the overhead ratio of walking and streaming.
func BenchmarkDigestDirectory(b *testing.B) {
	dir, _ := benchFile(b)
	b.SetBytes(256 << 20)
	for b.Loop() {
		if _, err := DigestDirectory(dir, Options{}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkPlainSHA256(b *testing.B) {
	_, file := benchFile(b)
	b.SetBytes(256 << 20)
	for b.Loop() {
		f, err := os.Open(file)
		if err != nil {
			b.Fatal(err)
		}
		h := sha256.New()
		if _, err := io.Copy(h, f); err != nil {
			b.Fatal(err)
		}
		f.Close()
	}
}
