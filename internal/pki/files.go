package pki

import (
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
)

// loadKeyPair reads a certificate and its PKCS #8 key as written by
// writeKeyPair. Errors name the file at fault.
func loadKeyPair(certPath, keyPath string) (*x509.Certificate, crypto.Signer, error) {
	if err := checkKeyMode(keyPath); err != nil {
		return nil, nil, err
	}
	certDER, err := readPEM(certPath, "CERTIFICATE")
	if err != nil {
		return nil, nil, err
	}
	cert, err := x509.ParseCertificate(certDER)
	if err != nil {
		return nil, nil, fmt.Errorf("pki: parse %s: %w", certPath, err)
	}
	keyDER, err := readPEM(keyPath, "PRIVATE KEY")
	if err != nil {
		return nil, nil, err
	}
	parsed, err := x509.ParsePKCS8PrivateKey(keyDER)
	if err != nil {
		return nil, nil, fmt.Errorf("pki: parse %s: %w", keyPath, err)
	}
	key, ok := parsed.(crypto.Signer)
	if !ok {
		return nil, nil, fmt.Errorf("pki: %s: unsupported key type %T", keyPath, parsed)
	}
	pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(cert.PublicKey) {
		return nil, nil, fmt.Errorf("pki: key %s does not match certificate %s", keyPath, certPath)
	}
	return cert, key, nil
}

// checkKeyMode refuses a key file that group or others can read.
func checkKeyMode(path string) error {
	info, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("pki: %w", err)
	}
	if perm := info.Mode().Perm(); perm&0o077 != 0 {
		return fmt.Errorf("%w: %s has mode %04o; run: chmod 600 %s", ErrInsecureKeyFile, path, uint32(perm), path)
	}
	return nil
}

// readPEM returns the DER of the first PEM block in path, which must be of
// type blockType.
func readPEM(path, blockType string) ([]byte, error) {
	data, err := os.ReadFile(path) // #nosec G304 -- operator-configured path (flag or data dir), never request input
	if err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != blockType {
		return nil, fmt.Errorf("pki: %s: no PEM %s block found (file corrupt?)", path, blockType)
	}
	return block.Bytes, nil
}

// writeKeyPair writes the key (0600) before the certificate (0644): after a
// crash in between, the pair does not match and is not used.
func writeKeyPair(certPath, keyPath string, certDER []byte, key crypto.Signer) error {
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("pki: encode key: %w", err)
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	if err := writeFileAtomic(keyPath, keyPEM, 0o600); err != nil {
		return err
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: certDER})
	return writeFileAtomic(certPath, certPEM, 0o644)
}

// writeFileAtomic replaces path with data so that readers and crashes see
// the old or the new content, never a mix. The temporary file is created
// 0600 and only then given perm, so key bytes are never readable by others.
func writeFileAtomic(path string, data []byte, perm os.FileMode) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("pki: write %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(f.Name())
			err = fmt.Errorf("pki: write %s: %w", path, err)
		}
	}()
	if _, err = f.Write(data); err != nil {
		return err
	}
	if err = f.Chmod(perm); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Rename(f.Name(), path); err != nil {
		return err
	}
	// Make the rename itself durable.
	d, err := os.Open(dir) // #nosec G304 -- operator-configured path (flag or data dir), never request input
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
