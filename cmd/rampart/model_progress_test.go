package main

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestFormatBytes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		n    int64
		want string
	}{
		{0, "0 B"}, {1023, "1023 B"}, {1024, "1.0 KiB"}, {1536, "1.5 KiB"},
		{5 << 20, "5.0 MiB"}, {3 << 30, "3.0 GiB"}, {2 << 40, "2.0 TiB"},
	} {
		if got := formatBytes(tc.n); got != tc.want {
			t.Errorf("formatBytes(%d) = %q, want %q", tc.n, got, tc.want)
		}
	}
}

func TestProgressFinalLine(t *testing.T) {
	t.Parallel()
	for _, live := range []bool{false, true} {
		var out bytes.Buffer
		p := newProgress(&out, "uploaded", 2048, live)
		if _, err := io.Copy(io.Discard, p.reader(strings.NewReader(strings.Repeat("x", 2048)))); err != nil {
			t.Fatal(err)
		}
		p.finish(true)
		s := out.String()
		if !strings.Contains(s, "uploaded 2.0 KiB / 2.0 KiB (100%)") || !strings.HasSuffix(s, "/s\n") {
			t.Errorf("live=%t: %q", live, s)
		}
		if !live && strings.Contains(s, "\r") {
			t.Errorf("without a terminal the output has a carriage return: %q", s)
		}
	}
}

func TestSplitRef(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		ref, id, version string
		need, ok         bool
	}{
		{"com.acme.m", "com.acme.m", "", false, true},
		{"com.acme.m@1.0", "com.acme.m", "1.0", true, true},
		{"com.acme.m", "", "", true, false},
		{"com.acme.m@", "", "", false, false},
		{"@1.0", "", "", false, false},
	} {
		id, version, err := splitRef(tc.ref, tc.need)
		if (err == nil) != tc.ok || id != tc.id || version != tc.version {
			t.Errorf("splitRef(%q, %t) = %q, %q, %v", tc.ref, tc.need, id, version, err)
		}
		if err != nil && !errors.Is(err, errUsage) {
			t.Errorf("splitRef(%q): %v is no usage error", tc.ref, err)
		}
	}
}

func TestListModelDir(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "sub"), 0o700); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"model.onnx", "sub/labels.txt"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("abc"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	files, total, err := listModelDir(dir)
	if err != nil || len(files) != 2 || files[1].rel != "sub/labels.txt" || total != 1024+2*1024 {
		t.Fatalf("listModelDir = %+v, %d, %v", files, total, err)
	}
	rc, err := tarDir(dir, files)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil || int64(len(b)) != total {
		t.Errorf("tar of %d bytes (estimated %d): %v", len(b), total, err)
	}
	if err := os.Symlink("model.onnx", filepath.Join(dir, "link.onnx")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := listModelDir(dir); err == nil || !strings.Contains(err.Error(), "symbolic link") {
		t.Errorf("a symbolic link: %v", err)
	}
}
