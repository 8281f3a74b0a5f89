package modelarchive

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fuzzLimits keep each fuzz input cheap while still letting limits trip.
func fuzzLimits() Limits {
	return Limits{MaxArchiveBytes: 4 << 20, MaxFiles: 64, MaxFileBytes: 2 << 20, MaxTotalBytes: 4 << 20, MaxRatio: 200, MaxDepth: 8}
}

func seed(f *testing.F, zip bool) {
	for _, c := range goodCases(f) {
		if isZip(c.data) == zip && len(c.data) <= 64<<10 {
			f.Add(c.data)
		}
	}
	for _, c := range badCases(f) {
		if isZip(c.data) == zip && len(c.data) <= 64<<10 {
			f.Add(c.data)
		}
	}
}

func isZip(b []byte) bool { return bytes.HasPrefix(b, []byte("PK")) }

func FuzzExtractTar(f *testing.F) {
	seed(f, false)
	f.Fuzz(checkExtractInvariant)
}

func FuzzExtractZip(f *testing.F) {
	seed(f, true)
	f.Fuzz(checkExtractInvariant)
}

// checkExtractInvariant: either an error and nothing left beside dest, or
// only regular files and directories strictly under dest, matching the
// manifest, and no spool or strip directory left beside it.
func checkExtractInvariant(t *testing.T, data []byte) {
	parent := t.TempDir()
	dest := filepath.Join(parent, "model")
	m, err := Extract(context.Background(), bytes.NewReader(data), dest, fuzzLimits())
	ents, rerr := os.ReadDir(parent)
	if rerr != nil {
		t.Fatal(rerr)
	}
	if err != nil {
		if len(ents) != 0 {
			t.Fatalf("error %v left %d entries behind, first %q", err, len(ents), ents[0].Name())
		}
		if strings.ContainsAny(err.Error(), "\x00\x1b\r\n") {
			t.Fatalf("error message holds control characters: %q", err)
		}
		return
	}
	if len(ents) != 1 || ents[0].Name() != "model" {
		t.Fatalf("success left %d entries beside the destination", len(ents))
	}
	sizes := map[string]int64{}
	for _, f := range m.Files {
		sizes[f.Path] = f.Size
	}
	werr := filepath.WalkDir(dest, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dest, p)
		if err != nil || rel == ".." || strings.HasPrefix(rel, "../") || filepath.IsAbs(rel) {
			t.Fatalf("%s is outside %s", p, dest)
		}
		info, err := os.Lstat(p)
		if err != nil {
			return err
		}
		switch {
		case info.IsDir():
		case info.Mode().IsRegular():
			size, ok := sizes[filepath.ToSlash(rel)]
			if !ok || size != info.Size() {
				t.Fatalf("%s: %d bytes on disk, manifest says %d (listed: %v)", rel, info.Size(), size, ok)
			}
			delete(sizes, filepath.ToSlash(rel))
		default:
			t.Fatalf("%s: not a regular file or directory: %v", rel, info.Mode())
		}
		return nil
	})
	if werr != nil {
		t.Fatal(werr)
	}
	if len(sizes) != 0 {
		t.Fatalf("manifest lists files not on disk: %v", sizes)
	}
}
