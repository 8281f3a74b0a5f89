package gateway

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/rampart-ml/rampart/internal/httpapi"
	"github.com/rampart-ml/rampart/internal/inference"
	"github.com/rampart-ml/rampart/internal/principal"
)

// Mount registers the REST routes and, on the same port, the gRPC service
// (HTTP/2 requests to /inference.GRPCInferenceService/...). Every route
// needs an authenticated caller; the handlers check `infer` on the
// service's domain.
func (g *Gateway) Mount(api *httpapi.Server) error {
	grpcRoutes, err := g.grpcRoutes()
	if err != nil {
		return err
	}
	body := g.opt.Limits.MaxBodyBytes
	if body <= 0 {
		body = inference.DefaultLimits().MaxBodyBytes
	}
	routes := []httpapi.Route{
		{Pattern: "GET /v2", Handler: g.serverMetadata},
		{Pattern: "GET /v2/health/live", Handler: g.live},
		{Pattern: "GET /v2/health/ready", Handler: g.live},
		{Pattern: "GET /v2/models/{name}", Handler: g.modelMetadata},
		{Pattern: "GET /v2/models/{name}/versions/{version}", Handler: g.modelMetadata},
		{Pattern: "GET /v2/models/{name}/ready", Handler: g.modelReady},
		{Pattern: "GET /v2/models/{name}/versions/{version}/ready", Handler: g.modelReady},
		{Pattern: "POST /v2/models/{name}/infer", MaxBodyBytes: body, Handler: g.infer},
		{Pattern: "POST /v2/models/{name}/versions/{version}/infer", MaxBodyBytes: body, Handler: g.infer},
	}
	for _, rt := range append(routes, grpcRoutes...) {
		rt.Access = httpapi.Authenticated
		api.Handle(rt)
	}
	return nil
}

func principalOf(r *http.Request) principal.Principal {
	p, _ := principal.FromContext(r.Context())
	return p
}

// ServerMetadata is the body of GET /v2.
type ServerMetadata struct {
	Name       string   `json:"name"`
	Version    string   `json:"version"`
	Extensions []string `json:"extensions"`
}

func (g *Gateway) serverMetadata(w http.ResponseWriter, _ *http.Request) error {
	httpapi.WriteJSON(w, http.StatusOK, ServerMetadata{Name: g.opt.ServerName, Version: g.opt.ServerVersion,
		Extensions: []string{"binary_tensor_data"}})
	return nil
}

// live answers the server's liveness and readiness: a request that got
// here was served.
func (g *Gateway) live(w http.ResponseWriter, r *http.Request) error {
	key := "live"
	if r.URL.Path == "/v2/health/ready" {
		key = "ready"
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]bool{key: true})
	return nil
}

// TensorMetadata is one input or output in ModelMetadata.
type TensorMetadata struct {
	Name     string  `json:"name"`
	Datatype string  `json:"datatype"`
	Shape    []int64 `json:"shape"`
}

// ModelMetadata is the body of GET /v2/models/{name}.
type ModelMetadata struct {
	Name     string           `json:"name"`
	Versions []string         `json:"versions"`
	Platform string           `json:"platform"`
	Inputs   []TensorMetadata `json:"inputs"`
	Outputs  []TensorMetadata `json:"outputs"`
}

// platform is the v2 name of the runtime.
const platform = "onnxruntime_onnx"

func (g *Gateway) modelMetadata(w http.ResponseWriter, r *http.Request) error {
	svc, err := g.resolve(r.Context(), principalOf(r), r.PathValue("name"), r.PathValue("version"))
	if err != nil {
		return err
	}
	sig, ok := svc.Signature()
	if !ok {
		return httpapi.Error(http.StatusServiceUnavailable, "not_ready", "the model service is not running; its metadata comes from its workers", nil)
	}
	httpapi.WriteJSON(w, http.StatusOK, metadataOf(svc.Name, svc.ModelVersion, sig))
	return nil
}

func metadataOf(name, version string, sig inference.Signature) ModelMetadata {
	conv := func(ios []inference.IO) []TensorMetadata {
		out := make([]TensorMetadata, 0, len(ios))
		for _, io := range ios {
			shape := io.Shape
			if shape == nil {
				shape = []int64{}
			}
			out = append(out, TensorMetadata{Name: io.Name, Datatype: io.Datatype.String(), Shape: shape})
		}
		return out
	}
	return ModelMetadata{Name: name, Versions: []string{version}, Platform: platform,
		Inputs: conv(sig.Inputs), Outputs: conv(sig.Outputs)}
}

// modelReady answers 200 when the service can take calls and, as the
// protocol says, a 4xx (400) when it cannot.
func (g *Gateway) modelReady(w http.ResponseWriter, r *http.Request) error {
	svc, err := g.resolve(r.Context(), principalOf(r), r.PathValue("name"), r.PathValue("version"))
	if err != nil {
		return err
	}
	if !svc.Ready() {
		return httpapi.Error(http.StatusBadRequest, "not_ready", "the model service is not ready", nil)
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]any{"name": svc.Name, "ready": true})
	return nil
}

// infer is POST .../infer: JSON or the binary tensor data extension.
func (g *Gateway) infer(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	p := principalOf(r)
	svc, err := g.resolve(ctx, p, r.PathValue("name"), r.PathValue("version"))
	if err != nil {
		return err
	}
	c := &call{svc: svc, protocol: "rest", start: time.Now()}
	err = g.inferREST(w, r, p, c)
	if err != nil {
		var rl *rateLimitedError
		if errors.As(err, &rl) {
			w.Header().Set("Retry-After", retryAfterSeconds(rl.retryAfter))
		}
		// Count the status the client gets: an *HTTPError's or, for an
		// audit log that takes no records, a StatusError's 503.
		g.observe(c, httpStatusOf(err))
		return err
	}
	g.observe(c, http.StatusOK)
	return nil
}

func (g *Gateway) inferREST(w http.ResponseWriter, r *http.Request, p principal.Principal, c *call) error {
	ctx := r.Context()
	if err := g.admit(p, c.svc); err != nil {
		return err
	}
	sig, ok := c.svc.Signature()
	if !ok {
		return runtimeError(errNotRunning)
	}
	hl, err := inference.ParseHeaderLength(r.Header.Get(inference.HeaderInferenceHeaderContentLength))
	if err != nil {
		return codecError(err)
	}
	body, err := inference.ReadBody(r.Body, g.opt.Limits)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return httpapi.Error(http.StatusRequestEntityTooLarge, "too_large", "request body is larger than "+strconv.FormatInt(mbe.Limit, 10)+" bytes", err)
		}
		return codecError(err)
	}
	req, err := decodeREST(body, hl, g.opt.Limits, sig)
	if err != nil {
		return err
	}
	if err := g.record(ctx, c.svc); err != nil {
		return err
	}
	names := make([]string, 0, len(req.Outputs))
	for _, o := range req.Outputs {
		names = append(names, o.Name)
	}
	outputs, err := c.svc.Infer(ctx, req.Inputs, names)
	if err != nil {
		return runtimeError(err)
	}
	resp, err := inference.PrepareResponse(c.svc.Name, c.svc.ModelVersion, req.ID, outputs, req.WantBinary)
	if err != nil {
		return codecError(err)
	}
	h := w.Header()
	h.Set("Content-Type", resp.ContentType)
	h.Set("Content-Length", strconv.FormatInt(resp.Len(), 10))
	if resp.HeaderLen >= 0 {
		h.Set(inference.HeaderInferenceHeaderContentLength, strconv.FormatInt(resp.HeaderLen, 10))
	}
	w.WriteHeader(http.StatusOK)
	_, _ = resp.WriteTo(w) // the client went away: nothing to tell it
	return nil
}

// decodeREST decodes a REST request body (headerLen: the parsed
// Inference-Header-Content-Length, -1 when absent) and validates it
// against the model's signature: all the parsing of untrusted REST input
// the gateway does before anything reaches a worker. Errors are 4xx
// *httpapi.HTTPErrors.
func decodeREST(body []byte, headerLen int64, lim inference.Limits, sig inference.Signature) (*inference.Request, error) {
	req, err := inference.DecodeRequest(body, headerLen, lim)
	if err != nil {
		return nil, codecError(err)
	}
	if err := inference.Validate(req, sig); err != nil {
		return nil, codecError(err)
	}
	return req, nil
}
