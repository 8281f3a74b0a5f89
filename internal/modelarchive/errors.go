package modelarchive

import (
	"errors"
	"fmt"
	"strconv"
)

// Errors about the archive as a whole.
var (
	ErrUnsupportedArchive = errors.New("unsupported archive format: upload a tar, tar.gz or zip of the model directory")
	ErrCorruptArchive     = errors.New("corrupt or truncated archive")
	ErrArchiveTooLarge    = errors.New("archive exceeds the upload size limit")
	ErrEmptyArchive       = errors.New("archive contains no files")
	ErrDestinationExists  = errors.New("extraction destination already exists")
	ErrTrailingData       = errors.New("non-zero data after the end of the archive")
)

// Errors about one entry; they come wrapped in an *EntryError.
var (
	ErrInvalidName         = errors.New("invalid entry name")
	ErrAbsolutePath        = errors.New("absolute entry name")
	ErrPathTraversal       = errors.New("entry name contains a '..' component")
	ErrNameTooLong         = errors.New("entry name too long")
	ErrTooDeep             = errors.New("entry nested too deeply")
	ErrLink                = errors.New("links are not allowed")
	ErrSpecialFile         = errors.New("devices, FIFOs and sockets are not allowed")
	ErrUnsupportedEntry    = errors.New("unsupported entry type")
	ErrDuplicateEntry      = errors.New("duplicate entry")
	ErrTooManyFiles        = errors.New("too many entries")
	ErrFileTooLarge        = errors.New("file exceeds the per-file size limit")
	ErrTotalTooLarge       = errors.New("unpacked size exceeds the total size limit")
	ErrCompressionRatio    = errors.New("compression ratio exceeds the limit (possible decompression bomb)")
	ErrOverlappingEntries  = errors.New("zip entries overlap (possible decompression bomb)")
	ErrCodeExecutingFormat = errors.New("format executes code when loaded")
	ErrUnknownFileType     = errors.New("file type not allowed in a model directory")
)

// Errors about the model directory as a whole (CheckFiles).
var (
	ErrNoModel        = errors.New("no .onnx model file")
	ErrAmbiguousModel = errors.New("several .onnx files and none named model.onnx")
)

// EntryError is an error about one archive entry or model file. Entry is safe
// to print: control characters and invalid UTF-8 are escaped and it is
// truncated, so an attacker-chosen name cannot forge log lines or terminals.
type EntryError struct {
	Entry string
	Err   error
}

func (e *EntryError) Error() string { return fmt.Sprintf("entry %s: %v", e.Entry, e.Err) }
func (e *EntryError) Unwrap() error { return e.Err }

func entryErr(name string, err error) error {
	return &EntryError{Entry: printable(name), Err: err}
}

// printable quotes name with Go escapes (control characters, invalid UTF-8,
// quotes), after truncating it to a length that keeps messages readable.
func printable(name string) string {
	const maxShown = 200
	if len(name) > maxShown {
		return strconv.Quote(name[:maxShown]) + "…"
	}
	return strconv.Quote(name)
}
