// Package secrets protects small secrets at rest (signing keys, TOTP seeds,
// per-domain data keys) with a master key kept outside the database.
//
// Sealing is AES-256-GCM from the standard library with a random 96-bit nonce
// and caller-supplied associated data that binds a ciphertext to its purpose
// and owner, so a sealed value cannot be moved to another row and still
// open. The package never logs keys or plaintexts.
package secrets

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"

	"github.com/rampart-ml/rampart/internal/datadir"
)

// KeySize is the master key length: 256 bits.
const KeySize = 32

// version prefixes every sealed value so the format can change later.
const version byte = 1

// ErrDecrypt means a sealed value was altered, belongs to another owner
// (different associated data) or was sealed under another master key.
var ErrDecrypt = errors.New("secrets: cannot decrypt: wrong key, wrong owner or tampered value")

// Sealer encrypts and authenticates small values under the master key.
type Sealer struct {
	aead cipher.AEAD
}

// New returns a Sealer for a 32-byte master key.
func New(masterKey []byte) (*Sealer, error) {
	if len(masterKey) != KeySize {
		return nil, fmt.Errorf("secrets: master key must be %d bytes, got %d", KeySize, len(masterKey))
	}
	block, err := aes.NewCipher(masterKey)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &Sealer{aead: aead}, nil
}

// Seal encrypts plaintext; ad (e.g. "signing-key:"+id) must be given again
// to Open.
func (s *Sealer) Seal(plaintext, ad []byte) ([]byte, error) {
	nonce := make([]byte, s.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("secrets: nonce: %w", err)
	}
	out := make([]byte, 0, 1+len(nonce)+len(plaintext)+s.aead.Overhead())
	out = append(append(out, version), nonce...)
	return s.aead.Seal(out, nonce, plaintext, ad), nil
}

// Open decrypts a value made by Seal with the same ad.
func (s *Sealer) Open(sealed, ad []byte) ([]byte, error) {
	n := s.aead.NonceSize()
	if len(sealed) < 1+n+s.aead.Overhead() || sealed[0] != version {
		return nil, ErrDecrypt
	}
	pt, err := s.aead.Open(nil, sealed[1:1+n], sealed[1+n:], ad)
	if err != nil {
		return nil, ErrDecrypt
	}
	return pt, nil
}

// LoadOrCreateKey reads the master key at path, creating it (0600, random)
// if it does not exist. A key file readable by group or others is refused.
func LoadOrCreateKey(path string) ([]byte, error) {
	key, err := readKey(path)
	if !errors.Is(err, fs.ErrNotExist) {
		return key, err
	}
	key = make([]byte, KeySize)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("secrets: generate master key: %w", err)
	}
	if err := datadir.WriteSecretFile(path, key); err != nil {
		return nil, fmt.Errorf("secrets: create master key: %w", err)
	}
	return key, nil
}

// LoadKey reads the master key from path (an operator's file: never
// created here). The file must not be readable by group or others.
func LoadKey(path string) ([]byte, error) { return readKey(path) }

func readKey(path string) ([]byte, error) {
	key, err := datadir.ReadSecretFile(path, KeySize+1)
	if err != nil {
		return nil, fmt.Errorf("secrets: read master key %s: %w", path, err)
	}
	if len(key) != KeySize {
		return nil, fmt.Errorf("secrets: master key %s must hold exactly %d bytes, has %d; restore it from backup (without it sealed secrets are lost)", path, KeySize, len(key))
	}
	return key, nil
}
