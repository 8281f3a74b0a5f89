//go:build linux

package gateway_test

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/rampart-ml/rampart/internal/app/apptest"
	"github.com/rampart-ml/rampart/internal/audit"
	"github.com/rampart-ml/rampart/internal/config"
	"github.com/rampart-ml/rampart/internal/inference"
	"github.com/rampart-ml/rampart/internal/inference/oippb"
	"github.com/rampart-ml/rampart/internal/modelsign"
	"github.com/rampart-ml/rampart/internal/onnxmeta/testmodels"
	"github.com/rampart-ml/rampart/internal/pki"
	"github.com/rampart-ml/rampart/internal/runtime/onnx"
	"github.com/rampart-ml/rampart/internal/store"
	"github.com/rampart-ml/rampart/internal/tensor"
)

const (
	adminPassword = "violet-orbit-lantern-quarry-42"
	userPassword  = "amber-canyon-whistle-falcon-77"
	domain        = "com.acme"
	// maxBody is the servers' inference body limit: small, so that 413 is
	// cheap to provoke, and far above the requests the tests send.
	maxBody = 1 << 20
)

// fixture is one running server with the com.acme domain and a signer key
// for it.
type fixture struct {
	s     *apptest.Server
	admin string
	key   *ecdsa.PrivateKey
}

// start starts a server whose workers load the installed ONNX Runtime and
// which records every allowed inference call.
func start(t *testing.T, mutate ...func(*config.Config)) *fixture {
	t.Helper()
	base := func(c *config.Config) {
		c.Inference.RuntimeLibrary = onnx.LibraryPath()
		c.Inference.MaxRequestBytes = maxBody
		c.Audit.InferenceSampleRate = 1
	}
	s := apptest.Start(t, append([]func(*config.Config){apptest.FastHashing, base}, mutate...)...)
	first := s.Login(t, "admin", s.AdminPassword).AccessToken
	apptest.WantStatus(t, s.Do(t, "POST", "/api/v1/me/password", first,
		map[string]string{"current_password": s.AdminPassword, "new_password": adminPassword}), http.StatusNoContent)
	f := &fixture{s: s, admin: s.Login(t, "admin", adminPassword).AccessToken}
	apptest.WantStatus(t, s.Do(t, "POST", "/api/v1/domains", f.admin, map[string]string{"name": domain}), http.StatusCreated)
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	f.key = k
	der, err := x509.MarshalPKIXPublicKey(k.Public())
	if err != nil {
		t.Fatal(err)
	}
	apptest.WantStatus(t, s.Do(t, "POST", "/api/v1/signer-keys", f.admin, map[string]string{
		"domain": domain, "public_key": string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})),
	}), http.StatusCreated)
	return f
}

// deploy onboards the model file as com.acme.<name>@1.0 (signed, through the
// real upload), creates service name for it, starts it and waits until it
// is ready.
func (f *fixture) deploy(t *testing.T, name, modelPath string) {
	t.Helper()
	model, err := os.ReadFile(modelPath) // #nosec G304 -- a test model
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "model.onnx"), model, 0o600); err != nil { // #nosec G703 -- the test's own temporary directory
		t.Fatal(err)
	}
	m, err := modelsign.DigestDirectory(dir, modelsign.Options{})
	if err != nil {
		t.Fatal(err)
	}
	sig, err := modelsign.Sign(m, f.key)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for n, content := range map[string][]byte{"model.onnx": model, modelsign.SignatureFile: sig} {
		if err := tw.WriteHeader(&tar.Header{Name: n, Mode: 0o644, Size: int64(len(content)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(content); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	id := domain + "." + name
	res := f.post(t, "PUT", "/api/v1/models/"+id+"/versions/1.0", f.admin, buf.Bytes(), map[string]string{"Content-Type": "application/x-tar"})
	apptest.WantStatus(t, res, http.StatusCreated)
	apptest.WantStatus(t, f.s.Do(t, "POST", "/api/v1/services", f.admin, map[string]string{
		"name": name, "domain": domain, "model_id": id, "model_version": "1.0",
	}), http.StatusCreated)
	apptest.WantStatus(t, f.s.Do(t, "POST", "/api/v1/services/"+name+"/start", f.admin, nil), http.StatusOK)
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		res := f.s.Do(t, "GET", "/v2/models/"+name+"/ready", f.admin, nil)
		if res.StatusCode == http.StatusOK {
			return
		}
		if time.Now().After(deadline) {
			svc := f.s.Do(t, "GET", "/api/v1/services/"+name, f.admin, nil)
			t.Fatalf("service %s not ready within 60s: %d %s; service: %s", name, res.StatusCode, res.Body, svc.Body)
		}
	}
}

// newUser creates a plain account and returns its token.
func (f *fixture) newUser(t *testing.T, name string) (id, token string) {
	t.Helper()
	created := apptest.Decode[struct {
		ID              string `json:"id"`
		InitialPassword string `json:"initial_password"`
	}](t, f.s.Do(t, "POST", "/api/v1/accounts", f.admin, map[string]string{"name": name}), http.StatusCreated)
	first := f.s.Login(t, name, created.InitialPassword).AccessToken
	apptest.WantStatus(t, f.s.Do(t, "POST", "/api/v1/me/password", first,
		map[string]string{"current_password": created.InitialPassword, "new_password": userPassword}), http.StatusNoContent)
	token = f.s.Login(t, name, userPassword).AccessToken
	me := apptest.Decode[struct {
		ID string `json:"id"`
	}](t, f.s.Do(t, "GET", "/api/v1/me", token, nil), http.StatusOK)
	return me.ID, token
}

// grant gives account id the privilege on com.acme.
func (f *fixture) grant(t *testing.T, id, privilege string) {
	t.Helper()
	apptest.WantStatus(t, f.s.Do(t, "POST", "/api/v1/grants", f.admin, map[string]string{
		"subject_kind": "user", "subject_id": id, "domain": domain, "privilege": privilege,
	}), http.StatusCreated)
}

// post sends body as is with the given headers (and a bearer token unless
// it is empty).
func (f *fixture) post(t testing.TB, method, path, token string, body []byte, header map[string]string) apptest.Response {
	t.Helper()
	req, err := http.NewRequest(method, f.s.URL+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := f.s.Client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return apptest.Response{StatusCode: res.StatusCode, Header: res.Header, Body: b}
}

// grpcClient dials the server's TLS port with its CA and sends token as
// the bearer token of every call ("" for none).
func (f *fixture) grpcClient(t *testing.T, token string) oippb.GRPCInferenceServiceClient {
	t.Helper()
	pool, err := pki.CertPool(f.s.App.CAFile())
	if err != nil {
		t.Fatal(err)
	}
	opts := []grpc.DialOption{grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}))}
	if token != "" {
		opts = append(opts, grpc.WithPerRPCCredentials(bearer(token)))
	}
	conn, err := grpc.NewClient(strings.TrimPrefix(f.s.URL, "https://"), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return oippb.NewGRPCInferenceServiceClient(conn)
}

// bearer sends a bearer token in each call's metadata.
type bearer string

func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(b)}, nil
}

func (bearer) RequireTransportSecurity() bool { return true }

// ---- tensors and the in-process reference ----

// clsShape is the OCR classifier input used throughout: one 48×64 image.
var clsShape = []int64{1, 3, 48, 64}

// image is a deterministic FP32 input in [0,1), different for each seed
// (an xorshift sequence, so that no two seeds give shifted copies).
func image(seed int) []float32 {
	v := make([]float32, 3*48*64)
	x := uint32(seed)*2654435761 + 1 // #nosec G115 -- test seeds are small and non-negative
	for i := range v {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		v[i] = float32(x>>8) / (1 << 24)
	}
	return v
}

func f32bytes(v []float32) []byte {
	b := make([]byte, 0, 4*len(v))
	for _, f := range v {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(f))
	}
	return b
}

func floatsOf(b []byte) []float32 {
	v := make([]float32, len(b)/4)
	for i := range v {
		v[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return v
}

var initORT = sync.OnceValue(func() error { return onnx.Init(onnx.LibraryPath()) })

// reference runs the model once per element of runs in this process,
// straight through ORT, and returns each run's outputs by name.
func reference(t *testing.T, modelPath string, runs ...[]tensor.Tensor) []map[string]tensor.Tensor {
	t.Helper()
	if err := initORT(); err != nil {
		t.Fatal(err)
	}
	s, err := onnx.Open(modelPath, onnx.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var all []map[string]tensor.Tensor
	for _, in := range runs {
		out, err := s.Run(in, nil)
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]tensor.Tensor{}
		for _, o := range out {
			m[o.Name] = o
		}
		all = append(all, m)
	}
	return all
}

// sameOutputs compares got with want: shapes and datatypes exactly, FP32
// data within tol (0: bit for bit), other data byte for byte.
func sameOutputs(t *testing.T, got []tensor.Tensor, want map[string]tensor.Tensor, tol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d outputs, want %d", len(got), len(want))
	}
	for _, g := range got {
		w, ok := want[g.Name]
		if !ok {
			t.Fatalf("unexpected output %q", g.Name)
		}
		if g.Datatype != w.Datatype || fmt.Sprint(g.Shape) != fmt.Sprint(w.Shape) {
			t.Fatalf("output %s is %s%v, want %s%v", g.Name, g.Datatype, g.Shape, w.Datatype, w.Shape)
		}
		if g.Datatype == tensor.FP32 && tol > 0 {
			gv, wv := floatsOf(g.Data), floatsOf(w.Data)
			if len(gv) != len(wv) {
				t.Fatalf("output %s has %d values, want %d", g.Name, len(gv), len(wv))
			}
			for i := range gv {
				if math.Abs(float64(gv[i]-wv[i])) > tol {
					t.Fatalf("output %s[%d] = %v, want %v", g.Name, i, gv[i], wv[i])
				}
			}
			continue
		}
		if !bytes.Equal(g.Data, w.Data) {
			t.Fatalf("output %s differs from the in-process run", g.Name)
		}
	}
}

// jsonInput is a v2 JSON request input.
type jsonInput struct {
	Name       string         `json:"name"`
	Datatype   string         `json:"datatype"`
	Shape      []int64        `json:"shape"`
	Data       any            `json:"data,omitempty"`
	Parameters map[string]any `json:"parameters,omitempty"`
}

type jsonOutput struct {
	Name       string         `json:"name"`
	Parameters map[string]any `json:"parameters,omitempty"`
}

type jsonRequest struct {
	ID         string         `json:"id,omitempty"`
	Inputs     []jsonInput    `json:"inputs"`
	Outputs    []jsonOutput   `json:"outputs,omitempty"`
	Parameters map[string]any `json:"parameters,omitempty"`
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// clsJSON is a JSON request for the classifier with image(seed).
func clsJSON(t testing.TB, id string, seed int) []byte {
	return mustJSON(t, jsonRequest{ID: id, Inputs: []jsonInput{{Name: "x", Datatype: "FP32", Shape: clsShape, Data: image(seed)}}})
}

// decoded decodes a successful inference response, JSON or binary.
func decoded(t testing.TB, res apptest.Response) *inference.Response {
	t.Helper()
	apptest.WantStatus(t, res, http.StatusOK)
	hl := int64(-1)
	if v := res.Header.Get(inference.HeaderInferenceHeaderContentLength); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		hl = n
	}
	r, err := inference.DecodeResponse(res.Body, hl, inference.Limits{})
	if err != nil {
		t.Fatalf("decode response: %v\n%.300s", err, res.Body)
	}
	return r
}

// grpcTensors turns a gRPC response's raw outputs into tensors.
func grpcTensors(t *testing.T, r *oippb.ModelInferResponse) []tensor.Tensor {
	t.Helper()
	if len(r.GetRawOutputContents()) != len(r.GetOutputs()) {
		t.Fatalf("%d raw outputs for %d outputs", len(r.GetRawOutputContents()), len(r.GetOutputs()))
	}
	var out []tensor.Tensor
	for i, o := range r.GetOutputs() {
		dt, err := tensor.ParseDatatype(o.GetDatatype())
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, tensor.Tensor{Name: o.GetName(), Datatype: dt, Shape: o.GetShape(), Data: r.GetRawOutputContents()[i]})
	}
	return out
}

// ---- the tests ----

// TestGateway runs every protocol, refusal, audit, metrics and concurrency
// check against one server with two real model services: starting them is
// the slow part.
func TestGateway(t *testing.T) {
	t.Parallel()
	f := start(t)
	clsPath := testmodels.Path(t, testmodels.OCRClassifier)
	rfPath := testmodels.RandomForest(t)
	f.deploy(t, "cls", clsPath)
	f.deploy(t, "rf", rfPath)

	clsIn := tensor.Tensor{Name: "x", Datatype: tensor.FP32, Shape: clsShape, Data: f32bytes(image(1))}
	clsWant := reference(t, clsPath, []tensor.Tensor{clsIn})[0]
	if len(clsWant) != 1 {
		t.Fatalf("the classifier has %d outputs in process, want 1", len(clsWant))
	}
	var clsOut string
	for n := range clsWant {
		clsOut = n
	}
	rfIn := tensor.Tensor{Name: "X", Datatype: tensor.FP32, Shape: []int64{3, 4},
		Data: f32bytes([]float32{5.1, 3.5, 1.4, 0.2, 6.7, 3.0, 5.2, 2.3, 5.9, 3.0, 4.2, 1.5})}
	rfWant := reference(t, rfPath, []tensor.Tensor{rfIn})[0]

	t.Run("rest", func(t *testing.T) { testREST(t, f, clsIn, clsWant, clsOut, rfIn, rfWant) })
	t.Run("grpc", func(t *testing.T) { testGRPC(t, f, clsIn, clsWant, rfIn, rfWant) })
	t.Run("refusals", func(t *testing.T) { testRefusals(t, f, clsIn, clsOut) })
	t.Run("concurrency", func(t *testing.T) { testConcurrency(t, f, clsPath) })
	t.Run("metrics", func(t *testing.T) { testMetrics(t, f) })
	t.Run("stopped service", func(t *testing.T) { testStopped(t, f, rfIn) })
}

// testStopped stops the random forest service: it stays visible, and every
// call says it is not ready (never a 500).
func testStopped(t *testing.T, f *fixture, rfIn tensor.Tensor) {
	apptest.WantStatus(t, f.s.Do(t, "POST", "/api/v1/services/rf/stop", f.admin, nil), http.StatusOK)
	// While it drains, its metadata is still served; once its workers are
	// gone, it is not.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		res := f.s.Do(t, "GET", "/v2/models/rf", f.admin, nil)
		if res.StatusCode == http.StatusServiceUnavailable {
			apptest.WantError(t, res, http.StatusServiceUnavailable, "not_ready")
			break
		}
		apptest.WantStatus(t, res, http.StatusOK)
		if time.Now().After(deadline) {
			t.Fatal("the stopped service still has workers after 30s")
		}
	}
	apptest.WantError(t, f.s.Do(t, "GET", "/v2/models/rf/ready", f.admin, nil), http.StatusBadRequest, "not_ready")
	body := mustJSON(t, jsonRequest{Inputs: []jsonInput{{Name: "X", Datatype: "FP32", Shape: rfIn.Shape, Data: floatsOf(rfIn.Data)}}})
	apptest.WantError(t, f.post(t, "POST", "/v2/models/rf/infer", f.admin, body, nil), http.StatusServiceUnavailable, "not_ready")
	c := f.grpcClient(t, f.admin)
	if r, err := c.ModelReady(t.Context(), &oippb.ModelReadyRequest{Name: "rf"}); err != nil || r.GetReady() {
		t.Errorf("ModelReady of a stopped service = %v, %v", r, err)
	}
	if _, err := c.ModelMetadata(t.Context(), &oippb.ModelMetadataRequest{Name: "rf"}); status.Code(err) != codes.Unavailable {
		t.Errorf("ModelMetadata of a stopped service: %v", err)
	}
	_, err := c.ModelInfer(t.Context(), inference.RequestToGRPC("rf", "", &inference.Request{Inputs: []tensor.Tensor{rfIn}}))
	if st := status.Convert(err); st.Code() != codes.Unavailable || st.Message() != "the model service is not ready" {
		t.Errorf("ModelInfer of a stopped service: %v", err)
	}
	// The other service is untouched.
	apptest.WantStatus(t, f.s.Do(t, "GET", "/v2/models/cls/ready", f.admin, nil), http.StatusOK)
}

func testREST(t *testing.T, f *fixture, clsIn tensor.Tensor, clsWant map[string]tensor.Tensor, clsOut string, rfIn tensor.Tensor, rfWant map[string]tensor.Tensor) {
	s, tok := f.s, f.admin
	t.Run("server", func(t *testing.T) {
		md := apptest.Decode[struct {
			Name       string   `json:"name"`
			Version    string   `json:"version"`
			Extensions []string `json:"extensions"`
		}](t, s.Do(t, "GET", "/v2", tok, nil), http.StatusOK)
		if md.Name != "rampart" || md.Version == "" || fmt.Sprint(md.Extensions) != "[binary_tensor_data]" {
			t.Errorf("GET /v2 = %+v", md)
		}
		for path, key := range map[string]string{"/v2/health/live": "live", "/v2/health/ready": "ready"} {
			if got := apptest.Decode[map[string]bool](t, s.Do(t, "GET", path, tok, nil), http.StatusOK); len(got) != 1 || !got[key] {
				t.Errorf("GET %s = %v", path, got)
			}
		}
	})
	t.Run("metadata", func(t *testing.T) {
		type tm struct {
			Name     string  `json:"name"`
			Datatype string  `json:"datatype"`
			Shape    []int64 `json:"shape"`
		}
		type meta struct {
			Name     string   `json:"name"`
			Versions []string `json:"versions"`
			Platform string   `json:"platform"`
			Inputs   []tm     `json:"inputs"`
			Outputs  []tm     `json:"outputs"`
		}
		for _, path := range []string{"/v2/models/cls", "/v2/models/cls/versions/1.0"} {
			md := apptest.Decode[meta](t, s.Do(t, "GET", path, tok, nil), http.StatusOK)
			want := fmt.Sprint(meta{Name: "cls", Versions: []string{"1.0"}, Platform: "onnxruntime_onnx",
				Inputs:  []tm{{"x", "FP32", []int64{-1, 3, -1, -1}}},
				Outputs: []tm{{clsOut, "FP32", []int64{-1, 2}}}})
			if fmt.Sprint(md) != want {
				t.Errorf("GET %s = %v, want %v", path, md, want)
			}
		}
		// The random forest's probabilities (a sequence of maps) are no
		// tensor: the engine leaves them out.
		md := apptest.Decode[meta](t, s.Do(t, "GET", "/v2/models/rf", tok, nil), http.StatusOK)
		if fmt.Sprint(md.Inputs) != "[{X FP32 [-1 4]}]" || fmt.Sprint(md.Outputs) != "[{output_label INT64 [-1]}]" {
			t.Errorf("GET /v2/models/rf = %v", md)
		}
		for _, path := range []string{"/v2/models/cls/ready", "/v2/models/cls/versions/1.0/ready"} {
			got := apptest.Decode[struct {
				Name  string `json:"name"`
				Ready bool   `json:"ready"`
			}](t, s.Do(t, "GET", path, tok, nil), http.StatusOK)
			if got.Name != "cls" || !got.Ready {
				t.Errorf("GET %s = %+v", path, got)
			}
		}
	})
	t.Run("infer json", func(t *testing.T) {
		res := f.post(t, "POST", "/v2/models/cls/infer", tok, clsJSON(t, "req-1", 1), nil)
		if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
			t.Errorf("Content-Type %q", ct)
		}
		r := decoded(t, res)
		if r.ModelName != "cls" || r.ModelVersion != "1.0" || r.ID != "req-1" {
			t.Errorf("response names %q %q %q", r.ModelName, r.ModelVersion, r.ID)
		}
		sameOutputs(t, r.Outputs, clsWant, 1e-6)
		// The versioned route serves the same.
		sameOutputs(t, decoded(t, f.post(t, "POST", "/v2/models/cls/versions/1.0/infer", tok, clsJSON(t, "", 1), nil)).Outputs, clsWant, 1e-6)
		// INT64 outputs are exact.
		body := mustJSON(t, jsonRequest{Inputs: []jsonInput{{Name: "X", Datatype: "FP32", Shape: rfIn.Shape, Data: floatsOf(rfIn.Data)}}})
		sameOutputs(t, decoded(t, f.post(t, "POST", "/v2/models/rf/infer", tok, body, nil)).Outputs, rfWant, 0)
	})
	t.Run("infer over HTTP/2", func(t *testing.T) {
		pool, err := pki.CertPool(s.App.CAFile())
		if err != nil {
			t.Fatal(err)
		}
		tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, ForceAttemptHTTP2: true}
		defer tr.CloseIdleConnections()
		req, err := http.NewRequest("POST", s.URL+"/v2/models/cls/infer", bytes.NewReader(clsJSON(t, "h2", 1)))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+tok)
		res, err := (&http.Client{Transport: tr}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		if err != nil {
			t.Fatal(err)
		}
		if res.ProtoMajor != 2 {
			t.Fatalf("served over %s", res.Proto)
		}
		sameOutputs(t, decoded(t, apptest.Response{StatusCode: res.StatusCode, Header: res.Header, Body: b}).Outputs, clsWant, 1e-6)
	})
	t.Run("infer binary", func(t *testing.T) {
		binIn := func(out []jsonOutput, params map[string]any) ([]byte, map[string]string) {
			head := mustJSON(t, jsonRequest{
				Inputs:     []jsonInput{{Name: "x", Datatype: "FP32", Shape: clsShape, Parameters: map[string]any{"binary_data_size": len(clsIn.Data)}}},
				Outputs:    out,
				Parameters: params,
			})
			return append(head, clsIn.Data...), map[string]string{
				"Content-Type": "application/octet-stream", inference.HeaderInferenceHeaderContentLength: strconv.Itoa(len(head))}
		}
		for _, tc := range []struct {
			name       string
			outputs    []jsonOutput
			params     map[string]any
			wantBinary bool
		}{
			{"binary input, JSON output", nil, nil, false},
			{"binary_data_output", nil, map[string]any{"binary_data_output": true}, true},
			{"per-output binary_data", []jsonOutput{{Name: clsOut, Parameters: map[string]any{"binary_data": true}}}, nil, true},
			{"per-output binary_data false wins", []jsonOutput{{Name: clsOut, Parameters: map[string]any{"binary_data": false}}},
				map[string]any{"binary_data_output": true}, false},
		} {
			t.Run(tc.name, func(t *testing.T) {
				body, h := binIn(tc.outputs, tc.params)
				res := f.post(t, "POST", "/v2/models/cls/infer", tok, body, h)
				hl := res.Header.Get(inference.HeaderInferenceHeaderContentLength)
				if (hl != "") != tc.wantBinary {
					t.Fatalf("binary response %v (%s %q), want %v", hl != "", inference.HeaderInferenceHeaderContentLength, hl, tc.wantBinary)
				}
				tol := 1e-6
				if tc.wantBinary {
					tol = 0 // raw bytes: bit for bit
					if n, _ := strconv.Atoi(hl); len(res.Body) != n+len(clsWant[clsOut].Data) {
						t.Errorf("binary response of %d bytes, header %d + %d data", len(res.Body), n, len(clsWant[clsOut].Data))
					}
				}
				sameOutputs(t, decoded(t, res).Outputs, clsWant, tol)
			})
		}
	})
}

func testGRPC(t *testing.T, f *fixture, clsIn tensor.Tensor, clsWant map[string]tensor.Tensor, rfIn tensor.Tensor, rfWant map[string]tensor.Tensor) {
	c := f.grpcClient(t, f.admin)
	ctx := t.Context()
	t.Run("server", func(t *testing.T) {
		if r, err := c.ServerLive(ctx, &oippb.ServerLiveRequest{}); err != nil || !r.GetLive() {
			t.Errorf("ServerLive = %v, %v", r, err)
		}
		if r, err := c.ServerReady(ctx, &oippb.ServerReadyRequest{}); err != nil || !r.GetReady() {
			t.Errorf("ServerReady = %v, %v", r, err)
		}
		r, err := c.ServerMetadata(ctx, &oippb.ServerMetadataRequest{})
		if err != nil || r.GetName() != "rampart" || r.GetVersion() == "" || fmt.Sprint(r.GetExtensions()) != "[binary_tensor_data]" {
			t.Errorf("ServerMetadata = %v, %v", r, err)
		}
	})
	t.Run("model", func(t *testing.T) {
		for _, v := range []string{"", "1.0"} {
			if r, err := c.ModelReady(ctx, &oippb.ModelReadyRequest{Name: "cls", Version: v}); err != nil || !r.GetReady() {
				t.Errorf("ModelReady(%q) = %v, %v", v, r, err)
			}
			r, err := c.ModelMetadata(ctx, &oippb.ModelMetadataRequest{Name: "cls", Version: v})
			if err != nil {
				t.Fatal(err)
			}
			in, out := r.GetInputs(), r.GetOutputs()
			if r.GetName() != "cls" || fmt.Sprint(r.GetVersions()) != "[1.0]" || r.GetPlatform() != "onnxruntime_onnx" ||
				len(in) != 1 || in[0].GetName() != "x" || in[0].GetDatatype() != "FP32" || fmt.Sprint(in[0].GetShape()) != "[-1 3 -1 -1]" ||
				len(out) != 1 || out[0].GetDatatype() != "FP32" || fmt.Sprint(out[0].GetShape()) != "[-1 2]" {
				t.Errorf("ModelMetadata(%q) = %v", v, r)
			}
		}
	})
	t.Run("infer raw", func(t *testing.T) {
		req := inference.RequestToGRPC("cls", "1.0", &inference.Request{ID: "g-1", Inputs: []tensor.Tensor{clsIn}})
		r, err := c.ModelInfer(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		if r.GetModelName() != "cls" || r.GetModelVersion() != "1.0" || r.GetId() != "g-1" {
			t.Errorf("response names %q %q %q", r.GetModelName(), r.GetModelVersion(), r.GetId())
		}
		sameOutputs(t, grpcTensors(t, r), clsWant, 0)
		rf, err := c.ModelInfer(ctx, inference.RequestToGRPC("rf", "", &inference.Request{Inputs: []tensor.Tensor{rfIn}}))
		if err != nil {
			t.Fatal(err)
		}
		sameOutputs(t, grpcTensors(t, rf), rfWant, 0)
	})
	t.Run("infer typed", func(t *testing.T) {
		r, err := c.ModelInfer(ctx, &oippb.ModelInferRequest{ModelName: "cls", Inputs: []*oippb.ModelInferRequest_InferInputTensor{{
			Name: "x", Datatype: "FP32", Shape: clsShape, Contents: &oippb.InferTensorContents{Fp32Contents: floatsOf(clsIn.Data)},
		}}})
		if err != nil {
			t.Fatal(err)
		}
		sameOutputs(t, grpcTensors(t, r), clsWant, 0)
	})
}

// errorBody is the gateway's error answer.
type errorBody struct {
	Error string `json:"error"`
	Code  string `json:"code"`
}

func testRefusals(t *testing.T, f *fixture, clsIn tensor.Tensor, clsOut string) {
	_, outsider := f.newUser(t, "outsider")
	readerID, reader := f.newUser(t, "reader")
	inferrerID, inferrer := f.newUser(t, "inferrer")
	f.grant(t, readerID, "read")
	f.grant(t, inferrerID, "infer")

	half := clsIn.Data[:len(clsIn.Data)/2]
	binHead := mustJSON(t, jsonRequest{Inputs: []jsonInput{{Name: "x", Datatype: "FP32", Shape: clsShape,
		Parameters: map[string]any{"binary_data_size": len(clsIn.Data)}}}})
	withInput := func(in jsonInput) []byte { return mustJSON(t, jsonRequest{Inputs: []jsonInput{in}}) }
	good := clsJSON(t, "", 2)
	huge := []int64{1 << 40, 3, 1 << 40, 1 << 40}
	nanData := slicesClone(clsIn.Data)
	binary.LittleEndian.PutUint32(nanData[7*4:], math.Float32bits(float32(math.NaN())))
	hl := inference.HeaderInferenceHeaderContentLength

	// What an unknown service answers: a caller who may not see a service
	// must get exactly this, so that names cannot be probed.
	unknown := f.post(t, "POST", "/v2/models/nope/infer", f.admin, good, nil)
	apptest.WantError(t, unknown, http.StatusNotFound, "not_found")

	const dflt = "/v2/models/cls/infer"
	for _, tc := range []struct {
		name   string
		path   string // dflt when empty
		token  string // f.admin when empty, "-" for none
		body   []byte
		header map[string]string
		status int
		code   string
		msg    string // a part of the message
	}{
		{name: "wrong datatype", body: withInput(jsonInput{Name: "x", Datatype: "FP64", Shape: clsShape, Data: image(1)}),
			status: 400, code: "invalid_request", msg: "datatype FP64, but the model expects FP32"},
		{name: "shape mismatch", body: withInput(jsonInput{Name: "x", Datatype: "FP32", Shape: []int64{1, 4, 48, 48}, Data: image(1)}),
			status: 400, code: "invalid_request", msg: "dimension 1"},
		{name: "data length not the shape's", body: withInput(jsonInput{Name: "x", Datatype: "FP32", Shape: clsShape, Data: []float32{1, 2, 3}}),
			status: 400, code: "invalid_request", msg: "has 9216 elements but data has 3"},
		{name: "huge dimensions", body: withInput(jsonInput{Name: "x", Datatype: "FP32", Shape: huge, Data: []float32{1}}),
			status: 413, code: "too_large", msg: "has more than 67108864 elements"},
		{name: "negative dimension", body: withInput(jsonInput{Name: "x", Datatype: "FP32", Shape: []int64{1, 3, -48, 64}, Data: []float32{1}}),
			status: 400, code: "invalid_request", msg: "dimension 2 is -48"},
		{name: "malformed header length", body: good, header: map[string]string{hl: "12abc"},
			status: 400, code: "invalid_request", msg: "is not a non-negative integer"},
		{name: "negative header length", body: good, header: map[string]string{hl: "-1"},
			status: 400, code: "invalid_request", msg: hl},
		{name: "header length beyond the body", body: good, header: map[string]string{hl: strconv.Itoa(len(good) + 1)},
			status: 400, code: "invalid_request", msg: "longer than the body"},
		{name: "truncated binary data", body: append(slicesClone(binHead), half...), header: map[string]string{hl: strconv.Itoa(len(binHead))},
			status: 400, code: "invalid_request", msg: "binary_data_size is 36864 but only 18432 bytes"},
		{name: "binary data without header length", body: append(slicesClone(binHead), clsIn.Data...),
			status: 400, code: "invalid_request", msg: "malformed JSON"},
		{name: "not JSON", body: []byte(`{"inputs": [`), status: 400, code: "invalid_request", msg: "malformed JSON"},
		{name: "unknown input", body: withInput(jsonInput{Name: "y", Datatype: "FP32", Shape: clsShape, Data: image(1)}),
			status: 400, code: "invalid_request", msg: `unknown input "y"`},
		{name: "missing input", body: []byte(`{"inputs": []}`), status: 400, code: "invalid_request", msg: "no inputs"},
		{name: "unknown output", body: mustJSON(t, jsonRequest{Inputs: []jsonInput{{Name: "x", Datatype: "FP32", Shape: clsShape, Data: image(1)}},
			Outputs: []jsonOutput{{Name: "nope"}}}), status: 400, code: "invalid_request", msg: `unknown output "nope"`},
		{name: "input twice", body: mustJSON(t, jsonRequest{Inputs: []jsonInput{
			{Name: "x", Datatype: "FP32", Shape: clsShape, Data: image(1)}, {Name: "x", Datatype: "FP32", Shape: clsShape, Data: image(1)}}}),
			status: 400, code: "invalid_request", msg: `input "x" is given twice`},
		{name: "output twice", body: mustJSON(t, jsonRequest{Inputs: []jsonInput{{Name: "x", Datatype: "FP32", Shape: clsShape, Data: image(1)}},
			Outputs: []jsonOutput{{Name: clsOut}, {Name: clsOut}}}), status: 400, code: "invalid_request", msg: "requested twice"},
		// NaN and infinite inputs never reach the model.
		{name: "NaN input", body: append(slicesClone(binHead), nanData...), header: map[string]string{hl: strconv.Itoa(len(binHead))},
			status: 400, code: "invalid_request", msg: `input "x": element 7 is not a finite number`},
		{name: "gRPC path over HTTP/1.1", path: "/inference.GRPCInferenceService/ModelInfer", body: []byte{0, 0, 0, 0, 0},
			status: 505, code: "http2_required"},
		{name: "unknown model", path: "/v2/models/nope/infer", body: good, status: 404, code: "not_found"},
		{name: "wrong version", path: "/v2/models/cls/versions/9.9/infer", body: good, status: 404, code: "not_found", msg: `not "9.9"`},
		{name: "body over the limit", body: bytes.Repeat([]byte(" "), maxBody+1), status: 413, code: "too_large", msg: "larger than 1048576 bytes"},
		{name: "no token", token: "-", body: good, status: 401, code: "unauthenticated"},
		{name: "caller without infer", token: outsider, body: good, status: 404, code: "not_found"},
		{name: "caller with read (implies infer)", token: reader, body: good, status: 200},
		{name: "metadata without infer", token: outsider, path: "GET /v2/models/cls", status: 404, code: "not_found"},
		{name: "caller with infer", token: inferrer, body: good, status: 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			method, path := "POST", tc.path
			if m, p, ok := strings.Cut(path, " "); ok {
				method, path = m, p
			}
			if path == "" {
				path = dflt
			}
			tok := tc.token
			switch tok {
			case "":
				tok = f.admin
			case "-":
				tok = ""
			}
			res := f.post(t, method, path, tok, tc.body, tc.header)
			if res.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %.300s", res.StatusCode, tc.status, res.Body)
			}
			if tc.status == http.StatusOK {
				return
			}
			var e errorBody
			if err := json.Unmarshal(res.Body, &e); err != nil || e.Error == "" {
				t.Fatalf("error body %.300q: %v", res.Body, err)
			}
			if tc.code != "" && e.Code != tc.code {
				t.Errorf("code %q, want %q (%s)", e.Code, tc.code, e.Error)
			}
			if !strings.Contains(e.Error, tc.msg) {
				t.Errorf("error %q does not say %q", e.Error, tc.msg)
			}
			if tc.token == outsider && method == "POST" && string(res.Body) != string(unknown.Body) {
				t.Errorf("refusal %s differs from an unknown service's %s", res.Body, unknown.Body)
			}
			if res.StatusCode == http.StatusInternalServerError {
				t.Errorf("status %d", res.StatusCode)
			}
		})
	}

	t.Run("grpc", func(t *testing.T) { testGRPCRefusals(t, f, clsIn, outsider, inferrer) })

	// Allowed calls are sampled at rate 1; every denial is recorded.
	t.Run("audit", func(t *testing.T) {
		isAllow := func(r store.AuditRecord) bool {
			return r.Action == audit.ActionInferenceAllow && r.TargetKind == "model-service" && r.TargetDomain == domain && r.TargetID == "cls" && r.Outcome == "success"
		}
		isDeny := func(r store.AuditRecord) bool {
			return r.Action == "access.deny" && r.TargetKind == "model-service" && r.TargetDomain == domain && r.TargetID == "cls" && r.Outcome == "denied"
		}
		recs := f.s.WaitAuditRecords(t, "inference.allow and access.deny", func(recs []store.AuditRecord) bool {
			// At least the calls of the reader and the inferrer above, and
			// the outsider's REST and gRPC calls.
			return apptest.CountAudit(recs, isAllow) >= 3 && apptest.CountAudit(recs, isDeny) >= 4
		})
		for _, r := range recs {
			// At rate 1 each record stands for its own call alone.
			if isAllow(r) && r.Reason != "calls=1" {
				t.Errorf("inference.allow record %d says %q, want calls=1", r.Seq, r.Reason)
			}
			if (isAllow(r) || isDeny(r)) && (r.Actor == "" || r.RequestID == "") {
				t.Errorf("record %d has no actor or request id: %+v", r.Seq, r)
			}
		}
	})
}

func slicesClone(b []byte) []byte { return append([]byte(nil), b...) }

func testGRPCRefusals(t *testing.T, f *fixture, clsIn tensor.Tensor, outsider, inferrer string) {
	admin, anon, out, in := f.grpcClient(t, f.admin), f.grpcClient(t, ""), f.grpcClient(t, outsider), f.grpcClient(t, inferrer)
	raw := func(name, dt string, shape []int64, data []byte) *oippb.ModelInferRequest {
		return &oippb.ModelInferRequest{ModelName: "cls",
			Inputs:           []*oippb.ModelInferRequest_InferInputTensor{{Name: name, Datatype: dt, Shape: shape}},
			RawInputContents: [][]byte{data}}
	}
	good := func() *oippb.ModelInferRequest { return raw("x", "FP32", clsShape, clsIn.Data) }
	withModel := func(name, version string) *oippb.ModelInferRequest {
		r := good()
		r.ModelName, r.ModelVersion = name, version
		return r
	}
	unknownOut := good()
	unknownOut.Outputs = []*oippb.ModelInferRequest_InferRequestedOutputTensor{{Name: "nope"}}
	missing := &oippb.ModelInferRequest{ModelName: "cls"}
	rawAndTyped := good()
	rawAndTyped.Inputs[0].Contents = &oippb.InferTensorContents{Fp32Contents: floatsOf(clsIn.Data)}
	extraRaw := good()
	extraRaw.RawInputContents = append(extraRaw.RawInputContents, clsIn.Data)
	typedShort := &oippb.ModelInferRequest{ModelName: "cls", Inputs: []*oippb.ModelInferRequest_InferInputTensor{{
		Name: "x", Datatype: "FP32", Shape: clsShape, Contents: &oippb.InferTensorContents{Fp32Contents: []float32{1, 2}}}}}

	_, unknownErr := admin.ModelInfer(t.Context(), withModel("nope", ""))
	if status.Code(unknownErr) != codes.NotFound {
		t.Fatalf("unknown model: %v", unknownErr)
	}
	for _, tc := range []struct {
		name   string
		c      oippb.GRPCInferenceServiceClient
		req    *oippb.ModelInferRequest
		code   codes.Code
		msg    string
		hidden bool // the same answer as for an unknown service
	}{
		{"wrong datatype", admin, raw("x", "FP64", clsShape, append(slicesClone(clsIn.Data), clsIn.Data...)), codes.InvalidArgument, "datatype FP64, but the model expects FP32", false},
		{"shape mismatch", admin, raw("x", "FP32", []int64{1, 4, 48, 48}, clsIn.Data), codes.InvalidArgument, "dimension 1", false},
		{"raw length not the shape's", admin, raw("x", "FP32", clsShape, clsIn.Data[:100]), codes.InvalidArgument, "needs 36864 bytes of FP32 but data has 100 bytes", false},
		{"typed length not the shape's", admin, typedShort, codes.InvalidArgument, "has 9216 elements but fp32_contents has 2", false},
		{"huge dimensions", admin, raw("x", "FP32", []int64{1 << 40, 3, 1 << 40, 1 << 40}, clsIn.Data[:4]), codes.ResourceExhausted, "has more than 67108864 elements", false},
		{"unknown input", admin, raw("y", "FP32", clsShape, clsIn.Data), codes.InvalidArgument, `unknown input "y"`, false},
		{"raw and typed contents", admin, rawAndTyped, codes.InvalidArgument, "", false},
		{"more raw contents than inputs", admin, extraRaw, codes.InvalidArgument, "", false},
		{"missing input", admin, missing, codes.InvalidArgument, "no inputs", false},
		{"unknown output", admin, unknownOut, codes.InvalidArgument, `unknown output "nope"`, false},
		{"wrong version", admin, withModel("cls", "9.9"), codes.NotFound, `not "9.9"`, false},
		{"message over the limit", admin, raw("x", "FP32", []int64{1, 3, 48, 2048}, make([]byte, 4*3*48*2048)), codes.ResourceExhausted, "larger than max", false},
		{"no token", anon, good(), codes.Unauthenticated, "", false},
		{"caller without infer", out, good(), codes.NotFound, "", true},
		{"caller with infer", in, good(), codes.OK, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.c.ModelInfer(t.Context(), tc.req)
			st := status.Convert(err)
			if st.Code() != tc.code {
				t.Fatalf("code %v (%s), want %v", st.Code(), st.Message(), tc.code)
			}
			if !strings.Contains(st.Message(), tc.msg) {
				t.Errorf("message %q does not say %q", st.Message(), tc.msg)
			}
			if tc.hidden && st.Message() != status.Convert(unknownErr).Message() {
				t.Errorf("refusal %q differs from an unknown service's %q", st.Message(), status.Convert(unknownErr).Message())
			}
		})
	}
	// Metadata and readiness are hidden the same way.
	if _, err := out.ModelMetadata(t.Context(), &oippb.ModelMetadataRequest{Name: "cls"}); status.Code(err) != codes.NotFound {
		t.Errorf("ModelMetadata without infer: %v", err)
	}
	if _, err := out.ModelReady(t.Context(), &oippb.ModelReadyRequest{Name: "cls"}); status.Code(err) != codes.NotFound {
		t.Errorf("ModelReady without infer: %v", err)
	}
}

// testConcurrency sends 32 different inputs at once, over REST (binary)
// and gRPC alternately: each must get the answer to its own input.
func testConcurrency(t *testing.T, f *fixture, clsPath string) {
	const n = 32
	ins := make([][]tensor.Tensor, n)
	for i := range ins {
		ins[i] = []tensor.Tensor{{Name: "x", Datatype: tensor.FP32, Shape: clsShape, Data: f32bytes(image(100 + i))}}
	}
	want := reference(t, clsPath, ins...)
	// The check is only as good as the answers are distinct.
	seen := map[string]int{}
	for i, w := range want {
		for _, o := range w {
			if j, dup := seen[string(o.Data)]; dup {
				t.Fatalf("inputs %d and %d give the same answer: pick other inputs", j, i)
			}
			seen[string(o.Data)] = i
		}
	}
	c := f.grpcClient(t, f.admin)
	var wg sync.WaitGroup
	got := make([][]tensor.Tensor, n)
	ids := make([]string, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			id := "c-" + strconv.Itoa(i)
			if i%2 == 0 {
				r, err := c.ModelInfer(t.Context(), inference.RequestToGRPC("cls", "", &inference.Request{ID: id, Inputs: ins[i]}))
				if err != nil {
					errs[i] = err
					return
				}
				got[i], ids[i] = grpcTensors(t, r), r.GetId()
				return
			}
			head := mustJSON(t, jsonRequest{ID: id, Inputs: []jsonInput{{Name: "x", Datatype: "FP32", Shape: clsShape,
				Parameters: map[string]any{"binary_data_size": len(ins[i][0].Data)}}}, Parameters: map[string]any{"binary_data_output": true}})
			res := f.post(t, "POST", "/v2/models/cls/infer", f.admin, append(head, ins[i][0].Data...), map[string]string{
				inference.HeaderInferenceHeaderContentLength: strconv.Itoa(len(head))})
			if res.StatusCode != http.StatusOK {
				errs[i] = fmt.Errorf("status %d: %s", res.StatusCode, res.Body)
				return
			}
			r := decoded(t, res)
			got[i], ids[i] = r.Outputs, r.ID
		})
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("request %d: %v", i, errs[i])
		}
		if ids[i] != "c-"+strconv.Itoa(i) {
			t.Errorf("request %d got the id %q", i, ids[i])
		}
		sameOutputs(t, got[i], want[i], 0)
	}
}

// testMetrics checks the gateway's and the runtime's series after the
// calls above.
func testMetrics(t *testing.T, f *fixture) {
	res := f.s.Do(t, "GET", "/metrics", f.admin, nil)
	apptest.WantStatus(t, res, http.StatusOK)
	body := string(res.Body)
	for _, want := range []string{
		`rampart_inference_requests_total{code="200",protocol="rest",service="cls"} `,
		`rampart_inference_requests_total{code="200",protocol="grpc",service="cls"} `,
		`rampart_inference_requests_total{code="400",protocol="rest",service="cls"} `,
		`rampart_inference_requests_total{code="400",protocol="grpc",service="cls"} `,
		`rampart_inference_requests_total{code="200",protocol="rest",service="rf"} `,
		`rampart_inference_request_seconds_count{protocol="rest",service="cls"} `,
		`rampart_inference_request_seconds_count{protocol="grpc",service="cls"} `,
		`rampart_inference_queue_seconds_count{service="cls"} `,
		`rampart_inference_worker_seconds_count{service="cls"} `,
		`rampart_inference_worker_seconds_count{service="rf"} `,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	// Refusals before a service is found are no service's requests: the
	// series carry only names of existing services.
	if strings.Contains(body, `service="nope"`) {
		t.Error(`/metrics has a series for the unknown service "nope"`)
	}
}

// about1000 reports whether a Retry-After value is the 1000 s refill time
// (less what the test itself took).
func about1000(v string) bool {
	n, err := strconv.Atoi(v)
	return err == nil && n >= 900 && n <= 1000
}

// TestRateLimit runs a server whose callers may send two inference
// requests and then one every 1000 s: the third is refused with 429 and a
// Retry-After, over REST and gRPC, while another caller is unaffected.
func TestRateLimit(t *testing.T) {
	t.Parallel()
	f := start(t, func(c *config.Config) {
		c.Inference.PrincipalBurst = 2
		c.Inference.PrincipalRate = 0.001
	})
	rfPath := testmodels.RandomForest(t)
	f.deploy(t, "rf", rfPath)
	otherID, other := f.newUser(t, "other")
	f.grant(t, otherID, "infer")
	in := tensor.Tensor{Name: "X", Datatype: tensor.FP32, Shape: []int64{1, 4}, Data: f32bytes([]float32{5.1, 3.5, 1.4, 0.2})}
	body := mustJSON(t, jsonRequest{Inputs: []jsonInput{{Name: "X", Datatype: "FP32", Shape: in.Shape, Data: floatsOf(in.Data)}}})
	infer := func(tok string) apptest.Response { return f.post(t, "POST", "/v2/models/rf/infer", tok, body, nil) }

	for range 2 {
		apptest.WantStatus(t, infer(f.admin), http.StatusOK)
	}
	res := infer(f.admin)
	msg := apptest.WantError(t, res, http.StatusTooManyRequests, "rate_limited")
	if !strings.Contains(msg, "too fast") {
		t.Errorf("429 message %q", msg)
	}
	// The bucket refills one token per 1000 s.
	if !about1000(res.Header.Get("Retry-After")) {
		t.Errorf("Retry-After %q, want about 1000 s", res.Header.Get("Retry-After"))
	}
	var header metadata.MD
	_, err := f.grpcClient(t, f.admin).ModelInfer(t.Context(), inference.RequestToGRPC("rf", "", &inference.Request{Inputs: []tensor.Tensor{in}}), grpc.Header(&header))
	if st := status.Convert(err); st.Code() != codes.ResourceExhausted || !strings.Contains(st.Message(), "too fast") {
		t.Errorf("gRPC over the limit: %v", err)
	}
	if ra := header.Get("retry-after"); len(ra) != 1 || !about1000(ra[0]) {
		t.Errorf("gRPC retry-after metadata %q, want about 1000 s", ra)
	}
	// Requests that are not inference calls are not counted.
	apptest.WantStatus(t, f.s.Do(t, "GET", "/v2/models/rf", f.admin, nil), http.StatusOK)

	// Another caller has a bucket of its own.
	apptest.WantStatus(t, infer(other), http.StatusOK)
	_, err = f.grpcClient(t, other).ModelInfer(t.Context(), inference.RequestToGRPC("rf", "", &inference.Request{Inputs: []tensor.Tensor{in}}))
	if err != nil {
		t.Errorf("gRPC of another caller: %v", err)
	}
	apptest.WantError(t, infer(other), http.StatusTooManyRequests, "rate_limited")

	m := string(f.s.Do(t, "GET", "/metrics", f.admin, nil).Body)
	for _, want := range []string{
		`rampart_inference_requests_total{code="429",protocol="rest",service="rf"} 2`,
		`rampart_inference_requests_total{code="429",protocol="grpc",service="rf"} 1`,
		`rampart_inference_requests_total{code="200",protocol="rest",service="rf"} 3`,
	} {
		if !strings.Contains(m, want+"\n") {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}
