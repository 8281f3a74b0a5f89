package artifact

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/rampart-ml/rampart/internal/access"
	"github.com/rampart-ml/rampart/internal/secrets"
)

// Blob identifies stored content.
type Blob struct {
	Digest string // SHA-256 of the plaintext, 64 lower-case hex digits
	Size   int64  // plaintext size in bytes
}

var (
	// ErrNotFound: no such blob in that domain.
	ErrNotFound = errors.New("artifact: blob not found")
	// ErrNoKey: the domain has no data key that opens the blob, because the
	// domain was deleted (crypto-shredded) or the blob belongs elsewhere.
	// It wraps ErrNotFound: for callers the blob does not exist.
	ErrNoKey = fmt.Errorf("%w: the domain has no data key for it (deleted domain?)", ErrNotFound)
	// ErrCorrupt: the stored bytes fail authentication, are truncated, or
	// do not hash to the blob's digest.
	ErrCorrupt = errors.New("artifact: blob is corrupt or was tampered with")
	// ErrInvalid: a malformed domain name or digest.
	ErrInvalid = errors.New("artifact: invalid argument")
)

// Store is a content-addressed, per-domain encrypted blob store.
//
// Implementations must be safe for concurrent use. A domain is a domain
// name (access.ValidateDomain) or access.Wildcard ("*") for models without
// a domain.
type Store interface {
	// Put stores the bytes of r in domain and returns their digest and
	// size. It streams: memory does not grow with the size of r. The blob
	// becomes visible atomically, only once it is durably written; a
	// failed or cancelled Put leaves nothing visible. Putting content that
	// is already stored is allowed and leaves one blob.
	Put(ctx context.Context, domain string, r io.Reader) (Blob, error)
	// Stage begins a set of files that are encrypted as they are written
	// but become blobs only one by one through the Pending's Commit:
	// content that is checked only once written whole (a signed model
	// directory) is written to storage once, yet nothing is visible
	// before the check. A Pending must end with Abort, which removes
	// whatever was not committed; a process killed meanwhile leaves
	// nothing visible either.
	Stage(ctx context.Context, domain string) (Pending, error)
	// Open returns a reader of the blob's plaintext, decrypted and
	// authenticated as it streams. The digest is checked when the reader
	// reaches EOF: a mismatch is reported as ErrCorrupt in place of
	// io.EOF, so callers must read to EOF (and check the error) before
	// trusting or committing what they read. Unknown blobs give
	// ErrNotFound.
	Open(ctx context.Context, domain, digest string) (io.ReadCloser, error)
	// Stat reports whether the blob exists and its domain's key opens it
	// (ErrNotFound if not) and its plaintext size, without reading the
	// content: only Open, read to EOF, proves the content intact.
	Stat(ctx context.Context, domain, digest string) (Blob, error)
	// Delete removes one blob; ErrNotFound if it does not exist.
	Delete(ctx context.Context, domain, digest string) error
	// DeleteDomain crypto-shreds a domain: it deletes the domain's data
	// key first, then its blobs. Afterwards no copy of those blobs (from a
	// backup, say) can be opened through the store. Deleting a domain
	// that has nothing stored is not an error.
	DeleteDomain(ctx context.Context, domain string) error
	// RotateMasterKey re-wraps every domain's data key under newMaster
	// without re-encrypting any blob; afterwards the store uses newMaster
	// and the old master key opens none of the keys. If it fails part-way
	// it can be run again with the same keys.
	RotateMasterKey(ctx context.Context, newMaster *secrets.Sealer) error
}

// ValidateDomain accepts a domain name or access.Wildcard. Errors wrap
// ErrInvalid.
func ValidateDomain(domain string) error {
	if domain == access.Wildcard {
		return nil
	}
	if err := access.ValidateDomain(domain); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return nil
}

// ValidateDigest accepts exactly 64 lower-case hex digits: the only form a
// digest has, so one can never carry a path separator or "..". Errors wrap
// ErrInvalid.
func ValidateDigest(digest string) error {
	if len(digest) != 64 {
		return fmt.Errorf("%w: digest must be 64 hex digits, got %d bytes", ErrInvalid, len(digest))
	}
	for i := 0; i < len(digest); i++ {
		c := digest[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return fmt.Errorf("%w: digest must be lower-case hex; byte %d is %q", ErrInvalid, i, c)
		}
	}
	return nil
}

// Pending is a set of staged files (see Store.Stage). Its methods are not
// safe for concurrent use.
type Pending interface {
	// Create starts the staged file name (any string unique within the
	// Pending). It must be closed before Open or Commit.
	Create(name string) (PendingFile, error)
	// Open reads back the plaintext of a closed file, authenticated as
	// it streams.
	Open(name string) (io.ReadCloser, error)
	// Commit makes a closed file the blob of its content, durably; the
	// blob is then the store's like any Put's.
	Commit(ctx context.Context, name string) (Blob, error)
	// Abort removes every file not committed; committed ones stay.
	Abort() error
}

// PendingFile is a staged file being written.
type PendingFile interface {
	io.Writer
	// Close finishes and syncs the file; after it, SHA256 is the digest
	// of the bytes written.
	Close() error
	SHA256() [32]byte
}
