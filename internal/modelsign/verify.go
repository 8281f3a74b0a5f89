package modelsign

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"time"

	"github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/verify"
	"github.com/sigstore/sigstore/pkg/signature"
)

// Why a signature was refused; every error Verify returns wraps one.
var (
	// ErrUnsignedOrMalformed: no signature, or one that is not a
	// well-formed OMS bundle.
	ErrUnsignedOrMalformed = errors.New("model signature is absent or malformed")
	// ErrUntrustedKey: signed by a key the caller does not trust (for
	// this model).
	ErrUntrustedKey = errors.New("model is signed by a key that is not trusted")
	// ErrBadSignature: the envelope's signature does not verify with the
	// trusted key its hint names.
	ErrBadSignature = errors.New("model signature does not verify")
	// ErrDigestMismatch: the directory's files differ from the signed
	// ones (see MismatchError).
	ErrDigestMismatch = errors.New("model files do not match their signature")
	// ErrUnsupportedFormat: a well-formed signature in a format Rampart
	// does not verify: older OMS versions, certificates, shards, other
	// hash algorithms.
	ErrUnsupportedFormat = errors.New("unsupported signature format")
)

// MaxBundleSize bounds model.sig. The bundle lists every file (~150 bytes
// each), so this leaves room for far more than DefaultMaxFiles.
const MaxBundleSize = 64 << 20

// MismatchError names the files that differ from the signature.
type MismatchError struct {
	Missing []string // signed but absent
	Extra   []string // present but not signed
	Changed []string // present with another digest
}

func (e *MismatchError) Error() string {
	var parts []string
	for _, l := range []struct {
		what  string
		names []string
	}{{"missing", e.Missing}, {"extra", e.Extra}, {"changed", e.Changed}} {
		if len(l.names) == 0 {
			continue
		}
		shown := l.names
		if len(shown) > 10 {
			shown = shown[:10]
		}
		s := fmt.Sprintf("%d %s: %s", len(l.names), l.what, strings.Join(quoteAll(shown), ", "))
		if len(shown) < len(l.names) {
			s += ", …"
		}
		parts = append(parts, s)
	}
	return ErrDigestMismatch.Error() + ": " + strings.Join(parts, "; ")
}

func (e *MismatchError) Unwrap() error { return ErrDigestMismatch }

func quoteAll(names []string) []string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = fmt.Sprintf("%q", n)
	}
	return q
}

// Signed is a signature whose envelope verified: the manifest it vouches
// for and the key that signed it.
type Signed struct {
	Manifest
	KeyID string // KeyID of the signing key
	Hint  string // the hint as written in the bundle
}

// Result is a verified model directory.
type Result struct {
	KeyID         string   // KeyID of the signing key
	Hint          string   // the bundle's hint (either form)
	ModelName     string   // the subject name (informative)
	Files         []File   // the signed files, as found, in canonical order
	SubjectDigest [32]byte // over Files' digests
	// Ignored lists what the directory holds beyond the signed files under
	// the signature's ignore_paths (model.sig itself excepted): unsigned
	// bytes a caller may want to drop or refuse.
	Ignored []string
}

// Verify checks the signature sig of the model directory dir: the
// envelope first (VerifyBundle), then that the directory holds exactly
// the signed files with the signed digests.
func Verify(dir string, sig []byte, keys TrustedKeys) (Result, error) {
	r, err := os.OpenRoot(dir)
	if err != nil {
		return Result{}, fmt.Errorf("open model directory: %w", err)
	}
	defer r.Close()
	return VerifyFS(r.FS(), sig, keys)
}

// VerifyFS is Verify on a file system rooted at the model directory.
func VerifyFS(fsys fs.FS, sig []byte, keys TrustedKeys) (Result, error) {
	s, err := VerifyBundle(sig, keys)
	if err != nil {
		return Result{}, err
	}
	actual, err := DigestFS(fsys, Options{IgnorePaths: s.IgnorePaths, MaxFiles: max(DefaultMaxFiles, len(s.Files)+1)})
	if errors.Is(err, ErrEmptyModel) {
		return Result{}, s.Check(Manifest{})
	}
	if err != nil {
		return Result{}, err
	}
	if err := s.Check(actual); err != nil {
		return Result{}, err
	}
	return Result{
		KeyID:         s.KeyID,
		Hint:          s.Hint,
		ModelName:     s.ModelName,
		Files:         actual.Files,
		SubjectDigest: actual.SubjectDigest(),
		Ignored:       actual.Ignored,
	}, nil
}

// Check compares a directory's manifest with the signed one: the same
// file names, each with the same digest. The file order is canonical on
// both sides, so equal sets give equal subject digests.
func (s Signed) Check(actual Manifest) error {
	want := make(map[string][32]byte, len(s.Files))
	for _, f := range s.Files {
		want[f.Name] = f.Digest
	}
	var e MismatchError
	for _, f := range actual.Files {
		d, ok := want[f.Name]
		switch {
		case !ok:
			e.Extra = append(e.Extra, f.Name)
		case d != f.Digest:
			e.Changed = append(e.Changed, f.Name)
		}
		delete(want, f.Name)
	}
	for _, f := range s.Files { // in canonical order, unlike the map
		if _, ok := want[f.Name]; ok {
			e.Missing = append(e.Missing, f.Name)
		}
	}
	if len(e.Missing)+len(e.Extra)+len(e.Changed) > 0 {
		return &e
	}
	if actual.SubjectDigest() != s.SubjectDigest() { // cannot differ; belt and braces
		return fmt.Errorf("%w: subject digest differs", ErrDigestMismatch)
	}
	return nil
}

// VerifyBundle checks the envelope of a model.sig with sigstore-go,
// offline, against the key keys returns for its hint, and returns the
// manifest it signs. It does not look at any model file.
func VerifyBundle(sig []byte, keys TrustedKeys) (Signed, error) {
	hint, err := precheck(sig)
	if err != nil {
		return Signed{}, err
	}
	pub, err := keys(hint)
	if err != nil {
		if !errors.Is(err, ErrUntrustedKey) {
			err = fmt.Errorf("%w: %w", ErrUntrustedKey, err)
		}
		return Signed{}, err
	}
	keyID, err := KeyID(pub)
	if err != nil {
		return Signed{}, fmt.Errorf("%w: %w", ErrUntrustedKey, err)
	}
	var b bundle.Bundle
	if err := b.UnmarshalJSON(sig); err != nil {
		return Signed{}, fmt.Errorf("%w: %w", ErrUnsignedOrMalformed, err)
	}
	verifier, err := signature.LoadVerifier(pub, hashFor(pub))
	if err != nil {
		return Signed{}, fmt.Errorf("%w: load key: %w", ErrUntrustedKey, err)
	}
	// Validity periods and revocation are the caller's trust policy, applied
	// when it picked the key; to sigstore-go the key is valid at all times.
	key := root.NewExpiringKey(verifier, time.Time{}, time.Time{})
	material := root.NewTrustedPublicKeyMaterial(func(h string) (root.TimeConstrainedVerifier, error) {
		if h != hint {
			return nil, fmt.Errorf("no key for hint %q", h)
		}
		return key, nil
	})
	v, err := verify.NewVerifier(material, verify.WithNoObserverTimestamps())
	if err != nil {
		return Signed{}, fmt.Errorf("set up verifier: %w", err)
	}
	// The artifact (the statement's subject) is checked below and against
	// the directory by Check, which names the files that differ; here
	// sigstore-go checks the envelope's signature.
	if _, err := v.Verify(&b, verify.NewPolicy(verify.WithoutArtifactUnsafe(), verify.WithKey())); err != nil {
		return Signed{}, fmt.Errorf("%w: %w", ErrBadSignature, err)
	}
	env, err := b.Envelope()
	if err != nil {
		return Signed{}, fmt.Errorf("%w: %w", ErrUnsignedOrMalformed, err)
	}
	payload, err := env.RawEnvelope().DecodeB64Payload()
	if err != nil {
		return Signed{}, fmt.Errorf("%w: payload: %w", ErrUnsignedOrMalformed, err)
	}
	m, err := parseStatement(payload)
	if err != nil {
		return Signed{}, err
	}
	return Signed{Manifest: m, KeyID: keyID, Hint: hint}, nil
}

// precheck reads what sigstore-go would otherwise reject with a less
// useful message, and the key hint. Nothing it returns is trusted: it only
// picks the key and the error.
func precheck(sig []byte) (hint string, err error) {
	if len(bytes.TrimSpace(sig)) == 0 {
		return "", fmt.Errorf("%w: empty signature", ErrUnsignedOrMalformed)
	}
	if len(sig) > MaxBundleSize {
		return "", fmt.Errorf("%w: signature is larger than %d bytes", ErrUnsignedOrMalformed, MaxBundleSize)
	}
	var b struct {
		MediaType            string `json:"mediaType"`
		VerificationMaterial *struct {
			PublicKey *struct {
				Hint     string          `json:"hint"`
				RawBytes json.RawMessage `json:"rawBytes"`
			} `json:"publicKey"`
			Certificate          json.RawMessage `json:"certificate"`
			X509CertificateChain json.RawMessage `json:"x509CertificateChain"`
		} `json:"verificationMaterial"`
		DSSEEnvelope *struct {
			PayloadType string            `json:"payloadType"`
			Signatures  []json.RawMessage `json:"signatures"`
		} `json:"dsseEnvelope"`
		MessageSignature json.RawMessage `json:"messageSignature"`
	}
	if err := json.Unmarshal(sig, &b); err != nil {
		return "", fmt.Errorf("%w: not a JSON Sigstore bundle: %w", ErrUnsignedOrMalformed, err)
	}
	vm := b.VerificationMaterial
	switch {
	case b.MediaType != bundleMediaType && strings.HasPrefix(b.MediaType, "application/vnd.dev.sigstore.bundle"):
		return "", fmt.Errorf("%w: bundle media type %q (want %s)", ErrUnsupportedFormat, b.MediaType, bundleMediaType)
	case b.MediaType != bundleMediaType:
		return "", fmt.Errorf("%w: not a Sigstore bundle (media type %q)", ErrUnsignedOrMalformed, b.MediaType)
	case vm == nil:
		return "", fmt.Errorf("%w: no verification material", ErrUnsignedOrMalformed)
	case vm.Certificate != nil || vm.X509CertificateChain != nil:
		return "", fmt.Errorf("%w: certificate-based signature; Rampart verifies key-based OMS signatures only", ErrUnsupportedFormat)
	case vm.PublicKey == nil:
		return "", fmt.Errorf("%w: no public key identifier", ErrUnsignedOrMalformed)
	case vm.PublicKey.RawBytes != nil:
		return "", fmt.Errorf("%w: public key embedded as rawBytes (model_signing before v1.1); re-sign with model_signing v1.1 or later, or rampart model sign", ErrUnsupportedFormat)
	case vm.PublicKey.Hint == "":
		return "", fmt.Errorf("%w: public key hint is empty", ErrUnsignedOrMalformed)
	case b.MessageSignature != nil:
		return "", fmt.Errorf("%w: message signature instead of a DSSE envelope", ErrUnsupportedFormat)
	case b.DSSEEnvelope == nil:
		return "", fmt.Errorf("%w: no DSSE envelope", ErrUnsignedOrMalformed)
	case b.DSSEEnvelope.PayloadType != payloadType:
		return "", fmt.Errorf("%w: payload type %q (want %s)", ErrUnsupportedFormat, b.DSSEEnvelope.PayloadType, payloadType)
	case len(b.DSSEEnvelope.Signatures) != 1:
		return "", fmt.Errorf("%w: %d signatures in the envelope (want 1)", ErrUnsignedOrMalformed, len(b.DSSEEnvelope.Signatures))
	}
	return vm.PublicKey.Hint, nil
}

// parseStatement checks the signed in-toto statement and turns it into a
// manifest, as the reference verifier does.
func parseStatement(payload []byte) (Manifest, error) {
	var st statementJSON
	if err := json.Unmarshal(payload, &st); err != nil {
		return Manifest{}, fmt.Errorf("%w: statement: %w", ErrUnsignedOrMalformed, err)
	}
	ser := st.Predicate.Serialization
	switch {
	case st.Type != statementType:
		return Manifest{}, fmt.Errorf("%w: statement type %q (want %s)", ErrUnsupportedFormat, st.Type, statementType)
	case st.PredicateType == predicateTypeOld:
		return Manifest{}, fmt.Errorf("%w: OMS predicate %s (model_signing v0.2); re-sign with v1.1 or later", ErrUnsupportedFormat, predicateTypeOld)
	case st.PredicateType != predicateType:
		return Manifest{}, fmt.Errorf("%w: predicate type %q (want %s)", ErrUnsupportedFormat, st.PredicateType, predicateType)
	case ser.Method != methodFiles:
		return Manifest{}, fmt.Errorf("%w: serialization method %q (want %q)", ErrUnsupportedFormat, ser.Method, methodFiles)
	case ser.HashType != hashSHA256:
		return Manifest{}, fmt.Errorf("%w: hash type %q (want %q)", ErrUnsupportedFormat, ser.HashType, hashSHA256)
	case len(st.Subject) != 1:
		return Manifest{}, fmt.Errorf("%w: %d subjects (want 1)", ErrUnsignedOrMalformed, len(st.Subject))
	case len(st.Predicate.Resources) == 0:
		return Manifest{}, fmt.Errorf("%w: the signature lists no file", ErrUnsignedOrMalformed)
	case len(st.Predicate.Resources) > DefaultMaxFiles:
		return Manifest{}, fmt.Errorf("%w: the signature lists %d files (at most %d)", ErrUnsignedOrMalformed, len(st.Predicate.Resources), DefaultMaxFiles)
	}
	if err := validateIgnorePaths(ser.IgnorePaths); err != nil {
		return Manifest{}, err
	}
	m := Manifest{ModelName: st.Subject[0].Name, IgnorePaths: ser.IgnorePaths, Files: make([]File, 0, len(st.Predicate.Resources))}
	if m.IgnorePaths == nil {
		m.IgnorePaths = []string{}
	}
	seen := make(map[string]bool, len(st.Predicate.Resources))
	h := sha256.New()
	for _, r := range st.Predicate.Resources {
		f := File{Name: r.Name}
		switch d, err := hex.DecodeString(r.Digest); {
		case r.Algorithm != hashSHA256:
			return Manifest{}, fmt.Errorf("%w: %q hashed with %q (want %q)", ErrUnsupportedFormat, r.Name, r.Algorithm, hashSHA256)
		case err != nil || len(d) != len(f.Digest):
			return Manifest{}, fmt.Errorf("%w: %q has a malformed digest", ErrUnsignedOrMalformed, r.Name)
		case !validName(r.Name):
			return Manifest{}, fmt.Errorf("%w: file name %q is not a clean relative path", ErrUnsignedOrMalformed, r.Name)
		case seen[r.Name]:
			return Manifest{}, fmt.Errorf("%w: %q listed twice", ErrUnsignedOrMalformed, r.Name)
		default:
			copy(f.Digest[:], d)
		}
		seen[r.Name] = true
		h.Write(f.Digest[:])
		m.Files = append(m.Files, f)
	}
	// The subject digest covers the digests in the order listed; the
	// reference checks it the same way.
	want, err := hex.DecodeString(st.Subject[0].Digest.SHA256)
	if err != nil || !bytes.Equal(want, h.Sum(nil)) {
		return Manifest{}, fmt.Errorf("%w: the subject digest does not match the listed files", ErrUnsignedOrMalformed)
	}
	// Canonical order from here on, whatever order the signer listed.
	sortFiles(m.Files)
	return m, nil
}

// VerifyDigests is VerifyFS for a caller that has just written the model
// directory itself and hashed every file while writing it (an upload
// unpacked into a private staging directory): files are all the regular
// files of the directory with their SHA-256 digests, in any order. It
// saves reading a large model a second time; the caller vouches that the
// digests are of the bytes in the directory, and must check what it later
// reads from there (a store that rehashes) against Result.Files.
func VerifyDigests(sig []byte, keys TrustedKeys, files []File) (Result, error) {
	s, err := VerifyBundle(sig, keys)
	if err != nil {
		return Result{}, err
	}
	if err := validateIgnorePaths(s.IgnorePaths); err != nil {
		return Result{}, err
	}
	var actual Manifest
	for _, f := range files {
		if !validName(f.Name) {
			return Result{}, fmt.Errorf("digest model directory: %q is not a clean relative path", f.Name)
		}
		if ignored(f.Name, s.IgnorePaths) {
			if f.Name != SignatureFile {
				actual.Ignored = append(actual.Ignored, f.Name)
			}
			continue
		}
		actual.Files = append(actual.Files, f)
	}
	sortFiles(actual.Files)
	if err := s.Check(actual); err != nil {
		return Result{}, err
	}
	return Result{
		KeyID:         s.KeyID,
		Hint:          s.Hint,
		ModelName:     s.ModelName,
		Files:         actual.Files,
		SubjectDigest: actual.SubjectDigest(),
		Ignored:       actual.Ignored,
	}, nil
}
