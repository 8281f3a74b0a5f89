package modelarchive

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
)

// Format is the detected archive format.
type Format string

// The archive formats Extract accepts.
const (
	FormatTar   Format = "tar"
	FormatTarGz Format = "tar.gz"
	FormatZip   Format = "zip"
)

// File is one regular file of an extracted model directory.
type File struct {
	Path    string      `json:"path"`              // relative POSIX path inside the model directory
	Size    int64       `json:"size"`              // bytes written, counted while copying
	Content ContentKind `json:"content,omitempty"` // what the first bytes look like (see Sniff)
	// SHA256 is the digest of the bytes written, computed while writing
	// them, so that a caller need not read a large file again to hash it.
	SHA256 [32]byte `json:"-"`
}

// Manifest describes what Extract wrote.
type Manifest struct {
	Format Format `json:"format"`
	// Files are the regular files, sorted by path components (the order of
	// the OpenSSF model-signing manifest). Directories are not listed: a
	// model directory is its files.
	Files []File `json:"files"`
	// TotalBytes is the sum of the file sizes.
	TotalBytes int64 `json:"total_bytes"`
	// ArchiveBytes is how many bytes of the upload were read.
	ArchiveBytes int64 `json:"archive_bytes"`
	// Stripped is the single top-level directory that wrapped everything
	// and was removed ("" when none).
	Stripped string `json:"stripped,omitempty"`
}

const (
	copyBufferSize = 256 << 10
	// ratioFloor: the compression ratio is only checked once this many bytes
	// have been written, so small compressible files never trip it.
	ratioFloor = 1 << 20
	// maxTrailingBytes bounds the padding read after a tar's end marker.
	maxTrailingBytes = 1 << 20
)

// Extract unpacks the tar, tar.gz or zip archive read from r into dest, which
// must not exist; Extract creates it (0700) with files 0600 and directories
// 0700. A single top-level directory wrapping everything is stripped, so that
// both "tar -C parent -cf x.tar model" and "tar -C model -cf x.tar ." work.
//
// Memory use is constant whatever the archive size. A zip, which needs random
// access, is first spooled to a temporary file next to dest (named after
// dest's base name with a ".spool-" suffix) and removed before Extract
// returns. On any error, including ctx's cancellation, dest is removed and the
// error says which entry and which rule; entry errors are *EntryError.
//
// Callers should give each upload a fresh dest inside a private staging
// directory that they empty at startup, so that a process killed mid-upload
// leaves nothing behind either.
func Extract(ctx context.Context, r io.Reader, dest string, lim Limits) (_ Manifest, err error) {
	if err := lim.Validate(); err != nil {
		return Manifest{}, err
	}
	dest = filepath.Clean(dest)
	if err := os.Mkdir(dest, 0o700); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return Manifest{}, fmt.Errorf("%w: %s", ErrDestinationExists, dest)
		}
		return Manifest{}, fmt.Errorf("create extraction directory: %w", err)
	}
	defer func() {
		if err != nil {
			if rmErr := os.RemoveAll(dest); rmErr != nil {
				err = errors.Join(err, fmt.Errorf("remove partial extraction: %w", rmErr))
			}
		}
	}()
	root, err := os.OpenRoot(dest)
	if err != nil {
		return Manifest{}, fmt.Errorf("open extraction directory: %w", err)
	}
	defer func() {
		if cerr := root.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("close extraction directory: %w", cerr)
		}
	}()
	m, err := extract(ctx, r, dirSink{root}, filepath.Dir(dest), filepath.Base(dest)+".spool-*", lim)
	if err != nil {
		return Manifest{}, err
	}
	if m.Stripped != "" {
		if err := stripTop(dest, m.Stripped); err != nil {
			return Manifest{}, err
		}
	}
	return m, nil
}

// Sink receives the files of ExtractTo.
type Sink interface {
	// Create starts the file of an entry, named by its cleaned path
	// before any top-level directory is stripped (Manifest.Stripped
	// tells which): path.Join(m.Stripped, f.Path) is the name it got.
	Create(name string) (SinkFile, error)
}

// SinkFile is one file being written to a Sink.
type SinkFile interface {
	io.Writer
	Close() error
	// SHA256 is the digest of the bytes written, once closed: it becomes
	// File.SHA256, so the sink hashes what it stores.
	SHA256() [32]byte
}

// ExtractTo is Extract writing each file through sink instead of into a
// directory, with the same checks and limits; a zip is spooled in
// spoolDir. On error, some files may have been created: the caller
// discards them.
func ExtractTo(ctx context.Context, r io.Reader, sink Sink, spoolDir string, lim Limits) (Manifest, error) {
	if err := lim.Validate(); err != nil {
		return Manifest{}, err
	}
	return extract(ctx, r, sink, spoolDir, "upload.spool-*", lim)
}

// extract does the work of Extract and ExtractTo; spoolPattern names a
// zip's spool file in spoolDir (os.CreateTemp).
func extract(ctx context.Context, r io.Reader, sink Sink, spoolDir, spoolPattern string, lim Limits) (Manifest, error) {
	up := &uploadReader{r: r, max: lim.MaxArchiveBytes}
	br := bufio.NewReaderSize(up, 64<<10)
	x := &extractor{
		ctx:  ctx,
		sink: sink,
		lim:  lim,
		seen: make(map[string]seenEntry),
		buf:  make([]byte, copyBufferSize),
	}
	format, err := detect(br)
	if err != nil {
		return Manifest{}, err
	}
	switch format {
	case FormatTar:
		x.compressed = up.count
		err = x.tar(br)
	case FormatTarGz:
		x.compressed = up.count
		err = x.tarGz(br)
	case FormatZip:
		err = x.zip(br, spoolDir, spoolPattern)
	}
	if err != nil {
		return Manifest{}, err
	}
	if len(x.files) == 0 {
		return Manifest{}, ErrEmptyArchive
	}
	m := Manifest{Format: format, Files: x.files, TotalBytes: x.total, ArchiveBytes: up.n}
	if top := x.singleTop(); top != "" {
		m.Stripped = top
		for i := range m.Files {
			m.Files[i].Path = strings.TrimPrefix(m.Files[i].Path, top+"/")
		}
	}
	slices.SortFunc(m.Files, func(a, b File) int {
		if lessPath(a.Path, b.Path) {
			return -1
		}
		if lessPath(b.Path, a.Path) {
			return 1
		}
		return 0
	})
	return m, nil
}

// dirSink writes into a directory, hashing beside the writes.
type dirSink struct{ root *os.Root }

func (d dirSink) Mkdir(name string) error {
	if err := d.root.MkdirAll(name, 0o700); err != nil {
		return fmt.Errorf("create directory %s: %w", printable(name), err)
	}
	return nil
}

func (d dirSink) Create(name string) (SinkFile, error) {
	if dir := path.Dir(name); dir != "." {
		if err := d.Mkdir(dir); err != nil {
			return nil, err
		}
	}
	f, err := d.root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, err
	}
	return &hashedFile{f: f, h: newAsyncHash()}, nil
}

// hashedFile hashes in another goroutine (asyncHash) what it writes: the
// digest comes at no extra pass over the file.
type hashedFile struct {
	f   *os.File
	h   *asyncHash
	sum [32]byte
}

func (h *hashedFile) Write(p []byte) (int, error) {
	h.h.Write(p)
	return h.f.Write(p)
}

func (h *hashedFile) Close() error {
	h.sum = h.h.Sum() // also stops the goroutine
	return h.f.Close()
}

func (h *hashedFile) SHA256() [32]byte { return h.sum }

// detect peeks at the first bytes without consuming them.
func detect(br *bufio.Reader) (Format, error) {
	head, err := br.Peek(512)
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, bufio.ErrBufferFull) {
		return "", classifyReadErr("read upload", err)
	}
	switch {
	case len(head) == 0:
		return "", fmt.Errorf("%w: the upload is empty", ErrUnsupportedArchive)
	case bytes.HasPrefix(head, []byte{0x1f, 0x8b}):
		return FormatTarGz, nil
	case bytes.HasPrefix(head, []byte("PK\x03\x04")):
		return FormatZip, nil
	case bytes.HasPrefix(head, []byte("PK\x05\x06")):
		return "", fmt.Errorf("%w: empty zip archive", ErrEmptyArchive)
	case isTarHeader(head):
		return FormatTar, nil
	}
	return "", fmt.Errorf("%w: unrecognised leading bytes %q", ErrUnsupportedArchive, head[:min(len(head), 8)])
}

// isTarHeader recognises POSIX ustar/PAX ("ustar\x0000") and GNU
// ("ustar  \x00") headers. Pre-POSIX v7 archives, which have no magic, are
// not accepted: nothing produces them today.
func isTarHeader(b []byte) bool {
	if len(b) < 512 {
		return false
	}
	magic := b[257:265]
	return bytes.Equal(magic, []byte("ustar\x0000")) || bytes.Equal(magic, []byte("ustar  \x00"))
}

// uploadReader counts the bytes read from the upload and refuses to read more
// than max.
type uploadReader struct {
	r      io.Reader
	n, max int64
}

func (u *uploadReader) Read(p []byte) (int, error) {
	if u.n > u.max {
		return 0, fmt.Errorf("%w: more than %d bytes", ErrArchiveTooLarge, u.max)
	}
	if rest := u.max - u.n + 1; int64(len(p)) > rest {
		p = p[:rest] // read one byte past the limit to tell "exactly max" from "more"
	}
	n, err := u.r.Read(p)
	u.n += int64(n)
	if u.n > u.max {
		return n, fmt.Errorf("%w: more than %d bytes", ErrArchiveTooLarge, u.max)
	}
	return n, err
}

func (u *uploadReader) count() int64 { return u.n }

// classifyReadErr keeps the errors that say why a read stopped (limits,
// cancellation) and marks everything else as a corrupt archive.
func classifyReadErr(what string, err error) error {
	switch {
	case errors.Is(err, ErrArchiveTooLarge), errors.Is(err, ErrCompressionRatio),
		errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%s: %w", what, err)
	}
	return fmt.Errorf("%s: %w: %w", what, ErrCorruptArchive, err)
}

type seenEntry struct {
	path     string // exact spelling, to tell case-only clashes apart
	dir      bool
	explicit bool // named by an entry, not only implied by a file below it
}

// extractor holds the state shared by the tar and zip readers.
type extractor struct {
	ctx  context.Context
	sink Sink
	lim  Limits
	// seen maps the lower-cased path of every file and directory (explicit
	// or implied) to its entry, to refuse duplicates, case-only duplicates
	// (which collide on case-insensitive filesystems) and file/directory
	// clashes.
	seen    map[string]seenEntry
	entries int
	files   []File
	total   int64
	buf     []byte
	// compressed reports the compressed bytes read so far, and expanded
	// counts the bytes written since the ratio's start: the whole stream
	// for tar, one entry for zip.
	compressed func() int64
	expanded   int64
}

// admit validates an entry name, counts it and records it and its parents.
// It returns the cleaned name, or "" for the archive's root entry.
func (x *extractor) admit(raw string, dir bool) (string, error) {
	if err := x.ctx.Err(); err != nil {
		return "", err
	}
	if err := x.count(raw); err != nil {
		return "", err
	}
	name, root, err := cleanName(raw, x.lim.MaxDepth)
	if err != nil {
		return "", entryErr(raw, err)
	}
	if root {
		if !dir {
			return "", entryErr(raw, fmt.Errorf("%w: a file named like the archive root", ErrInvalidName))
		}
		return "", nil
	}
	parts := strings.Split(name, "/")
	for i := 1; i < len(parts); i++ {
		parent := strings.Join(parts[:i], "/")
		key := strings.ToLower(parent)
		prev, ok := x.seen[key]
		switch {
		case !ok:
			x.seen[key] = seenEntry{path: parent, dir: true}
		case !prev.dir:
			return "", entryErr(raw, fmt.Errorf("%w: %s is a file and a directory", ErrDuplicateEntry, printable(prev.path)))
		case prev.path != parent:
			return "", entryErr(raw, fmt.Errorf("%w: %s and %s differ only in case", ErrDuplicateEntry, printable(prev.path), printable(parent)))
		}
	}
	key := strings.ToLower(name)
	if prev, ok := x.seen[key]; ok {
		// The one repetition allowed: an explicit directory entry for a
		// directory so far only implied by the files below it.
		if !(dir && prev.dir && !prev.explicit && prev.path == name) {
			return "", entryErr(raw, fmt.Errorf("%w: already have %s", ErrDuplicateEntry, printable(prev.path)))
		}
	}
	x.seen[key] = seenEntry{path: name, dir: dir, explicit: true}
	return name, nil
}

// count counts every entry against MaxFiles, including those that write
// nothing (the archive root, PAX global headers), so that no kind of entry
// can repeat without bound.
func (x *extractor) count(raw string) error {
	x.entries++
	if x.entries > x.lim.MaxFiles {
		return entryErr(raw, fmt.Errorf("%w: limit %d", ErrTooManyFiles, x.lim.MaxFiles))
	}
	return nil
}

// mkdir creates an explicit directory entry where the sink keeps
// directories (a Sink otherwise only sees files).
func (x *extractor) mkdir(name string) error {
	if d, ok := x.sink.(interface{ Mkdir(string) error }); ok {
		return d.Mkdir(name)
	}
	return nil
}

// writeFile copies one entry's content to name, counting every byte against
// the limits as it goes; sizes in headers are never trusted. sizeHint is the
// size the header claims, used only to refuse early.
func (x *extractor) writeFile(name string, sizeHint int64, src io.Reader) (err error) {
	if sizeHint > x.lim.MaxFileBytes {
		return entryErr(name, fmt.Errorf("%w: header says %d bytes, limit %d", ErrFileTooLarge, sizeHint, x.lim.MaxFileBytes))
	}
	f, err := x.sink.Create(name)
	if err != nil {
		return fmt.Errorf("create %s: %w", printable(name), err)
	}
	closed := false
	defer func() {
		if !closed {
			_ = f.Close() // the error that ended the copy is the one to report
		}
	}()
	var (
		size    int64
		head    [sniffBytes]byte
		headLen int
	)
	for {
		if err := x.ctx.Err(); err != nil {
			return err
		}
		n, rerr := src.Read(x.buf)
		if n > 0 {
			size += int64(n)
			x.total += int64(n)
			x.expanded += int64(n)
			switch {
			case size > x.lim.MaxFileBytes:
				return entryErr(name, fmt.Errorf("%w: more than %d bytes", ErrFileTooLarge, x.lim.MaxFileBytes))
			case x.total > x.lim.MaxTotalBytes:
				return entryErr(name, fmt.Errorf("%w: more than %d bytes", ErrTotalTooLarge, x.lim.MaxTotalBytes))
			}
			if err := x.checkRatio(name); err != nil {
				return err
			}
			headLen += copy(head[headLen:], x.buf[:n])
			if _, err := f.Write(x.buf[:n]); err != nil {
				return fmt.Errorf("write %s: %w", printable(name), err)
			}
		}
		if errors.Is(rerr, io.EOF) {
			break
		}
		if rerr != nil {
			return entryErr(name, classifyReadErr("read", rerr))
		}
	}
	closed = true
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", printable(name), err)
	}
	x.files = append(x.files, File{Path: name, Size: size, Content: Sniff(head[:headLen]), SHA256: f.SHA256()})
	return nil
}

func (x *extractor) checkRatio(name string) error {
	if x.expanded <= ratioFloor {
		return nil
	}
	if c := x.compressed(); c <= 0 || x.expanded/c > x.lim.MaxRatio {
		return entryErr(name, fmt.Errorf("%w: %d bytes from %d, limit %d:1", ErrCompressionRatio, x.expanded, c, x.lim.MaxRatio))
	}
	return nil
}

// singleTop returns the name of the one top-level directory that holds
// everything, or "".
func (x *extractor) singleTop() string {
	top := ""
	for _, e := range x.seen {
		first, _, _ := strings.Cut(e.path, "/")
		if top != "" && first != top {
			return ""
		}
		top = first
	}
	if e, ok := x.seen[strings.ToLower(top)]; !ok || !e.dir {
		return ""
	}
	return top
}

// stripTop makes dest/top the new dest. dest/top moves into a fresh
// directory next to dest (so no name can collide, not even a child of top
// named like top), the then-empty dest is removed, and top moves back as
// dest.
func stripTop(dest, top string) error {
	tmp, err := os.MkdirTemp(filepath.Dir(dest), filepath.Base(dest)+".strip-*")
	if err != nil {
		return fmt.Errorf("strip top-level directory: %w", err)
	}
	moved := filepath.Join(tmp, "top")
	err = os.Rename(filepath.Join(dest, top), moved)
	if err == nil {
		err = os.Remove(dest)
	}
	if err == nil {
		err = os.Rename(moved, dest)
	}
	if err != nil {
		return errors.Join(fmt.Errorf("strip top-level directory: %w", err), os.RemoveAll(tmp))
	}
	if err := os.Remove(tmp); err != nil {
		return fmt.Errorf("strip top-level directory: %w", err)
	}
	return nil
}
