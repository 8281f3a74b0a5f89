package artifact

import (
	"bufio"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"filippo.io/age"
)

// Stage implements Store. The staged files are temporary files in tmp/,
// encrypted like a Put's, so a Commit is only a rename, and NewFS removes
// those of a process that died before Abort.
func (s *FS) Stage(ctx context.Context, domain string) (Pending, error) {
	if err := ValidateDomain(domain); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.RLock()
	id, err := s.loadOrCreateKey(domain)
	s.mu.RUnlock()
	if err != nil {
		return nil, fmt.Errorf("stage in domain %q: %w", domain, err)
	}
	return &fsPending{s: s, domain: domain, id: id, files: map[string]*stagedFile{}}, nil
}

type fsPending struct {
	s      *FS
	domain string
	id     *age.X25519Identity
	files  map[string]*stagedFile
}

// stagedFile is one file of a Pending, written through bw → enc → wb →
// tmp, with the plaintext hashed beside (as Put does).
type stagedFile struct {
	tmp       tempFile
	bw        *bufio.Writer
	enc       io.WriteCloser
	h         *asyncHash
	size      int64
	closed    bool
	err       error // sticky: the first write or close error
	digest    string
	committed bool
}

func (p *fsPending) Create(name string) (PendingFile, error) {
	if _, ok := p.files[name]; ok {
		return nil, fmt.Errorf("stage %q: %w: created twice", name, ErrInvalid)
	}
	tmp, err := p.s.createTemp(filepath.Join(p.s.dir, tmpDir))
	if err != nil {
		return nil, fmt.Errorf("stage: create temporary file: %w", err)
	}
	f := &stagedFile{tmp: tmp, h: newAsyncHash()}
	// Registered before anything can fail, so that Abort removes it.
	p.files[name] = f
	f.bw = bufio.NewWriterSize(newWriteback(tmp), 1<<20)
	if f.enc, err = age.Encrypt(f.bw, p.id.Recipient()); err != nil {
		f.fail(fmt.Errorf("encrypt: %w", err))
		return nil, f.err
	}
	return f, nil
}

func (f *stagedFile) fail(err error) {
	if f.err == nil {
		f.err = err
	}
}

func (f *stagedFile) Write(b []byte) (int, error) {
	if f.err != nil {
		return 0, f.err
	}
	if f.closed {
		return 0, errors.New("artifact: write to a closed staged file")
	}
	f.h.Write(b)
	n, err := f.enc.Write(b)
	f.size += int64(n)
	if err != nil {
		f.fail(fmt.Errorf("write: %w", err))
	}
	return n, f.err
}

// Close finishes the encryption and syncs the file; it is safe to call
// twice.
func (f *stagedFile) Close() error {
	if f.closed {
		return f.err
	}
	f.closed = true
	f.digest = f.h.Sum() // also stops the hashing goroutine
	if f.err == nil {
		if err := f.enc.Close(); err != nil {
			f.fail(fmt.Errorf("write: %w", err))
		} else if err := f.bw.Flush(); err != nil {
			f.fail(fmt.Errorf("write: %w", err))
		} else if err := f.tmp.Sync(); err != nil {
			f.fail(fmt.Errorf("sync: %w", err))
		}
	}
	if err := f.tmp.Close(); err != nil {
		f.fail(fmt.Errorf("close: %w", err))
	}
	// A Pending keeps its closed files until it ends: drop their
	// buffers (≈ 2 MiB each) now, so memory stays that of one file.
	f.bw, f.enc, f.h = nil, nil, nil
	return f.err
}

func (f *stagedFile) SHA256() [32]byte {
	var d [32]byte
	_, _ = hex.Decode(d[:], []byte(f.digest)) // the hash's own hex; zero before Close
	return d
}

// closedFile is the named file, closed without error.
func (p *fsPending) closedFile(name string) (*stagedFile, error) {
	f, ok := p.files[name]
	switch {
	case !ok:
		return nil, fmt.Errorf("staged %q: %w", name, ErrNotFound)
	case !f.closed || f.err != nil:
		return nil, fmt.Errorf("staged %q: %w: not closed, or failed", name, ErrInvalid)
	case f.committed:
		return nil, fmt.Errorf("staged %q: %w: committed already", name, ErrInvalid)
	}
	return f, nil
}

func (p *fsPending) Open(name string) (io.ReadCloser, error) {
	f, err := p.closedFile(name)
	if err != nil {
		return nil, err
	}
	r, err := os.Open(f.tmp.Name()) // #nosec G304 -- our own temporary file
	if err != nil {
		return nil, fmt.Errorf("open staged %q: %w", name, err)
	}
	dec, err := age.Decrypt(r, p.id)
	if err != nil {
		_ = r.Close()
		return nil, fmt.Errorf("open staged %q: %w: %w", name, ErrCorrupt, err)
	}
	return struct {
		io.Reader
		io.Closer
	}{dec, r}, nil
}

func (p *fsPending) Commit(ctx context.Context, name string) (Blob, error) {
	if err := ctx.Err(); err != nil {
		return Blob{}, err
	}
	f, err := p.closedFile(name)
	if err != nil {
		return Blob{}, err
	}
	if err := p.s.commitTemp(p.domain, p.id, f.tmp.Name(), f.digest); err != nil {
		return Blob{}, err
	}
	f.committed = true
	return Blob{Digest: f.digest, Size: f.size}, nil
}

func (p *fsPending) Abort() error {
	var errs []error
	for name, f := range p.files {
		if f.committed {
			continue
		}
		_ = f.Close() // stops the hashing goroutine; its error no longer matters
		if err := os.Remove(f.tmp.Name()); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, fmt.Errorf("abort staged %q: %w", name, err))
		}
		delete(p.files, name)
	}
	return errors.Join(errs...)
}
