package signingkeys

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/rampart-ml/rampart/internal/audit"
	"github.com/rampart-ml/rampart/internal/identity/identitytest"
	"github.com/rampart-ml/rampart/internal/principal"
	"github.com/rampart-ml/rampart/internal/secrets"
	"github.com/rampart-ml/rampart/internal/store"
	"github.com/rampart-ml/rampart/internal/store/sqlite"
)

type fixture struct {
	st   *identitytest.FailingStore
	ring *Ring
	now  time.Time
}

// newFixture makes a ring over st (a fresh store when nil) with sealer (a
// fixed key when nil).
func newFixture(t *testing.T, sealer *secrets.Sealer, st *identitytest.FailingStore) *fixture {
	t.Helper()
	if st == nil {
		db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		st = identitytest.NewFailingStore(db)
	}
	if sealer == nil {
		sealer, _ = secrets.New(bytes.Repeat([]byte{1}, secrets.KeySize))
	}
	f := &fixture{st: st, now: time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)}
	var err error
	f.ring, err = New(st, sealer, Options{RotateEvery: 24 * time.Hour, MaxTokenLifetime: 5 * time.Minute, Reload: time.Second,
		Recorder: identitytest.NewRecorder(t, st, sealer), Now: func() time.Time { return f.now }})
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

// Every rotation is recorded with the new key's id: the ring's own (the
// first key, and when a key's time is up) by the system actor
// "identity.keys", an admin's by the admin, as a pseudonym.
func TestRotationsAreRecorded(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil, nil)
	k1, err := f.ring.Signing(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	admin := principal.WithContext(context.Background(), principal.Principal{ID: "admin-id", Kind: principal.User, Admin: true})
	k2, err := f.ring.Rotate(admin)
	if err != nil {
		t.Fatal(err)
	}
	f.now = f.now.Add(25 * time.Hour)
	k3, err := f.ring.Signing(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	type rec struct{ Action, Actor, ActorKind, Target, Reason string }
	var got []rec
	recs := identitytest.Records(t, f.st)
	for _, r := range recs {
		actor := r.Actor
		if audit.IsPseudonym(actor) {
			actor = "pseudonym"
		}
		got = append(got, rec{r.Action, actor, r.ActorKind, r.TargetKind + ":" + r.TargetID, r.Reason})
	}
	want := []rec{
		{"signing-key.rotate", "identity.keys", audit.ActorSystem, "signing-key:" + k1.ID, "scheduled"},
		{"signing-key.rotate", "pseudonym", audit.ActorUser, "signing-key:" + k2.ID, ""},
		{"signing-key.rotate", "identity.keys", audit.ActorSystem, "signing-key:" + k3.ID, "scheduled"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("records (-want +got):\n%s", diff)
	}
	identitytest.CheckPrivate(t, recs, "admin-id")
}

// No key without its record: a rotation the audit log refuses leaves the
// key set as it was.
func TestRotationFailsClosed(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t, nil, nil)
	k1, err := f.ring.Signing(ctx)
	if err != nil {
		t.Fatal(err)
	}
	f.st.SetFailing(true)
	if _, err := f.ring.Rotate(ctx); !errors.Is(err, audit.ErrWrite) {
		t.Fatalf("Rotate = %v, want audit.ErrWrite", err)
	}
	f.st.SetFailing(false)
	if cur, _ := f.ring.Signing(ctx); cur.ID != k1.ID {
		t.Errorf("signing with %s after a refused rotation, want %s", cur.ID, k1.ID)
	}
	if pub, _ := f.ring.Published(ctx); ids(pub) != k1.ID {
		t.Errorf("published %s after a refused rotation", ids(pub))
	}
	if _, err := New(f.st, nil, Options{MaxTokenLifetime: time.Minute}); err == nil {
		t.Error("New accepted options without a recorder")
	}
}
