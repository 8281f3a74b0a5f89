package audit

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rampart-ml/rampart/internal/secrets"
	"github.com/rampart-ml/rampart/internal/store"
)

func newSigner(t testing.TB) *Signer {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewSigner(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func checkpoint(t testing.TB, st store.Store, s *Signer, kind string) store.AuditCheckpoint {
	t.Helper()
	var c store.AuditCheckpoint
	err := st.InTx(context.Background(), func(tx store.Tx) error {
		var err error
		c, err = Checkpoint(context.Background(), tx, s, kind, time.Now())
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestCheckpointSignVerify(t *testing.T) {
	t.Parallel()
	st, _ := openStore(t)
	s := newSigner(t)

	empty := checkpoint(t, st, s, KindPeriodic)
	if empty.Seq != 0 || !bytes.Equal(empty.Head, GenesisHash()) {
		t.Errorf("checkpoint of the empty log = seq %d head %x", empty.Seq, empty.Head)
	}
	recs := appendEvents(t, st, 0, 7)
	c := checkpoint(t, st, s, KindShutdown)
	if c.Seq != 7 || !bytes.Equal(c.Head, recs[6].Hash) || c.Kind != KindShutdown {
		t.Errorf("checkpoint = %+v, want seq 7 and the head's hash", c)
	}
	if !VerifyCheckpoint(s.Public(), c) {
		t.Fatal("VerifyCheckpoint refuses a checkpoint just made")
	}
	// Every field is signed.
	for name, change := range map[string]func(c *store.AuditCheckpoint){
		"seq":       func(c *store.AuditCheckpoint) { c.Seq++ },
		"head":      func(c *store.AuditCheckpoint) { c.Head = recs[5].Hash },
		"kind":      func(c *store.AuditCheckpoint) { c.Kind = KindPeriodic },
		"time":      func(c *store.AuditCheckpoint) { c.Time = c.Time.Add(time.Nanosecond) },
		"signature": func(c *store.AuditCheckpoint) { c.Signature = bytes.Clone(c.Signature); c.Signature[0] ^= 1 },
	} {
		bad := c
		change(&bad)
		if VerifyCheckpoint(s.Public(), bad) {
			t.Errorf("changed %s: VerifyCheckpoint still accepts it", name)
		}
	}
	if VerifyCheckpoint(newSigner(t).Public(), c) {
		t.Error("another key verifies the checkpoint")
	}
	if VerifyCheckpoint(nil, c) {
		t.Error("a nil key verifies the checkpoint")
	}
	rep, err := Verify(context.Background(), st, s.Public())
	if err != nil {
		t.Fatal(err)
	}
	if rep.Records != 7 || rep.Checkpoints != 2 || rep.LastCheckpointSeq != 7 || rep.Unsigned != 0 {
		t.Errorf("report = %+v", rep)
	}
	err = st.InTx(context.Background(), func(tx store.Tx) error {
		_, err := Checkpoint(context.Background(), tx, s, "hourly", time.Now())
		return err
	})
	if err == nil {
		t.Error("Checkpoint accepted an unknown kind")
	}
}

func newSealer(t testing.TB) *secrets.Sealer {
	t.Helper()
	key := make([]byte, secrets.KeySize)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	s, err := secrets.New(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestLoadOrCreateSigner(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	sealer := newSealer(t)
	s1, err := LoadOrCreateSigner(dir, sealer)
	if err != nil {
		t.Fatal(err)
	}
	keyPath, pubPath := filepath.Join(dir, SigningKeyFile), filepath.Join(dir, PublicKeyFile)
	for path, mode := range map[string]fs.FileMode{keyPath: 0o600, pubPath: 0o644} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm()&^mode != 0 {
			t.Errorf("%s has mode %04o, want at most %04o", path, fi.Mode().Perm(), mode)
		}
	}
	// The private key is sealed: its bytes are not in the file.
	sealed, _ := os.ReadFile(keyPath)
	if bytes.Contains(sealed, s1.key.Seed()) {
		t.Error("the key file holds the private key in clear")
	}
	pub, err := LoadPublicKey(pubPath)
	if err != nil || !pub.Equal(s1.Public()) {
		t.Fatalf("LoadPublicKey = %x, %v; want the signer's key", pub, err)
	}

	// Loading again gives the same key.
	s2, err := LoadOrCreateSigner(dir, sealer)
	if err != nil || !s2.Public().Equal(s1.Public()) {
		t.Fatalf("second load = %v, %v; want the same key", s2, err)
	}
	// A lost public key file is written again from the private key.
	if err := os.Remove(pubPath); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreateSigner(dir, sealer); err != nil {
		t.Fatal(err)
	}
	if pub, err := LoadPublicKey(pubPath); err != nil || !pub.Equal(s1.Public()) {
		t.Errorf("rewritten public key = %x, %v", pub, err)
	}

	t.Run("wrong master key", func(t *testing.T) {
		if _, err := LoadOrCreateSigner(dir, newSealer(t)); !errors.Is(err, secrets.ErrDecrypt) {
			t.Errorf("err = %v, want ErrDecrypt", err)
		}
	})
	t.Run("key file readable by others", func(t *testing.T) {
		d := copyDir(t, dir)
		if err := os.Chmod(filepath.Join(d, SigningKeyFile), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := LoadOrCreateSigner(d, sealer); err == nil || !strings.Contains(err.Error(), "chmod 600") {
			t.Errorf("err = %v, want a permission error", err)
		}
	})
	t.Run("public key replaced", func(t *testing.T) {
		d := copyDir(t, dir)
		other := t.TempDir()
		if _, err := LoadOrCreateSigner(other, sealer); err != nil {
			t.Fatal(err)
		}
		data, _ := os.ReadFile(filepath.Join(other, PublicKeyFile))
		if err := os.WriteFile(filepath.Join(d, PublicKeyFile), data, 0o644); err != nil { // #nosec G306 -- a public key
			t.Fatal(err)
		}
		if _, err := LoadOrCreateSigner(d, sealer); err == nil || !strings.Contains(err.Error(), "does not match") {
			t.Errorf("err = %v, want a mismatch", err)
		}
	})
	t.Run("private key lost", func(t *testing.T) {
		d := copyDir(t, dir)
		if err := os.Remove(filepath.Join(d, SigningKeyFile)); err != nil {
			t.Fatal(err)
		}
		if _, err := LoadOrCreateSigner(d, sealer); err == nil || !strings.Contains(err.Error(), "restore the key") {
			t.Errorf("err = %v, want a refusal to replace the trusted key", err)
		}
	})
}

// copyDir copies the regular files of dir into a new temporary directory.
func copyDir(t *testing.T, dir string) string {
	t.Helper()
	d := t.TempDir()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		fi, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		data, err := os.ReadFile(filepath.Join(dir, e.Name())) // #nosec G304 -- test files
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, e.Name()), data, fi.Mode().Perm()); err != nil {
			t.Fatal(err)
		}
	}
	return d
}

func TestPseudonym(t *testing.T) {
	t.Parallel()
	k1, err := NewPseudonymSecret()
	if err != nil {
		t.Fatal(err)
	}
	k2, _ := NewPseudonymSecret()
	p := Pseudonym(k1, "id-alice")
	if !IsPseudonym(p) || !strings.HasPrefix(p, "p-") || len(p) != 66 {
		t.Errorf("Pseudonym = %q", p)
	}
	if Pseudonym(k1, "id-alice") != p {
		t.Error("not deterministic")
	}
	if Pseudonym(k2, "id-alice") == p || Pseudonym(k1, "id-bob") == p {
		t.Error("another secret or user gives the same pseudonym")
	}
	if strings.Contains(p, "alice") {
		t.Error("the pseudonym shows the id")
	}
	// Pinned, so a change of the derivation is deliberate.
	if got, want := Pseudonym([]byte("0123456789abcdef0123456789abcdef"), "id-alice"),
		"p-7c9672a9667d6f2210be25f75bcf7d84475be8c6252c5450479275ef4c9a4eff"; got != want {
		t.Errorf("Pseudonym = %q, want %q", got, want)
	}
	for _, s := range []string{"", "p-", "p-" + strings.Repeat("g", 64), "q-" + strings.Repeat("a", 64), "p-" + strings.Repeat("a", 63), "p-" + strings.Repeat("A", 64)} {
		if IsPseudonym(s) {
			t.Errorf("IsPseudonym(%q) = true", s)
		}
	}
}
