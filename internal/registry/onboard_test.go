package registry_test

import (
	"archive/tar"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rampart-ml/rampart/internal/app/apptest"
	"github.com/rampart-ml/rampart/internal/datadir"
	"github.com/rampart-ml/rampart/internal/modelsign"
	"github.com/rampart-ml/rampart/internal/onnxmeta/testmodels"
	"github.com/rampart-ml/rampart/internal/registry"
	"github.com/rampart-ml/rampart/internal/store"
)

// modelDir writes a model directory (the OCR classifier as model.onnx
// plus extra) and signs it with key unless key is nil.
func modelDir(t *testing.T, key *ecdsa.PrivateKey, extra map[string]string) map[string][]byte {
	t.Helper()
	onnx, err := os.ReadFile(testmodels.Path(t, testmodels.OCRClassifier))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	files := map[string][]byte{"model.onnx": onnx, "README.md": []byte("a text direction classifier\n")}
	for name, content := range extra {
		files[name] = []byte(content)
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), content, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if key != nil {
		m, err := modelsign.DigestDirectory(dir, modelsign.Options{})
		if err != nil {
			t.Fatal(err)
		}
		sig, err := modelsign.Sign(m, key)
		if err != nil {
			t.Fatal(err)
		}
		files[modelsign.SignatureFile] = sig
	}
	return files
}

// tarOf is a tar of files; names are written as given (even "../x").
func tarOf(t *testing.T, files map[string][]byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for name, content := range files {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(content)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(content); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func upload(t *testing.T, s *apptest.Server, token, id, version string, body []byte) apptest.Response {
	t.Helper()
	req, err := http.NewRequest("PUT", s.URL+"/api/v1/models/"+id+"/versions/"+version, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-tar")
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := s.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return apptest.Response{StatusCode: res.StatusCode, Header: res.Header, Body: b}
}

func signingKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// One server for the whole onboarding story: starting one is the slow part.
func TestOnboardModel(t *testing.T) {
	t.Parallel()
	s, admin := startWithAdmin(t)
	for _, d := range []string{"com.acme", "org.other"} {
		apptest.WantStatus(t, s.Do(t, "POST", "/api/v1/domains", admin, map[string]string{"name": d}), http.StatusCreated)
	}
	acme, other := signingKey(t), signingKey(t)
	for d, k := range map[string]*ecdsa.PrivateKey{"com.acme": acme, "org.other": other} {
		apptest.WantStatus(t, s.Do(t, "POST", "/api/v1/signer-keys", admin,
			map[string]string{"domain": d, "public_key": publicPEM(t, k.Public())}), http.StatusCreated)
	}
	staging := filepath.Join(s.DataDir, datadir.StagingDir)
	checkStagingEmpty := func(t *testing.T) {
		t.Helper()
		left, err := os.ReadDir(staging)
		if err != nil {
			t.Fatal(err)
		}
		if len(left) != 0 {
			t.Errorf("staging directory holds %d entries after the upload", len(left))
		}
	}

	// ---- a signed model is admitted ----
	good := modelDir(t, acme, nil)
	v := apptest.Decode[registry.ModelVersion](t, upload(t, s, admin, "com.acme.ocr-cls", "1.0", tarOf(t, good)), http.StatusCreated)
	if !v.Signed || v.SignerKeyID != keyID(t, acme.Public()) || v.ModelFile != "model.onnx" || len(v.Files) != 3 || len(v.Metadata) == 0 {
		t.Errorf("admitted version = %+v", v)
	}
	checkStagingEmpty(t)
	got := apptest.Decode[registry.ModelVersion](t, s.Do(t, "GET", "/api/v1/models/com.acme.ocr-cls/versions/1.0", admin, nil), http.StatusOK)
	if got.SubjectDigest != v.SubjectDigest || len(got.Files) != 3 {
		t.Errorf("GET version = %+v, want %+v", got, v)
	}
	models := apptest.Decode[[]registry.Model](t, s.Do(t, "GET", "/api/v1/models", admin, nil), http.StatusOK)
	if len(models) != 1 || models[0].ID != "com.acme.ocr-cls" || models[0].Domain != "com.acme" {
		t.Errorf("models = %+v", models)
	}
	// A user without grants sees nothing and may upload nothing.
	user := newUser(t, s, admin, "mallory")
	if l := apptest.Decode[[]registry.Model](t, s.Do(t, "GET", "/api/v1/models", user, nil), http.StatusOK); len(l) != 0 {
		t.Errorf("user without grants lists %+v", l)
	}
	apptest.WantStatus(t, s.Do(t, "GET", "/api/v1/models/com.acme.ocr-cls/versions/1.0", user, nil), http.StatusNotFound)
	apptest.WantStatus(t, upload(t, s, user, "com.acme.ocr-cls", "3.0", tarOf(t, good)), http.StatusNotFound)

	// ---- refusals ----
	tampered := modelDir(t, acme, nil)
	tampered["README.md"] = []byte("changed after signing\n")
	pickle := modelDir(t, acme, map[string]string{"weights.pkl": "\x80\x04\x95"})
	traversal := modelDir(t, acme, nil)
	traversal["../escape.txt"] = []byte("x")
	for _, tc := range []struct {
		name, id, version string
		files             map[string][]byte
		status            int
		code              string
	}{
		{"same version again", "com.acme.ocr-cls", "1.0", good, http.StatusConflict, "version_exists"},
		{"tampered file", "com.acme.ocr-cls", "2.0", tampered, http.StatusUnprocessableEntity, "invalid_signature"},
		{"key of another domain", "com.acme.ocr-cls", "2.0", modelDir(t, other, nil), http.StatusForbidden, "untrusted_key"},
		{"unknown key", "com.acme.ocr-cls", "2.0", modelDir(t, signingKey(t), nil), http.StatusForbidden, "untrusted_key"},
		{"unsigned", "com.acme.ocr-cls", "2.0", modelDir(t, nil, nil), http.StatusUnprocessableEntity, "unsigned"},
		{"pickle", "com.acme.ocr-cls", "2.0", pickle, http.StatusUnprocessableEntity, "refused_file"},
		{"path traversal", "com.acme.ocr-cls", "2.0", traversal, http.StatusUnprocessableEntity, "invalid_archive"},
		{"bad version", "com.acme.ocr-cls", "-x", good, http.StatusBadRequest, "invalid_version"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			apptest.WantError(t, upload(t, s, admin, tc.id, tc.version, tarOf(t, tc.files)), tc.status, tc.code)
			checkStagingEmpty(t)
		})
	}
	apptest.WantStatus(t, s.Do(t, "GET", "/api/v1/models/com.acme.ocr-cls/versions/2.0", admin, nil), http.StatusNotFound)

	// ---- unsigned admission, once the domain allows it ----
	apptest.WantStatus(t, s.Do(t, "PUT", "/api/v1/domains/com.acme/unsigned-admission", admin, map[string]bool{"allowed": true}), http.StatusOK)
	u := apptest.Decode[registry.ModelVersion](t, upload(t, s, admin, "com.acme.ocr-cls", "2.0", tarOf(t, modelDir(t, nil, nil))), http.StatusCreated)
	if u.Signed || u.SignerKeyID != "" || u.SubjectDigest != v.SubjectDigest {
		t.Errorf("unsigned version = %+v (signed subject %s)", u, v.SubjectDigest)
	}
	checkStagingEmpty(t)

	// ---- the audit log ----
	type rec struct{ Outcome, Domain, ID, Reason string }
	var recs []rec
	for _, r := range s.AuditRecords(t, store.AuditQuery{}) {
		if r.Action == registry.ActionModelOnboard {
			recs = append(recs, rec{r.Outcome, r.TargetDomain, r.TargetID, r.Reason})
		}
	}
	want := map[rec]bool{
		{"success", "com.acme", "com.acme.ocr-cls@1.0", "signed key=" + keyID(t, acme.Public())}: true,
		{"success", "com.acme", "com.acme.ocr-cls@2.0", "unsigned"}:                              true,
		{"denied", "com.acme", "com.acme.ocr-cls@2.0", "untrusted_key"}:                          true,
		{"failure", "com.acme", "com.acme.ocr-cls@2.0", "invalid_signature"}:                     true,
		{"failure", "com.acme", "com.acme.ocr-cls@1.0", "version_exists"}:                        true,
	}
	for _, r := range recs {
		delete(want, r)
	}
	if len(want) != 0 {
		t.Errorf("audit records missing %v; got %v", want, recs)
	}
	if strings.Contains(string(s.Do(t, "GET", "/api/v1/models", admin, nil).Body), "\"com.acme.ocr-cls\"") == false {
		t.Error("model missing from the listing")
	}
}
