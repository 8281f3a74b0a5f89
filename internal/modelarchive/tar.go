package modelarchive

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"strings"
)

func (x *extractor) tarGz(r io.Reader) error {
	zr, err := gzip.NewReader(r)
	if err != nil {
		return classifyReadErr("read gzip header", err)
	}
	defer zr.Close() //nolint:errcheck // a gzip.Reader's Close only reports earlier errors, already seen
	// Every decompressed byte counts against the ratio, tar headers and
	// padding included, not only file contents: a stream of huge PAX
	// headers costs CPU too.
	var in io.Reader = &ratioReader{r: zr, compressed: x.compressed, max: x.lim.MaxRatio}
	// Peek through a small buffer to check that the gzip holds a tar: a
	// gzip-compressed anything else gets a clear message, not a tar error.
	// io.ReadFull would report a truncated gzip and a short but complete
	// one alike, as io.ErrUnexpectedEOF; only the first is corrupt.
	var head [512]byte
	n := 0
	for n < len(head) {
		k, err := in.Read(head[n:])
		n += k
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return classifyReadErr("read gzip", err)
		}
	}
	if !isTarHeader(head[:n]) {
		return fmt.Errorf("%w: the gzip stream does not hold a tar archive", ErrUnsupportedArchive)
	}
	return x.tar(io.MultiReader(bytes.NewReader(head[:n]), in))
}

// paxBenign are the PAX records a global header may carry: metadata that
// changes nothing about what is extracted (git archive writes a comment).
var paxBenign = map[string]bool{
	"comment": true, "mtime": true, "atime": true, "ctime": true,
	"uid": true, "gid": true, "uname": true, "gname": true,
}

func (x *extractor) tar(r io.Reader) error {
	tr := tar.NewReader(r)
	for {
		if err := x.ctx.Err(); err != nil {
			return err
		}
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		// ErrInsecurePath (GODEBUG tarinsecurepath=0) comes with a usable
		// header: the name checks below give the precise reason.
		if err != nil && !(errors.Is(err, tar.ErrInsecurePath) && hdr != nil) {
			return classifyReadErr("read tar header", err)
		}
		if err := x.tarEntry(tr, hdr); err != nil {
			return err
		}
	}
	return drainTrailer(r)
}

func (x *extractor) tarEntry(tr *tar.Reader, hdr *tar.Header) error {
	// The reader has already folded PAX and GNU long-name records into
	// hdr.Name; PAX sparse files it would expand silently, so refuse them.
	for k := range hdr.PAXRecords {
		if strings.HasPrefix(k, "GNU.sparse.") {
			return entryErr(hdr.Name, fmt.Errorf("%w: sparse file", ErrUnsupportedEntry))
		}
	}
	switch hdr.Typeflag {
	case tar.TypeReg:
		name, err := x.admit(hdr.Name, false)
		if err != nil {
			return err
		}
		return x.writeFile(name, hdr.Size, tr)
	case tar.TypeDir:
		if hdr.Size != 0 {
			return entryErr(hdr.Name, fmt.Errorf("%w: directory with %d bytes of content", ErrUnsupportedEntry, hdr.Size))
		}
		name, err := x.admit(hdr.Name, true)
		if err != nil || name == "" {
			return err
		}
		return x.mkdir(name)
	case tar.TypeXGlobalHeader:
		if err := x.count(hdr.Name); err != nil {
			return err
		}
		for k := range hdr.PAXRecords {
			if !paxBenign[k] {
				return entryErr(hdr.Name, fmt.Errorf("%w: global PAX header record %s", ErrUnsupportedEntry, printable(k)))
			}
		}
		return nil
	case tar.TypeSymlink:
		return entryErr(hdr.Name, fmt.Errorf("%w: symlink to %s", ErrLink, printable(hdr.Linkname)))
	case tar.TypeLink:
		return entryErr(hdr.Name, fmt.Errorf("%w: hardlink to %s", ErrLink, printable(hdr.Linkname)))
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		return entryErr(hdr.Name, fmt.Errorf("%w: type %q", ErrSpecialFile, hdr.Typeflag))
	default:
		return entryErr(hdr.Name, fmt.Errorf("%w: tar type flag %q", ErrUnsupportedEntry, hdr.Typeflag))
	}
}

// drainTrailer reads what follows the end-of-archive marker: tar pads to a
// record size with zeros, and for tar.gz reading to the end checks the gzip
// checksum. Anything but zeros there would be ignored data, so it is refused.
func drainTrailer(r io.Reader) error {
	var buf [4096]byte
	var n int64
	for {
		k, err := r.Read(buf[:])
		for _, b := range buf[:k] {
			if b != 0 {
				return ErrTrailingData
			}
		}
		n += int64(k)
		if n > maxTrailingBytes {
			return fmt.Errorf("%w: more than %d bytes of padding", ErrTrailingData, maxTrailingBytes)
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return classifyReadErr("read archive end", err)
		}
	}
}

// ratioReader fails once more than max bytes per compressed byte have come
// out of r (after the first ratioFloor bytes).
type ratioReader struct {
	r          io.Reader
	compressed func() int64
	n, max     int64
}

func (r *ratioReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	r.n += int64(n)
	if r.n > ratioFloor {
		if c := r.compressed(); c <= 0 || r.n/c > r.max {
			return n, fmt.Errorf("%w: %d bytes from %d, limit %d:1", ErrCompressionRatio, r.n, c, r.max)
		}
	}
	return n, err
}
