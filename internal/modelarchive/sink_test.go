package modelarchive

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"os"
	"testing"
)

// memSink keeps the files of ExtractTo in memory.
type memSink map[string]*memFile

type memFile struct {
	bytes.Buffer
	closed bool
}

func (m memSink) Create(name string) (SinkFile, error) {
	f := &memFile{}
	m[name] = f
	return f, nil
}

func (f *memFile) Close() error     { f.closed = true; return nil }
func (f *memFile) SHA256() [32]byte { return sha256.Sum256(f.Bytes()) }

// TestExtractTo: the sink gets every file under its name before the top
// directory is stripped, closed, and the manifest has the sink's digests
// and the stripped paths; a zip's spool is removed.
func TestExtractTo(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		archive []byte
	}{
		{"tar", makeTar(t, tent{name: "model/"}, tent{name: "model/a.txt", body: "alpha"}, tent{name: "model/sub/b.bin", body: "beta"})},
		{"zip", makeZip(t, zent{name: "model/a.txt", body: "alpha"}, zent{name: "model/sub/b.bin", body: "beta"})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			spool := t.TempDir()
			sink := memSink{}
			m, err := ExtractTo(context.Background(), bytes.NewReader(tc.archive), sink, spool, DefaultLimits())
			if err != nil {
				t.Fatal(err)
			}
			if m.Stripped != "model" || len(m.Files) != 2 || len(sink) != 2 {
				t.Fatalf("manifest %+v, sink %v: want model/ stripped and 2 files", m, sink)
			}
			for _, f := range m.Files {
				sf, ok := sink["model/"+f.Path]
				if !ok || !sf.closed || f.SHA256 != sha256.Sum256(sf.Bytes()) || f.Size != int64(sf.Len()) {
					t.Errorf("file %s: sink has %v", f.Path, sf)
				}
			}
			if left, err := os.ReadDir(spool); err != nil || len(left) != 0 {
				t.Errorf("spool directory: %d entries, %v", len(left), err)
			}
		})
	}
	_, err := ExtractTo(context.Background(), bytes.NewReader(makeTar(t, tent{name: "../evil", body: "x"})), memSink{}, t.TempDir(), DefaultLimits())
	if !errors.Is(err, ErrPathTraversal) {
		t.Errorf("ExtractTo of ../evil = %v, want ErrPathTraversal", err)
	}
}
