// Package rekey rotates the master key of a stopped server's data
// directory: it re-seals every secret sealed under the old key (database
// rows, the audit signing key file, the artifact store's per-domain data
// keys) under a new one, without re-encrypting any blob, and then
// installs the new key.
//
// It owns the order of the steps and what a crash between them leaves;
// the sealed formats and their associated data belong to the packages
// that seal them (signingkeys, identity, audit, artifact), whose AD
// functions it reuses. It must never run beside a server: it holds the
// data directory's lock from Begin to Close.
//
// # Steps and crash safety
//
// With the key in the data directory (keys/master.key):
//
//  1. Begin writes the new key to keys/master.key.new, then a copy of the
//     current key to keys/master.key.old (each 0600, synced).
//  2. ResealDatabase re-seals every sealed row in one transaction and
//     records keys.rotate_master in the audit log in it.
//  3. ResealAuditKey replaces keys/audit-signing.key atomically.
//  4. ResealArtifactKeys replaces each artifact data key file atomically.
//  5. Install renames master.key.new over master.key (dir synced).
//  6. Finish deletes master.key.old.
//
// A crash anywhere leaves master.key.new or master.key.old behind; the
// server refuses to start while either exists (Interrupted), and running
// the rotation again finishes it. Every step is idempotent: a value that
// opens under the new key is already rotated and left alone, one that
// opens under the old is re-sealed, and one that opens under neither is an
// error that names it. Before step 5 the pair is (master.key,
// master.key.new); after it, (master.key.old, master.key).
//
// With the operator's key (--master-key-file) the new key is read from,
// or generated into, --new-key-file; Begin writes the empty marker
// keys/master-key-rotation.pending and Finish deletes it, and nothing is
// installed: the operator replaces their file once the command succeeds.
// A crash is recovered by running the same command again.
package rekey

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/rampart-ml/rampart/internal/artifact"
	"github.com/rampart-ml/rampart/internal/audit"
	"github.com/rampart-ml/rampart/internal/datadir"
	"github.com/rampart-ml/rampart/internal/identity"
	"github.com/rampart-ml/rampart/internal/identity/signingkeys"
	"github.com/rampart-ml/rampart/internal/secrets"
	"github.com/rampart-ml/rampart/internal/store"
	"github.com/rampart-ml/rampart/internal/store/sqlite"
)

// Files in DATA_DIR/keys while a rotation is under way.
const (
	NewKeyFile = datadir.MasterKeyFile + ".new"
	OldKeyFile = datadir.MasterKeyFile + ".old"
	// PendingFile (empty) marks a rotation of the operator's key, whose
	// keys live outside the data directory.
	PendingFile = "master-key-rotation.pending"
)

// Action is the audit action of a rotation.
const Action = "keys.rotate_master"

// actor is the audit actor of the offline command (rampart keys rotate-master).
var actor = &audit.Actor{ID: "rekey", Kind: audit.ActorSystem}

// ErrNeitherKey means a sealed value opens under neither the old nor the
// new master key: it was sealed under a third key, or damaged.
var ErrNeitherKey = errors.New("opens under neither the old nor the new master key")

// Interrupted returns an error when keysDir holds what an unfinished
// rotation leaves, so a server does not start on half-rotated secrets.
func Interrupted(keysDir string) error {
	for _, name := range []string{NewKeyFile, OldKeyFile, PendingFile} {
		if _, err := os.Lstat(filepath.Join(keysDir, name)); err == nil {
			return fmt.Errorf("a master key rotation was interrupted (%s exists): run `rampart keys rotate-master` on this data directory again to finish it", filepath.Join(keysDir, name))
		} else if !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("check for an interrupted master key rotation: %w", err)
		}
	}
	return nil
}

// Options say which data directory and keys to rotate.
type Options struct {
	DataDir string
	// MasterKeyFile is the operator's current key; "" means
	// DATA_DIR/keys/master.key.
	MasterKeyFile string
	// NewKeyFile holds the new key (32 bytes, 0600); a file that does not
	// exist is created with a generated key. Required with MasterKeyFile;
	// otherwise "" generates one kept only in the data directory.
	NewKeyFile string
}

// Rotation is a rotation under way; it holds the data directory's lock
// until Close.
type Rotation struct {
	dir      *datadir.Dir
	keysDir  string
	operator bool
	// Resumed is true when Begin found an earlier, interrupted rotation.
	Resumed  bool
	old, new *secrets.Sealer
}

// Begin locks the data directory, settles the old and new keys and, in
// the data directory, writes master.key.new and master.key.old.
func Begin(o Options) (_ *Rotation, err error) {
	if o.DataDir == "" {
		return nil, errors.New("a data directory is required (--data-dir)")
	}
	if o.MasterKeyFile != "" && o.NewKeyFile == "" {
		return nil, errors.New("with --master-key-file, --new-key-file is required: the new key is written nowhere else")
	}
	if _, err := os.Stat(filepath.Join(o.DataDir, datadir.DatabaseFile)); err != nil {
		return nil, fmt.Errorf("%s is not a Rampart data directory: %w", o.DataDir, err)
	}
	dir, err := datadir.Open(o.DataDir)
	if errors.Is(err, datadir.ErrLocked) {
		return nil, fmt.Errorf("the master key can only be rotated while the server is stopped: %w", err)
	}
	if err != nil {
		return nil, err
	}
	r := &Rotation{dir: dir, keysDir: dir.Path(datadir.KeysDir), operator: o.MasterKeyFile != ""}
	defer func() {
		if err != nil {
			_ = dir.Close()
		}
	}()
	var oldKey, newKey []byte
	if r.operator {
		oldKey, newKey, err = r.operatorKeys(o)
	} else {
		oldKey, newKey, err = r.ownKeys(o)
	}
	if err != nil {
		return nil, err
	}
	if r.old, err = secrets.New(oldKey); err != nil {
		return nil, err
	}
	if r.new, err = secrets.New(newKey); err != nil {
		return nil, err
	}
	return r, nil
}

// operatorKeys reads the operator's current key and the new one. The data
// directory must hold no key of its own: after the rotation it would
// contradict the operator's and the server would refuse to start.
func (r *Rotation) operatorKeys(o Options) (oldKey, newKey []byte, err error) {
	for _, name := range []string{datadir.MasterKeyFile, NewKeyFile, OldKeyFile} {
		if p := filepath.Join(r.keysDir, name); exists(p) {
			return nil, nil, fmt.Errorf("%s exists although the master key is the operator's (--master-key-file); delete it (it is a copy of a master key) and run again", p)
		}
	}
	if oldKey, err = secrets.LoadKey(o.MasterKeyFile); err != nil {
		return nil, nil, fmt.Errorf("master-key-file: %w", err)
	}
	if newKey, err = loadOrCreateKey(o.NewKeyFile); err != nil {
		return nil, nil, err
	}
	if subtle.ConstantTimeCompare(oldKey, newKey) == 1 {
		return nil, nil, fmt.Errorf("new-key-file %s holds the current master key; give a new key (or a path that does not exist, to generate one)", o.NewKeyFile)
	}
	if exists(r.path(PendingFile)) {
		r.Resumed = true
	} else if err := writeKey(r.path(PendingFile), nil); err != nil {
		return nil, nil, err
	}
	return oldKey, newKey, nil
}

// ownKeys settles the keys of a data directory that keeps its own, picking
// up an interrupted rotation from the files it left.
func (r *Rotation) ownKeys(o Options) (oldKey, newKey []byte, err error) {
	cur, err := secrets.LoadKey(r.path(datadir.MasterKeyFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, fmt.Errorf("%w; if the server runs with --master-key-file, give that file here too (with --new-key-file)", err)
	}
	if err != nil {
		return nil, nil, err
	}
	switch {
	case exists(r.path(NewKeyFile)): // steps 1-4 ran (some of them): old is master.key
		r.Resumed = true
		if newKey, err = secrets.LoadKey(r.path(NewKeyFile)); err != nil {
			return nil, nil, err
		}
		if exists(r.path(OldKeyFile)) {
			saved, err := secrets.LoadKey(r.path(OldKeyFile))
			if err != nil {
				return nil, nil, err
			}
			if subtle.ConstantTimeCompare(saved, cur) != 1 {
				return nil, nil, fmt.Errorf("%s and %s differ although %s exists; restore the keys from backup", r.path(OldKeyFile), r.path(datadir.MasterKeyFile), r.path(NewKeyFile))
			}
		} else if err := writeKey(r.path(OldKeyFile), cur); err != nil {
			return nil, nil, err
		}
		oldKey = cur
	case exists(r.path(OldKeyFile)): // installed already (step 5): new is master.key
		r.Resumed = true
		if oldKey, err = secrets.LoadKey(r.path(OldKeyFile)); err != nil {
			return nil, nil, err
		}
		newKey = cur
	default:
		oldKey = cur
		if o.NewKeyFile != "" {
			newKey, err = loadOrCreateKey(o.NewKeyFile)
		} else {
			newKey, err = generateKey()
		}
		if err != nil {
			return nil, nil, err
		}
		if subtle.ConstantTimeCompare(oldKey, newKey) == 1 {
			return nil, nil, fmt.Errorf("new-key-file %s holds the current master key; give a new key", o.NewKeyFile)
		}
		// .new first: a crash before .old is written is still read as
		// "old is master.key".
		if err := writeKey(r.path(NewKeyFile), newKey); err != nil {
			return nil, nil, err
		}
		if err := writeKey(r.path(OldKeyFile), oldKey); err != nil {
			return nil, nil, err
		}
		return oldKey, newKey, nil
	}
	if o.NewKeyFile != "" {
		given, err := secrets.LoadKey(o.NewKeyFile)
		if err != nil {
			return nil, nil, err
		}
		if subtle.ConstantTimeCompare(given, newKey) != 1 {
			return nil, nil, fmt.Errorf("an interrupted rotation to another key is pending in %s; run again without --new-key-file (or with that key) to finish it first", r.keysDir)
		}
	}
	return oldKey, newKey, nil
}

// Close releases the data directory.
func (r *Rotation) Close() error { return r.dir.Close() }

func (r *Rotation) path(name string) string { return filepath.Join(r.keysDir, name) }

// reseal returns sealed re-sealed under the new key; changed is false
// when it already was.
func (r *Rotation) reseal(sealed, ad []byte) (out []byte, changed bool, err error) {
	if pt, err := r.old.Open(sealed, ad); err == nil {
		out, err := r.new.Seal(pt, ad)
		return out, true, err
	}
	if _, err := r.new.Open(sealed, ad); err == nil {
		return sealed, false, nil
	}
	return nil, false, ErrNeitherKey
}

// DatabaseReport counts the database's sealed values by kind.
type DatabaseReport struct {
	Resealed       map[store.SecretKind]int
	AlreadyRotated int
}

// adOf is the associated data each owner seals a kind of value with.
func adOf(kind store.SecretKind, owner string) ([]byte, error) {
	switch kind {
	case store.SecretSigningKey:
		return signingkeys.SealAD(owner), nil
	case store.SecretTOTP:
		return identity.TOTPSecretAD(owner), nil
	case store.SecretPseudonym:
		return audit.PseudonymSecretAD(), nil
	}
	return nil, fmt.Errorf("no associated data known for sealed %s secrets", kind)
}

// ResealDatabase re-seals every sealed row in one transaction, with the
// audit record of the rotation: all of them change, or none.
func (r *Rotation) ResealDatabase(ctx context.Context) (DatabaseReport, error) {
	rep := DatabaseReport{Resealed: map[store.SecretKind]int{}}
	st, err := sqlite.Open(ctx, r.dir.Path(datadir.DatabaseFile))
	if err != nil {
		return rep, err
	}
	defer st.Close()
	// The record names no client address, so the key of address
	// pseudonyms is never used: a random one will do.
	sourceKey := make([]byte, 32)
	if _, err := rand.Read(sourceKey); err != nil {
		return rep, err
	}
	// Any pseudonym secret the record needed would be sealed under the new
	// key, like every other one after this transaction. The chain and its
	// checkpoints do not depend on the master key, so they verify either way.
	rec, err := audit.NewRecorder(audit.RecorderOptions{Store: st, Sealer: r.new, SourceKey: sourceKey})
	if err != nil {
		return rep, err
	}
	err = st.InTx(ctx, func(tx store.Tx) error {
		rep = DatabaseReport{Resealed: map[store.SecretKind]int{}}
		ss := tx.SealedSecrets()
		for _, kind := range store.SecretKinds {
			list, err := ss.ListSealedSecrets(ctx, kind)
			if err != nil {
				return err
			}
			for _, s := range list {
				ad, err := adOf(kind, s.Owner)
				if err != nil {
					return err
				}
				out, changed, err := r.reseal(s.Sealed, ad)
				if err != nil {
					return fmt.Errorf("sealed %s secret of %q: %w", kind, s.Owner, err)
				}
				if !changed {
					rep.AlreadyRotated++
					continue
				}
				s.Sealed = out
				if err := ss.ReplaceSealedSecret(ctx, s); err != nil {
					return err
				}
				rep.Resealed[kind]++
			}
		}
		return rec.Record(ctx, tx, audit.Entry{
			Action: Action, Actor: actor, Target: audit.Target{Kind: "master-key"},
			Reason: fmt.Sprintf("signing_keys=%d totp_secrets=%d pseudonym_secrets=%d already_rotated=%d resumed=%t",
				rep.Resealed[store.SecretSigningKey], rep.Resealed[store.SecretTOTP], rep.Resealed[store.SecretPseudonym],
				rep.AlreadyRotated, r.Resumed),
		})
	})
	if err != nil {
		return DatabaseReport{}, fmt.Errorf("re-seal the database's secrets (nothing changed; run again): %w", err)
	}
	return rep, nil
}

// ResealAuditKey re-seals the audit checkpoint key file, replacing it
// atomically; changed is false when it already was (or there is none).
func (r *Rotation) ResealAuditKey() (changed bool, err error) {
	p := r.path(audit.SigningKeyFile)
	sealed, err := datadir.ReadSecretFile(p, 4096)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	out, changed, err := r.reseal(sealed, audit.SigningKeyAD())
	if err != nil {
		return false, fmt.Errorf("audit signing key %s: %w", p, err)
	}
	if !changed {
		return false, nil
	}
	return true, replaceSecretFile(p, out)
}

// ResealArtifactKeys re-wraps every domain's data key (artifact.FS does
// it file by file, atomically, skipping those already rotated).
func (r *Rotation) ResealArtifactKeys(ctx context.Context) error {
	d := r.dir.Path(datadir.ArtifactsDir)
	if !exists(d) {
		return nil
	}
	fsStore, err := artifact.NewFS(d, r.old)
	if err != nil {
		return err
	}
	return fsStore.RotateMasterKey(ctx, r.new)
}

// Install makes the new key the data directory's (rename of
// master.key.new over master.key); with the operator's key it does
// nothing: the operator replaces their file.
func (r *Rotation) Install() error {
	if r.operator || !exists(r.path(NewKeyFile)) {
		return nil
	}
	if err := os.Rename(r.path(NewKeyFile), r.path(datadir.MasterKeyFile)); err != nil {
		return fmt.Errorf("install the new master key: %w", err)
	}
	return syncDir(r.keysDir)
}

// Finish deletes the copy of the old key (from here on it opens
// nothing), or the operator rotation's marker.
func (r *Rotation) Finish() error {
	name := OldKeyFile
	if r.operator {
		name = PendingFile
	}
	if err := os.Remove(r.path(name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("finish the rotation: %w", err)
	}
	return syncDir(r.keysDir)
}

// Report is what Run did.
type Report struct {
	Database DatabaseReport
	AuditKey bool // the audit signing key file was re-sealed now
	Resumed  bool
	// Installed is true when the new key is now the data directory's;
	// false when the operator must replace their key file.
	Installed bool
}

// Run performs every step; when it fails, running it again with the same
// options finishes the rotation.
func Run(ctx context.Context, o Options) (rep Report, err error) {
	r, err := Begin(o)
	if err != nil {
		return rep, err
	}
	defer func() {
		if cerr := r.Close(); err == nil {
			err = cerr
		}
	}()
	rep.Resumed = r.Resumed
	if rep.Database, err = r.ResealDatabase(ctx); err != nil {
		return rep, err
	}
	if rep.AuditKey, err = r.ResealAuditKey(); err != nil {
		return rep, err
	}
	if err := r.ResealArtifactKeys(ctx); err != nil {
		return rep, fmt.Errorf("artifact data keys: %w", err)
	}
	if err := r.Install(); err != nil {
		return rep, err
	}
	if err := r.Finish(); err != nil {
		return rep, err
	}
	rep.Installed = !r.operator
	return rep, nil
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

func generateKey() ([]byte, error) {
	k := make([]byte, secrets.KeySize)
	if _, err := rand.Read(k); err != nil {
		return nil, fmt.Errorf("generate master key: %w", err)
	}
	return k, nil
}

// loadOrCreateKey reads the key at path, or generates one and writes it
// there (0600) if the file does not exist.
func loadOrCreateKey(path string) ([]byte, error) {
	if _, err := os.Lstat(path); errors.Is(err, fs.ErrNotExist) {
		k, err := generateKey()
		if err != nil {
			return nil, err
		}
		if err := datadir.WriteSecretFile(path, k); err != nil {
			return nil, fmt.Errorf("new-key-file: %w", err)
		}
		return k, syncDir(filepath.Dir(path))
	}
	k, err := secrets.LoadKey(path)
	if err != nil {
		return nil, fmt.Errorf("new-key-file: %w", err)
	}
	return k, nil
}

// writeKey creates a key file (0600, synced) and syncs its directory.
func writeKey(path string, key []byte) error {
	if err := datadir.WriteSecretFile(path, key); err != nil {
		return err
	}
	return syncDir(filepath.Dir(path))
}

// replaceSecretFile replaces path with data atomically: a synced 0600
// temporary file renamed over it, then the directory synced.
func replaceSecretFile(path string, data []byte) error {
	tmp := path + ".tmp"
	if err := os.Remove(tmp); err != nil && !errors.Is(err, fs.ErrNotExist) { // left by a crash
		return err
	}
	if err := datadir.WriteSecretFile(tmp, data); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("replace %s: %w", path, err)
	}
	return syncDir(filepath.Dir(path))
}

// syncDir makes a creation, rename or removal in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir) // #nosec G304 -- a directory of the data dir or the operator's
	if err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}
