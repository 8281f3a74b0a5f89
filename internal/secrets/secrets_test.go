package secrets

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSealOpen(t *testing.T) {
	t.Parallel()
	key, err := LoadOrCreateKey(filepath.Join(t.TempDir(), "master.key"))
	if err != nil {
		t.Fatal(err)
	}
	s, _ := New(key)
	sealed, err := s.Seal([]byte("private key bytes"), []byte("signing-key:1"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, []byte("private key bytes")) {
		t.Fatal("plaintext visible in sealed value")
	}
	pt, err := s.Open(sealed, []byte("signing-key:1"))
	if err != nil || string(pt) != "private key bytes" {
		t.Fatalf("Open = %q, %v", pt, err)
	}
	again, _ := s.Seal([]byte("private key bytes"), []byte("signing-key:1"))
	if bytes.Equal(again, sealed) {
		t.Error("two seals of one value are equal: nonce reused")
	}

	other, _ := New(bytes.Repeat([]byte{7}, KeySize))
	flipped := append([]byte(nil), sealed...)
	flipped[len(flipped)-1] ^= 1
	for name, open := range map[string]func() ([]byte, error){
		"other owner": func() ([]byte, error) { return s.Open(sealed, []byte("signing-key:2")) },
		"other key":   func() ([]byte, error) { return other.Open(sealed, []byte("signing-key:1")) },
		"tampered":    func() ([]byte, error) { return s.Open(flipped, []byte("signing-key:1")) },
		"truncated":   func() ([]byte, error) { return s.Open(sealed[:10], []byte("signing-key:1")) },
		"empty":       func() ([]byte, error) { return s.Open(nil, nil) },
		"bad version": func() ([]byte, error) {
			b := append([]byte{9}, sealed[1:]...)
			return s.Open(b, []byte("signing-key:1"))
		},
	} {
		if _, err := open(); !errors.Is(err, ErrDecrypt) {
			t.Errorf("%s: err = %v, want ErrDecrypt", name, err)
		}
	}
}

func TestMasterKeyFile(t *testing.T) {
	t.Parallel()
	p := filepath.Join(t.TempDir(), "master.key")
	k1, err := LoadOrCreateKey(p)
	if err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v", fi.Mode().Perm())
	}
	k2, err := LoadOrCreateKey(p)
	if err != nil || !bytes.Equal(k1, k2) {
		t.Fatalf("reload gave another key: %v", err)
	}
	os.Chmod(p, 0o644)
	if _, err := LoadOrCreateKey(p); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("readable key accepted: %v", err)
	}
	short := filepath.Join(t.TempDir(), "short.key")
	os.WriteFile(short, []byte("tooshort"), 0o600)
	if _, err := LoadOrCreateKey(short); err == nil || !strings.Contains(err.Error(), "exactly 32 bytes") {
		t.Errorf("truncated key accepted: %v", err)
	}
	if _, err := New(make([]byte, 16)); err == nil {
		t.Error("16-byte master key accepted")
	}
}

func FuzzOpen(f *testing.F) {
	s, _ := New(bytes.Repeat([]byte{1}, KeySize))
	sealed, _ := s.Seal([]byte("x"), []byte("ad"))
	f.Add(sealed, []byte("ad"))
	f.Add([]byte{1, 2, 3}, []byte(""))
	f.Fuzz(func(t *testing.T, b, ad []byte) {
		// Only values this key sealed can open (fuzz workers are separate
		// processes, each with its own random-nonce seed, so compare
		// contents, not bytes).
		pt, err := s.Open(b, ad)
		if err == nil && (string(pt) != "x" || string(ad) != "ad") {
			t.Fatalf("forged value opened: %q", pt)
		}
	})
}
