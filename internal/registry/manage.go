package registry

// This file is the management of registered models: show, update and
// delete a model; delete, download and describe (ML-BOM) a version.
// Reads need `read` on the model's domain, changes need `all`; every
// change is committed with its audit record in one transaction.

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/rampart-ml/rampart/internal/access"
	"github.com/rampart-ml/rampart/internal/artifact"
	"github.com/rampart-ml/rampart/internal/audit"
	"github.com/rampart-ml/rampart/internal/httpapi"
	"github.com/rampart-ml/rampart/internal/store"
	"github.com/rampart-ml/rampart/internal/version"
)

// Audit actions of model management.
const (
	ActionModelUpdate   = "model.update"
	ActionModelDelete   = "model.delete" // a model, or one version (target id@version)
	ActionModelDownload = "model.download"
)

// Bounds of the editable model metadata, in characters.
const (
	MaxTitleLength       = 200
	MaxDescriptionLength = 4096
)

const (
	// SBOMContentType is the media type of GET .../sbom.
	SBOMContentType = "application/vnd.cyclonedx+json; version=1.6"
	// downloadChunk is the copy buffer of a download; the write deadline
	// is pushed back before each chunk.
	downloadChunk = 256 << 10
	// chunkTimeout is how long one chunk of an upload or a download may
	// take: the server's ReadTimeout and WriteTimeout bound a whole
	// request, which would cut a large model, so transfers set their own
	// deadline per chunk.
	chunkTimeout = 60 * time.Second
)

// ModelDetail is the wire form of GET /api/v1/models/{id}: the model and
// its versions (without their files) in creation order.
type ModelDetail struct {
	Model
	Versions []ModelVersion `json:"versions"`
}

// UpdateModelRequest is the body of PATCH /api/v1/models/{id}; an absent
// field is left as it is.
type UpdateModelRequest struct {
	Title       *string `json:"title,omitempty"`
	Description *string `json:"description,omitempty"`
}

func modelView(m store.Model) Model {
	return Model{ID: m.ID, Domain: m.Domain, Title: m.Title, Description: m.Description, CreatedAt: m.CreatedAt}
}

// notFound is the answer for a model or version that does not exist; the
// same as for one the caller may not read (authz.Require).
func notFound(what string) error {
	return httpapi.Error(http.StatusNotFound, "not_found", what+" not found", nil)
}

// require checks the caller's privilege on model id and returns its
// target and blob domain.
func (m *ModelsAPI) require(r *http.Request, id string, priv access.Privilege) (access.Target, string, error) {
	t, blobDomain, err := target(id)
	if err != nil {
		return access.Target{}, "", err
	}
	if err := m.opt.Authz.Require(r.Context(), principalOf(r), t, priv); err != nil {
		return access.Target{}, "", err
	}
	return t, blobDomain, nil
}

func (m *ModelsAPI) getModel(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	if _, _, err := m.require(r, id, access.Read); err != nil {
		return err
	}
	ctx := r.Context()
	var (
		mod      store.Model
		versions []store.ModelVersion
	)
	err := m.opt.Store.InTx(ctx, func(tx store.Tx) error {
		var err error
		if mod, err = tx.Models().ModelByID(ctx, id); err != nil {
			return err
		}
		versions, err = tx.Models().ListModelVersions(ctx, id)
		return err
	})
	switch {
	case errors.Is(err, store.ErrNotFound):
		return notFound("model")
	case err != nil:
		return fmt.Errorf("load model %s: %w", id, err)
	}
	out := ModelDetail{Model: modelView(mod), Versions: []ModelVersion{}}
	for _, v := range versions {
		out.Versions = append(out.Versions, versionView(v))
	}
	httpapi.WriteJSON(w, http.StatusOK, out)
	return nil
}

func (m *ModelsAPI) updateModel(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	t, _, err := m.require(r, id, access.All)
	if err != nil {
		return err
	}
	if m.opt.Recorder == nil {
		return errNoRecorder
	}
	var in UpdateModelRequest
	if err := httpapi.DecodeJSON(r, &in); err != nil {
		return err
	}
	if err := in.validate(); err != nil {
		return err
	}
	ctx := r.Context()
	var mod store.Model
	err = m.opt.Store.InTx(ctx, func(tx store.Tx) error {
		var err error
		if mod, err = tx.Models().ModelByID(ctx, id); err != nil {
			return err
		}
		var changed []string
		if in.Title != nil {
			mod.Title, changed = *in.Title, append(changed, "title")
		}
		if in.Description != nil {
			mod.Description, changed = *in.Description, append(changed, "description")
		}
		if err := tx.Models().UpdateModel(ctx, mod); err != nil {
			return err
		}
		// The reason names the fields, never their text: a description is
		// the caller's free text.
		return m.opt.Recorder.Record(ctx, tx, audit.Entry{Action: ActionModelUpdate,
			Target: audit.Target{Kind: auditKindModel, Domain: t.Domain, ID: id}, Reason: strings.Join(changed, ",")})
	})
	switch {
	case errors.Is(err, store.ErrNotFound):
		return notFound("model")
	case err != nil:
		return fmt.Errorf("update model %s: %w", id, err)
	}
	httpapi.WriteJSON(w, http.StatusOK, modelView(mod))
	return nil
}

// validate reports every problem of the request at once.
func (in UpdateModelRequest) validate() error {
	if in.Title == nil && in.Description == nil {
		return unprocessable("invalid_model", "nothing to change: give title and/or description", nil)
	}
	var problems []string
	if in.Title != nil {
		if p := checkText(*in.Title, MaxTitleLength, false); p != "" {
			problems = append(problems, "title "+p)
		} else if strings.TrimSpace(*in.Title) == "" {
			problems = append(problems, "title must not be empty")
		}
	}
	if in.Description != nil {
		if p := checkText(*in.Description, MaxDescriptionLength, true); p != "" {
			problems = append(problems, "description "+p)
		}
	}
	if len(problems) > 0 {
		return unprocessable("invalid_model", strings.Join(problems, "; "), nil)
	}
	return nil
}

// checkText describes what is wrong with s, or returns "". Control
// characters are refused (line breaks and tabs only in multi-line text),
// and so are the Unicode bidirectional controls, which make a text read
// differently from what it is (CVE-2021-42574, "Trojan Source").
func checkText(s string, maxLen int, multiLine bool) string {
	if !utf8.ValidString(s) {
		return "is not valid UTF-8"
	}
	if n := utf8.RuneCountInString(s); n > maxLen {
		return fmt.Sprintf("is %d characters long, at most %d allowed", n, maxLen)
	}
	for _, c := range s {
		if multiLine && (c == '\n' || c == '\t') {
			continue
		}
		if unicode.IsControl(c) || isBidiControl(c) {
			return fmt.Sprintf("must not contain control characters (found U+%04X)", c)
		}
	}
	return ""
}

func isBidiControl(c rune) bool {
	return (c >= 0x202A && c <= 0x202E) || (c >= 0x2066 && c <= 0x2069) || c == 0x200E || c == 0x200F || c == 0x061C
}

func (m *ModelsAPI) deleteModel(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	t, _, err := m.require(r, id, access.All)
	if err != nil {
		return err
	}
	if m.opt.Recorder == nil {
		return errNoRecorder
	}
	ctx := r.Context()
	err = m.opt.Store.InTx(ctx, func(tx store.Tx) error {
		if err := tx.Models().DeleteModel(ctx, id); err != nil {
			return err
		}
		return m.opt.Recorder.Record(ctx, tx, audit.Entry{Action: ActionModelDelete,
			Target: audit.Target{Kind: auditKindModel, Domain: t.Domain, ID: id}})
	})
	switch {
	case errors.Is(err, store.ErrNotFound):
		return notFound("model")
	case errors.Is(err, store.ErrConflict):
		return httpapi.Error(http.StatusConflict, "model_has_versions", "the model still has versions; delete them first", err)
	case err != nil:
		return fmt.Errorf("delete model %s: %w", id, err)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (m *ModelsAPI) deleteVersion(w http.ResponseWriter, r *http.Request) error {
	id, ver := r.PathValue("id"), r.PathValue("version")
	t, blobDomain, err := m.require(r, id, access.All)
	if err != nil {
		return err
	}
	if m.opt.Recorder == nil {
		return errNoRecorder
	}
	ctx := r.Context()
	var files []store.ModelFile
	err = m.opt.Store.InTx(ctx, func(tx store.Tx) error {
		v, err := tx.Models().ModelVersion(ctx, id, ver)
		if err != nil {
			return err
		}
		files = v.Files
		if err := tx.Models().DeleteModelVersion(ctx, id, ver); err != nil {
			return err
		}
		return m.opt.Recorder.Record(ctx, tx, audit.Entry{Action: ActionModelDelete, Target: modelTarget(t, ver)})
	})
	switch {
	case errors.Is(err, store.ErrNotFound):
		return notFound("model version")
	case errors.Is(err, store.ErrConflict):
		// A model service references the version (a RESTRICT foreign key).
		return httpapi.Error(http.StatusConflict, "version_in_use", "a model service uses this version; delete or change the service first", err)
	case err != nil:
		return fmt.Errorf("delete model version %s@%s: %w", id, ver, err)
	}
	// After the commit, through blobRefs: a blob still referenced by
	// another version stays, and one an upload in progress has stored but
	// not yet committed is deleted only once that upload has ended.
	m.refs.begin(blobDomain)
	m.refs.end(ctx, blobDomain, files)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// loadVersion reads the model and one version of it after a read check.
func (m *ModelsAPI) loadVersion(r *http.Request) (access.Target, string, store.Model, store.ModelVersion, error) {
	id, ver := r.PathValue("id"), r.PathValue("version")
	t, blobDomain, err := m.require(r, id, access.Read)
	if err != nil {
		return access.Target{}, "", store.Model{}, store.ModelVersion{}, err
	}
	ctx := r.Context()
	var (
		mod store.Model
		v   store.ModelVersion
	)
	err = m.opt.Store.InTx(ctx, func(tx store.Tx) error {
		var err error
		if mod, err = tx.Models().ModelByID(ctx, id); err != nil {
			return err
		}
		v, err = tx.Models().ModelVersion(ctx, id, ver)
		return err
	})
	switch {
	case errors.Is(err, store.ErrNotFound):
		return access.Target{}, "", store.Model{}, store.ModelVersion{}, notFound("model version")
	case err != nil:
		return access.Target{}, "", store.Model{}, store.ModelVersion{}, fmt.Errorf("load model version %s@%s: %w", id, ver, err)
	}
	return t, blobDomain, mod, v, nil
}

func (m *ModelsAPI) sbom(w http.ResponseWriter, r *http.Request) error {
	_, _, mod, v, err := m.loadVersion(r)
	if err != nil {
		return err
	}
	card, err := CardFromMetadataJSON(v.Metadata)
	if err != nil {
		return fmt.Errorf("ML-BOM of %s@%s: %w", v.ModelID, v.Version, err)
	}
	// OnboardedBy is the account id (an opaque id, never a name).
	bom, err := BuildSBOM(SBOMInput{Model: mod, Version: v, Card: card, OnboardedBy: v.CreatedBy, Tool: version.Version})
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", SBOMContentType)
	w.WriteHeader(http.StatusOK)
	return EncodeSBOM(bom, w)
}

// download streams the version's directory as a tar. The audit record is
// written before the first byte; a blob that fails its digest check
// aborts the response mid-stream (the client sees a broken download, never
// a complete tar with bad bytes) and quarantines the version.
func (m *ModelsAPI) download(w http.ResponseWriter, r *http.Request) error {
	t, blobDomain, _, v, err := m.loadVersion(r)
	if err != nil {
		return err
	}
	if m.opt.Recorder == nil {
		return errNoRecorder
	}
	if v.State == store.VersionQuarantined {
		return httpapi.Error(http.StatusConflict, "quarantined", "this version is quarantined: its stored bytes no longer matched their digests", nil)
	}
	ctx := r.Context()
	if err := m.opt.Recorder.Write(ctx, audit.Entry{Action: ActionModelDownload, Target: modelTarget(t, v.Version)}); err != nil {
		return err
	}
	files := slices.Clone(v.Files)
	slices.SortFunc(files, func(a, b store.ModelFile) int { return strings.Compare(a.Path, b.Path) })

	h := w.Header()
	h.Set("Content-Type", "application/x-tar")
	h.Set("Content-Disposition", fmt.Sprintf(`attachment; filename="%s-%s.tar"`, v.ModelID, v.Version))
	w.WriteHeader(http.StatusOK)
	err = writeTar(ctx, httpapi.DeadlineWriter(w, chunkTimeout), m.opt.Artifacts, blobDomain, v.CreatedAt, files)
	if err == nil {
		return nil
	}
	if errors.Is(err, artifact.ErrCorrupt) {
		m.quarantine(ctx, t, v, err)
	}
	// The status line is sent: the only honest way left to say "failed" is
	// to cut the response short, which net/http does for this panic.
	panic(http.ErrAbortHandler)
}

// writeTar writes files as a deterministic tar: regular files only, mode
// 0644, no owner, every mtime the version's creation time.
func writeTar(ctx context.Context, w io.Writer, arts artifact.Store, blobDomain string, mtime time.Time, files []store.ModelFile) error {
	tw := tar.NewWriter(w)
	buf := make([]byte, downloadChunk)
	mtime = mtime.UTC().Truncate(time.Second)
	for _, f := range files {
		hdr := &tar.Header{Typeflag: tar.TypeReg, Name: f.Path, Size: f.Size, Mode: 0o644, ModTime: mtime}
		if err := tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("tar header of %s: %w", f.Path, err)
		}
		if err := copyBlob(ctx, tw, arts, blobDomain, f, buf); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("finish tar: %w", err)
	}
	return nil
}

// copyBlob copies exactly the recorded size of one blob, then reads it to
// EOF, where the artifact store checks the digest: a blob longer, shorter
// or other than recorded is ErrCorrupt, and no byte beyond the recorded
// size reaches the client.
func copyBlob(ctx context.Context, w io.Writer, arts artifact.Store, blobDomain string, f store.ModelFile, buf []byte) error {
	rd, err := arts.Open(ctx, blobDomain, f.Digest)
	if err != nil {
		return fmt.Errorf("open blob of %s: %w", f.Path, err)
	}
	defer rd.Close()
	n, err := io.CopyBuffer(w, io.LimitReader(rd, f.Size), buf)
	if err != nil {
		return fmt.Errorf("copy %s: %w", f.Path, err)
	}
	extra, err := io.CopyBuffer(io.Discard, rd, buf)
	switch {
	case err != nil:
		return fmt.Errorf("copy %s: %w", f.Path, err)
	case n != f.Size || extra != 0:
		return fmt.Errorf("%s: blob has %d bytes, %d recorded: %w", f.Path, n+extra, f.Size, artifact.ErrCorrupt)
	}
	return nil
}

// quarantine marks v quarantined with its audit record. The response is
// aborted whatever happens, so a failure here can only be logged.
func (m *ModelsAPI) quarantine(ctx context.Context, t access.Target, v store.ModelVersion, cause error) {
	ctx = context.WithoutCancel(ctx)
	const reason = "digest_mismatch"
	slog.ErrorContext(ctx, "model version failed its digest check; quarantining it",
		slog.String("model", v.ModelID), slog.String("version", v.Version), slog.String("error", cause.Error()))
	err := quarantineVersion(ctx, m.opt.Store, m.opt.Recorder, t, v.Version, reason, reason, nil)
	if err != nil {
		slog.ErrorContext(ctx, "quarantine failed", slog.String("model", v.ModelID), slog.String("version", v.Version),
			slog.String("error", err.Error()))
	}
}
