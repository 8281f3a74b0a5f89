package modelarchive

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/flate"
	"compress/gzip"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io/fs"
	"strconv"
	"testing"
)

// tent is one tar entry for makeTar.
type tent struct {
	name string
	body string
	typ  byte   // tar type flag; 0 means a regular file (or a directory if name ends in "/")
	link string // Linkname
	pax  map[string]string
}

func makeTar(tb testing.TB, ents ...tent) []byte {
	tb.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range ents {
		h := &tar.Header{Name: e.name, Linkname: e.link, Typeflag: e.typ, Mode: 0o644, PAXRecords: e.pax}
		switch {
		case e.typ == 0 && len(e.name) > 0 && e.name[len(e.name)-1] == '/':
			h.Typeflag, h.Mode = tar.TypeDir, 0o755
		case e.typ == 0:
			h.Typeflag, h.Size = tar.TypeReg, int64(len(e.body))
		}
		if e.pax != nil {
			h.Format = tar.FormatPAX
		}
		if e.typ == tar.TypeXGlobalHeader {
			h = &tar.Header{Typeflag: e.typ, Name: e.name, PAXRecords: e.pax}
		}
		if err := tw.WriteHeader(h); err != nil {
			tb.Fatalf("tar header %q: %v", e.name, err)
		}
		if h.Typeflag == tar.TypeReg {
			if _, err := tw.Write([]byte(e.body)); err != nil {
				tb.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

// rawTarBlock builds one ustar header block by hand, for headers that
// archive/tar's writer refuses to produce (invalid UTF-8, unknown types,
// crafted PAX records).
func rawTarBlock(name string, typ byte, size int) []byte {
	b := make([]byte, 512)
	copy(b[0:100], name)
	copy(b[100:108], "0000644\x00")
	copy(b[108:116], "0000000\x00")
	copy(b[116:124], "0000000\x00")
	copy(b[124:136], fmt.Sprintf("%011o\x00", size))
	copy(b[136:148], "00000000000\x00")
	b[156] = typ
	copy(b[257:265], "ustar\x0000")
	if typ == tar.TypeGNUSparse {
		copy(b[257:265], "ustar  \x00")
	}
	copy(b[148:156], "        ")
	var sum int
	for _, c := range b {
		sum += int(c)
	}
	copy(b[148:156], fmt.Sprintf("%06o\x00 ", sum))
	return b
}

func pad512(b []byte) []byte {
	if r := len(b) % 512; r != 0 {
		b = append(b, make([]byte, 512-r)...)
	}
	return b
}

// rawTar concatenates blocks and content and adds the end marker.
func rawTar(parts ...[]byte) []byte {
	var out []byte
	for _, p := range parts {
		out = append(out, pad512(p)...)
	}
	return append(out, make([]byte, 1024)...)
}

func paxRecord(k, v string) string {
	rec := " " + k + "=" + v + "\n"
	n := len(rec)
	for {
		s := strconv.Itoa(n) + rec
		if len(s) == n {
			return s
		}
		n = len(s)
	}
}

func gzipped(tb testing.TB, b []byte) []byte {
	tb.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		tb.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

// zent is one zip entry for makeZip.
type zent struct {
	name string
	body string
	mode fs.FileMode // 0: default
	raw  *zip.FileHeader
	data []byte // raw (already compressed) data for raw
}

func makeZip(tb testing.TB, ents ...zent) []byte {
	tb.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, e := range ents {
		if e.raw != nil {
			w, err := zw.CreateRaw(e.raw)
			if err != nil {
				tb.Fatal(err)
			}
			if _, err := w.Write(e.data); err != nil {
				tb.Fatal(err)
			}
			continue
		}
		h := &zip.FileHeader{Name: e.name, Method: zip.Deflate}
		if e.mode != 0 {
			h.SetMode(e.mode)
		}
		w, err := zw.CreateHeader(h)
		if err != nil {
			tb.Fatal(err)
		}
		if _, err := w.Write([]byte(e.body)); err != nil {
			tb.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

func deflate(tb testing.TB, b []byte) []byte {
	tb.Helper()
	var buf bytes.Buffer
	fw, err := flate.NewWriter(&buf, flate.BestCompression)
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := fw.Write(b); err != nil {
		tb.Fatal(err)
	}
	if err := fw.Close(); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

// overlappingZip writes one stored local entry and n central-directory
// records that all point at it: the non-recursive zip bomb layout.
func overlappingZip(body []byte, n int) []byte {
	var out bytes.Buffer
	le := binary.LittleEndian
	crc := crc32.ChecksumIEEE(body)
	name := "a.bin"
	local := make([]byte, 30)
	le.PutUint32(local[0:], 0x04034b50)
	le.PutUint16(local[4:], 20)
	le.PutUint32(local[14:], crc)
	le.PutUint32(local[18:], uint32(len(body)))
	le.PutUint32(local[22:], uint32(len(body)))
	le.PutUint16(local[26:], uint16(len(name)))
	out.Write(local)
	out.WriteString(name)
	out.Write(body)
	cdStart := out.Len()
	for i := range n {
		nm := fmt.Sprintf("f%d.bin", i)
		c := make([]byte, 46)
		le.PutUint32(c[0:], 0x02014b50)
		le.PutUint16(c[4:], 20)
		le.PutUint16(c[6:], 20)
		le.PutUint32(c[16:], crc)
		le.PutUint32(c[20:], uint32(len(body)))
		le.PutUint32(c[24:], uint32(len(body)))
		le.PutUint16(c[28:], uint16(len(nm)))
		out.Write(c)
		out.WriteString(nm)
	}
	cdLen := out.Len() - cdStart
	e := make([]byte, 22)
	le.PutUint32(e[0:], 0x06054b50)
	le.PutUint16(e[8:], uint16(n))
	le.PutUint16(e[10:], uint16(n))
	le.PutUint32(e[12:], uint32(cdLen))
	le.PutUint32(e[16:], uint32(cdStart))
	out.Write(e)
	return out.Bytes()
}

func crc(b []byte) uint32 { return crc32.ChecksumIEEE(b) }
