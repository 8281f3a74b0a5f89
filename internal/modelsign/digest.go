package modelsign

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
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

// SignatureFile is the name of the signature inside a model directory.
const SignatureFile = "model.sig"

// DefaultIgnorePaths are the paths the reference tool leaves out of a
// model's digest unless told otherwise: the signature itself and git
// metadata. A directory in the list is skipped with everything under it.
var DefaultIgnorePaths = []string{".git", ".gitattributes", ".github", ".gitignore", SignatureFile}

// DefaultMaxFiles bounds how many files DigestDirectory hashes.
const DefaultMaxFiles = 100_000

// hashBufferSize is the read size while hashing: large enough that a
// syscall per read costs nothing next to SHA-256, small and fixed so memory
// stays constant whatever the file size (the reference reads 1 MiB too).
const hashBufferSize = 1 << 20

// Errors about the model directory itself.
var (
	// ErrSymlink: the model directory holds a symbolic link. OMS records
	// allow_symlinks=false; following links would let a model sign or
	// load bytes from outside its directory.
	ErrSymlink = errors.New("model directory holds a symbolic link")
	// ErrNotRegular: a device, pipe, socket or other non-regular file.
	ErrNotRegular = errors.New("model directory holds a file that is not a regular file")
	// ErrEmptyModel: no file is left to sign once ignored paths are skipped.
	ErrEmptyModel = errors.New("model directory holds no regular file")
	// ErrTooManyFiles: more files than Options.MaxFiles.
	ErrTooManyFiles = errors.New("model directory holds too many files")
)

// Options tune DigestDirectory. The zero value is the reference tool's
// default serialization.
type Options struct {
	// IgnorePaths are POSIX paths relative to the model directory to leave
	// out (with everything under them). Nil means DefaultIgnorePaths; the
	// list is recorded in the signature, so a verifier applies the same.
	IgnorePaths []string
	// MaxFiles bounds the number of files; 0 means DefaultMaxFiles.
	MaxFiles int
}

// File is one file of a model and its digest.
type File struct {
	Name   string   // POSIX path relative to the model directory
	Digest [32]byte // SHA-256 of the content
	Size   int64    // bytes hashed; 0 when read back from a signature
}

// DigestHex is the file's digest as the signature writes it.
func (f File) DigestHex() string { return hex.EncodeToString(f.Digest[:]) }

// Manifest is what a signature covers: every file of a model with its
// digest, in canonical order.
type Manifest struct {
	// ModelName names the subject; informative only (the reference uses
	// the directory's base name, and renaming a model keeps it valid).
	ModelName string
	// Files sorted by path components (see comparePaths).
	Files []File
	// IgnorePaths recorded in the signature.
	IgnorePaths []string
	// Ignored are the paths DigestFS found and skipped under IgnorePaths
	// (model.sig excepted); a directory is named once, not its contents.
	Ignored []string
}

// SubjectDigest is the statement subject's digest: SHA-256 over the
// concatenated raw file digests, in manifest order.
func (m Manifest) SubjectDigest() [32]byte {
	h := sha256.New()
	for _, f := range m.Files {
		h.Write(f.Digest[:])
	}
	var d [32]byte
	h.Sum(d[:0])
	return d
}

// DigestDirectory hashes the model directory dir. It opens dir as an
// os.Root, so no name it reads can resolve outside it.
func DigestDirectory(dir string, opts Options) (Manifest, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return Manifest{}, fmt.Errorf("open model directory: %w", err)
	}
	defer root.Close()
	m, err := DigestFS(root.FS(), opts)
	if err != nil {
		return Manifest{}, err
	}
	m.ModelName = modelName(dir)
	return m, nil
}

// modelName is the subject name the reference tool writes: the
// directory's last path component.
func modelName(dir string) string {
	abs, err := filepath.Abs(dir)
	if err != nil {
		abs = dir
	}
	name := path.Base(filepath.ToSlash(abs))
	if name == "/" || name == "." || name == "" {
		return "model"
	}
	return name
}

// DigestFS hashes every regular file of fsys (a model directory) except
// the ignored ones. Symbolic links and non-regular files are errors, not
// skipped: a model that cannot be signed faithfully is refused.
func DigestFS(fsys fs.FS, opts Options) (Manifest, error) {
	ignore := opts.IgnorePaths
	if ignore == nil {
		ignore = DefaultIgnorePaths
	}
	if err := validateIgnorePaths(ignore); err != nil {
		return Manifest{}, err
	}
	maxFiles := cmp.Or(opts.MaxFiles, DefaultMaxFiles)
	var files []File
	var skipped []string
	buf := make([]byte, hashBufferSize)
	err := fs.WalkDir(fsys, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if name != "." && ignored(name, ignore) {
			if name != SignatureFile {
				skipped = append(skipped, name)
			}
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		switch t := d.Type(); {
		case t&fs.ModeSymlink != 0:
			return fmt.Errorf("%s: %w", name, ErrSymlink)
		case d.IsDir():
			return nil
		case !t.IsRegular():
			return fmt.Errorf("%s: %w", name, ErrNotRegular)
		}
		if len(files) >= maxFiles {
			return fmt.Errorf("%w (more than %d)", ErrTooManyFiles, maxFiles)
		}
		f, err := hashFile(fsys, name, buf)
		if err != nil {
			return err
		}
		files = append(files, f)
		return nil
	})
	if err != nil {
		return Manifest{}, fmt.Errorf("digest model directory: %w", err)
	}
	if len(files) == 0 {
		return Manifest{}, ErrEmptyModel
	}
	sortFiles(files)
	return Manifest{Files: files, IgnorePaths: slices.Clone(ignore), Ignored: skipped}, nil
}

func sortFiles(files []File) {
	slices.SortFunc(files, func(a, b File) int { return comparePaths(a.Name, b.Name) })
}

// hashFile streams one file through SHA-256 with the caller's buffer.
func hashFile(fsys fs.FS, name string, buf []byte) (File, error) {
	r, err := fsys.Open(name)
	if err != nil {
		return File{}, err
	}
	defer r.Close()
	// The walk saw a regular file; check again on the open handle so a
	// file swapped for something else in between is not read.
	st, err := r.Stat()
	if err != nil {
		return File{}, err
	}
	if !st.Mode().IsRegular() {
		return File{}, fmt.Errorf("%s: %w", name, ErrNotRegular)
	}
	h := sha256.New()
	n, err := io.CopyBuffer(h, struct{ io.Reader }{r}, buf)
	if err != nil {
		return File{}, fmt.Errorf("read %s: %w", name, err)
	}
	f := File{Name: name, Size: n}
	h.Sum(f.Digest[:0])
	return f, nil
}

// comparePaths orders POSIX paths by their components, as the reference
// tool does (Python compares PurePosixPath objects part by part): "a/b"
// sorts before "a.b" although '.' < '/' as bytes. Components compare as
// bytes, which for UTF-8 is the code point order Python uses.
func comparePaths(a, b string) int {
	for {
		ah, at, aMore := strings.Cut(a, "/")
		bh, bt, bMore := strings.Cut(b, "/")
		if c := strings.Compare(ah, bh); c != 0 {
			return c
		}
		switch {
		case !aMore && !bMore:
			return 0
		case !aMore:
			return -1
		case !bMore:
			return 1
		}
		a, b = at, bt
	}
}

// ignored reports whether name is an ignored path or lies under one.
func ignored(name string, ignore []string) bool {
	for _, p := range ignore {
		if name == p || strings.HasPrefix(name, p+"/") {
			return true
		}
	}
	return false
}

// validateIgnorePaths accepts only clean relative paths inside the model:
// an ignore path comes from a signature, which is untrusted until verified
// and must never name something outside the directory.
func validateIgnorePaths(paths []string) error {
	for _, p := range paths {
		if !validName(p) {
			return fmt.Errorf("%w: ignore path %q is not a clean relative path", ErrUnsignedOrMalformed, p)
		}
	}
	return nil
}

// validName: a clean, relative, slash-separated path with no "." or ".."
// element, as fs.ValidPath defines (and not the directory itself).
func validName(p string) bool {
	return p != "." && fs.ValidPath(p) && !strings.Contains(p, "\\")
}
