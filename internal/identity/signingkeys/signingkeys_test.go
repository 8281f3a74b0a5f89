package signingkeys

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rampart-ml/rampart/internal/secrets"
	"github.com/rampart-ml/rampart/internal/store"
	"github.com/rampart-ml/rampart/internal/store/sqlite"
)

type fixture struct {
	st   store.Store
	ring *Ring
	now  time.Time
}

func newFixture(t *testing.T, sealer *secrets.Sealer, st store.Store) *fixture {
	t.Helper()
	if st == nil {
		var err error
		if st, err = sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "db")); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
	}
	if sealer == nil {
		sealer, _ = secrets.New(bytes.Repeat([]byte{1}, secrets.KeySize))
	}
	f := &fixture{st: st, now: time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)}
	var err error
	f.ring, err = New(st, sealer, Options{RotateEvery: 24 * time.Hour, MaxTokenLifetime: 5 * time.Minute, Reload: time.Second,
		Now: func() time.Time { return f.now }})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func ids(keys []Key) string {
	var s []string
	for _, k := range keys {
		s = append(s, k.ID)
	}
	return strings.Join(s, ",")
}

func TestScheduledRotationKeepsOldKeyPublished(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t, nil, nil)
	k1, err := f.ring.Signing(ctx)
	if err != nil {
		t.Fatal(err)
	}
	digest := sha256.Sum256([]byte("token"))
	sig, err := ecdsa.SignASN1(nil, k1.Private, digest[:])
	if err != nil || !ecdsa.VerifyASN1(&k1.Private.PublicKey, digest[:], sig) || k1.Algorithm != "ES256" {
		t.Fatalf("key does not sign: %v", err)
	}
	if again, _ := f.ring.Signing(ctx); again.ID != k1.ID {
		t.Fatal("a second call made a new key")
	}

	f.now = f.now.Add(24*time.Hour + time.Second) // k1 stops signing
	k2, err := f.ring.Signing(ctx)
	if err != nil || k2.ID == k1.ID {
		t.Fatalf("no rotation after RotateEvery: %v", err)
	}
	pub, _ := f.ring.Published(ctx)
	if ids(pub) != k1.ID+","+k2.ID {
		t.Fatalf("published %s, want old and new", ids(pub))
	}
	f.now = f.now.Add(7 * time.Minute) // tokens of k1 (≤ 5 min + skew) expired
	pub, _ = f.ring.Published(ctx)
	if ids(pub) != k2.ID {
		t.Fatalf("published %s after k1's tokens expired, want only k2", ids(pub))
	}
}

func TestManualRotateRetiresAtOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t, nil, nil)
	k1, _ := f.ring.Signing(ctx)
	k2, err := f.ring.Rotate(ctx)
	if err != nil || k2.ID == k1.ID {
		t.Fatalf("Rotate: %v", err)
	}
	if cur, _ := f.ring.Signing(ctx); cur.ID != k2.ID {
		t.Errorf("signing with %s after rotation, want %s", cur.ID, k2.ID)
	}
	pub, _ := f.ring.Published(ctx)
	if ids(pub) != k1.ID+","+k2.ID {
		t.Errorf("published %s", ids(pub))
	}
}

// A rotation by another process on the same store is seen after Reload.
func TestRotationByAnotherProcessIsSeen(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	a := newFixture(t, nil, nil)
	b := newFixture(t, nil, a.st)
	b.now = a.now
	k1, _ := a.ring.Signing(ctx)
	k2, _ := b.ring.Rotate(ctx)
	if cur, _ := a.ring.Signing(ctx); cur.ID != k1.ID {
		t.Fatal("cache reloaded before Reload passed") // documents the bound
	}
	a.now = a.now.Add(2 * time.Second)
	if cur, _ := a.ring.Signing(ctx); cur.ID != k2.ID {
		t.Errorf("other process's rotation not seen: signing with %s, want %s", cur.ID, k2.ID)
	}
}

func TestPrivateKeysAreSealed(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t, nil, nil)
	k, _ := f.ring.Signing(ctx)
	var recs []store.SigningKey
	_ = f.st.InTx(ctx, func(tx store.Tx) (err error) {
		recs, err = tx.SigningKeys().ListSigningKeys(ctx)
		return err
	})
	raw, err := k.Private.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1 || bytes.Contains(recs[0].SealedPrivate, raw) {
		t.Fatal("private scalar stored in clear")
	}
	// Another master key cannot open it, and says so.
	other, _ := secrets.New(bytes.Repeat([]byte{2}, secrets.KeySize))
	g := newFixture(t, other, f.st)
	if _, err := g.ring.Signing(ctx); err == nil || !strings.Contains(err.Error(), "master key") {
		t.Errorf("wrong master key: %v", err)
	}
}
