package registry

// This file is the onboarding of model versions: an upload is unpacked
// straight into the artifact store's staging area (encrypted as it is
// written, so each file is written to disk once), checked (file types,
// signature against the keys trusted for the model's domain, ONNX
// metadata), committed as blobs, and recorded with its audit record in
// one transaction. No staged file becomes a blob before the signature is
// verified, and the staged files are removed whatever happens.

import (
	"context"
	"crypto"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"path"
	"regexp"
	"slices"
	"syscall"
	"time"

	"github.com/rampart-ml/rampart/internal/access"
	"github.com/rampart-ml/rampart/internal/artifact"
	"github.com/rampart-ml/rampart/internal/audit"
	"github.com/rampart-ml/rampart/internal/authz"
	"github.com/rampart-ml/rampart/internal/httpapi"
	"github.com/rampart-ml/rampart/internal/modelarchive"
	"github.com/rampart-ml/rampart/internal/modelsign"
	"github.com/rampart-ml/rampart/internal/onnxmeta"
	"github.com/rampart-ml/rampart/internal/store"
)

// ActionModelOnboard is the audit action of an onboarding, admitted or
// refused.
const (
	ActionModelOnboard = "model.onboard"
	auditKindModel     = "model"
	// uploadBodyLimit: the archive is streamed to disk under the finer
	// limits of modelarchive.Limits, so the route's own cap is generous.
	uploadBodyLimit int64 = 16 << 30
)

// validVersion is a version label: a letter or digit, then up to 63 of
// letters, digits, '.', '_' and '-' (so it is a safe path segment).
var validVersion = regexp.MustCompile(`^[0-9A-Za-z][0-9A-Za-z._-]{0,63}$`)

// archiveTypes are the Content-Types of an upload; Extract detects the
// format from the bytes whichever of them is sent.
var archiveTypes = []string{"application/x-tar", "application/gzip", "application/zip"}

// ModelsOptions configure a ModelsAPI.
type ModelsOptions struct {
	Store     store.Store
	Artifacts artifact.Store
	Authz     *authz.Service
	// Recorder writes the audit records; without one every onboarding is
	// refused with 503.
	Recorder *audit.Recorder
	// StagingDir is a private directory zip uploads are spooled in; the
	// caller empties it at startup.
	StagingDir string
	Limits     modelarchive.Limits
	Now        func() time.Time
}

// ModelsAPI serves the model routes.
type ModelsAPI struct {
	opt  ModelsOptions
	now  func() time.Time
	refs *blobRefs
}

// NewModelsAPI returns a ModelsAPI. A zero Limits means
// modelarchive.DefaultLimits.
func NewModelsAPI(o ModelsOptions) *ModelsAPI {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Limits == (modelarchive.Limits{}) {
		o.Limits = modelarchive.DefaultLimits()
	}
	m := &ModelsAPI{opt: o, now: o.Now}
	m.refs = newBlobRefs(m.dropIfUnreferenced)
	return m
}

// Mount registers the routes. All are open to authenticated principals;
// the handlers ask Authz about the model's domain.
func (m *ModelsAPI) Mount(api *httpapi.Server) {
	for _, rt := range []httpapi.Route{
		{Pattern: "PUT /api/v1/models/{id}/versions/{version}", Access: httpapi.Authenticated, MaxBodyBytes: uploadBodyLimit, Handler: m.onboard},
		{Pattern: "GET /api/v1/models", Access: httpapi.Authenticated, Handler: m.listModels},
		{Pattern: "GET /api/v1/models/{id}/versions/{version}", Access: httpapi.Authenticated, Handler: m.getVersion},
		// manage.go
		{Pattern: "GET /api/v1/models/{id}", Access: httpapi.Authenticated, Handler: m.getModel},
		{Pattern: "PATCH /api/v1/models/{id}", Access: httpapi.Authenticated, MaxBodyBytes: 64 << 10, Handler: m.updateModel},
		{Pattern: "DELETE /api/v1/models/{id}", Access: httpapi.Authenticated, Handler: m.deleteModel},
		{Pattern: "DELETE /api/v1/models/{id}/versions/{version}", Access: httpapi.Authenticated, Handler: m.deleteVersion},
		{Pattern: "GET /api/v1/models/{id}/versions/{version}/download", Access: httpapi.Authenticated, Handler: m.download},
		{Pattern: "GET /api/v1/models/{id}/versions/{version}/sbom", Access: httpapi.Authenticated, Handler: m.sbom},
	} {
		api.Handle(rt)
	}
}

// Model is the wire form of a model.
type Model struct {
	ID          string    `json:"id"`
	Domain      string    `json:"domain"`
	Title       string    `json:"title"`
	Description string    `json:"description,omitempty"`
	CreatedAt   time.Time `json:"created_at"`
}

// ModelVersion is the wire form of a model version.
type ModelVersion struct {
	ModelID       string          `json:"model_id"`
	Version       string          `json:"version"`
	State         string          `json:"state"`
	StateReason   string          `json:"state_reason,omitempty"`
	ModelFile     string          `json:"model_file"`
	SubjectDigest string          `json:"subject_digest"`
	Signed        bool            `json:"signed"`
	SignerKeyID   string          `json:"signer_key_id,omitempty"`
	VerifiedAt    time.Time       `json:"verified_at"`
	Metadata      json.RawMessage `json:"metadata,omitempty"`
	Files         []ModelFile     `json:"files"`
	CreatedAt     time.Time       `json:"created_at"`
}

// ModelFile is the wire form of one file of a version.
type ModelFile struct {
	Path   string `json:"path"`
	Size   int64  `json:"size"`
	Digest string `json:"digest"`
}

func versionView(v store.ModelVersion) ModelVersion {
	out := ModelVersion{ModelID: v.ModelID, Version: v.Version, State: v.State, StateReason: v.StateReason,
		ModelFile: v.ModelFile, SubjectDigest: v.SubjectDigest, Signed: v.Signed, SignerKeyID: v.SignerKeyID,
		VerifiedAt: v.VerifiedAt, CreatedAt: v.CreatedAt, Files: []ModelFile{}}
	if json.Valid([]byte(v.Metadata)) {
		out.Metadata = json.RawMessage(v.Metadata)
	}
	for _, f := range v.Files {
		out.Files = append(out.Files, ModelFile(f))
	}
	return out
}

// target is the access-control target of model id, and the artifact
// store's domain of its blobs ("*" for a model without a domain).
func target(id string) (access.Target, string, error) {
	domain, _, err := access.SplitModelID(id)
	if err != nil {
		return access.Target{}, "", httpapi.Error(http.StatusBadRequest, "invalid_model_id", err.Error(), nil)
	}
	blobDomain := domain
	if blobDomain == "" {
		blobDomain = access.Wildcard
	}
	return access.Target{Kind: access.Model, Domain: domain, ID: id}, blobDomain, nil
}

func (m *ModelsAPI) listModels(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	var models []store.Model
	if err := m.opt.Store.InTx(ctx, func(tx store.Tx) error {
		var err error
		models, err = tx.Models().ListModels(ctx)
		return err
	}); err != nil {
		return err
	}
	p := principalOf(r)
	out := []Model{}
	for _, mod := range models {
		t, _, err := target(mod.ID)
		if err != nil {
			continue
		}
		// Allowed, not Require: a listing is no request for the models
		// left out, so their absence is not a denial to record.
		ok, err := m.opt.Authz.Allowed(ctx, p, t, access.Read)
		if err != nil {
			return err
		}
		if ok {
			out = append(out, Model{ID: mod.ID, Domain: mod.Domain, Title: mod.Title, Description: mod.Description, CreatedAt: mod.CreatedAt})
		}
	}
	httpapi.WriteJSON(w, http.StatusOK, out)
	return nil
}

func (m *ModelsAPI) getVersion(w http.ResponseWriter, r *http.Request) error {
	id, version := r.PathValue("id"), r.PathValue("version")
	t, _, err := target(id)
	if err != nil {
		return err
	}
	ctx := r.Context()
	if err := m.opt.Authz.Require(ctx, principalOf(r), t, access.Read); err != nil {
		return err
	}
	var v store.ModelVersion
	err = m.opt.Store.InTx(ctx, func(tx store.Tx) error {
		var err error
		v, err = tx.Models().ModelVersion(ctx, id, version)
		return err
	})
	switch {
	case errors.Is(err, store.ErrNotFound):
		return httpapi.Error(http.StatusNotFound, "not_found", "model version not found", nil)
	case err != nil:
		return err
	}
	httpapi.WriteJSON(w, http.StatusOK, versionView(v))
	return nil
}

// onboard checks the request and the caller's privilege, then admits the
// upload; a refusal after the privilege check is recorded in the audit
// log (the denial itself Authz records).
func (m *ModelsAPI) onboard(w http.ResponseWriter, r *http.Request) error {
	id, version := r.PathValue("id"), r.PathValue("version")
	t, blobDomain, err := target(id)
	if err != nil {
		return err
	}
	if !validVersion.MatchString(version) {
		return httpapi.Error(http.StatusBadRequest, "invalid_version", "version must be 1 to 64 of letters, digits, '.', '_' and '-', starting with a letter or digit", nil)
	}
	ctx := r.Context()
	if err := m.opt.Authz.Require(ctx, principalOf(r), t, access.All); err != nil {
		return err
	}
	if m.opt.Recorder == nil {
		return errNoRecorder
	}
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || !slices.Contains(archiveTypes, mt) {
		return m.refused(ctx, t, version, httpapi.Error(http.StatusUnsupportedMediaType, "unsupported_media_type",
			"the body must be the model directory as application/x-tar, application/gzip or application/zip", nil))
	}
	v, err := m.admit(ctx, w, r, t, blobDomain, version)
	if err != nil {
		return m.refused(ctx, t, version, err)
	}
	// Storing a large model can outlast the server's WriteTimeout, which
	// runs from the start of the request.
	_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(chunkTimeout))
	httpapi.WriteJSON(w, http.StatusCreated, versionView(v))
	return nil
}

// refused records a refused onboarding (4xx answers only: a 5xx is not
// the upload's fault, and the request log has it) and returns err.
func (m *ModelsAPI) refused(ctx context.Context, t access.Target, version string, err error) error {
	var he *httpapi.HTTPError
	if !errors.As(err, &he) || he.Status >= 500 {
		return err
	}
	outcome := audit.OutcomeFailure
	if he.Status == http.StatusForbidden {
		outcome = audit.OutcomeDenied
	}
	if werr := m.opt.Recorder.Write(context.WithoutCancel(ctx), audit.Entry{
		Action: ActionModelOnboard, Target: modelTarget(t, version), Outcome: outcome, Reason: he.Code,
	}); werr != nil {
		return werr
	}
	return err
}

func modelTarget(t access.Target, version string) audit.Target {
	return audit.Target{Kind: auditKindModel, Domain: t.Domain, ID: t.ID + "@" + version}
}

// admit unpacks, verifies, stores and records one upload.
func (m *ModelsAPI) admit(ctx context.Context, w http.ResponseWriter, r *http.Request, t access.Target, blobDomain, version string) (store.ModelVersion, error) {
	id := t.ID
	// Refuse a taken version before reading a byte of the body.
	err := m.opt.Store.InTx(ctx, func(tx store.Tx) error {
		_, err := tx.Models().ModelVersion(ctx, id, version)
		return err
	})
	switch {
	case err == nil:
		return store.ModelVersion{}, versionExists()
	case !errors.Is(err, store.ErrNotFound):
		return store.ModelVersion{}, err
	}

	staged, err := m.opt.Artifacts.Stage(ctx, blobDomain)
	if err != nil {
		return store.ModelVersion{}, storageError(fmt.Errorf("stage upload: %w", err))
	}
	// Removes every staged file not committed, whatever happens.
	defer func() { _ = staged.Abort() }()
	man, err := modelarchive.ExtractTo(ctx, httpapi.DeadlineReader(w, r.Body, chunkTimeout), pendingSink{staged}, m.opt.StagingDir, m.opt.Limits)
	if err != nil {
		return store.ModelVersion{}, archiveError(err)
	}
	if err := modelarchive.CheckFiles(man); err != nil {
		return store.ModelVersion{}, unprocessable("refused_file", err.Error(), err)
	}
	modelFile, err := modelarchive.ModelFile(man)
	if err != nil {
		return store.ModelVersion{}, unprocessable("refused_file", err.Error(), err)
	}
	up := upload{staged: staged, man: man}

	now := m.now().UTC()
	sig, err := m.verify(ctx, up, t.Domain, blobDomain, now)
	if err != nil {
		return store.ModelVersion{}, err
	}
	meta, err := readMetadata(up, modelFile)
	if err != nil {
		return store.ModelVersion{}, err
	}

	// From the first Commit until the database commit (or rollback) the
	// blobs are referenced by nothing the database can see: refs keeps
	// other uploads' cleanups from deleting them meanwhile.
	m.refs.begin(blobDomain)
	var files []store.ModelFile
	committed := false
	defer func() {
		var drop []store.ModelFile
		if !committed {
			drop = files
		}
		m.refs.end(ctx, blobDomain, drop)
	}()
	files, err = m.store(ctx, up, sig)
	if err != nil {
		return store.ModelVersion{}, storageError(err)
	}
	v := store.ModelVersion{
		ModelID: id, Version: version, State: store.VersionActive, ModelFile: modelFile,
		Signed: sig.signed, SignerKeyID: sig.keyID, VerifiedAt: now, Metadata: string(meta),
		Files: files, CreatedBy: principalOf(r).ID, CreatedAt: now,
	}
	v.SubjectDigest = subjectDigest(files)
	if sig.signed {
		v.SubjectDigest = sig.subject
	}
	reason := "unsigned"
	if sig.signed {
		reason = "signed key=" + sig.keyID
	}
	err = m.opt.Store.InTx(ctx, func(tx store.Tx) error {
		models := tx.Models()
		if _, err := models.ModelByID(ctx, id); errors.Is(err, store.ErrNotFound) {
			if err := models.CreateModel(ctx, store.Model{ID: id, Domain: blobDomain, Title: id, CreatedBy: v.CreatedBy, CreatedAt: now}); err != nil {
				return fmt.Errorf("create model %s: %w", id, err)
			}
		} else if err != nil {
			return err
		}
		if err := models.CreateModelVersion(ctx, v); err != nil {
			return fmt.Errorf("create model version %s@%s: %w", id, version, err)
		}
		return m.opt.Recorder.Record(ctx, tx, audit.Entry{Action: ActionModelOnboard, Target: modelTarget(t, version), Reason: reason})
	})
	if err != nil {
		switch {
		case errors.Is(err, store.ErrConflict):
			return store.ModelVersion{}, versionExists()
		case errors.Is(err, store.ErrNotFound):
			// The domain was deleted since the privilege check.
			return store.ModelVersion{}, httpapi.Error(http.StatusNotFound, "not_found", "model not found", err)
		}
		return store.ModelVersion{}, err
	}
	committed = true
	return v, nil
}

func versionExists() error {
	return httpapi.Error(http.StatusConflict, "version_exists", "this model version exists already; versions are immutable", nil)
}

// pendingSink lets modelarchive write an upload's files into the artifact
// store's staging area.
type pendingSink struct{ p artifact.Pending }

func (s pendingSink) Create(name string) (modelarchive.SinkFile, error) { return s.p.Create(name) }

// upload is an extracted upload: its manifest and its staged files.
type upload struct {
	staged artifact.Pending
	man    modelarchive.Manifest
}

// open reads back the plaintext of the file at path p of the manifest.
func (u upload) open(p string) (io.ReadCloser, error) {
	// The staged name is the one before the top directory was stripped.
	return u.staged.Open(path.Join(u.man.Stripped, p))
}

func (u upload) commit(ctx context.Context, p string) (artifact.Blob, error) {
	return u.staged.Commit(ctx, path.Join(u.man.Stripped, p))
}

// archiveErrors are the modelarchive errors that are the upload's fault;
// any other (disk full, cancellation) is the server's.
var archiveErrors = []error{
	modelarchive.ErrUnsupportedArchive, modelarchive.ErrCorruptArchive, modelarchive.ErrEmptyArchive,
	modelarchive.ErrTrailingData, modelarchive.ErrInvalidName, modelarchive.ErrAbsolutePath,
	modelarchive.ErrPathTraversal, modelarchive.ErrNameTooLong, modelarchive.ErrTooDeep, modelarchive.ErrLink,
	modelarchive.ErrSpecialFile, modelarchive.ErrUnsupportedEntry, modelarchive.ErrDuplicateEntry,
	modelarchive.ErrTooManyFiles, modelarchive.ErrFileTooLarge, modelarchive.ErrTotalTooLarge,
	modelarchive.ErrCompressionRatio, modelarchive.ErrOverlappingEntries, modelarchive.ErrCodeExecutingFormat,
	modelarchive.ErrUnknownFileType,
}

func archiveError(err error) error {
	if errors.Is(err, modelarchive.ErrArchiveTooLarge) {
		return httpapi.Error(http.StatusRequestEntityTooLarge, "archive_too_large", err.Error(), err)
	}
	for _, e := range archiveErrors {
		if errors.Is(err, e) {
			return unprocessable("invalid_archive", err.Error(), err)
		}
	}
	return storageError(fmt.Errorf("extract upload: %w", err))
}

// storageError answers 507 when the disk (staging or artifact store) is
// full: the client may retry later, and the operator must act.
func storageError(err error) error {
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return httpapi.Error(http.StatusInsufficientStorage, "insufficient_storage",
			"the server has no space left to store this model; nothing was kept, retry once an operator has freed space", err)
	}
	return err
}

// signature is what verification established.
type signature struct {
	signed  bool
	keyID   string
	subject string            // the signed subject digest, hex
	digest  map[string]string // path → signed SHA-256 hex; nil when unsigned
}

// verify checks model.sig against the keys trusted for domain, or that
// the domain admits unsigned models when there is none.
func (m *ModelsAPI) verify(ctx context.Context, up upload, domain, blobDomain string, now time.Time) (signature, error) {
	man := up.man
	var keys []store.SignerKey
	var unsignedOK bool
	if err := m.opt.Store.InTx(ctx, func(tx store.Tx) error {
		var err error
		if keys, err = tx.SignerKeys().ListSignerKeys(ctx); err != nil {
			return err
		}
		allowed, err := tx.Models().UnsignedAllowed(ctx)
		unsignedOK = slices.Contains(allowed, blobDomain)
		return err
	}); err != nil {
		return signature{}, err
	}
	hasSig := slices.ContainsFunc(man.Files, func(f modelarchive.File) bool { return f.Path == modelsign.SignatureFile })
	if !hasSig {
		if !unsignedOK {
			return signature{}, unprocessable("unsigned", "this domain admits signed models only", nil)
		}
		return signature{}, nil
	}
	sig, err := readSignature(up)
	if err != nil {
		return signature{}, err
	}
	trust, err := NewTrust(keys, domain, now)
	if err != nil {
		return signature{}, err
	}
	// The digests were computed by the artifact store while the upload
	// was staged, over the bytes it stages: the files are not read again,
	// and the blobs committed are these bytes.
	res, err := modelsign.VerifyDigests(sig, trustedKeys(keys, trust), extractedFiles(man))
	switch {
	case errors.Is(err, modelsign.ErrUntrustedKey):
		return signature{}, httpapi.Error(http.StatusForbidden, "untrusted_key", err.Error(), err)
	case errors.Is(err, modelsign.ErrBadSignature), errors.Is(err, modelsign.ErrDigestMismatch),
		errors.Is(err, modelsign.ErrUnsignedOrMalformed), errors.Is(err, modelsign.ErrUnsupportedFormat):
		return signature{}, unprocessable("invalid_signature", err.Error(), err)
	case err != nil:
		return signature{}, fmt.Errorf("verify signature: %w", err)
	}
	if len(res.Ignored) > 0 {
		// Files under the signature's ignore_paths would be stored
		// unsigned next to signed ones.
		return signature{}, unprocessable("unsigned_files", fmt.Sprintf("the archive holds %d file(s) the signature does not cover", len(res.Ignored)), nil)
	}
	s := signature{signed: true, keyID: res.KeyID, subject: hex.EncodeToString(res.SubjectDigest[:]), digest: make(map[string]string, len(res.Files))}
	for _, f := range res.Files {
		s.digest[f.Name] = f.DigestHex()
	}
	return s, nil
}

// extractedFiles are the files of an extraction with the digests
// computed while writing them.
func extractedFiles(man modelarchive.Manifest) []modelsign.File {
	files := make([]modelsign.File, 0, len(man.Files))
	for _, f := range man.Files {
		files = append(files, modelsign.File{Name: f.Path, Digest: f.SHA256, Size: f.Size})
	}
	return files
}

func readSignature(up upload) ([]byte, error) {
	f, err := up.open(modelsign.SignatureFile)
	if err != nil {
		return nil, fmt.Errorf("open signature: %w", err)
	}
	defer f.Close()
	sig, err := io.ReadAll(io.LimitReader(f, modelsign.MaxBundleSize+1))
	if err != nil {
		return nil, fmt.Errorf("read signature: %w", err)
	}
	if len(sig) > modelsign.MaxBundleSize {
		return nil, unprocessable("invalid_signature", fmt.Sprintf("model.sig is larger than %d bytes", modelsign.MaxBundleSize), nil)
	}
	return sig, nil
}

// trustedKeys resolves a bundle's hint to a registered key, and answers
// ErrUntrustedKey, with trust's reason, when that key may not sign the
// model.
func trustedKeys(keys []store.SignerKey, trust *Trust) modelsign.TrustedKeys {
	return func(hint string) (crypto.PublicKey, error) {
		for _, k := range keys {
			pub, err := modelsign.ParsePublicKeyPEM([]byte(k.PublicKey))
			if err != nil {
				continue // not a key this server registered; never trusted
			}
			hints, err := modelsign.KeyHints(pub)
			if err != nil || !slices.Contains(hints, hint) {
				continue
			}
			if _, err := trust.Key(k.ID); err != nil {
				return nil, fmt.Errorf("%w: %w", modelsign.ErrUntrustedKey, err)
			}
			return pub, nil
		}
		return nil, fmt.Errorf("%w: %w", modelsign.ErrUntrustedKey, ErrKeyUnknown)
	}
}

// readMetadata reads the ONNX metadata of the model file and checks that
// every external-data file it names is among the files.
func readMetadata(up upload, modelFile string) ([]byte, error) {
	man := up.man
	f, err := up.open(modelFile)
	if err != nil {
		return nil, fmt.Errorf("open model file: %w", err)
	}
	defer f.Close()
	var size int64
	for _, mf := range man.Files {
		if mf.Path == modelFile {
			size = mf.Size
		}
	}
	meta, err := onnxmeta.Read(f, size)
	switch {
	case errors.Is(err, onnxmeta.ErrNotONNX), errors.Is(err, onnxmeta.ErrMalformed), errors.Is(err, onnxmeta.ErrLimit):
		return nil, unprocessable("invalid_onnx", err.Error(), err)
	case err != nil:
		return nil, fmt.Errorf("read ONNX metadata: %w", err)
	}
	for _, loc := range meta.ExternalData {
		// Locations are relative to the model file's directory.
		p := path.Join(path.Dir(modelFile), loc)
		if path.IsAbs(loc) || !slices.ContainsFunc(man.Files, func(f modelarchive.File) bool { return f.Path == p }) {
			return nil, unprocessable("missing_external_data", fmt.Sprintf("the model's external data %q is not a file of the model directory", loc), nil)
		}
	}
	b, err := json.Marshal(meta)
	if err != nil {
		return nil, fmt.Errorf("encode ONNX metadata: %w", err)
	}
	return b, nil
}

// store commits every staged file as a blob and checks that what was
// committed is what was signed. It returns the files committed, also on
// failure, for the caller to drop.
func (m *ModelsAPI) store(ctx context.Context, up upload, sig signature) ([]store.ModelFile, error) {
	var files []store.ModelFile
	for _, mf := range up.man.Files {
		// The digests were verified as the store computed them; this
		// check, before anything is committed, keeps it so whatever
		// changes elsewhere.
		want, signed := sig.digest[mf.Path]
		if sig.signed && mf.Path != modelsign.SignatureFile && (!signed || want != hex.EncodeToString(mf.SHA256[:])) {
			return files, fmt.Errorf("staged %s has digest %x, signed %s: %w", mf.Path, mf.SHA256, want, modelsign.ErrDigestMismatch)
		}
	}
	for _, mf := range up.man.Files {
		b, err := up.commit(ctx, mf.Path)
		if err != nil {
			return files, fmt.Errorf("store %s: %w", mf.Path, err)
		}
		files = append(files, store.ModelFile{Path: mf.Path, Size: b.Size, Digest: b.Digest})
		if b.Digest != hex.EncodeToString(mf.SHA256[:]) {
			// The Pending committed bytes other than those staged.
			return files, fmt.Errorf("stored %s has digest %s, staged %x: %w", mf.Path, b.Digest, mf.SHA256, modelsign.ErrDigestMismatch)
		}
	}
	return files, nil
}

// dropIfUnreferenced deletes a blob no version references, best effort:
// a blob left behind is garbage, not a leak of trust. Only blobRefs calls
// it, at a moment no upload of the domain holds an uncommitted blob.
func (m *ModelsAPI) dropIfUnreferenced(ctx context.Context, blobDomain, digest string) {
	var n int
	if err := m.opt.Store.InTx(ctx, func(tx store.Tx) error {
		var err error
		n, err = tx.Models().CountFilesWithDigest(ctx, blobDomain, digest)
		return err
	}); err != nil || n > 0 {
		return
	}
	_ = m.opt.Artifacts.Delete(ctx, blobDomain, digest)
}

// subjectDigest is the OMS subject digest of the signed files (model.sig
// excepted), in manifest order.
func subjectDigest(files []store.ModelFile) string {
	var man modelsign.Manifest
	for _, f := range files {
		if f.Path == modelsign.SignatureFile {
			continue
		}
		var d [32]byte
		if _, err := hex.Decode(d[:], []byte(f.Digest)); err != nil {
			continue // the artifact store returns hex digests only
		}
		man.Files = append(man.Files, modelsign.File{Name: f.Path, Digest: d})
	}
	sum := man.SubjectDigest()
	return hex.EncodeToString(sum[:])
}
