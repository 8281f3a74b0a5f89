package artifact

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"filippo.io/age"

	"github.com/rampart-ml/rampart/internal/secrets"
)

// Layout under the store directory.
const (
	blobsDir = "blobs"       // blobs/<domain-dir>/<digest[0:2]>/<digest>
	keysDir  = "domain-keys" // domain-keys/<domain-dir>.key
	tmpDir   = "tmp"         // Puts in progress; emptied by NewFS
)

// FS is a Store on a local directory. One process at a time may use a
// directory (the server's data directory lock ensures it): NewFS deletes
// whatever an interrupted Put left in tmp/.
type FS struct {
	dir string

	// mu orders key changes (DeleteDomain, RotateMasterKey: write lock)
	// against key use (read lock). It is not held while bytes stream, so
	// a long upload blocks no deletion: Put re-checks the key at commit.
	mu     sync.RWMutex
	sealer *secrets.Sealer

	// createTemp makes the file a Put writes to; tests swap it to inject
	// write failures (a full disk).
	createTemp func(dir string) (tempFile, error)
}

// tempFile is the part of *os.File that Put uses.
type tempFile interface {
	io.Writer
	Sync() error
	Close() error
	Name() string
}

var _ Store = (*FS)(nil)

// NewFS opens (creating it 0700 if needed) a store in dir whose data keys
// are sealed by sealer, and removes any temporary file an interrupted Put
// left behind.
func NewFS(dir string, sealer *secrets.Sealer) (*FS, error) {
	if sealer == nil {
		return nil, errors.New("artifact: NewFS needs a sealer")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("artifact store %s: %w", dir, err)
	}
	for _, d := range []string{abs, filepath.Join(abs, blobsDir), filepath.Join(abs, keysDir), filepath.Join(abs, tmpDir)} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("artifact store: %w", err)
		}
		// An existing directory keeps its mode: refuse one that others
		// can enter rather than silently store keys in it.
		fi, err := os.Lstat(d)
		if err != nil {
			return nil, fmt.Errorf("artifact store: %w", err)
		}
		if !fi.IsDir() || fi.Mode().Perm()&0o077 != 0 {
			return nil, fmt.Errorf("artifact store: %s must be a directory with mode 0700, has %v; run: chmod 700 %s", d, fi.Mode(), d)
		}
	}
	s := &FS{dir: abs, sealer: sealer, createTemp: func(dir string) (tempFile, error) {
		return os.CreateTemp(dir, "put-*")
	}}
	if err := s.cleanTemp(); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *FS) cleanTemp() error {
	d := filepath.Join(s.dir, tmpDir)
	entries, err := os.ReadDir(d)
	if err != nil {
		return fmt.Errorf("artifact store: clean %s: %w", d, err)
	}
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(d, e.Name())); err != nil {
			return fmt.Errorf("artifact store: clean %s: %w", d, err)
		}
	}
	return nil
}

// blobPath is the file of a blob. Both arguments are validated first, and
// neither is used raw: the domain is hashed and the digest is 64 hex
// digits, so the path cannot leave the store directory.
func (s *FS) blobPath(domain, digest string) (string, error) {
	if err := ValidateDomain(domain); err != nil {
		return "", err
	}
	if err := ValidateDigest(digest); err != nil {
		return "", err
	}
	return filepath.Join(s.dir, blobsDir, domainDir(domain), digest[:2], digest), nil
}

// copyBufSize is the read size of Put: big enough that per-call overhead
// vanishes, small enough to be negligible memory.
const copyBufSize = 256 << 10

// Put implements Store.
func (s *FS) Put(ctx context.Context, domain string, r io.Reader) (Blob, error) {
	if err := ValidateDomain(domain); err != nil {
		return Blob{}, err
	}
	s.mu.RLock()
	id, err := s.loadOrCreateKey(domain)
	s.mu.RUnlock()
	if err != nil {
		return Blob{}, fmt.Errorf("put in domain %q: %w", domain, err)
	}

	tmp, err := s.createTemp(filepath.Join(s.dir, tmpDir))
	if err != nil {
		return Blob{}, fmt.Errorf("put: create temporary file: %w", err)
	}
	committed := false
	defer func() {
		if !committed {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()

	blob, err := encryptTo(ctx, newWriteback(tmp), id.Recipient(), r)
	if err != nil {
		return Blob{}, fmt.Errorf("put in domain %q: %w", domain, err)
	}
	if err := tmp.Sync(); err != nil {
		return Blob{}, fmt.Errorf("put: sync: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return Blob{}, fmt.Errorf("put: close: %w", err)
	}

	if err := s.commitTemp(domain, id, tmp.Name(), blob.Digest); err != nil {
		return Blob{}, err
	}
	committed = true
	return blob, nil
}

// commitTemp renames the closed, synced temporary file name into place as
// the blob digest of domain, encrypted to id, and makes that durable. The
// file is left where it was if it fails.
func (s *FS) commitTemp(domain string, id *age.X25519Identity, name, digest string) error {
	// Commit under the read lock, with the key that is current now: if
	// the domain was deleted (or deleted and re-created) while the bytes
	// streamed, the blob would be unreadable, or outlive its shredding.
	s.mu.RLock()
	defer s.mu.RUnlock()
	cur, err := s.loadKey(domain, s.sealer)
	if err == nil && cur.Recipient().String() != id.Recipient().String() {
		err = ErrNoKey
	}
	if err != nil {
		return fmt.Errorf("put in domain %q: key changed during upload: %w", domain, err)
	}
	final, err := s.blobPath(domain, digest)
	if err != nil {
		return fmt.Errorf("put: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(final), 0o700); err != nil {
		return fmt.Errorf("put: %w", err)
	}
	// Renaming over an existing copy of the same content is deliberate:
	// the new file is known good, the old one might be a restored or
	// damaged copy.
	if err := os.Rename(name, final); err != nil {
		return fmt.Errorf("put: commit blob: %w", err)
	}
	// The rename, and the directories MkdirAll may just have made, must
	// reach the disk before the blob is reported stored.
	for d := filepath.Dir(final); d != s.dir; d = filepath.Dir(d) {
		if err := syncDir(d); err != nil {
			return fmt.Errorf("put: %w", err)
		}
	}
	return nil
}

// encryptTo streams r, encrypted to rcpt, into w, hashing the plaintext
// beside it (asyncHash). Memory is bounded whatever the size of r.
func encryptTo(ctx context.Context, w io.Writer, rcpt age.Recipient, r io.Reader) (Blob, error) {
	bw := bufio.NewWriterSize(w, 1<<20)
	enc, err := age.Encrypt(bw, rcpt)
	if err != nil {
		return Blob{}, fmt.Errorf("encrypt: %w", err)
	}
	h := newAsyncHash()
	n, err := pump(ctx, enc, h, r)
	digest := h.Sum() // also on error: it stops the hashing goroutine
	if err != nil {
		return Blob{}, err
	}
	if err := enc.Close(); err != nil {
		return Blob{}, fmt.Errorf("write: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return Blob{}, fmt.Errorf("write: %w", err)
	}
	return Blob{Digest: digest, Size: n}, nil
}

// pump copies r into both h and enc until EOF, an error, or ctx is done.
func pump(ctx context.Context, enc io.Writer, h *asyncHash, r io.Reader) (int64, error) {
	buf := make([]byte, copyBufSize)
	var n int64
	for {
		if err := ctx.Err(); err != nil {
			return n, err
		}
		m, rerr := r.Read(buf)
		if m > 0 {
			h.Write(buf[:m])
			if _, err := enc.Write(buf[:m]); err != nil {
				return n, fmt.Errorf("write: %w", err)
			}
			n += int64(m)
		}
		if rerr == io.EOF {
			return n, nil
		}
		if rerr != nil {
			return n, fmt.Errorf("read: %w", rerr)
		}
	}
}

// Open implements Store.
func (s *FS) Open(ctx context.Context, domain, digest string) (io.ReadCloser, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	path, err := s.blobPath(domain, digest)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(path) // #nosec G304 -- path built from a validated domain (hashed) and a 64-hex digest
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("open blob: %w", err)
	}
	dec, err := s.decrypt(f, domain, digest)
	if err != nil {
		_ = f.Close()
		return nil, err
	}
	return &blobReader{ctx: ctx, f: f, dec: dec, h: newAsyncHash(), want: digest}, nil
}

// decrypt reads the age header of f with the domain's key and returns the
// plaintext reader.
func (s *FS) decrypt(f io.Reader, domain, digest string) (io.Reader, error) {
	s.mu.RLock()
	id, err := s.loadKey(domain, s.sealer)
	s.mu.RUnlock()
	if err != nil {
		return nil, fmt.Errorf("open blob %s: %w", digest, err)
	}
	dec, err := age.Decrypt(f, id)
	if err != nil {
		var noMatch *age.NoIdentityMatchError
		if errors.As(err, &noMatch) {
			// Encrypted to another key: a blob copied from another
			// domain, or restored after its domain was shredded.
			return nil, fmt.Errorf("open blob %s: %w", digest, ErrNoKey)
		}
		return nil, fmt.Errorf("open blob %s: %w: %w", digest, ErrCorrupt, err)
	}
	return dec, nil
}

// blobReader decrypts (age authenticates each chunk before releasing it)
// and checks the plaintext digest at EOF. Close must be called, as for any
// file: it also stops the hashing goroutine.
type blobReader struct {
	ctx  context.Context
	f    *os.File
	dec  io.Reader
	h    *asyncHash
	want string
	err  error // sticky
}

func (b *blobReader) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	if err := b.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := b.dec.Read(p)
	b.h.Write(p[:n])
	switch {
	case err == io.EOF:
		if b.h.Sum() != b.want {
			b.err = fmt.Errorf("%w: content does not match digest %s", ErrCorrupt, b.want)
			return n, b.err
		}
		b.err = io.EOF
	case err != nil:
		b.err = fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	return n, b.err
}

func (b *blobReader) Close() error {
	b.h.Sum()
	if b.err == nil {
		b.err = errors.New("artifact: read after Close")
	}
	return b.f.Close()
}

// Stat implements Store. It checks that the domain's key opens the blob's
// header (a blob restored after its domain was shredded, or copied from
// another domain, does not exist), but reads no payload: the size comes
// from the ciphertext length and the content is checked only by reading.
func (s *FS) Stat(ctx context.Context, domain, digest string) (Blob, error) {
	if err := ctx.Err(); err != nil {
		return Blob{}, err
	}
	path, err := s.blobPath(domain, digest)
	if err != nil {
		return Blob{}, err
	}
	f, err := os.Open(path) // #nosec G304 -- path built from a validated domain (hashed) and a 64-hex digest
	if errors.Is(err, fs.ErrNotExist) {
		return Blob{}, ErrNotFound
	}
	if err != nil {
		return Blob{}, fmt.Errorf("stat blob: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return Blob{}, fmt.Errorf("stat blob: %w", err)
	}
	hdr := make([]byte, 4<<10)
	m, err := f.ReadAt(hdr, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return Blob{}, fmt.Errorf("stat blob %s: %w", digest, err)
	}
	size, ok := plaintextSize(hdr[:m], fi.Size())
	if !ok {
		return Blob{}, fmt.Errorf("%w: stat blob %s: unrecognised format", ErrCorrupt, digest)
	}
	if _, err := s.decrypt(f, domain, digest); err != nil {
		return Blob{}, err
	}
	return Blob{Digest: digest, Size: size}, nil
}

// age format constants (age-encryption.org/v1): the header ends with a
// "--- <mac>" line; the payload is a 16-byte nonce, then chunks of up to
// 64 KiB of plaintext plus a 16-byte Poly1305 tag each, with at least one
// chunk.
const (
	ageChunk = 64 << 10
	ageTag   = 16
	ageNonce = 16
)

// plaintextSize derives the plaintext length of an age file from the
// start of the file and the file's total length.
func plaintextSize(head []byte, total int64) (int64, bool) {
	if !bytes.HasPrefix(head, []byte("age-encryption.org/v1\n")) {
		return 0, false
	}
	i := bytes.Index(head, []byte("\n--- "))
	if i < 0 {
		return 0, false
	}
	j := bytes.IndexByte(head[i+1:], '\n')
	if j < 0 {
		return 0, false
	}
	payload := total - int64(i+1+j+1) - ageNonce
	if payload < ageTag || payload > 1<<60 { // the bound keeps the arithmetic from overflowing
		return 0, false
	}
	chunks := (payload + ageChunk + ageTag - 1) / (ageChunk + ageTag)
	return payload - chunks*ageTag, true
}

// Delete implements Store.
func (s *FS) Delete(ctx context.Context, domain, digest string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	path, err := s.blobPath(domain, digest)
	if err != nil {
		return err
	}
	if err := os.Remove(path); errors.Is(err, fs.ErrNotExist) {
		return ErrNotFound
	} else if err != nil {
		return fmt.Errorf("delete blob: %w", err)
	}
	return syncDir(filepath.Dir(path))
}

// DeleteDomain implements Store: the key goes first (and durably), so a
// failure half-way leaves only blobs nobody can decrypt; calling it again
// removes them.
func (s *FS) DeleteDomain(ctx context.Context, domain string) error {
	if err := ValidateDomain(domain); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := os.Remove(s.keyPath(domain)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("delete domain %q: remove data key: %w", domain, err)
	}
	if err := syncDir(filepath.Join(s.dir, keysDir)); err != nil {
		return fmt.Errorf("delete domain %q: %w", domain, err)
	}
	if err := os.RemoveAll(filepath.Join(s.dir, blobsDir, domainDir(domain))); err != nil {
		return fmt.Errorf("delete domain %q: data key deleted, blobs not all removed (run again): %w", domain, err)
	}
	return nil
}

// RotateMasterKey implements Store. Blobs are untouched: only the small
// key files are re-sealed, each replaced atomically.
func (s *FS) RotateMasterKey(ctx context.Context, newMaster *secrets.Sealer) error {
	if newMaster == nil {
		return errors.New("artifact: RotateMasterKey needs a sealer")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	d := filepath.Join(s.dir, keysDir)
	entries, err := os.ReadDir(d)
	if err != nil {
		return fmt.Errorf("rotate master key: %w", err)
	}
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".key") {
			continue
		}
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("rotate master key: %w", err)
		}
		if err := s.rewrapKey(filepath.Join(d, e.Name()), newMaster); err != nil {
			return fmt.Errorf("rotate master key (run again with the same keys): %w", err)
		}
	}
	if err := syncDir(d); err != nil {
		return fmt.Errorf("rotate master key: %w", err)
	}
	s.sealer = newMaster
	return nil
}

// syncDir makes a rename or removal in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir) // #nosec G304 -- a directory of the store
	if err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}
