package registry_test

import (
	"archive/zip"
	"bytes"
	"compress/gzip"
	"crypto/ecdsa"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/rampart-ml/rampart/internal/app/apptest"
	"github.com/rampart-ml/rampart/internal/modelsign"
	"github.com/rampart-ml/rampart/internal/registry"
)

func uploadAs(t *testing.T, s *apptest.Server, token, contentType, id, version string, body []byte) apptest.Response {
	t.Helper()
	req, err := http.NewRequest("PUT", s.URL+"/api/v1/models/"+id+"/versions/"+version, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
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

func zipOf(t *testing.T, files map[string][]byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		w, err := zw.Create(n)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(files[n]); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func gzipOf(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// Protobuf builders for a tiny ONNX model (field numbers: onnx.proto).
func pbMsg(num protowire.Number, parts ...[]byte) []byte {
	b := protowire.AppendTag(nil, num, protowire.BytesType)
	return protowire.AppendBytes(b, bytes.Join(parts, nil))
}

func pbStr(num protowire.Number, s string) []byte { return pbMsg(num, []byte(s)) }

func pbInt(num protowire.Number, v uint64) []byte {
	return protowire.AppendVarint(protowire.AppendTag(nil, num, protowire.VarintType), v)
}

// externalDataModel is a valid ModelProto (ir_version 9, opset 17,
// x FP32[4] → y) whose initializer w keeps its data in "weights.bin".
func externalDataModel() []byte {
	tensor := func(name string) []byte {
		// ValueInfoProto{name, type{tensor_type{elem_type FP32, shape [4]}}}
		return bytes.Join([][]byte{pbStr(1, name), pbMsg(2, pbMsg(1, pbInt(1, 1), pbMsg(2, pbMsg(1, pbInt(1, 4)))))}, nil)
	}
	// TensorProto: dims = 1, data_type = 2, name = 8, external_data = 13
	// {key = 1, value = 2}, data_location = 14 (EXTERNAL = 1).
	w := pbMsg(5, pbInt(1, 4), pbInt(2, 1), pbStr(8, "w"),
		pbMsg(13, pbStr(1, "location"), pbStr(2, "weights.bin")),
		pbMsg(13, pbStr(1, "length"), pbStr(2, "16")), pbInt(14, 1))
	add := pbMsg(1, pbStr(1, "x"), pbStr(1, "w"), pbStr(2, "y"), pbStr(4, "Add"))
	g := pbMsg(7, add, pbStr(2, "g"), w, pbMsg(11, tensor("x")), pbMsg(12, tensor("y")))
	return bytes.Join([][]byte{pbInt(1, 9), pbStr(2, "rampart-test"), pbMsg(8, pbStr(1, ""), pbInt(2, 17)), g}, nil)
}

// signedFiles signs files as a model directory with key.
func signedFiles(t *testing.T, key *ecdsa.PrivateKey, files map[string][]byte) map[string][]byte {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), content, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	m, err := modelsign.DigestDirectory(dir, modelsign.Options{})
	if err != nil {
		t.Fatal(err)
	}
	sig, err := modelsign.Sign(m, key)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{modelsign.SignatureFile: sig}
	for n, c := range files {
		out[n] = c
	}
	return out
}

func TestOnboardFormatsAndKeys(t *testing.T) {
	t.Parallel()
	s, admin := startWithAdmin(t)
	apptest.WantStatus(t, s.Do(t, "POST", "/api/v1/domains", admin, map[string]string{"name": "com.acme"}), http.StatusCreated)
	good, expired, revoked := signingKey(t), signingKey(t), signingKey(t)
	now := time.Now().UTC()
	for _, k := range []struct {
		key  *ecdsa.PrivateKey
		body map[string]any
	}{
		{good, map[string]any{}},
		{expired, map[string]any{"not_before": now.Add(-2 * time.Hour), "not_after": now.Add(-time.Hour)}},
		{revoked, map[string]any{}},
	} {
		k.body["domain"] = "com.acme"
		k.body["public_key"] = publicPEM(t, k.key.Public())
		apptest.WantStatus(t, s.Do(t, "POST", "/api/v1/signer-keys", admin, k.body), http.StatusCreated)
	}
	apptest.WantStatus(t, s.Do(t, "POST", "/api/v1/signer-keys/"+keyID(t, revoked.Public())+"/revoke", admin, nil), http.StatusOK)

	weights := bytes.Repeat([]byte{0, 0, 0x80, 0x3f}, 4) // four float32 1.0
	withWeights := signedFiles(t, good, map[string][]byte{"model.onnx": externalDataModel(), "weights.bin": weights})
	withoutWeights := signedFiles(t, good, map[string][]byte{"model.onnx": externalDataModel()})

	for _, tc := range []struct {
		name, version, contentType string
		body                       []byte
		status                     int
		code                       string
	}{
		{"zip", "zip", "application/zip", zipOf(t, modelDir(t, good, nil)), http.StatusCreated, ""},
		{"tar.gz", "tgz", "application/gzip", gzipOf(t, tarOf(t, modelDir(t, good, map[string]string{"notes.txt": "gz\n"}))), http.StatusCreated, ""},
		{"external data signed", "ext", "application/x-tar", tarOf(t, withWeights), http.StatusCreated, ""},
		{"external data missing", "ext-missing", "application/x-tar", tarOf(t, withoutWeights), http.StatusUnprocessableEntity, "missing_external_data"},
		{"expired key", "expired", "application/x-tar", tarOf(t, modelDir(t, expired, nil)), http.StatusForbidden, "untrusted_key"},
		{"revoked key", "revoked", "application/x-tar", tarOf(t, modelDir(t, revoked, nil)), http.StatusForbidden, "untrusted_key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := uploadAs(t, s, admin, tc.contentType, "com.acme.m", tc.version, tc.body)
			if tc.code == "" {
				v := apptest.Decode[registry.ModelVersion](t, r, tc.status)
				if _, err := s.App.ModelLoader().Materialize(t.Context(), "com.acme.m", v.Version, filepath.Join(t.TempDir(), "m")); err != nil {
					t.Errorf("load: %v", err)
				}
				return
			}
			apptest.WantError(t, r, tc.status, tc.code)
			apptest.WantStatus(t, s.Do(t, "GET", "/api/v1/models/com.acme.m/versions/"+tc.version, admin, nil), http.StatusNotFound)
		})
	}
}
