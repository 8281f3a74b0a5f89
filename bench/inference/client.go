package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/rampart-ml/rampart/internal/inference/oippb"
	"github.com/rampart-ml/rampart/internal/tensor"
)

// restBody is a v2 REST request for t: JSON (data as a number array) or,
// with binary, the binary tensor extension (JSON header, then the raw
// little-endian bytes). It returns the body and the header length (-1 for
// plain JSON).
func restBody(t tensor.Tensor, binaryData bool) ([]byte, int, error) {
	in := map[string]any{"name": t.Name, "shape": t.Shape, "datatype": t.Datatype.String()}
	if !binaryData {
		vals := make([]float64, len(t.Data)/4)
		for i := range vals {
			vals[i] = float64(math.Float32frombits(leUint32(t.Data[4*i:])))
		}
		in["data"] = vals
		b, err := json.Marshal(map[string]any{"inputs": []any{in}})
		return b, -1, err
	}
	in["parameters"] = map[string]any{"binary_data_size": len(t.Data)}
	h, err := json.Marshal(map[string]any{"inputs": []any{in}})
	if err != nil {
		return nil, 0, err
	}
	return append(h, t.Data...), len(h), nil
}

func leUint32(b []byte) uint32 {
	return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
}

// restCaller sends one prepared request per call over one keep-alive TLS
// connection (HTTP/1.1, as most REST clients).
type restCaller struct {
	client            *http.Client
	url, token        string
	body              []byte
	headerLen         int
	responseBytesSeen int
}

func newRESTCaller(caFile, base, service, token string, body []byte, headerLen int) (*restCaller, error) {
	pool, err := certPool(caFile)
	if err != nil {
		return nil, err
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, MaxIdleConnsPerHost: 4}
	return &restCaller{client: &http.Client{Transport: tr}, url: base + "/v2/models/" + service + "/infer",
		token: token, body: body, headerLen: headerLen}, nil
}

func (c *restCaller) call() error {
	req, err := http.NewRequest("POST", c.url, bytes.NewReader(c.body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if c.headerLen >= 0 {
		req.Header.Set("Content-Type", "application/octet-stream")
		req.Header.Set("Inference-Header-Content-Length", strconv.Itoa(c.headerLen))
	} else {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := c.client.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	n, err := io.Copy(io.Discard, res.Body)
	if err != nil {
		return err
	}
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("infer: HTTP %d", res.StatusCode)
	}
	c.responseBytesSeen = int(n)
	return nil
}

func certPool(caFile string) (*x509.CertPool, error) {
	pemBytes, err := os.ReadFile(caFile) // #nosec G304 -- the server's CA file
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pemBytes) {
		return nil, fmt.Errorf("no certificate in %s", caFile)
	}
	return pool, nil
}

// grpcRequest is the ModelInfer request for t, the tensor in
// raw_input_contents (what clients send for speed).
func grpcRequest(service string, t tensor.Tensor) *oippb.ModelInferRequest {
	return &oippb.ModelInferRequest{ModelName: service,
		Inputs:           []*oippb.ModelInferRequest_InferInputTensor{{Name: t.Name, Datatype: t.Datatype.String(), Shape: t.Shape}},
		RawInputContents: [][]byte{t.Data}}
}

// grpcCaller sends ModelInfer over one TLS HTTP/2 connection.
type grpcCaller struct {
	conn   *grpc.ClientConn
	client oippb.GRPCInferenceServiceClient
	ctx    context.Context
	req    *oippb.ModelInferRequest
}

func newGRPCCaller(caFile, addr, token string, req *oippb.ModelInferRequest) (*grpcCaller, error) {
	pool, err := certPool(caFile)
	if err != nil {
		return nil, err
	}
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12})))
	if err != nil {
		return nil, err
	}
	ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+token)
	return &grpcCaller{conn: conn, client: oippb.NewGRPCInferenceServiceClient(conn), ctx: ctx, req: req}, nil
}

func (c *grpcCaller) call() error {
	_, err := c.client.ModelInfer(c.ctx, c.req)
	return err
}

// loadResult is what a load generator measured.
type loadResult struct {
	rps      float64
	p50, p99 time.Duration
	requests int64
	raw      string // the tool's own output
}

// runGHZ loads the server over gRPC with ghz: c concurrent streams over
// conns connections for d.
func runGHZ(ghz, work, caFile, addr, token string, req *oippb.ModelInferRequest, c, conns int, d time.Duration) (loadResult, []string, error) {
	data, err := protojson.Marshal(req)
	if err != nil {
		return loadResult{}, nil, err
	}
	dataFile := filepath.Join(work, "ghz-"+req.ModelName+".json")
	if err := os.WriteFile(dataFile, data, 0o600); err != nil {
		return loadResult{}, nil, err
	}
	proto, err := filepath.Abs("internal/inference/oippb/open_inference_grpc.proto")
	if err != nil {
		return loadResult{}, nil, err
	}
	args := []string{"--proto", proto, "--call", "inference.GRPCInferenceService/ModelInfer",
		"--cacert", caFile, "-D", dataFile, "-m", `{"authorization":"Bearer {TOKEN}"}`,
		"-c", strconv.Itoa(c), "--connections", strconv.Itoa(conns), "-z", d.String(), "--format", "json", addr}
	shown := strings.Join(args, " ")
	args[9] = `{"authorization":"Bearer ` + token + `"}`
	// #nosec G204 -- the pinned ghz with the benchmark's own arguments
	out, err := exec.Command(ghz, args...).Output()
	if err != nil {
		return loadResult{}, nil, fmt.Errorf("ghz: %w", err)
	}
	var r struct {
		Count    int64   `json:"count"`
		RPS      float64 `json:"rps"`
		Statuses map[string]int64
		Lat      []struct {
			Percentage int   `json:"percentage"`
			Latency    int64 `json:"latency"`
		} `json:"latencyDistribution"`
		StatusCodeDistribution map[string]int64 `json:"statusCodeDistribution"`
	}
	if err := json.Unmarshal(out, &r); err != nil {
		return loadResult{}, nil, fmt.Errorf("ghz output: %w", err)
	}
	// ghz cuts the calls in flight when the duration ends; those (at most
	// one per concurrent request) are not failures of the server.
	var failed int64
	for code, n := range r.StatusCodeDistribution {
		if code != "OK" {
			failed += n
		}
	}
	if failed > int64(c) {
		return loadResult{}, nil, fmt.Errorf("ghz: %d calls failed: %v", failed, r.StatusCodeDistribution)
	}
	res := loadResult{rps: r.RPS, requests: r.Count, raw: summarizeGHZ(out)}
	for _, l := range r.Lat {
		switch l.Percentage {
		case 50:
			res.p50 = time.Duration(l.Latency)
		case 99:
			res.p99 = time.Duration(l.Latency)
		}
	}
	return res, []string{"ghz " + shown}, nil
}

// summarizeGHZ keeps ghz's JSON without the per-call details.
func summarizeGHZ(out []byte) string {
	var m map[string]any
	if json.Unmarshal(out, &m) != nil {
		return string(out)
	}
	delete(m, "details")
	delete(m, "histogram")
	b, _ := json.Marshal(m)
	return string(b)
}

const wrkScript = `-- POST the prepared body with the bearer token.
local f = assert(io.open(os.getenv("BENCH_BODY"), "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Authorization"] = "Bearer " .. os.getenv("BENCH_TOKEN")
wrk.headers["Content-Type"] = os.getenv("BENCH_CONTENT_TYPE")
local hl = os.getenv("BENCH_HEADER_LENGTH")
if hl ~= "" then wrk.headers["Inference-Header-Content-Length"] = hl end
`

var (
	wrkRPS  = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)
	wrkReqs = regexp.MustCompile(`(\d+) requests in`)
	wrkPct  = regexp.MustCompile(`(?m)^\s+(50|99)(?:\.000)?%\s+([0-9.]+)(us|ms|s)\s*$`)
	wrkBad  = regexp.MustCompile(`Non-2xx or 3xx responses: (\d+)`)
	wrkErrs = regexp.MustCompile(`Socket errors: .*`)
)

// runWRK loads the REST endpoint with wrk: c connections on one thread.
func runWRK(wrk, work, base, service, token string, body []byte, headerLen, c int, d time.Duration) (loadResult, []string, error) {
	bodyFile := filepath.Join(work, "wrk-"+service+".body")
	script := filepath.Join(work, "wrk.lua")
	if err := os.WriteFile(bodyFile, body, 0o600); err != nil {
		return loadResult{}, nil, err
	}
	if err := os.WriteFile(script, []byte(wrkScript), 0o600); err != nil {
		return loadResult{}, nil, err
	}
	ct, hl := "application/json", ""
	if headerLen >= 0 {
		ct, hl = "application/octet-stream", strconv.Itoa(headerLen)
	}
	args := []string{"-t1", "-c" + strconv.Itoa(c), "-d" + strconv.Itoa(int(d.Seconds())) + "s", "--latency", "-s", script, base + "/v2/models/" + service + "/infer"}
	// #nosec G204 -- wrk with the benchmark's own arguments
	cmd := exec.Command(wrk, args...)
	cmd.Env = append(os.Environ(), "BENCH_BODY="+bodyFile, "BENCH_TOKEN="+token, "BENCH_CONTENT_TYPE="+ct, "BENCH_HEADER_LENGTH="+hl)
	out, err := cmd.Output()
	if err != nil {
		return loadResult{}, nil, fmt.Errorf("wrk: %w", err)
	}
	s := string(out)
	if m := wrkBad.FindStringSubmatch(s); m != nil {
		return loadResult{}, nil, fmt.Errorf("wrk: %s responses were not 200:\n%s", m[1], s)
	}
	if m := wrkErrs.FindString(s); m != "" {
		return loadResult{}, nil, fmt.Errorf("wrk: %s", m)
	}
	m := wrkRPS.FindStringSubmatch(s)
	if m == nil {
		return loadResult{}, nil, fmt.Errorf("wrk: no Requests/sec in:\n%s", s)
	}
	res := loadResult{raw: s}
	res.rps, _ = strconv.ParseFloat(m[1], 64)
	if m := wrkReqs.FindStringSubmatch(s); m != nil {
		res.requests, _ = strconv.ParseInt(m[1], 10, 64)
	}
	for _, p := range wrkPct.FindAllStringSubmatch(s, -1) {
		v, _ := strconv.ParseFloat(p[2], 64)
		unit := map[string]time.Duration{"us": time.Microsecond, "ms": time.Millisecond, "s": time.Second}[p[3]]
		if p[1] == "50" {
			res.p50 = time.Duration(v * float64(unit))
		} else {
			res.p99 = time.Duration(v * float64(unit))
		}
	}
	cmdline := fmt.Sprintf("BENCH_BODY=%s BENCH_CONTENT_TYPE=%s BENCH_HEADER_LENGTH=%s BENCH_TOKEN=… wrk %s", bodyFile, ct, hl, strings.Join(args, " "))
	return res, []string{cmdline}, nil
}
