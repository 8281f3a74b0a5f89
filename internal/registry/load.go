package registry

// This file is verify-at-load: the runtime never reads a model from the
// artifact store directly; it asks the Loader to write a version into a
// fresh directory. The Loader hashes exactly the bytes it writes, compares
// them with the digests stored at onboarding, recomputes the OMS subject
// digest and, for a signed version, re-verifies model.sig with the key
// that signed it. Bytes that no longer match quarantine the version: it
// is not loaded again until an admin acts.

import (
	"context"
	"crypto"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/rampart-ml/rampart/internal/access"
	"github.com/rampart-ml/rampart/internal/artifact"
	"github.com/rampart-ml/rampart/internal/audit"
	"github.com/rampart-ml/rampart/internal/modelsign"
	"github.com/rampart-ml/rampart/internal/onnxmeta"
	"github.com/rampart-ml/rampart/internal/store"
)

// ErrQuarantined: the version is quarantined (now, or already was) and is
// not handed to any worker.
var ErrQuarantined = errors.New("model version is quarantined")

// loaderActor is the system actor of quarantine records: the runtime
// loads on its own behalf, not a user's.
var loaderActor = &audit.Actor{ID: "registry.loader", Kind: audit.ActorSystem}

// Loaded is a version written to disk and verified.
type Loaded struct {
	Dir       string // the directory holding exactly Files
	ModelFile string // the ONNX file: Dir joined with the version's model path
	Metadata  onnxmeta.Model
	Files     []store.ModelFile // as stored at onboarding, each verified
}

// Loader materializes verified model versions for the runtime.
type Loader struct {
	store     store.Store
	artifacts artifact.Store
	recorder  *audit.Recorder
}

// NewLoader returns a Loader reading versions from st and their bytes
// from arts, and recording quarantines with rec.
func NewLoader(st store.Store, arts artifact.Store, rec *audit.Recorder) *Loader {
	return &Loader{store: st, artifacts: arts, recorder: rec}
}

// mismatch is a verification failure of the stored bytes: it quarantines.
type mismatch struct {
	file   string // the file at fault ("" for the version as a whole)
	reason string // human text for the version's state reason
	code   string // machine text for the audit record
	err    error
}

func (m *mismatch) Error() string { return m.reason }
func (m *mismatch) Unwrap() error { return m.err }

// Materialize writes version of modelID into dir, which it creates (0700;
// it must not exist) and verifies what it wrote. On any failure dir is
// removed. A quarantined version gives ErrQuarantined; bytes that do not
// match quarantine the version and give an error wrapping ErrQuarantined;
// a signer key revoked since onboarding gives an error wrapping
// ErrKeyRevoked (the bytes are not at fault, so no quarantine).
func (l *Loader) Materialize(ctx context.Context, modelID, version, dir string) (_ Loaded, err error) {
	t, blobDomain, err := target(modelID)
	if err != nil {
		return Loaded{}, fmt.Errorf("load %s@%s: invalid model id: %w", modelID, version, err)
	}
	var v store.ModelVersion
	var key store.SignerKey
	if err := l.store.InTx(ctx, func(tx store.Tx) error {
		var err error
		if v, err = tx.Models().ModelVersion(ctx, modelID, version); err != nil {
			return err
		}
		if v.Signed {
			key, err = tx.SignerKeys().SignerKeyByID(ctx, v.SignerKeyID)
			if errors.Is(err, store.ErrNotFound) {
				return fmt.Errorf("signer key %s: %w", v.SignerKeyID, ErrKeyUnknown)
			}
		}
		return err
	}); err != nil {
		return Loaded{}, fmt.Errorf("load %s@%s: %w", modelID, version, err)
	}
	if v.State == store.VersionQuarantined {
		return Loaded{}, fmt.Errorf("load %s@%s: %w: %s", modelID, version, ErrQuarantined, v.StateReason)
	}
	if v.Signed && !key.RevokedAt.IsZero() {
		return Loaded{}, fmt.Errorf("load %s@%s: %w (key %s)", modelID, version, ErrKeyRevoked, key.ID)
	}
	var meta onnxmeta.Model
	if err := json.Unmarshal([]byte(v.Metadata), &meta); err != nil {
		return Loaded{}, fmt.Errorf("load %s@%s: stored metadata: %w", modelID, version, err)
	}

	if err := os.Mkdir(dir, 0o700); err != nil {
		return Loaded{}, fmt.Errorf("load %s@%s: create directory: %w", modelID, version, err)
	}
	defer func() {
		if err != nil {
			_ = os.RemoveAll(dir)
		}
	}()
	if err := l.write(ctx, dir, blobDomain, v, key); err != nil {
		var mm *mismatch
		if !errors.As(err, &mm) {
			return Loaded{}, fmt.Errorf("load %s@%s: %w", modelID, version, err)
		}
		if qerr := l.quarantine(ctx, t, version, mm); qerr != nil {
			return Loaded{}, fmt.Errorf("load %s@%s: %w: %w (and recording the quarantine failed: %w)", modelID, version, ErrQuarantined, err, qerr)
		}
		return Loaded{}, fmt.Errorf("load %s@%s: %w: %w", modelID, version, ErrQuarantined, err)
	}
	return Loaded{Dir: dir, ModelFile: filepath.Join(dir, filepath.FromSlash(v.ModelFile)), Metadata: meta, Files: v.Files}, nil
}

// write writes and checks every file of v into dir.
func (l *Loader) write(ctx context.Context, dir, blobDomain string, v store.ModelVersion, key store.SignerKey) error {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return fmt.Errorf("open directory: %w", err)
	}
	defer root.Close()
	var written modelsign.Manifest
	for _, f := range v.Files {
		sum, err := l.writeFile(ctx, root, blobDomain, f)
		if err != nil {
			return err
		}
		if f.Path != modelsign.SignatureFile {
			written.Files = append(written.Files, modelsign.File{Name: f.Path, Digest: sum, Size: f.Size})
		}
	}
	// The stored order is the manifest order of onboarding; sort anyway so
	// the subject digest never depends on how a backend lists rows.
	slices.SortFunc(written.Files, func(a, b modelsign.File) int { return comparePaths(a.Name, b.Name) })
	subject := written.SubjectDigest()
	if hex.EncodeToString(subject[:]) != v.SubjectDigest {
		return &mismatch{reason: "the files' subject digest differs from the stored one", code: "subject_mismatch", err: modelsign.ErrDigestMismatch}
	}
	if !v.Signed {
		return nil
	}
	return verifyWritten(root, written, key)
}

// writeFile copies one blob into root (0400), hashing what it writes.
func (l *Loader) writeFile(ctx context.Context, root *os.Root, blobDomain string, f store.ModelFile) ([32]byte, error) {
	if !fileNameOK(f.Path) {
		return [32]byte{}, &mismatch{file: f.Path, reason: fmt.Sprintf("stored file name %q is not a clean relative path", f.Path), code: "bad_path", err: modelsign.ErrDigestMismatch}
	}
	if d := path.Dir(f.Path); d != "." {
		if err := root.MkdirAll(d, 0o700); err != nil {
			return [32]byte{}, fmt.Errorf("create directory for %s: %w", f.Path, err)
		}
	}
	r, err := l.artifacts.Open(ctx, blobDomain, f.Digest)
	switch {
	case errors.Is(err, artifact.ErrNotFound), errors.Is(err, artifact.ErrInvalid):
		return [32]byte{}, &mismatch{file: f.Path, reason: fmt.Sprintf("file %s is missing from the artifact store", f.Path), code: "missing_blob file=" + f.Path, err: err}
	case errors.Is(err, artifact.ErrCorrupt):
		// A damaged encryption header fails at Open, before any byte is
		// read: the same fault as corrupt content, so it quarantines too.
		return [32]byte{}, &mismatch{file: f.Path, reason: fmt.Sprintf("file %s is corrupt in the artifact store", f.Path), code: "corrupt_blob file=" + f.Path, err: err}
	case err != nil:
		return [32]byte{}, fmt.Errorf("open %s: %w", f.Path, err)
	}
	defer r.Close()
	out, err := root.OpenFile(f.Path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o400)
	if err != nil {
		return [32]byte{}, fmt.Errorf("create %s: %w", f.Path, err)
	}
	h := sha256.New()
	// MultiWriter writes to out first: h sees only what out accepted.
	n, err := io.Copy(io.MultiWriter(out, h), r)
	if cerr := out.Close(); err == nil && cerr != nil {
		return [32]byte{}, fmt.Errorf("write %s: %w", f.Path, cerr)
	}
	switch {
	case errors.Is(err, artifact.ErrCorrupt):
		return [32]byte{}, &mismatch{file: f.Path, reason: fmt.Sprintf("file %s is corrupt in the artifact store", f.Path), code: "corrupt_blob file=" + f.Path, err: err}
	case err != nil:
		return [32]byte{}, fmt.Errorf("write %s: %w", f.Path, err)
	}
	var sum [32]byte
	h.Sum(sum[:0])
	if hex.EncodeToString(sum[:]) != f.Digest || n != f.Size {
		return [32]byte{}, &mismatch{file: f.Path, reason: fmt.Sprintf("file %s does not match its stored digest", f.Path), code: "digest_mismatch file=" + f.Path, err: modelsign.ErrDigestMismatch}
	}
	return sum, nil
}

// verifyWritten re-verifies the written model.sig with the registered key
// that signed it, and that it signs exactly the written files.
func verifyWritten(root *os.Root, written modelsign.Manifest, key store.SignerKey) error {
	sig, err := readRootSignature(root)
	if err != nil {
		return err
	}
	pub, err := modelsign.ParsePublicKeyPEM([]byte(key.PublicKey))
	if err != nil {
		return fmt.Errorf("signer key %s: %w", key.ID, err)
	}
	hints, err := modelsign.KeyHints(pub)
	if err != nil {
		return fmt.Errorf("signer key %s: %w", key.ID, err)
	}
	s, err := modelsign.VerifyBundle(sig, func(hint string) (crypto.PublicKey, error) {
		if !slices.Contains(hints, hint) {
			return nil, fmt.Errorf("%w: model.sig names another key than %s", modelsign.ErrUntrustedKey, key.ID)
		}
		return pub, nil
	})
	if err != nil {
		return &mismatch{file: modelsign.SignatureFile, reason: "model.sig no longer verifies with the key that signed it: " + err.Error(), code: "bad_signature file=" + modelsign.SignatureFile, err: err}
	}
	if err := s.Check(written); err != nil {
		return &mismatch{reason: "the files differ from what model.sig signs: " + err.Error(), code: "signature_mismatch", err: err}
	}
	return nil
}

func readRootSignature(root *os.Root) ([]byte, error) {
	f, err := root.Open(modelsign.SignatureFile)
	if errors.Is(err, os.ErrNotExist) {
		return nil, &mismatch{file: modelsign.SignatureFile, reason: "the signed version has no model.sig", code: "missing_signature", err: modelsign.ErrUnsignedOrMalformed}
	}
	if err != nil {
		return nil, fmt.Errorf("open signature: %w", err)
	}
	defer f.Close()
	sig, err := io.ReadAll(io.LimitReader(f, modelsign.MaxBundleSize+1))
	if err != nil {
		return nil, fmt.Errorf("read signature: %w", err)
	}
	return sig, nil
}

// quarantine marks the version quarantined with its audit record.
func (l *Loader) quarantine(ctx context.Context, t access.Target, version string, mm *mismatch) error {
	if l.recorder == nil {
		return errNoRecorder
	}
	return quarantineVersion(ctx, l.store, l.recorder, t, version, mm.reason, mm.code, loaderActor)
}

// fileNameOK accepts a clean relative POSIX path: what onboarding stored.
// A row changed behind the registry's back must not write outside dir
// (os.Root refuses that too; this gives the precise error).
func fileNameOK(p string) bool {
	return p != "" && !path.IsAbs(p) && path.Clean(p) == p && p != "." && p != ".." &&
		!strings.HasPrefix(p, "../") && !strings.Contains(p, "\\")
}

// comparePaths orders paths by their components, as OMS does.
func comparePaths(a, b string) int {
	return slices.Compare(strings.Split(a, "/"), strings.Split(b, "/"))
}
