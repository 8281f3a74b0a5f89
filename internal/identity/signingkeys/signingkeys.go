// Package signingkeys keeps the keys that sign Rampart's tokens: it creates
// them (ECDSA P-256, ES256), stores them sealed under the master key, rotates
// them on a schedule or on demand, and keeps a retired key published until
// every token it signed has expired.
//
// It never stores or logs a private key in clear.
package signingkeys

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/rampart-ml/rampart/internal/audit"
	"github.com/rampart-ml/rampart/internal/secrets"
	"github.com/rampart-ml/rampart/internal/store"
)

// Algorithm is the JOSE algorithm of every key made here.
const Algorithm = "ES256"

// Key is a usable signing key.
type Key struct {
	ID           string
	Algorithm    string
	Private      *ecdsa.PrivateKey
	SignUntil    time.Time
	PublishUntil time.Time
}

// Options configure a Ring.
type Options struct {
	// RotateEvery is how long a key signs (default 24h).
	RotateEvery time.Duration
	// MaxTokenLifetime is the longest lifetime of a token signed by a key;
	// a retired key stays published this long (plus clock skew).
	MaxTokenLifetime time.Duration
	// Reload bounds how stale the in-memory copy may be, so a rotation by
	// another process (`rampart keys rotate`, another replica) is seen
	// (default 30s).
	Reload time.Duration
	// Recorder records every rotation, in its transaction (required).
	Recorder *audit.Recorder
	Now      func() time.Time
}

// clockSkew is added to publication so verifiers with slightly wrong
// clocks still find the key.
const clockSkew = time.Minute

// Ring hands out the current signing key and the published set.
type Ring struct {
	store  store.Store
	sealer *secrets.Sealer
	opt    Options

	mu       sync.Mutex
	keys     []Key // oldest first
	loadedAt time.Time
}

// New returns a Ring; keys are loaded (and the first one made) on first use.
func New(st store.Store, sealer *secrets.Sealer, o Options) (*Ring, error) {
	if o.RotateEvery == 0 {
		o.RotateEvery = 24 * time.Hour
	}
	if o.Reload == 0 {
		o.Reload = 30 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Recorder == nil {
		return nil, errors.New("signingkeys: an audit recorder is required")
	}
	if o.MaxTokenLifetime <= 0 || o.RotateEvery < time.Minute {
		return nil, fmt.Errorf("signingkeys: MaxTokenLifetime must be positive (got %v) and RotateEvery at least 1m (got %v)", o.MaxTokenLifetime, o.RotateEvery)
	}
	return &Ring{store: st, sealer: sealer, opt: o}, nil
}

// Signing returns the key to sign with now, creating one when none is valid.
func (r *Ring) Signing(ctx context.Context) (Key, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.opt.Now()
	if err := r.refresh(ctx, now); err != nil {
		return Key{}, err
	}
	if k, ok := r.current(now); ok {
		return k, nil
	}
	if err := r.rotate(ctx, now, scheduled); err != nil {
		return Key{}, err
	}
	k, _ := r.current(now)
	return k, nil
}

// scheduled is the actor of rotations the ring makes itself (the first
// key, and a new one when the current key's time is up).
var scheduled = &audit.Actor{ID: "identity.keys", Kind: audit.ActorSystem}

// Published returns every key a verifier must know (the JWKS), oldest first.
func (r *Ring) Published(ctx context.Context) ([]Key, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.opt.Now()
	if err := r.refresh(ctx, now); err != nil {
		return nil, err
	}
	var out []Key
	for _, k := range r.keys {
		if k.PublishUntil.After(now) {
			out = append(out, k)
		}
	}
	return out, nil
}

// Rotate retires the current key now and makes a new one; the audit
// record names the principal in ctx as the actor.
func (r *Ring) Rotate(ctx context.Context) (Key, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.opt.Now()
	if err := r.rotate(ctx, now, nil); err != nil {
		return Key{}, err
	}
	k, _ := r.current(now)
	return k, nil
}

// current returns the newest key that may sign at now.
func (r *Ring) current(now time.Time) (Key, bool) {
	for i := len(r.keys) - 1; i >= 0; i-- {
		if k := r.keys[i]; k.SignUntil.After(now) {
			return k, true
		}
	}
	return Key{}, false
}

func (r *Ring) refresh(ctx context.Context, now time.Time) error {
	if !r.loadedAt.IsZero() && now.Sub(r.loadedAt) < r.opt.Reload {
		return nil
	}
	var recs []store.SigningKey
	err := r.store.InTx(ctx, func(tx store.Tx) (err error) {
		recs, err = tx.SigningKeys().ListSigningKeys(ctx)
		return err
	})
	if err != nil {
		return fmt.Errorf("signingkeys: load: %w", err)
	}
	keys := make([]Key, 0, len(recs))
	for _, rec := range recs {
		k, err := r.open(rec)
		if err != nil {
			return err
		}
		keys = append(keys, k)
	}
	r.keys, r.loadedAt = keys, now
	return nil
}

// rotate retires whatever signs now, adds a fresh key, prunes keys that
// nobody can need any more and records "signing-key.rotate" by actor (nil:
// the principal in ctx), in one transaction.
func (r *Ring) rotate(ctx context.Context, now time.Time, actor *audit.Actor) error {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("signingkeys: generate: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return fmt.Errorf("signingkeys: marshal: %w", err)
	}
	var idb [16]byte
	_, _ = rand.Read(idb[:])
	id := hex.EncodeToString(idb[:])
	sealed, err := r.sealer.Seal(der, ad(id))
	if err != nil {
		return err
	}
	signUntil := now.Add(r.opt.RotateEvery)
	rec := store.SigningKey{ID: id, Algorithm: Algorithm, SealedPrivate: sealed, CreatedAt: now,
		SignUntil: signUntil, PublishUntil: signUntil.Add(r.opt.MaxTokenLifetime + clockSkew)}
	err = r.store.InTx(ctx, func(tx store.Tx) error {
		k := tx.SigningKeys()
		if err := k.RetireSigningKeys(ctx, now, now.Add(r.opt.MaxTokenLifetime+clockSkew)); err != nil {
			return err
		}
		if err := k.DeleteExpiredSigningKeys(ctx, now); err != nil {
			return err
		}
		if err := k.CreateSigningKey(ctx, rec); err != nil {
			return err
		}
		e := audit.Entry{Action: "signing-key.rotate", Target: audit.Target{Kind: "signing-key", ID: id}, Actor: actor}
		if actor == scheduled {
			e.Reason = "scheduled"
		}
		return r.opt.Recorder.Record(ctx, tx, e)
	})
	if err != nil {
		return fmt.Errorf("signingkeys: rotate: %w", err)
	}
	r.loadedAt = time.Time{} // reload the new set
	return r.refresh(ctx, now)
}

func (r *Ring) open(rec store.SigningKey) (Key, error) {
	der, err := r.sealer.Open(rec.SealedPrivate, ad(rec.ID))
	if err != nil {
		return Key{}, fmt.Errorf("signingkeys: key %s: %w (was the master key replaced?)", rec.ID, err)
	}
	parsed, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return Key{}, fmt.Errorf("signingkeys: key %s: %w", rec.ID, err)
	}
	priv, ok := parsed.(*ecdsa.PrivateKey)
	if !ok || rec.Algorithm != Algorithm {
		return Key{}, fmt.Errorf("signingkeys: key %s: unsupported algorithm %s", rec.ID, rec.Algorithm)
	}
	return Key{ID: rec.ID, Algorithm: rec.Algorithm, Private: priv, SignUntil: rec.SignUntil, PublishUntil: rec.PublishUntil}, nil
}

// ad binds a sealed key to its id, so a sealed blob copied to another row
// does not open.
func ad(id string) []byte { return []byte("signing-key:" + id) }

// SealAD is the associated data a key's private half is sealed with
// (master key rotation re-seals it with the same).
func SealAD(id string) []byte { return ad(id) }
