package modelarchive

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func testLimits() Limits {
	l := DefaultLimits()
	l.MaxArchiveBytes = 64 << 20
	l.MaxFileBytes = 32 << 20
	l.MaxTotalBytes = 48 << 20
	return l
}

// extractTo extracts into parent/model and returns the destination.
func extractTo(t *testing.T, data []byte, lim Limits) (string, Manifest, error) {
	t.Helper()
	dest := filepath.Join(t.TempDir(), "model")
	m, err := Extract(context.Background(), bytes.NewReader(data), dest, lim)
	return dest, m, err
}

// assertNothingLeft checks that neither dest nor a spool or strip directory
// remains next to it.
func assertNothingLeft(t *testing.T, dest string) {
	t.Helper()
	ents, err := os.ReadDir(filepath.Dir(dest))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		t.Errorf("left behind: %s", e.Name())
	}
}

// readTree returns every file under dir with its content, and checks modes.
func readTree(t *testing.T, dir string) map[string]string {
	t.Helper()
	got := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		switch {
		case d.IsDir():
			if perm := info.Mode().Perm(); perm != 0o700 {
				t.Errorf("%s: directory mode %v, want 0700", rel, perm)
			}
		case info.Mode().IsRegular():
			if perm := info.Mode().Perm(); perm != 0o600 {
				t.Errorf("%s: file mode %v, want 0600", rel, perm)
			}
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			got[filepath.ToSlash(rel)] = string(b)
		default:
			t.Errorf("%s: unexpected type %v", rel, info.Mode())
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

var model = tent{name: "model.onnx", body: "\x08\x07onnx-bytes"}

type goodCase struct {
	name     string
	data     []byte
	want     map[string]string
	format   Format
	stripped string
}

func goodCases(t testing.TB) []goodCase {
	longDir := strings.Repeat("d", 200)
	return []goodCase{
		{
			name:   "flat tar",
			data:   makeTar(t, model, tent{name: "labels.txt", body: "cat\ndog\n"}, tent{name: "model.sig", body: "{}"}),
			want:   map[string]string{"model.onnx": model.body, "labels.txt": "cat\ndog\n", "model.sig": "{}"},
			format: FormatTar,
		},
		{
			name: "tar with top-level directory",
			data: makeTar(t, tent{name: "resnet/"}, tent{name: "resnet/model.onnx", body: "m"},
				tent{name: "resnet/cfg/"}, tent{name: "resnet/cfg/a.json", body: "{}"}),
			want:     map[string]string{"model.onnx": "m", "cfg/a.json": "{}"},
			format:   FormatTar,
			stripped: "resnet",
		},
		{
			name: "tar -C dir . (./ prefixes)",
			data: makeTar(t, tent{name: "./"}, tent{name: "./model.onnx", body: "m"},
				tent{name: "./sub/"}, tent{name: "./sub/w.bin", body: "w"}),
			want:   map[string]string{"model.onnx": "m", "sub/w.bin": "w"},
			format: FormatTar,
		},
		{
			name:     "top-level directory holding one of the same name",
			data:     makeTar(t, tent{name: "resnet/model.onnx", body: "m"}, tent{name: "resnet/resnet/x.txt", body: "x"}),
			want:     map[string]string{"model.onnx": "m", "resnet/x.txt": "x"},
			format:   FormatTar,
			stripped: "resnet",
		},
		{
			name:   "two top-level directories are kept",
			data:   makeTar(t, tent{name: "a/model.onnx", body: "m"}, tent{name: "b/x.txt", body: "x"}),
			want:   map[string]string{"a/model.onnx": "m", "b/x.txt": "x"},
			format: FormatTar,
		},
		{
			name: "tar.gz nested",
			data: gzipped(t, makeTar(t, tent{name: "./resnet/model.onnx", body: "m"},
				tent{name: "./resnet/a/b/c/w.onnx_data", body: strings.Repeat("w", 100000)})),
			want:     map[string]string{"model.onnx": "m", "a/b/c/w.onnx_data": strings.Repeat("w", 100000)},
			format:   FormatTarGz,
			stripped: "resnet",
		},
		{
			name:   "PAX long names",
			data:   makeTar(t, model, tent{name: longDir + "/" + longDir + "/" + longDir + "/w.bin", body: "w"}),
			want:   map[string]string{"model.onnx": model.body, longDir + "/" + longDir + "/" + longDir + "/w.bin": "w"},
			format: FormatTar,
		},
		{
			name:   "git archive global header",
			data:   makeTar(t, tent{name: "pax_global_header", typ: tar.TypeXGlobalHeader, pax: map[string]string{"comment": "0123abcd"}}, model),
			want:   map[string]string{"model.onnx": model.body},
			format: FormatTar,
		},
		{
			name:   "explicit directory after its files",
			data:   makeTar(t, tent{name: "d/model.onnx", body: "m"}, tent{name: "d/"}, tent{name: "e.txt", body: "e"}),
			want:   map[string]string{"d/model.onnx": "m", "e.txt": "e"},
			format: FormatTar,
		},
		{
			name: "GNU long names",
			data: func() []byte {
				var buf bytes.Buffer
				tw := tar.NewWriter(&buf)
				name := "resnet/" + longDir + "/w.bin"
				_ = tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Size: 1, Mode: 0o644, Format: tar.FormatGNU})
				_, _ = tw.Write([]byte("w"))
				_ = tw.WriteHeader(&tar.Header{Name: "resnet/model.onnx", Typeflag: tar.TypeReg, Size: 1, Mode: 0o644, Format: tar.FormatGNU})
				_, _ = tw.Write([]byte("m"))
				_ = tw.Close()
				return buf.Bytes()
			}(),
			want:     map[string]string{longDir + "/w.bin": "w", "model.onnx": "m"},
			format:   FormatTar,
			stripped: "resnet",
		},
		{
			name:   "flat zip",
			data:   makeZip(t, zent{name: "model.onnx", body: "m"}, zent{name: "labels.txt", body: "l"}),
			want:   map[string]string{"model.onnx": "m", "labels.txt": "l"},
			format: FormatZip,
		},
		{
			name: "zip with top-level directory and nesting",
			data: makeZip(t, zent{name: "resnet/"}, zent{name: "resnet/model.onnx", body: "m"},
				zent{name: "resnet/x/y/z.yaml", body: strings.Repeat("a: 1\n", 10000)}),
			want:     map[string]string{"model.onnx": "m", "x/y/z.yaml": strings.Repeat("a: 1\n", 10000)},
			format:   FormatZip,
			stripped: "resnet",
		},
	}
}

func TestExtractGood(t *testing.T) {
	t.Parallel()
	for _, tt := range goodCases(t) {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dest, m, err := extractTo(t, tt.data, testLimits())
			if err != nil {
				t.Fatalf("Extract: %v", err)
			}
			if diff := cmp.Diff(tt.want, readTree(t, dest)); diff != "" {
				t.Errorf("tree (-want +got):\n%s", diff)
			}
			wantFiles := map[string]int64{}
			var total int64
			for p, b := range tt.want {
				wantFiles[p] = int64(len(b))
				total += int64(len(b))
			}
			gotFiles := map[string]int64{}
			for i, f := range m.Files {
				gotFiles[f.Path] = f.Size
				// The digest computed while writing is that of the content.
				if want := sha256.Sum256([]byte(tt.want[f.Path])); f.SHA256 != want {
					t.Errorf("%s: SHA256 = %x, want %x", f.Path, f.SHA256, want)
				}
				if i > 0 && !lessPath(m.Files[i-1].Path, f.Path) {
					t.Errorf("manifest not sorted: %q before %q", m.Files[i-1].Path, f.Path)
				}
			}
			if diff := cmp.Diff(wantFiles, gotFiles); diff != "" {
				t.Errorf("manifest (-want +got):\n%s", diff)
			}
			if m.Format != tt.format || m.Stripped != tt.stripped || m.TotalBytes != total || m.ArchiveBytes != int64(len(tt.data)) {
				t.Errorf("manifest = %+v, want format %s, stripped %q, total %d, archive %d", m, tt.format, tt.stripped, total, len(tt.data))
			}
			ents, _ := os.ReadDir(filepath.Dir(dest))
			if len(ents) != 1 {
				t.Errorf("parent holds %d entries, want only the destination", len(ents))
			}
		})
	}
}

type badCase struct {
	name string
	data []byte
	lim  *Limits
	want error
}

func badCases(t testing.TB) []badCase {
	zeros := make([]byte, 8<<20)
	lim := func(f func(*Limits)) *Limits { l := testLimits(); f(&l); return &l }
	long := strings.Repeat("x", 256)
	paxPath := func(p string) []byte {
		rec := paxRecord("path", p)
		return rawTar(rawTarBlock("PaxHeader", tar.TypeXHeader, len(rec)), []byte(rec),
			rawTarBlock("innocent.txt", tar.TypeReg, 1), []byte("x"))
	}
	return []badCase{
		{"empty upload", nil, nil, ErrUnsupportedArchive},
		{"not an archive", []byte("hello, world"), nil, ErrUnsupportedArchive},
		{"gzip of not a tar", gzipped(t, []byte("hello")), nil, ErrUnsupportedArchive},
		{"only directories", makeTar(t, tent{name: "a/"}), nil, ErrEmptyArchive},
		{"truncated tar", makeTar(t, tent{name: "model.onnx", body: strings.Repeat("m", 5000)})[:2048], nil, ErrCorruptArchive},
		{"truncated tar.gz", gzipped(t, makeTar(t, model))[:40], nil, ErrCorruptArchive},
		{"trailing data", append(makeTar(t, model), []byte("garbage")...), nil, ErrTrailingData},
		{"gzip trailing junk", append(gzipped(t, makeTar(t, model)), "junk"...), nil, ErrCorruptArchive},
		{"tar directory with content", rawTar(rawTarBlock("d/", tar.TypeDir, 5), []byte("hello")), nil, ErrUnsupportedEntry},
		{"tar empty name", rawTar(rawTarBlock("", tar.TypeReg, 1), []byte("x")), nil, ErrInvalidName},
		{"tar dotdot at the end", makeTar(t, tent{name: "./x/..", body: "x"}), nil, ErrPathTraversal},
		{"tar file named like the root", rawTar(rawTarBlock("./", tar.TypeReg, 1), []byte("x")), nil, ErrInvalidName},
		{"too many root entries", makeTar(t, tent{name: "./"}, tent{name: "./"}, tent{name: "./"}, model), lim(func(l *Limits) { l.MaxFiles = 3 }), ErrTooManyFiles},
		{"tar absolute", makeTar(t, tent{name: "/etc/passwd", body: "x"}), nil, ErrAbsolutePath},
		{"tar dotdot", makeTar(t, tent{name: "../x", body: "x"}), nil, ErrPathTraversal},
		{"tar inner dotdot", makeTar(t, tent{name: "a/../../x", body: "x"}), nil, ErrPathTraversal},
		{"tar backslash", makeTar(t, tent{name: `a\..\x`, body: "x"}), nil, ErrInvalidName},
		{"tar control character", makeTar(t, tent{name: "a\x1b[2Jb", body: "x"}), nil, ErrInvalidName},
		{"tar invalid UTF-8", rawTar(rawTarBlock("\xff\xfe.onnx", tar.TypeReg, 1), []byte("x")), nil, ErrInvalidName},
		{"tar double slash", makeTar(t, tent{name: "a//b", body: "x"}), nil, ErrInvalidName},
		{"tar symlink", makeTar(t, tent{name: "l", typ: tar.TypeSymlink, link: "/etc"}), nil, ErrLink},
		{"tar file through symlink", makeTar(t, tent{name: "l", typ: tar.TypeSymlink, link: "/tmp"}, tent{name: "l/x", body: "x"}), nil, ErrLink},
		{"tar hardlink", makeTar(t, model, tent{name: "h", typ: tar.TypeLink, link: "model.onnx"}), nil, ErrLink},
		{"tar char device", makeTar(t, tent{name: "null", typ: tar.TypeChar}), nil, ErrSpecialFile},
		{"tar block device", makeTar(t, tent{name: "sda", typ: tar.TypeBlock}), nil, ErrSpecialFile},
		{"tar fifo", makeTar(t, tent{name: "p", typ: tar.TypeFifo}), nil, ErrSpecialFile},
		{"tar unknown type", rawTar(rawTarBlock("z", 'Z', 0)), nil, ErrUnsupportedEntry},
		{"tar GNU sparse", rawTar(rawTarBlock("s", tar.TypeGNUSparse, 0)), nil, ErrUnsupportedEntry},
		{"tar PAX sparse", rawTar(rawTarBlock("PaxHeader", tar.TypeXHeader, len(paxRecord("GNU.sparse.name", "s"))), []byte(paxRecord("GNU.sparse.name", "s")),
			rawTarBlock("s", tar.TypeReg, 1), []byte("x")), nil, ErrUnsupportedEntry},
		{"tar global header with path", makeTar(t, tent{name: "g", typ: tar.TypeXGlobalHeader, pax: map[string]string{"path": "x"}}, model), nil, ErrUnsupportedEntry},
		{"tar duplicate", makeTar(t, model, model), nil, ErrDuplicateEntry},
		{"tar case duplicate", makeTar(t, model, tent{name: "MODEL.onnx", body: "x"}), nil, ErrDuplicateEntry},
		{"tar case duplicate directory", makeTar(t, tent{name: "A/x", body: "x"}, tent{name: "a/y", body: "y"}), nil, ErrDuplicateEntry},
		{"tar file then directory", makeTar(t, tent{name: "a", body: "x"}, tent{name: "a/b", body: "y"}), nil, ErrDuplicateEntry},
		{"tar directory then file", makeTar(t, tent{name: "a/"}, tent{name: "a", body: "y"}), nil, ErrDuplicateEntry},
		{"tar duplicate directory", makeTar(t, tent{name: "a/"}, tent{name: "a/"}, model), nil, ErrDuplicateEntry},
		{"PAX path traversal", paxPath("../../etc/cron.d/x"), nil, ErrPathTraversal},
		{"PAX absolute", paxPath("/etc/x"), nil, ErrAbsolutePath},
		{"PAX long component", makeTar(t, tent{name: long, body: "x"}), nil, ErrNameTooLong},
		{"PAX long name", makeTar(t, tent{name: strings.Repeat("abcdefgh/", 120) + "x", body: "x"}), lim(func(l *Limits) { l.MaxDepth = 200 }), ErrNameTooLong},
		{"too many files", makeTar(t, tent{name: "a", body: "1"}, tent{name: "b", body: "2"}, tent{name: "c", body: "3"}, tent{name: "d", body: "4"}), lim(func(l *Limits) { l.MaxFiles = 3 }), ErrTooManyFiles},
		{"file too large", makeTar(t, tent{name: "a", body: strings.Repeat("x", 11)}), lim(func(l *Limits) { l.MaxFileBytes = 10 }), ErrFileTooLarge},
		{"total too large", makeTar(t, tent{name: "a", body: "0123456789"}, tent{name: "b", body: "0123456789"}), lim(func(l *Limits) { l.MaxTotalBytes = 15 }), ErrTotalTooLarge},
		{"too deep", makeTar(t, tent{name: "a/b/c/d/e", body: "x"}), lim(func(l *Limits) { l.MaxDepth = 4 }), ErrTooDeep},
		{"upload too large", makeTar(t, tent{name: "a", body: strings.Repeat("x", 10000)}), lim(func(l *Limits) { l.MaxArchiveBytes = 4096 }), ErrArchiveTooLarge},
		{"gzip bomb in the padding", gzipped(t, append(makeTar(t, model), zeros...)), nil, ErrTrailingData},
		{"gzip bomb in PAX headers", gzipped(t, makeTar(t, func() []tent {
			var ents []tent
			for i := range 20 {
				ents = append(ents, tent{name: "f" + strconv.Itoa(i) + ".txt", pax: map[string]string{"comment": strings.Repeat("a", 512<<10)}})
			}
			return ents
		}()...)), nil, ErrCompressionRatio},
		{"gzip bomb", gzipped(t, makeTar(t, tent{name: "model.onnx", body: string(zeros)})), nil, ErrCompressionRatio},

		{"zip empty name", makeZip(t, zent{name: "", body: "x"}), nil, ErrInvalidName},
		{"zip directory with content", bytes.ReplaceAll(makeZip(t, zent{name: "dx", body: "x"}), []byte("dx"), []byte("d/")), nil, ErrUnsupportedEntry},
		{"zip absolute", makeZip(t, zent{name: "/abs", body: "x"}), nil, ErrAbsolutePath},
		{"zip dotdot", makeZip(t, zent{name: "../x", body: "x"}), nil, ErrPathTraversal},
		{"zip backslash", makeZip(t, zent{name: `..\x`, body: "x"}), nil, ErrInvalidName},
		{"zip symlink", makeZip(t, zent{name: "l", body: "/etc", mode: fs.ModeSymlink | 0o777}), nil, ErrLink},
		{"zip device", makeZip(t, zent{name: "d", mode: fs.ModeDevice | 0o600}), nil, ErrSpecialFile},
		{"zip fifo", makeZip(t, zent{name: "p", mode: fs.ModeNamedPipe | 0o600}), nil, ErrSpecialFile},
		{"zip duplicate", makeZip(t, zent{name: "a", body: "1"}, zent{name: "a", body: "2"}), nil, ErrDuplicateEntry},
		{"zip too many files", makeZip(t, zent{name: "a"}, zent{name: "b"}, zent{name: "c"}, zent{name: "d"}), lim(func(l *Limits) { l.MaxFiles = 3 }), ErrTooManyFiles},
		{"zip header lies about size", makeZip(t, zent{raw: &zip.FileHeader{Name: "model.onnx", Method: zip.Deflate,
			CRC32: 0, CompressedSize64: uint64(len(deflate(t, zeros))), UncompressedSize64: 10}, data: deflate(t, zeros)}), nil, ErrCorruptArchive},
		{"zip header claims a huge size", makeZip(t, zent{raw: &zip.FileHeader{Name: "model.onnx", Method: zip.Store,
			CompressedSize64: 1, UncompressedSize64: 1 << 40}, data: []byte("x")}), nil, ErrFileTooLarge},
		{"zip bomb", makeZip(t, zent{raw: &zip.FileHeader{Name: "model.onnx", Method: zip.Deflate,
			CRC32: crc(zeros), CompressedSize64: uint64(len(deflate(t, zeros))), UncompressedSize64: uint64(len(zeros))}, data: deflate(t, zeros)}), nil, ErrCompressionRatio},
		{"zip directory count lies", func() []byte {
			b := overlappingZip([]byte("shared"), 5)
			binary.LittleEndian.PutUint16(b[len(b)-22+8:], 1)
			binary.LittleEndian.PutUint16(b[len(b)-22+10:], 1)
			return b
		}(), lim(func(l *Limits) { l.MaxFiles = 3 }), ErrTooManyFiles},
		{"zip huge extra field", makeZip(t, zent{raw: &zip.FileHeader{Name: "model.onnx", Method: zip.Store, CRC32: crc([]byte("m")),
			CompressedSize64: 1, UncompressedSize64: 1, Extra: append([]byte{0xfe, 0xca, 0xcc, 0x07}, make([]byte, 1996)...)}, data: []byte("m")}), nil, ErrUnsupportedEntry},
		{"zip long name", makeZip(t, zent{name: strings.Repeat("a/", 600) + "x", body: "x"}), lim(func(l *Limits) { l.MaxDepth = 512 }), ErrNameTooLong},
		{"zip overlapping entries", overlappingZip([]byte("shared"), 3), nil, ErrOverlappingEntries},
		{"zip encrypted", makeZip(t, zent{raw: &zip.FileHeader{Name: "a", Method: zip.Store, Flags: 1, CompressedSize64: 1, UncompressedSize64: 1}, data: []byte("x")}), nil, ErrUnsupportedEntry},
		{"zip unknown method", makeZip(t, zent{raw: &zip.FileHeader{Name: "a", Method: 99, CompressedSize64: 1, UncompressedSize64: 1}, data: []byte("x")}), nil, ErrUnsupportedEntry},
		{"zip truncated", makeZip(t, zent{name: "model.onnx", body: "m"})[:40], nil, ErrCorruptArchive},
		{"zip upload too large", makeZip(t, zent{name: "a", body: strings.Repeat("x", 10000)}), lim(func(l *Limits) { l.MaxArchiveBytes = 100 }), ErrArchiveTooLarge},
		{"empty zip", makeZip(t), nil, ErrEmptyArchive},
	}
}

func TestExtractBad(t *testing.T) {
	t.Parallel()
	for _, tt := range badCases(t) {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			l := testLimits()
			if tt.lim != nil {
				l = *tt.lim
			}
			dest, m, err := extractTo(t, tt.data, l)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Extract = %+v, %v; want %v", m, err, tt.want)
			}
			assertNothingLeft(t, dest)
			if strings.ContainsAny(err.Error(), "\x00\x1b\n") {
				t.Errorf("error message holds control characters: %q", err)
			}
		})
	}
}

func TestExtractEntryError(t *testing.T) {
	t.Parallel()
	_, _, err := extractTo(t, makeTar(t, tent{name: "evil\x1b]0;x\x07/../../a", body: "x"}), testLimits())
	var ee *EntryError
	if !errors.As(err, &ee) {
		t.Fatalf("err = %v, want an *EntryError", err)
	}
	if want := `"evil\x1b]0;x\a/../../a"`; ee.Entry != want {
		t.Errorf("Entry = %s, want %s", ee.Entry, want)
	}
}

func TestExtractDestination(t *testing.T) {
	t.Parallel()
	dest := t.TempDir() // exists
	_, err := Extract(context.Background(), bytes.NewReader(makeTar(t, model)), dest, testLimits())
	if !errors.Is(err, ErrDestinationExists) {
		t.Fatalf("err = %v, want ErrDestinationExists", err)
	}
	if _, err := os.Stat(dest); err != nil {
		t.Errorf("an existing destination must be left alone: %v", err)
	}
}

func TestExtractCanceled(t *testing.T) {
	t.Parallel()
	for _, data := range [][]byte{makeTar(t, model), makeZip(t, zent{name: "model.onnx", body: "m"})} {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		dest := filepath.Join(t.TempDir(), "m")
		_, err := Extract(ctx, bytes.NewReader(data), dest, testLimits())
		if !errors.Is(err, context.Canceled) {
			t.Errorf("err = %v, want context.Canceled", err)
		}
		assertNothingLeft(t, dest)
	}
}

func TestLimitsValidate(t *testing.T) {
	t.Parallel()
	if err := DefaultLimits().Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	err := Limits{MaxFiles: 1}.Validate()
	if err == nil {
		t.Fatal("zero limits accepted")
	}
	for _, f := range []string{"MaxArchiveBytes", "MaxFileBytes", "MaxTotalBytes", "MaxRatio", "MaxDepth"} {
		if !strings.Contains(err.Error(), f) {
			t.Errorf("error %q does not name %s", err, f)
		}
	}
	if strings.Contains(err.Error(), "MaxFiles ") {
		t.Errorf("error %q names a valid field", err)
	}
	if _, err := Extract(context.Background(), bytes.NewReader(nil), filepath.Join(t.TempDir(), "m"), Limits{}); err == nil {
		t.Error("Extract accepted invalid limits")
	}
}

func TestCleanName(t *testing.T) {
	t.Parallel()
	tests := []struct {
		raw  string
		want string
		root bool
		err  error
	}{
		{raw: "a/b.onnx", want: "a/b.onnx"},
		{raw: "./a/", want: "a"},
		{raw: "././a", want: "a"},
		{raw: "./", root: true},
		{raw: ".", root: true},
		{raw: "", err: ErrInvalidName},
		{raw: "a\x00b", err: ErrInvalidName},
		{raw: "a\u0085b", err: ErrInvalidName},
		{raw: "a\x7f", err: ErrInvalidName},
		{raw: "a/./b", err: ErrInvalidName},
		{raw: "a/..", err: ErrPathTraversal},
		{raw: "..", err: ErrPathTraversal},
		{raw: "/", err: ErrAbsolutePath},
		{raw: "\xc3", err: ErrInvalidName},
		{raw: strings.Repeat("a/", 513), err: ErrNameTooLong},
	}
	for _, tt := range tests {
		got, root, err := cleanName(tt.raw, 16)
		if !errors.Is(err, tt.err) || got != tt.want || root != tt.root {
			t.Errorf("cleanName(%q) = %q, %v, %v; want %q, %v, %v", tt.raw, got, root, err, tt.want, tt.root, tt.err)
		}
	}
}

// failingReader returns data then err, as an interrupted upload does.
type failingReader struct {
	data []byte
	err  error
}

func (f *failingReader) Read(p []byte) (int, error) {
	if len(f.data) == 0 {
		return 0, f.err
	}
	n := copy(p, f.data)
	f.data = f.data[n:]
	return n, nil
}

func TestExtractInterrupted(t *testing.T) {
	t.Parallel()
	big := strings.Repeat("w", 300000)
	errGone := errors.New("client went away")
	for _, data := range [][]byte{
		makeTar(t, model, tent{name: "w.bin", body: big}),
		gzipped(t, makeTar(t, model, tent{name: "w.bin", body: big})),
		makeZip(t, zent{name: "model.onnx", body: "m"}, zent{name: "w.bin", body: big}),
	} {
		dest := filepath.Join(t.TempDir(), "m")
		_, err := Extract(context.Background(), &failingReader{data: data[:len(data)/2], err: errGone}, dest, testLimits())
		if !errors.Is(err, errGone) || !errors.Is(err, ErrCorruptArchive) {
			t.Errorf("err = %v, want the upload's error as a corrupt archive", err)
		}
		assertNothingLeft(t, dest)
	}
}

func TestExtractExactArchiveLimit(t *testing.T) {
	t.Parallel()
	for _, data := range [][]byte{makeTar(t, model), makeZip(t, zent{name: "model.onnx", body: "m"})} {
		l := testLimits()
		l.MaxArchiveBytes = int64(len(data))
		if _, _, err := extractTo(t, data, l); err != nil {
			t.Errorf("archive of exactly the limit: %v", err)
		}
		l.MaxArchiveBytes--
		if _, _, err := extractTo(t, data, l); !errors.Is(err, ErrArchiveTooLarge) {
			t.Errorf("archive one byte over the limit: %v", err)
		}
	}
}
