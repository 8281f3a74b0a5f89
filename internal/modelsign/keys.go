package modelsign

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
)

// ErrUnsupportedKey: not an ECDSA P-256/P-384/P-521 or Ed25519 key.
var ErrUnsupportedKey = errors.New("unsupported key type: want ECDSA P-256, P-384, P-521 or Ed25519")

// checkKey accepts the reference tool's curves and, as an extension,
// Ed25519.
func checkKey(pub crypto.PublicKey) error {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256(), elliptic.P384(), elliptic.P521():
			return nil
		}
	case ed25519.PublicKey:
		if len(k) == ed25519.PublicKeySize {
			return nil
		}
	}
	return fmt.Errorf("%w (got %T)", ErrUnsupportedKey, pub)
}

// hashFor is the digest the reference signs with for a key: SHA-256,
// SHA-384 or SHA-512 by ECDSA curve size; none for Ed25519, which signs
// the message itself.
func hashFor(pub crypto.PublicKey) crypto.Hash {
	if k, ok := pub.(*ecdsa.PublicKey); ok {
		switch k.Curve {
		case elliptic.P384():
			return crypto.SHA384
		case elliptic.P521():
			return crypto.SHA512
		}
		return crypto.SHA256
	}
	return crypto.Hash(0)
}

// publicKeyPEM is the PEM SubjectPublicKeyInfo text, byte for byte what
// the reference tool (Python cryptography) writes.
func publicKeyPEM(pub crypto.PublicKey) ([]byte, []byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, nil, fmt.Errorf("encode public key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), der, nil
}

// KeyID is the key's identifier in Rampart and the hint the reference tool
// writes in a bundle: hex SHA-256 of the public key's PEM text.
func KeyID(pub crypto.PublicKey) (string, error) {
	if err := checkKey(pub); err != nil {
		return "", err
	}
	p, _, err := publicKeyPEM(pub)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(p)
	return hex.EncodeToString(sum[:]), nil
}

// KeyHints are every hint a bundle signed by pub may carry: KeyID (the
// reference tool's form) and base64 SHA-256 of the DER key (sigstore-go's
// own signer's form). Index a trust store by both.
func KeyHints(pub crypto.PublicKey) ([]string, error) {
	id, err := KeyID(pub)
	if err != nil {
		return nil, err
	}
	_, der, err := publicKeyPEM(pub)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(der)
	return []string{id, base64.StdEncoding.EncodeToString(sum[:])}, nil
}

// maxKeyPEM bounds a key file: real ones are well under 1 KiB.
const maxKeyPEM = 64 << 10

// ParsePublicKeyPEM reads a PEM "PUBLIC KEY" (PKIX) of a supported type.
func ParsePublicKeyPEM(data []byte) (crypto.PublicKey, error) {
	block, err := onePEM(data, "PUBLIC KEY")
	if err != nil {
		return nil, err
	}
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parse public key: %w", err)
	}
	if err := checkKey(pub); err != nil {
		return nil, err
	}
	return pub, nil
}

// ParsePrivateKeyPEM reads an unencrypted PEM private key: PKCS#8
// ("PRIVATE KEY", ECDSA or Ed25519) or SEC 1 ("EC PRIVATE KEY").
func ParsePrivateKeyPEM(data []byte) (crypto.Signer, error) {
	block, err := onePEM(data, "PRIVATE KEY", "EC PRIVATE KEY")
	if err != nil {
		return nil, err
	}
	var key any
	if block.Type == "EC PRIVATE KEY" {
		key, err = x509.ParseECPrivateKey(block.Bytes)
	} else {
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	}
	if err != nil {
		return nil, fmt.Errorf("parse private key: %w", err)
	}
	s, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("%w (got %T)", ErrUnsupportedKey, key)
	}
	if err := checkKey(s.Public()); err != nil {
		return nil, err
	}
	return s, nil
}

// onePEM finds the first PEM block of one of the wanted types.
func onePEM(data []byte, types ...string) (*pem.Block, error) {
	if len(data) > maxKeyPEM {
		return nil, fmt.Errorf("key file is larger than %d bytes", maxKeyPEM)
	}
	for rest := data; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return nil, fmt.Errorf("no PEM block of type %q found", types)
		}
		if _, enc := block.Headers["Proc-Type"]; enc {
			return nil, errors.New("encrypted PEM keys are not supported")
		}
		for _, t := range types {
			if block.Type == t {
				return block, nil
			}
		}
	}
}

// TrustedKeys finds the public key a bundle's hint names, following the
// caller's trust policy. It returns an error wrapping ErrUntrustedKey when
// no trusted key has that hint.
type TrustedKeys func(hint string) (crypto.PublicKey, error)

// KeySet trusts exactly the given keys, under both hint forms (KeyHints).
func KeySet(keys ...crypto.PublicKey) (TrustedKeys, error) {
	byHint := make(map[string]crypto.PublicKey, 2*len(keys))
	for _, k := range keys {
		hints, err := KeyHints(k)
		if err != nil {
			return nil, err
		}
		for _, h := range hints {
			byHint[h] = k
		}
	}
	return func(hint string) (crypto.PublicKey, error) {
		if k, ok := byHint[hint]; ok {
			return k, nil
		}
		return nil, fmt.Errorf("%w: no trusted key has hint %q", ErrUntrustedKey, hint)
	}, nil
}
