package artifact

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// TestWriteback: bytes pass through unchanged, whether written in pieces
// that straddle windows or in one piece larger than several, to a file
// (early writeback on) and to a plain writer (pass-through).
func TestWriteback(t *testing.T) {
	t.Parallel()
	data := make([]byte, 3*writebackWindow+12345)
	for i := range data {
		data[i] = byte(i * 7)
	}
	for _, tc := range []struct {
		name  string
		piece int
	}{
		{"odd pieces", 100_003},
		{"one piece", len(data)},
		{"window pieces", writebackWindow},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f, err := os.Create(filepath.Join(t.TempDir(), "blob"))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			var buf bytes.Buffer
			for _, w := range []*writeback{newWriteback(f), newWriteback(&buf)} {
				for p := data; len(p) > 0; {
					n := min(tc.piece, len(p))
					if m, err := w.Write(p[:n]); m != n || err != nil {
						t.Fatalf("Write = %d, %v; want %d, nil", m, err, n)
					}
					p = p[n:]
				}
			}
			got, err := os.ReadFile(f.Name())
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, data) || !bytes.Equal(buf.Bytes(), data) {
				t.Error("bytes changed on their way through writeback")
			}
		})
	}
}
