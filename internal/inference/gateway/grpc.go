package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"

	"github.com/rampart-ml/rampart/internal/httpapi"
	"github.com/rampart-ml/rampart/internal/inference"
	"github.com/rampart-ml/rampart/internal/inference/oippb"
	"github.com/rampart-ml/rampart/internal/principal"
	"github.com/rampart-ml/rampart/internal/runtime/supervisor"
)

// errNotRunning: the service exists but has no workers. It wraps
// supervisor.ErrNotReady so that runtimeError answers 503 not_ready (a
// stopped or failed service is unavailable, not an internal error).
var errNotRunning = fmt.Errorf("not running: %w", supervisor.ErrNotReady)

// grpcRoutes serves inference.GRPCInferenceService (and server reflection,
// so grpcurl works without the .proto) through the httpapi chain: the
// request is authenticated, logged and given a request id like any other;
// a refusal there is an HTTP status, which gRPC clients map to
// Unauthenticated/PermissionDenied/Unavailable as the gRPC spec says.
func (g *Gateway) grpcRoutes() ([]httpapi.Route, error) {
	limit := g.opt.Limits.MaxBodyBytes
	if limit <= 0 {
		limit = inference.DefaultLimits().MaxBodyBytes
	}
	srv := grpc.NewServer(grpc.MaxRecvMsgSize(int(limit)), grpc.MaxSendMsgSize(int(limit)))
	oippb.RegisterGRPCInferenceServiceServer(srv, &grpcService{g: g})
	reflection.Register(srv)
	h := func(w http.ResponseWriter, r *http.Request) error {
		if r.ProtoMajor != 2 {
			return httpapi.Error(http.StatusHTTPVersionNotSupported, "http2_required", "gRPC needs HTTP/2", nil)
		}
		srv.ServeHTTP(w, r)
		return nil
	}
	// A little more than the tensor limit: the protobuf framing around it.
	body := limit + 1<<20
	var routes []httpapi.Route
	for _, svc := range []string{"inference.GRPCInferenceService", "grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection"} {
		routes = append(routes, httpapi.Route{Pattern: "POST /" + svc + "/{method}", MaxBodyBytes: body, Handler: h})
	}
	return routes, nil
}

// grpcService implements the v2 gRPC service; the caller is already
// authenticated (the principal is in the context).
type grpcService struct {
	oippb.UnimplementedGRPCInferenceServiceServer
	g *Gateway
}

func (s *grpcService) ServerLive(context.Context, *oippb.ServerLiveRequest) (*oippb.ServerLiveResponse, error) {
	return &oippb.ServerLiveResponse{Live: true}, nil
}

func (s *grpcService) ServerReady(context.Context, *oippb.ServerReadyRequest) (*oippb.ServerReadyResponse, error) {
	return &oippb.ServerReadyResponse{Ready: true}, nil
}

func (s *grpcService) ServerMetadata(context.Context, *oippb.ServerMetadataRequest) (*oippb.ServerMetadataResponse, error) {
	return &oippb.ServerMetadataResponse{Name: s.g.opt.ServerName, Version: s.g.opt.ServerVersion,
		Extensions: []string{"binary_tensor_data"}}, nil
}

func (s *grpcService) ModelReady(ctx context.Context, in *oippb.ModelReadyRequest) (*oippb.ModelReadyResponse, error) {
	svc, err := s.g.resolve(ctx, principalFrom(ctx), in.GetName(), in.GetVersion())
	if err != nil {
		return nil, grpcStatus(err)
	}
	return &oippb.ModelReadyResponse{Ready: svc.Ready()}, nil
}

func (s *grpcService) ModelMetadata(ctx context.Context, in *oippb.ModelMetadataRequest) (*oippb.ModelMetadataResponse, error) {
	svc, err := s.g.resolve(ctx, principalFrom(ctx), in.GetName(), in.GetVersion())
	if err != nil {
		return nil, grpcStatus(err)
	}
	sig, ok := svc.Signature()
	if !ok {
		return nil, status.Error(codes.Unavailable, "the model service is not running; its metadata comes from its workers")
	}
	md := metadataOf(svc.Name, svc.ModelVersion, sig)
	conv := func(ts []TensorMetadata) []*oippb.ModelMetadataResponse_TensorMetadata {
		out := make([]*oippb.ModelMetadataResponse_TensorMetadata, 0, len(ts))
		for _, t := range ts {
			out = append(out, &oippb.ModelMetadataResponse_TensorMetadata{Name: t.Name, Datatype: t.Datatype, Shape: t.Shape})
		}
		return out
	}
	return &oippb.ModelMetadataResponse{Name: md.Name, Versions: md.Versions, Platform: md.Platform,
		Inputs: conv(md.Inputs), Outputs: conv(md.Outputs)}, nil
}

func (s *grpcService) ModelInfer(ctx context.Context, in *oippb.ModelInferRequest) (*oippb.ModelInferResponse, error) {
	p := principalFrom(ctx)
	svc, err := s.g.resolve(ctx, p, in.GetModelName(), in.GetModelVersion())
	if err != nil {
		return nil, grpcStatus(err)
	}
	c := &call{svc: svc, protocol: "grpc", start: time.Now()}
	resp, err := s.infer(ctx, p, c, in)
	if err != nil {
		var rl *rateLimitedError
		if errors.As(err, &rl) {
			// gRPC has no Retry-After of its own: send the REST header's
			// value as metadata, so clients can back off as long.
			_ = grpc.SetHeader(ctx, metadata.Pairs("retry-after", retryAfterSeconds(rl.retryAfter)))
		}
		st := grpcStatus(err)
		s.g.observe(c, httpStatusOf(err))
		return nil, st
	}
	s.g.observe(c, http.StatusOK)
	return resp, nil
}

func (s *grpcService) infer(ctx context.Context, p principal.Principal, c *call, in *oippb.ModelInferRequest) (*oippb.ModelInferResponse, error) {
	if err := s.g.admit(p, c.svc); err != nil {
		return nil, err
	}
	sig, ok := c.svc.Signature()
	if !ok {
		return nil, runtimeError(errNotRunning)
	}
	req, err := decodeGRPC(in, s.g.opt.Limits, sig)
	if err != nil {
		return nil, err
	}
	if err := s.g.record(ctx, c.svc); err != nil {
		return nil, err
	}
	names := make([]string, 0, len(req.Outputs))
	for _, o := range req.Outputs {
		names = append(names, o.Name)
	}
	outputs, err := c.svc.Infer(ctx, req.Inputs, names)
	if err != nil {
		return nil, runtimeError(err)
	}
	return inference.ToGRPC(c.svc.Name, c.svc.ModelVersion, req.ID, outputs), nil
}

// decodeGRPC is decodeREST for a gRPC request.
func decodeGRPC(in *oippb.ModelInferRequest, lim inference.Limits, sig inference.Signature) (*inference.Request, error) {
	req, err := inference.FromGRPC(in, lim)
	if err != nil {
		return nil, codecError(err)
	}
	if err := inference.Validate(req, sig); err != nil {
		return nil, codecError(err)
	}
	return req, nil
}

func principalFrom(ctx context.Context) principal.Principal {
	p, _ := principal.FromContext(ctx)
	return p
}

// httpStatusOf is the HTTP status an error maps to (500 when it carries
// none).
func httpStatusOf(err error) int {
	var he *httpapi.HTTPError
	if errors.As(err, &he) {
		return he.Status
	}
	var se httpapi.StatusError
	if errors.As(err, &se) {
		st, _, _ := se.HTTPStatus()
		return st
	}
	return http.StatusInternalServerError
}

// grpcStatus maps an error to a gRPC status with the same message the REST
// API would send; internal details never leave the server.
func grpcStatus(err error) error {
	msg := "internal error"
	var he *httpapi.HTTPError
	var se httpapi.StatusError
	switch {
	case errors.As(err, &he):
		msg = he.Msg
	case errors.As(err, &se):
		_, _, msg = se.HTTPStatus()
	}
	code := codes.Internal
	switch httpStatusOf(err) {
	case http.StatusBadRequest, http.StatusUnprocessableEntity:
		code = codes.InvalidArgument
	case http.StatusUnauthorized:
		code = codes.Unauthenticated
	case http.StatusForbidden:
		code = codes.PermissionDenied
	case http.StatusNotFound:
		code = codes.NotFound
	case http.StatusRequestEntityTooLarge, http.StatusTooManyRequests:
		code = codes.ResourceExhausted
	case statusClientClosedRequest:
		code = codes.Canceled
	case http.StatusServiceUnavailable:
		code = codes.Unavailable
	case http.StatusGatewayTimeout:
		code = codes.DeadlineExceeded
	}
	return status.Error(code, msg)
}
