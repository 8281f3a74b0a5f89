package registry_test

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/rampart-ml/rampart/internal/app/apptest"
	"github.com/rampart-ml/rampart/internal/config"
	"github.com/rampart-ml/rampart/internal/datadir"
	"github.com/rampart-ml/rampart/internal/modelarchive"
	"github.com/rampart-ml/rampart/internal/modelsign"
	"github.com/rampart-ml/rampart/internal/registry"
	"github.com/rampart-ml/rampart/internal/store"
)

// grantRead gives the account behind token the read privilege on domain.
func grantRead(t *testing.T, s *apptest.Server, admin, token, domain string) {
	t.Helper()
	me := apptest.Decode[struct {
		ID string `json:"id"`
	}](t, s.Do(t, "GET", "/api/v1/me", token, nil), http.StatusOK)
	apptest.WantStatus(t, s.Do(t, "POST", "/api/v1/grants", admin, map[string]string{
		"subject_kind": "user", "subject_id": me.ID, "domain": domain, "privilege": "read",
	}), http.StatusCreated)
}

// get sends an authenticated GET and returns the response, whose body
// read error (a download cut short) is returned too.
func get(t *testing.T, s *apptest.Server, token, path string) (apptest.Response, error) {
	t.Helper()
	req, err := http.NewRequest("GET", s.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := s.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return apptest.Response{StatusCode: res.StatusCode, Header: res.Header, Body: b}, err
}

// checkTar checks the headers of a download and returns its files.
func checkTar(t *testing.T, data []byte, mtime time.Time) map[string][]byte {
	t.Helper()
	got := map[string][]byte{}
	tr := tar.NewReader(bytes.NewReader(data))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Typeflag != tar.TypeReg || h.Mode != 0o644 || h.Uname != "" || h.Gname != "" || h.Uid != 0 || h.Gid != 0 ||
			!h.ModTime.Equal(mtime.Truncate(time.Second)) {
			t.Errorf("header %+v: want a regular file, mode 0644, no owner, mtime %v", h, mtime)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		got[h.Name] = b
	}
	return got
}

// One server for the whole story: starting one is the slow part.
func TestManageModels(t *testing.T) {
	t.Parallel()
	s, admin := startWithAdmin(t)
	apptest.WantStatus(t, s.Do(t, "POST", "/api/v1/domains", admin, map[string]string{"name": "com.acme"}), http.StatusCreated)
	key := signingKey(t)
	apptest.WantStatus(t, s.Do(t, "POST", "/api/v1/signer-keys", admin,
		map[string]string{"domain": "com.acme", "public_key": publicPEM(t, key.Public())}), http.StatusCreated)
	const id = "com.acme.ocr-cls"
	files := modelDir(t, key, nil)
	v1 := apptest.Decode[registry.ModelVersion](t, upload(t, s, admin, id, "1.0", tarOf(t, files)), http.StatusCreated)
	// 2.0 shares every blob of 1.0 but its README.
	files2 := modelDir(t, key, map[string]string{"README.md": "version two\n"})
	apptest.Decode[registry.ModelVersion](t, upload(t, s, admin, id, "2.0", tarOf(t, files2)), http.StatusCreated)

	reader := newUser(t, s, admin, "reader")
	grantRead(t, s, admin, reader, "com.acme")
	stranger := newUser(t, s, admin, "stranger")

	// ---- show ----
	detail := apptest.Decode[registry.ModelDetail](t, s.Do(t, "GET", "/api/v1/models/"+id, reader, nil), http.StatusOK)
	var versions []string
	for _, v := range detail.Versions {
		versions = append(versions, v.Version)
	}
	if detail.ID != id || detail.Domain != "com.acme" || !cmp.Equal(versions, []string{"1.0", "2.0"}) {
		t.Errorf("GET model = %+v, versions %v", detail, versions)
	}

	// ---- who may do what ----
	for _, tc := range []struct {
		name, method, path, token string
		body                      any
		status                    int
	}{
		{"stranger shows", "GET", "/api/v1/models/" + id, stranger, nil, http.StatusNotFound},
		{"stranger downloads", "GET", "/api/v1/models/" + id + "/versions/1.0/download", stranger, nil, http.StatusNotFound},
		{"stranger sbom", "GET", "/api/v1/models/" + id + "/versions/1.0/sbom", stranger, nil, http.StatusNotFound},
		{"stranger deletes", "DELETE", "/api/v1/models/" + id + "/versions/1.0", stranger, nil, http.StatusNotFound},
		{"reader updates", "PATCH", "/api/v1/models/" + id, reader, map[string]string{"title": "x"}, http.StatusForbidden},
		{"reader deletes model", "DELETE", "/api/v1/models/" + id, reader, nil, http.StatusForbidden},
		{"reader deletes version", "DELETE", "/api/v1/models/" + id + "/versions/1.0", reader, nil, http.StatusForbidden},
		{"unknown model", "GET", "/api/v1/models/com.acme.nothing", admin, nil, http.StatusNotFound},
		{"unknown version", "GET", "/api/v1/models/" + id + "/versions/9/download", admin, nil, http.StatusNotFound},
		{"invalid id", "GET", "/api/v1/models/Com..x", admin, nil, http.StatusBadRequest},
		{"model with versions", "DELETE", "/api/v1/models/" + id, admin, nil, http.StatusConflict},
	} {
		t.Run(tc.name, func(t *testing.T) {
			apptest.WantStatus(t, s.Do(t, tc.method, tc.path, tc.token, tc.body), tc.status)
		})
	}
	apptest.WantError(t, s.Do(t, "DELETE", "/api/v1/models/"+id, admin, nil), http.StatusConflict, "model_has_versions")

	// ---- update ----
	for _, tc := range []struct {
		name string
		body any
	}{
		{"nothing", map[string]string{}},
		{"control character", map[string]string{"title": "a\x1bb"}},
		{"newline in title", map[string]string{"title": "a\nb"}},
		{"bidi override", map[string]string{"description": "abc\u202edef"}},
		{"blank title", map[string]string{"title": "  "}},
		{"title too long", map[string]string{"title": strings.Repeat("é", registry.MaxTitleLength+1)}},
		{"description too long", map[string]string{"description": strings.Repeat("x", registry.MaxDescriptionLength+1)}},
	} {
		t.Run("update "+tc.name, func(t *testing.T) {
			apptest.WantError(t, s.Do(t, "PATCH", "/api/v1/models/"+id, admin, tc.body), http.StatusUnprocessableEntity, "invalid_model")
		})
	}
	upd := apptest.Decode[registry.Model](t, s.Do(t, "PATCH", "/api/v1/models/"+id, admin,
		map[string]string{"title": "OCR direction classifier", "description": "Line one.\nLine two."}), http.StatusOK)
	if upd.Title != "OCR direction classifier" || upd.Description != "Line one.\nLine two." {
		t.Errorf("updated = %+v", upd)
	}
	upd = apptest.Decode[registry.Model](t, s.Do(t, "PATCH", "/api/v1/models/"+id, admin, map[string]string{"title": "OCR"}), http.StatusOK)
	if upd.Title != "OCR" || upd.Description != "Line one.\nLine two." {
		t.Errorf("a title-only update changed the description: %+v", upd)
	}

	// ---- sbom ----
	res, err := get(t, s, reader, "/api/v1/models/"+id+"/versions/1.0/sbom")
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("sbom: %d %v %s", res.StatusCode, err, res.Body)
	}
	if ct := res.Header.Get("Content-Type"); ct != registry.SBOMContentType {
		t.Errorf("sbom Content-Type %q", ct)
	}
	var bom struct {
		BOMFormat   string `json:"bomFormat"`
		SpecVersion string `json:"specVersion"`
		Metadata    struct {
			Component struct{ Type, Name, Version string } `json:"component"`
		} `json:"metadata"`
	}
	if err := json.Unmarshal(res.Body, &bom); err != nil {
		t.Fatal(err)
	}
	if bom.BOMFormat != "CycloneDX" || bom.SpecVersion != "1.6" || bom.Metadata.Component.Name != id ||
		bom.Metadata.Component.Version != "1.0" || bom.Metadata.Component.Type != "machine-learning-model" {
		t.Errorf("sbom = %+v", bom)
	}

	// ---- download, extract, verify ----
	res, err = get(t, s, reader, "/api/v1/models/"+id+"/versions/1.0/download")
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("download: %d %v %s", res.StatusCode, err, res.Body)
	}
	if cd := res.Header.Get("Content-Disposition"); cd != `attachment; filename="com.acme.ocr-cls-1.0.tar"` {
		t.Errorf("Content-Disposition %q", cd)
	}
	if diff := cmp.Diff(files, checkTar(t, res.Body, v1.CreatedAt)); diff != "" {
		t.Errorf("downloaded files differ (-onboarded +downloaded):\n%s", diff)
	}
	again, _ := get(t, s, reader, "/api/v1/models/"+id+"/versions/1.0/download")
	if !bytes.Equal(again.Body, res.Body) {
		t.Error("two downloads of one version differ")
	}
	dir := filepath.Join(t.TempDir(), "model")
	if _, err := modelarchive.Extract(context.Background(), bytes.NewReader(res.Body), dir, modelarchive.DefaultLimits()); err != nil {
		t.Fatal(err)
	}
	keys, err := modelsign.KeySet(crypto.PublicKey(key.Public()))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := modelsign.Verify(dir, files[modelsign.SignatureFile], keys); err != nil {
		t.Errorf("the downloaded directory does not verify: %v", err)
	}

	// ---- delete a version: shared blobs stay, its own go ----
	readme1 := blobPath(t, s, fileDigest(v1, "README.md"))
	onnx := blobPath(t, s, fileDigest(v1, "model.onnx"))
	apptest.WantStatus(t, s.Do(t, "DELETE", "/api/v1/models/"+id+"/versions/1.0", admin, nil), http.StatusNoContent)
	apptest.WantStatus(t, s.Do(t, "DELETE", "/api/v1/models/"+id+"/versions/1.0", admin, nil), http.StatusNotFound)
	if _, err := os.Stat(readme1); !os.IsNotExist(err) {
		t.Errorf("the blob only 1.0 used is still there: %v", err)
	}
	if _, err := os.Stat(onnx); err != nil {
		t.Errorf("the blob 2.0 uses was deleted: %v", err)
	}

	// ---- a tampered blob: download aborted, version quarantined ----
	enc, err := os.ReadFile(onnx)
	if err != nil {
		t.Fatal(err)
	}
	enc[len(enc)/2] ^= 0xff
	if err := os.WriteFile(onnx, enc, 0o600); err != nil {
		t.Fatal(err)
	}
	res, err = get(t, s, reader, "/api/v1/models/"+id+"/versions/2.0/download")
	if err == nil {
		t.Errorf("the download of a tampered version completed (status %d, %d bytes)", res.StatusCode, len(res.Body))
	}
	v2 := apptest.Decode[registry.ModelVersion](t, s.Do(t, "GET", "/api/v1/models/"+id+"/versions/2.0", admin, nil), http.StatusOK)
	if v2.State != store.VersionQuarantined {
		t.Errorf("state after a failed digest check = %q", v2.State)
	}
	apptest.WantError(t, s.Do(t, "GET", "/api/v1/models/"+id+"/versions/2.0/download", admin, nil), http.StatusConflict, "quarantined")

	// ---- delete the rest ----
	apptest.WantStatus(t, s.Do(t, "DELETE", "/api/v1/models/"+id+"/versions/2.0", admin, nil), http.StatusNoContent)
	apptest.WantStatus(t, s.Do(t, "DELETE", "/api/v1/models/"+id, admin, nil), http.StatusNoContent)
	apptest.WantStatus(t, s.Do(t, "GET", "/api/v1/models/"+id, admin, nil), http.StatusNotFound)

	// ---- the audit log ----
	type rec struct{ Action, Outcome, ID, Reason string }
	got := map[rec]int{}
	for _, r := range s.AuditRecords(t, store.AuditQuery{}) {
		if strings.HasPrefix(r.Action, "model.") && r.Action != registry.ActionModelOnboard {
			got[rec{r.Action, r.Outcome, r.TargetID, r.Reason}]++
		}
	}
	want := map[rec]int{
		{registry.ActionModelUpdate, "success", id, "title,description"}:            1,
		{registry.ActionModelUpdate, "success", id, "title"}:                        1,
		{registry.ActionModelDownload, "success", id + "@1.0", ""}:                  2,
		{registry.ActionModelDownload, "success", id + "@2.0", ""}:                  1,
		{registry.ActionModelQuarantine, "failure", id + "@2.0", "digest_mismatch"}: 1,
		{registry.ActionModelDelete, "success", id + "@1.0", ""}:                    1,
		{registry.ActionModelDelete, "success", id + "@2.0", ""}:                    1,
		{registry.ActionModelDelete, "success", id, ""}:                             1,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("audit records (-want +got):\n%s", diff)
	}
}

func fileDigest(v registry.ModelVersion, path string) string {
	for _, f := range v.Files {
		if f.Path == path {
			return f.Digest
		}
	}
	return ""
}

// TestTransfersOutliveServerTimeouts: an upload that stalls for longer
// than the server's ReadTimeout and WriteTimeout, and a download that
// takes longer than its WriteTimeout (a client reading slowly), still
// complete, because the deadlines are pushed back per chunk. The wait is the point of the
// test: it must outlast the WriteTimeout.
func TestTransfersOutliveServerTimeouts(t *testing.T) {
	t.Parallel()
	const writeTimeout = 4 * time.Second
	s := apptest.Start(t, apptest.FastHashing, func(c *config.Config) {
		c.HTTP.WriteTimeout, c.HTTP.ReadTimeout, c.HTTP.ReadHeaderTimeout = writeTimeout, writeTimeout, time.Second
	})
	t.Cleanup(s.Client.CloseIdleConnections)
	tok := s.Login(t, "admin", s.AdminPassword).AccessToken
	apptest.WantStatus(t, s.Do(t, "POST", "/api/v1/me/password", tok,
		map[string]string{"current_password": s.AdminPassword, "new_password": adminPassword}), http.StatusNoContent)
	admin := s.Login(t, "admin", adminPassword).AccessToken
	apptest.WantStatus(t, s.Do(t, "POST", "/api/v1/domains", admin, map[string]string{"name": "com.acme"}), http.StatusCreated)
	key := signingKey(t)
	apptest.WantStatus(t, s.Do(t, "POST", "/api/v1/signer-keys", admin,
		map[string]string{"domain": "com.acme", "public_key": publicPEM(t, key.Public())}), http.StatusCreated)
	// Larger than what socket buffers hold, so the server must wait for
	// the client.
	files := modelDir(t, key, map[string]string{"labels.txt": strings.Repeat("a label\n", 3<<20)})
	// The upload stalls for longer than the server's ReadTimeout half-way.
	body := tarOf(t, files)
	upReq, err := http.NewRequest("PUT", s.URL+"/api/v1/models/com.acme.big/versions/1",
		io.MultiReader(bytes.NewReader(body[:len(body)/2]), &stall{d: writeTimeout + time.Second}, bytes.NewReader(body[len(body)/2:])))
	if err != nil {
		t.Fatal(err)
	}
	upReq.Header.Set("Authorization", "Bearer "+admin)
	upReq.Header.Set("Content-Type", "application/x-tar")
	upRes, err := s.Client.Do(upReq)
	if err != nil {
		t.Fatalf("the upload was cut after the server's ReadTimeout: %v", err)
	}
	b, _ := io.ReadAll(upRes.Body)
	upRes.Body.Close()
	v := apptest.Decode[registry.ModelVersion](t, apptest.Response{StatusCode: upRes.StatusCode, Body: b}, http.StatusCreated)

	req, err := http.NewRequest("GET", s.URL+"/api/v1/models/com.acme.big/versions/1/download", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+admin)
	res, err := s.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	head := make([]byte, 64<<10)
	if _, err := io.ReadFull(res.Body, head); err != nil {
		t.Fatal(err)
	}
	time.Sleep(writeTimeout + time.Second)
	rest, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("the download was cut after the server's WriteTimeout: %v", err)
	}
	if got := checkTar(t, append(head, rest...), v.CreatedAt); len(got["labels.txt"]) != 3<<20*len("a label\n") {
		t.Errorf("labels.txt has %d bytes", len(got["labels.txt"]))
	}
}

// stall is a reader that waits d once, then reports EOF.
type stall struct {
	d    time.Duration
	done bool
}

func (s *stall) Read([]byte) (int, error) {
	if !s.done {
		s.done = true
		time.Sleep(s.d)
	}
	return 0, io.EOF
}

// TestDomainDeletionShredsArtefacts: a deployed version cannot be deleted
// (409 version_in_use); once a domain's last model is gone
// and the domain is deleted, its data key and any blob left are deleted,
// so nothing stored for it can be decrypted again.
func TestDomainDeletionShredsArtefacts(t *testing.T) {
	t.Parallel()
	s, admin := startWithAdmin(t)
	apptest.WantStatus(t, s.Do(t, "POST", "/api/v1/domains", admin, map[string]string{"name": "com.shred"}), http.StatusCreated)
	key := signingKey(t)
	k := apptest.Decode[registry.SignerKey](t, s.Do(t, "POST", "/api/v1/signer-keys", admin,
		map[string]string{"domain": "com.shred", "public_key": publicPEM(t, key.Public())}), http.StatusCreated)
	v := apptest.Decode[registry.ModelVersion](t, upload(t, s, admin, "com.shred.m", "1.0", tarOf(t, modelDir(t, key, nil))), http.StatusCreated)
	blob := blobPath(t, s, fileDigest(v, "model.onnx"))
	keys := filepath.Join(s.DataDir, datadir.ArtifactsDir, "domain-keys")
	before, err := os.ReadDir(keys)
	if err != nil || len(before) == 0 {
		t.Fatalf("artifact keys before: %d, %v", len(before), err)
	}
	// A blob left behind by a failed cleanup is shredded too.
	leftover := filepath.Join(filepath.Dir(blob), strings.Repeat("0", 64))
	if err := os.WriteFile(leftover, []byte("orphan"), 0o600); err != nil {
		t.Fatal(err)
	}

	// A version a model service deploys cannot be deleted.
	apptest.WantStatus(t, s.Do(t, "POST", "/api/v1/services", admin, map[string]string{
		"name": "shred-svc", "domain": "com.shred", "model_id": "com.shred.m", "model_version": "1.0"}), http.StatusCreated)
	apptest.WantError(t, s.Do(t, "DELETE", "/api/v1/models/com.shred.m/versions/1.0", admin, nil), http.StatusConflict, "version_in_use")
	apptest.WantStatus(t, s.Do(t, "DELETE", "/api/v1/services/shred-svc", admin, nil), http.StatusNoContent)

	apptest.WantStatus(t, s.Do(t, "DELETE", "/api/v1/models/com.shred.m/versions/1.0", admin, nil), http.StatusNoContent)
	apptest.WantStatus(t, s.Do(t, "DELETE", "/api/v1/models/com.shred.m", admin, nil), http.StatusNoContent)
	apptest.WantStatus(t, s.Do(t, "POST", "/api/v1/signer-keys/"+k.ID+"/revoke", admin, map[string]string{"reason": "retired"}), http.StatusOK)
	apptest.WantStatus(t, s.Do(t, "DELETE", "/api/v1/signer-keys/"+k.ID, admin, nil), http.StatusNoContent)
	apptest.WantStatus(t, s.Do(t, "DELETE", "/api/v1/domains/com.shred", admin, nil), http.StatusNoContent)

	after, err := os.ReadDir(keys)
	if err != nil {
		t.Fatal(err)
	}
	if len(after) != len(before)-1 {
		t.Errorf("artifact keys: %d before, %d after deleting the domain; want one fewer", len(before), len(after))
	}
	if _, err := os.Stat(leftover); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a blob of the deleted domain remains: %v", err)
	}
}
