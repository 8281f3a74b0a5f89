package main

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeKeyPair writes a private and a public PEM key file and returns their paths.
func writeKeyPair(t *testing.T, kind string) (priv, pub string) {
	t.Helper()
	dir := t.TempDir()
	var privBlock *pem.Block
	var public any
	switch kind {
	case "sec1":
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		der, err := x509.MarshalECPrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		privBlock, public = &pem.Block{Type: "EC PRIVATE KEY", Bytes: der}, k.Public()
	case "ed25519":
		pk, k, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		privBlock, public = &pem.Block{Type: "PRIVATE KEY", Bytes: der}, pk
	default: // pkcs8 P-384
		k, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		privBlock, public = &pem.Block{Type: "PRIVATE KEY", Bytes: der}, k.Public()
	}
	pubDER, err := x509.MarshalPKIXPublicKey(public)
	if err != nil {
		t.Fatal(err)
	}
	priv, pub = filepath.Join(dir, "private.pem"), filepath.Join(dir, "public.pem")
	if err := os.WriteFile(priv, pem.EncodeToMemory(privBlock), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pub, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}), 0o644); err != nil {
		t.Fatal(err)
	}
	return priv, pub
}

func writeModelDir(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "resnet")
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, content := range map[string]string{"model.onnx": "onnx", "data/weights.bin": "weights", "labels.txt": "cat\n"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestModelSignVerifyCLI(t *testing.T) {
	t.Parallel()
	for _, kind := range []string{"pkcs8", "sec1", "ed25519"} {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			priv, pub := writeKeyPair(t, kind)
			_, otherPub := writeKeyPair(t, "pkcs8")
			dir := writeModelDir(t)

			code, out, errOut := runRampart(t, nil, "model", "sign", "--key", priv, dir)
			if code != 0 || !strings.Contains(out, "signed 3 files") {
				t.Fatalf("sign: code %d, stdout %q, stderr %q", code, out, errOut)
			}
			if _, err := os.Stat(filepath.Join(dir, "model.sig")); err != nil {
				t.Fatal(err)
			}
			code, out, errOut = runRampart(t, nil, "model", "verify", "--key", pub, dir)
			if code != 0 || !strings.Contains(out, "verified 3 files") {
				t.Fatalf("verify: code %d, stdout %q, stderr %q", code, out, errOut)
			}
			code, _, errOut = runRampart(t, nil, "model", "verify", "--key", otherPub, dir)
			if code != 1 || !strings.Contains(errOut, "not trusted") {
				t.Errorf("wrong key: code %d, stderr %q", code, errOut)
			}
			if err := os.WriteFile(filepath.Join(dir, "data/weights.bin"), []byte("evil"), 0o644); err != nil {
				t.Fatal(err)
			}
			code, _, errOut = runRampart(t, nil, "model", "verify", "--key", pub, dir)
			if code != 1 || !strings.Contains(errOut, `changed: "data/weights.bin"`) {
				t.Errorf("tampered: code %d, stderr %q", code, errOut)
			}
		})
	}
}

func TestModelCLIErrors(t *testing.T) {
	t.Parallel()
	_, pub := writeKeyPair(t, "pkcs8")
	dir := writeModelDir(t)
	for _, c := range []struct {
		name string
		args []string
		code int
		says string
	}{
		{"no subcommand", []string{"model"}, 2, "missing subcommand"},
		{"no key", []string{"model", "verify", dir}, 2, "--key is required"},
		{"no dir", []string{"model", "sign", "--key", pub}, 2, "missing model directory"},
		{"unsigned", []string{"model", "verify", "--key", pub, dir}, 1, "no signature at"},
		{"public key to sign", []string{"model", "sign", "--key", pub, dir}, 1, "no PEM block"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			code, _, errOut := runRampart(t, nil, c.args...)
			if code != c.code || !strings.Contains(errOut, c.says) {
				t.Errorf("code %d, stderr %q; want %d and %q", code, errOut, c.code, c.says)
			}
		})
	}
}
