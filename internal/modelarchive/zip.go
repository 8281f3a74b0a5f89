package modelarchive

import (
	"archive/zip"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
)

// zip spools the upload to a temporary file next to dest (zip's central
// directory is at the end, so it needs random access), then extracts it.
func (x *extractor) zip(r io.Reader, dest string) (err error) {
	spool, err := os.CreateTemp(filepath.Dir(dest), filepath.Base(dest)+".spool-*")
	if err != nil {
		return fmt.Errorf("create zip spool file: %w", err)
	}
	defer func() {
		// The spool is never needed after Extract, whatever the outcome.
		if rmErr := errors.Join(spool.Close(), os.Remove(spool.Name())); rmErr != nil && err == nil {
			err = fmt.Errorf("remove zip spool file: %w", rmErr)
		}
	}()
	size, err := x.spool(spool, r)
	if err != nil {
		return err
	}
	if err := x.checkDirectory(spool, size); err != nil {
		return err
	}
	cra := &countingReaderAt{r: spool}
	zr, err := zip.NewReader(cra, size)
	// ErrInsecurePath (GODEBUG zipinsecurepath=0) comes with a usable
	// reader: the name checks below give the precise reason.
	if err != nil && !(errors.Is(err, zip.ErrInsecurePath) && zr != nil) {
		return classifyReadErr("read zip directory", err)
	}
	if len(zr.File) > x.lim.MaxFiles {
		return fmt.Errorf("%w: %d zip entries, limit %d", ErrTooManyFiles, len(zr.File), x.lim.MaxFiles)
	}
	if err := checkOverlap(zr.File, size); err != nil {
		return err
	}
	x.compressed = cra.count
	for _, f := range zr.File {
		if err := x.zipEntry(f, cra); err != nil {
			return err
		}
	}
	return nil
}

func (x *extractor) spool(dst *os.File, r io.Reader) (int64, error) {
	var n int64
	for {
		if err := x.ctx.Err(); err != nil {
			return n, err
		}
		k, rerr := r.Read(x.buf)
		if k > 0 {
			if _, err := dst.Write(x.buf[:k]); err != nil {
				return n, fmt.Errorf("write zip spool file: %w", err)
			}
			n += int64(k)
		}
		if errors.Is(rerr, io.EOF) {
			return n, nil
		}
		if rerr != nil {
			return n, classifyReadErr("read upload", rerr)
		}
	}
}

// checkDirectory reads the end-of-central-directory record before
// archive/zip does, because archive/zip allocates one record per directory
// entry up front: an archive claiming millions of tiny entries is refused
// here, before it costs memory.
func (x *extractor) checkDirectory(f *os.File, size int64) error {
	const eocdLen, maxComment = 22, 1<<16 - 1
	tailLen := min(size, eocdLen+maxComment)
	tail := make([]byte, tailLen)
	if _, err := f.ReadAt(tail, size-tailLen); err != nil {
		return classifyReadErr("read zip directory", err)
	}
	i := strings.LastIndex(string(tail), "PK\x05\x06")
	if i < 0 || len(tail)-i < eocdLen {
		return fmt.Errorf("%w: no zip end-of-directory record", ErrCorruptArchive)
	}
	eocd := tail[i:]
	entries := uint64(binary.LittleEndian.Uint16(eocd[10:]))
	dirSize := uint64(binary.LittleEndian.Uint32(eocd[12:]))
	if entries == 0xffff || dirSize == 0xffffffff {
		// Zip64: the real counts are in the zip64 record, which the
		// locator just before the end record points to.
		loc := size - tailLen + int64(i) - 20
		var l [20]byte
		if loc < 0 {
			return fmt.Errorf("%w: zip64 locator missing", ErrCorruptArchive)
		}
		if _, err := f.ReadAt(l[:], loc); err != nil || string(l[:4]) != "PK\x06\x07" {
			return fmt.Errorf("%w: zip64 locator missing", ErrCorruptArchive)
		}
		off := binary.LittleEndian.Uint64(l[8:])
		var rec [56]byte
		if off > math.MaxInt64 || int64(off) > size-int64(len(rec)) {
			return fmt.Errorf("%w: zip64 record out of range", ErrCorruptArchive)
		}
		if _, err := f.ReadAt(rec[:], int64(off)); err != nil || string(rec[:4]) != "PK\x06\x06" {
			return fmt.Errorf("%w: zip64 record missing", ErrCorruptArchive)
		}
		entries = binary.LittleEndian.Uint64(rec[32:])
		dirSize = binary.LittleEndian.Uint64(rec[40:])
	}
	if entries > math.MaxInt32 || int(entries) > x.lim.MaxFiles {
		return fmt.Errorf("%w: the zip directory lists %d entries, limit %d", ErrTooManyFiles, entries, x.lim.MaxFiles)
	}
	// A directory record is 46 bytes plus a name (≤ 1024 bytes here) and
	// extra fields and comment; 4 KiB each is far more than real archives
	// use. archive/zip reads records until one lacks the signature, so this
	// only bounds honest-looking archives; the entry count check after
	// parsing catches the rest.
	if dirSize > math.MaxInt32*4096 || int64(dirSize) > int64(x.lim.MaxFiles)*4096 {
		return fmt.Errorf("%w: zip directory of %d bytes", ErrTooManyFiles, dirSize)
	}
	return nil
}

// checkOverlap refuses entries whose data ranges overlap: the trick of
// non-recursive zip bombs, where many entries inflate the same compressed
// bytes.
func checkOverlap(files []*zip.File, size int64) error {
	type span struct {
		name       string
		start, end int64
	}
	spans := make([]span, 0, len(files))
	for _, f := range files {
		if strings.HasSuffix(f.Name, "/") && f.CompressedSize64 == 0 {
			continue
		}
		off, err := f.DataOffset()
		if err != nil {
			return entryErr(f.Name, classifyReadErr("read zip local header", err))
		}
		if f.CompressedSize64 > math.MaxInt64 || int64(f.CompressedSize64) > size-off {
			return entryErr(f.Name, fmt.Errorf("%w: data extends past the end of the archive", ErrCorruptArchive))
		}
		// The local header (30 bytes + name + extra) precedes the data and
		// must not overlap the previous entry either; 30 bytes is its minimum.
		spans = append(spans, span{f.Name, off - 30, off + int64(f.CompressedSize64)})
	}
	slices.SortFunc(spans, func(a, b span) int { return cmp.Compare(a.start, b.start) })
	for i := 1; i < len(spans); i++ {
		if spans[i].start < spans[i-1].end {
			return entryErr(spans[i].name, fmt.Errorf("%w: shares bytes with %s", ErrOverlappingEntries, printable(spans[i-1].name)))
		}
	}
	return nil
}

func (x *extractor) zipEntry(f *zip.File, cra *countingReaderAt) error {
	mode := f.Mode()
	dir := strings.HasSuffix(f.Name, "/") || mode.IsDir()
	switch {
	case mode&fs.ModeSymlink != 0:
		return entryErr(f.Name, fmt.Errorf("%w: symlink", ErrLink))
	case mode&(fs.ModeDevice|fs.ModeCharDevice|fs.ModeNamedPipe|fs.ModeSocket) != 0:
		return entryErr(f.Name, fmt.Errorf("%w: mode %v", ErrSpecialFile, mode))
	case !dir && !mode.IsRegular():
		return entryErr(f.Name, fmt.Errorf("%w: mode %v", ErrUnsupportedEntry, mode))
	case f.Flags&0x1 != 0:
		return entryErr(f.Name, fmt.Errorf("%w: encrypted", ErrUnsupportedEntry))
	case dir && f.UncompressedSize64 != 0:
		return entryErr(f.Name, fmt.Errorf("%w: directory with %d bytes of content", ErrUnsupportedEntry, f.UncompressedSize64))
	case !dir && f.Method != zip.Store && f.Method != zip.Deflate:
		return entryErr(f.Name, fmt.Errorf("%w: compression method %d", ErrUnsupportedEntry, f.Method))
	}
	name, err := x.admit(f.Name, dir)
	if err != nil {
		return err
	}
	if dir {
		if name == "" {
			return nil
		}
		return x.mkdir(name)
	}
	rc, err := f.Open()
	if err != nil {
		return entryErr(f.Name, classifyReadErr("open", err))
	}
	defer rc.Close() //nolint:errcheck // read-only
	// The ratio is per entry: bytes written against bytes actually read
	// from the spool since the entry was opened. archive/zip also fails
	// the read as soon as the data outgrows the header's size, or at the
	// end when size or CRC-32 differ.
	cra.reset()
	x.expanded = 0
	size := f.UncompressedSize64
	if size > 1<<62 {
		size = 1 << 62
	}
	return x.writeFile(name, int64(size), rc)
}

// countingReaderAt counts the bytes read through it.
type countingReaderAt struct {
	r io.ReaderAt
	n atomic.Int64
}

func (c *countingReaderAt) ReadAt(p []byte, off int64) (int, error) {
	n, err := c.r.ReadAt(p, off)
	c.n.Add(int64(n))
	return n, err
}

func (c *countingReaderAt) count() int64 { return c.n.Load() }
func (c *countingReaderAt) reset()       { c.n.Store(0) }
