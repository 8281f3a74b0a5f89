package audit

import (
	"context"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/rampart-ml/rampart/internal/datadir"
	"github.com/rampart-ml/rampart/internal/secrets"
	"github.com/rampart-ml/rampart/internal/store"
)

// Checkpoint kinds.
const (
	KindPeriodic = "periodic" // every N records or T seconds
	KindShutdown = "shutdown" // when the server stops
	KindPrune    = "prune"    // when old records are pruned (Prune)
)

// Files of the signing key, in the directory given to LoadOrCreateSigner
// (the server uses DATA_DIR/keys).
const (
	// SigningKeyFile holds the Ed25519 private key sealed under the master
	// key (0600).
	SigningKeyFile = "audit-signing.key"
	// PublicKeyFile holds the public key as PEM (0644): the verifier's
	// trust anchor, outside the database. Its name ends in ".pem" because
	// the data directory's permission check admits only such files as
	// public (see datadir); "audit-signing.pub" at 0644 would make the
	// server refuse to start.
	PublicKeyFile = "audit-signing.pub.pem"
	// signingKeyAD binds the sealed key to its purpose.
	signingKeyAD = "audit-signing-key"
)

// SigningKeyAD is the associated data SigningKeyFile is sealed with
// (master key rotation re-seals it with the same).
func SigningKeyAD() []byte { return []byte(signingKeyAD) }

// checkpointDomain separates checkpoint signatures from every other use of
// the key.
const checkpointDomain = "rampart audit checkpoint v1\x00"

// Signer signs checkpoints with the audit Ed25519 key.
type Signer struct {
	key ed25519.PrivateKey
}

// NewSigner returns a Signer for key.
func NewSigner(key ed25519.PrivateKey) (*Signer, error) {
	if len(key) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("audit signing key: %d bytes, want %d", len(key), ed25519.PrivateKeySize)
	}
	return &Signer{key: key}, nil
}

// Public returns the public key that verifies s's checkpoints.
func (s *Signer) Public() ed25519.PublicKey {
	pub, _ := s.key.Public().(ed25519.PublicKey)
	return pub
}

// keyDerivationDomain separates keys derived from the signing key.
const keyDerivationDomain = "rampart audit derived key v1\x00"

// DeriveKey returns a 32-byte secret key for purpose, derived from the
// signing key with HMAC-SHA256 (the key stays secret as long as the
// signing key does; different purposes give unrelated keys).
func (s *Signer) DeriveKey(purpose string) []byte {
	m := hmac.New(sha256.New, s.key.Seed())
	m.Write([]byte(keyDerivationDomain))
	m.Write([]byte(purpose))
	return m.Sum(nil)
}

// checkpointMessage is what a checkpoint's signature covers: the domain,
// then seq, head, kind and time (RFC 3339 UTC with nanoseconds), each
// variable-length part preceded by its 8-byte big-endian length.
func checkpointMessage(seq uint64, head []byte, kind string, at time.Time) []byte {
	ts := at.UTC().Format(timeLayout)
	b := make([]byte, 0, len(checkpointDomain)+8+3*8+len(head)+len(kind)+len(ts))
	b = append(b, checkpointDomain...)
	b = binary.BigEndian.AppendUint64(b, seq)
	for _, part := range [][]byte{head, []byte(kind), []byte(ts)} {
		b = binary.BigEndian.AppendUint64(b, uint64(len(part)))
		b = append(b, part...)
	}
	return b
}

// sign returns c with its Signature set.
func (s *Signer) sign(c store.AuditCheckpoint) store.AuditCheckpoint {
	c.Signature = ed25519.Sign(s.key, checkpointMessage(c.Seq, c.Head, c.Kind, c.Time))
	return c
}

// VerifyCheckpoint reports whether c's signature is valid under pub. It
// does not check that c.Head is the hash of record c.Seq; Verify does.
func VerifyCheckpoint(pub ed25519.PublicKey, c store.AuditCheckpoint) bool {
	return len(pub) == ed25519.PublicKeySize &&
		ed25519.Verify(pub, checkpointMessage(c.Seq, c.Head, c.Kind, c.Time), c.Signature)
}

// Checkpoint signs the current head of the log (seq 0 and the genesis
// hash when it is empty) and stores the checkpoint in tx.
func Checkpoint(ctx context.Context, tx store.Tx, s *Signer, kind string, now time.Time) (store.AuditCheckpoint, error) {
	switch kind {
	case KindPeriodic, KindShutdown, KindPrune:
	default:
		return store.AuditCheckpoint{}, fmt.Errorf("audit checkpoint: unknown kind %q", kind)
	}
	if now.IsZero() {
		return store.AuditCheckpoint{}, errors.New("audit checkpoint: zero time")
	}
	a := tx.Audit()
	head, ok, err := a.AuditHead(ctx)
	if err != nil {
		return store.AuditCheckpoint{}, fmt.Errorf("audit checkpoint: %w: %w", ErrWrite, err)
	}
	c := store.AuditCheckpoint{Seq: 0, Head: GenesisHash(), Kind: kind, Time: now.UTC()}
	if ok {
		c.Seq, c.Head = head.Seq, head.Hash
	}
	return addCheckpoint(ctx, tx, s, c)
}

// addCheckpoint signs c and stores it in tx.
func addCheckpoint(ctx context.Context, tx store.Tx, s *Signer, c store.AuditCheckpoint) (store.AuditCheckpoint, error) {
	c = s.sign(c)
	if err := tx.Audit().AddAuditCheckpoint(ctx, c); err != nil {
		return store.AuditCheckpoint{}, fmt.Errorf("audit checkpoint at %d: %w: %w", c.Seq, ErrWrite, err)
	}
	return c, nil
}

// LoadOrCreateSigner returns the audit signer whose key is kept in dir:
// the private key sealed under sealer in SigningKeyFile (0600) and the
// public key in PublicKeyFile (PEM, 0644). Both are created if neither
// exists; a missing public key file is written again from the private key;
// a public key file that does not match the private key, or one left
// without its private key, is refused rather than silently replaced,
// because it is what verifiers trust.
func LoadOrCreateSigner(dir string, sealer *secrets.Sealer) (*Signer, error) {
	keyPath := filepath.Join(dir, SigningKeyFile)
	pubPath := filepath.Join(dir, PublicKeyFile)
	sealed, err := readPrivateFile(keyPath)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return createSigner(keyPath, pubPath, sealer)
	case err != nil:
		return nil, err
	}
	seed, err := sealer.Open(sealed, []byte(signingKeyAD))
	if err != nil {
		return nil, fmt.Errorf("audit signing key %s: %w", keyPath, err)
	}
	if len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("audit signing key %s: %d bytes, want %d", keyPath, len(seed), ed25519.SeedSize)
	}
	s := &Signer{key: ed25519.NewKeyFromSeed(seed)}
	pub, err := LoadPublicKey(pubPath)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := writePublicKey(pubPath, s.Public()); err != nil {
			return nil, err
		}
	case err != nil:
		return nil, err
	case !pub.Equal(s.Public()):
		return nil, fmt.Errorf("audit public key %s does not match the signing key %s; restore the right file (verifiers trust it)", pubPath, keyPath)
	}
	return s, nil
}

func createSigner(keyPath, pubPath string, sealer *secrets.Sealer) (*Signer, error) {
	if _, err := os.Lstat(pubPath); err == nil {
		return nil, fmt.Errorf("audit public key %s exists but its signing key %s does not; restore the key from backup, or move the public key away to start a new one", pubPath, keyPath)
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate audit signing key: %w", err)
	}
	sealed, err := sealer.Seal(priv.Seed(), []byte(signingKeyAD))
	if err != nil {
		return nil, fmt.Errorf("seal audit signing key: %w", err)
	}
	if err := datadir.WriteSecretFile(keyPath, sealed); err != nil {
		return nil, fmt.Errorf("create audit signing key: %w", err)
	}
	if err := writePublicKey(pubPath, pub); err != nil {
		return nil, err
	}
	return &Signer{key: priv}, nil
}

// readPrivateFile reads the sealed signing key (refused if group or
// others may read it).
func readPrivateFile(path string) ([]byte, error) { return datadir.ReadSecretFile(path, 4096) }

const pemType = "PUBLIC KEY"

func writePublicKey(path string, pub ed25519.PublicKey) error {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return fmt.Errorf("encode audit public key: %w", err)
	}
	data := pem.EncodeToMemory(&pem.Block{Type: pemType, Bytes: der})
	if err := datadir.WritePublicFile(path, data); err != nil {
		return fmt.Errorf("audit public key: %w", err)
	}
	return nil
}

// LoadPublicKey reads an Ed25519 public key from a PEM file such as
// PublicKeyFile.
func LoadPublicKey(path string) (ed25519.PublicKey, error) {
	data, err := os.ReadFile(path) // #nosec G304 -- operator-given path, never request input
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != pemType {
		return nil, fmt.Errorf("audit public key %s: no %q PEM block", path, pemType)
	}
	key, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("audit public key %s: %w", path, err)
	}
	pub, ok := key.(ed25519.PublicKey)
	if !ok {
		return nil, fmt.Errorf("audit public key %s: not an Ed25519 key", path)
	}
	return pub, nil
}

// Fingerprint returns "SHA256:" and the hex SHA-256 of the public key's
// bytes, for operators to compare with a copy kept elsewhere.
func Fingerprint(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return "SHA256:" + hex.EncodeToString(sum[:])
}
