package modelarchive

import (
	"archive/zip"
	"bufio"
	"bytes"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"slices"
	"strings"
	"sync/atomic"
)

// zip spools the upload to a temporary file in spoolDir (zip's central
// directory is at the end, so it needs random access), then extracts it.
func (x *extractor) zip(r io.Reader, spoolDir, spoolPattern string) (err error) {
	spool, err := os.CreateTemp(spoolDir, spoolPattern)
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

// checkDirectory walks the central directory before archive/zip does,
// because archive/zip keeps every directory record in memory and reads
// records until one lacks the signature, whatever count the end record
// claims: an archive of millions of tiny records, or of records with huge
// extra fields or comments, is refused here, in constant memory.
func (x *extractor) checkDirectory(f *os.File, size int64) error {
	const eocdLen, maxComment = 22, 1<<16 - 1
	tailLen := min(size, eocdLen+maxComment)
	tail := make([]byte, tailLen)
	if _, err := f.ReadAt(tail, size-tailLen); err != nil {
		return classifyReadErr("read zip directory", err)
	}
	i := bytes.LastIndex(tail, []byte("PK\x05\x06"))
	if i < 0 || len(tail)-i < eocdLen {
		return fmt.Errorf("%w: no zip end-of-directory record", ErrCorruptArchive)
	}
	endPos := size - tailLen + int64(i)
	eocd := tail[i:]
	dirSize := uint64(binary.LittleEndian.Uint32(eocd[12:]))
	dirOffset := uint64(binary.LittleEndian.Uint32(eocd[16:]))
	if binary.LittleEndian.Uint16(eocd[10:]) == 0xffff || dirSize == 0xffffffff || dirOffset == 0xffffffff {
		// Zip64: the real values are in the zip64 end record, which the
		// locator just before the end record points to.
		var l [20]byte
		if endPos < int64(len(l)) {
			return fmt.Errorf("%w: zip64 locator missing", ErrCorruptArchive)
		}
		if _, err := f.ReadAt(l[:], endPos-int64(len(l))); err != nil || string(l[:4]) != "PK\x06\x07" {
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
		endPos = int64(off)
		dirSize = binary.LittleEndian.Uint64(rec[40:])
		dirOffset = binary.LittleEndian.Uint64(rec[48:])
	}
	if dirSize > math.MaxInt64 || dirOffset > math.MaxInt64 {
		return fmt.Errorf("%w: zip directory out of range", ErrCorruptArchive)
	}
	// archive/zip starts at endPos-dirSize (allowing for data prepended to
	// the archive) or, when a record is there, at dirOffset: walk both.
	for _, start := range []int64{endPos - int64(dirSize), int64(dirOffset)} {
		if start < 0 || start >= size {
			continue
		}
		if err := x.walkDirectory(io.NewSectionReader(f, start, size-start)); err != nil {
			return err
		}
	}
	return nil
}

// maxZipRecordExtra bounds the extra fields plus comment of one directory
// record (real archives use well under 100 bytes), so that MaxFiles records
// cannot hold more than a few KiB each in memory.
const maxZipRecordExtra = 1024

func (x *extractor) walkDirectory(r io.Reader) error {
	br := bufio.NewReaderSize(r, 64<<10)
	var rec [46]byte
	for n := 0; ; n++ {
		if _, err := io.ReadFull(br, rec[:]); err != nil || string(rec[:4]) != "PK\x01\x02" {
			return nil // the end of the records, as archive/zip sees it
		}
		if n >= x.lim.MaxFiles {
			return fmt.Errorf("%w: the zip directory holds more than %d entries", ErrTooManyFiles, x.lim.MaxFiles)
		}
		nameLen := int(binary.LittleEndian.Uint16(rec[28:]))
		extraLen := int(binary.LittleEndian.Uint16(rec[30:])) + int(binary.LittleEndian.Uint16(rec[32:]))
		if nameLen > maxNameBytes {
			return fmt.Errorf("%w: a zip directory record has a name of %d bytes, limit %d", ErrNameTooLong, nameLen, maxNameBytes)
		}
		if extraLen > maxZipRecordExtra {
			return fmt.Errorf("%w: a zip directory record has %d bytes of extra fields and comment, limit %d", ErrUnsupportedEntry, extraLen, maxZipRecordExtra)
		}
		if _, err := br.Discard(nameLen + extraLen); err != nil {
			return nil
		}
	}
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
