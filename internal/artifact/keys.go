package artifact

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"filippo.io/age"

	"github.com/rampart-ml/rampart/internal/datadir"
	"github.com/rampart-ml/rampart/internal/secrets"
)

// keyFile is the on-disk form of a domain's data key. The domain is kept
// in clear so RotateMasterKey can rebuild the associated data; the key
// itself is sealed with that domain bound in, so a key file copied over
// another domain's never opens.
type keyFile struct {
	Version int    `json:"version"`
	Domain  string `json:"domain"`
	Sealed  []byte `json:"sealed_key"` // secrets.Sealer output over the age identity
}

const (
	keyFileVersion = 1
	maxKeyFile     = 4 << 10
)

func keyAD(domain string) []byte { return []byte("artifact-data-key:v1:" + domain) }

// domainDir maps a validated domain to a fixed-length, path-safe name, so
// the domain never appears raw in a path (and "*" needs no escaping).
func domainDir(domain string) string {
	h := sha256.Sum256([]byte("rampart-artifact-domain\x00" + domain))
	return hex.EncodeToString(h[:16])
}

func (s *FS) keyPath(domain string) string {
	return filepath.Join(s.dir, keysDir, domainDir(domain)+".key")
}

// loadKey unseals the domain's data key with sealer; ErrNoKey if the domain
// has none. The caller holds s.mu (read or write).
func (s *FS) loadKey(domain string, sealer *secrets.Sealer) (*age.X25519Identity, error) {
	kf, err := readKeyFile(s.keyPath(domain))
	if err != nil {
		return nil, err
	}
	if kf.Domain != domain {
		return nil, fmt.Errorf("%w: key file of domain %q holds domain %q", ErrCorrupt, domain, kf.Domain)
	}
	raw, err := sealer.Open(kf.Sealed, keyAD(domain))
	if err != nil {
		return nil, fmt.Errorf("unseal data key of domain %q: %w", domain, err)
	}
	id, err := age.ParseX25519Identity(string(raw))
	if err != nil {
		return nil, fmt.Errorf("%w: data key of domain %q does not parse", ErrCorrupt, domain)
	}
	return id, nil
}

func readKeyFile(path string) (*keyFile, error) {
	b, err := datadir.ReadSecretFile(path, maxKeyFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ErrNoKey
	}
	if err != nil {
		return nil, fmt.Errorf("read data key: %w", err)
	}
	var kf keyFile
	if err := json.Unmarshal(b, &kf); err != nil || kf.Version != keyFileVersion {
		return nil, fmt.Errorf("%w: data key file %s is malformed", ErrCorrupt, filepath.Base(path))
	}
	return &kf, nil
}

// loadOrCreateKey returns the domain's data key, creating it on first use.
// Creation is atomic and first-writer-wins (a hard link fails if the name
// exists), so two concurrent first Puts agree on one key. The caller holds
// s.mu for reading.
func (s *FS) loadOrCreateKey(domain string) (*age.X25519Identity, error) {
	id, err := s.loadKey(domain, s.sealer)
	if !errors.Is(err, ErrNoKey) {
		return id, err
	}
	id, err = age.GenerateX25519Identity()
	if err != nil {
		return nil, fmt.Errorf("generate data key: %w", err)
	}
	b, err := s.sealKey(domain, id.String(), s.sealer)
	if err != nil {
		return nil, err
	}
	tmp, err := s.writeTemp(b)
	if err != nil {
		return nil, err
	}
	defer os.Remove(tmp)
	if err := os.Link(tmp, s.keyPath(domain)); err != nil {
		if errors.Is(err, fs.ErrExist) { // another Put created it first
			return s.loadKey(domain, s.sealer)
		}
		return nil, fmt.Errorf("store data key: %w", err)
	}
	if err := syncDir(filepath.Join(s.dir, keysDir)); err != nil {
		return nil, err
	}
	return id, nil
}

func (s *FS) sealKey(domain, identity string, sealer *secrets.Sealer) ([]byte, error) {
	sealed, err := sealer.Seal([]byte(identity), keyAD(domain))
	if err != nil {
		return nil, fmt.Errorf("seal data key: %w", err)
	}
	return json.Marshal(keyFile{Version: keyFileVersion, Domain: domain, Sealed: sealed})
}

// writeTemp writes b to a new 0600 file under tmp/, synced, and returns its
// path.
func (s *FS) writeTemp(b []byte) (string, error) {
	f, err := os.CreateTemp(filepath.Join(s.dir, tmpDir), "key-*")
	if err != nil {
		return "", fmt.Errorf("write data key: %w", err)
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(f.Name())
		return "", fmt.Errorf("write data key: %w", err)
	}
	return f.Name(), nil
}

// rewrapKey re-seals one key file under newSealer. A key that already
// opens under newSealer (a rotation that stopped part-way) is left alone.
func (s *FS) rewrapKey(path string, newSealer *secrets.Sealer) error {
	kf, err := readKeyFile(path)
	if err != nil {
		return err
	}
	if filepath.Base(path) != domainDir(kf.Domain)+".key" {
		return fmt.Errorf("%w: data key file %s names another domain", ErrCorrupt, filepath.Base(path))
	}
	raw, err := s.sealer.Open(kf.Sealed, keyAD(kf.Domain))
	if errors.Is(err, secrets.ErrDecrypt) {
		if _, nerr := newSealer.Open(kf.Sealed, keyAD(kf.Domain)); nerr == nil {
			return nil // already rotated
		}
	}
	if err != nil {
		return fmt.Errorf("unseal data key of domain %q: %w", kf.Domain, err)
	}
	b, err := s.sealKey(kf.Domain, string(raw), newSealer)
	if err != nil {
		return err
	}
	tmp, err := s.writeTemp(b)
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("replace data key of domain %q: %w", kf.Domain, err)
	}
	return nil
}
