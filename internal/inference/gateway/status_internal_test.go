package gateway

import (
	"errors"
	"fmt"
	"net/http"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/rampart-ml/rampart/internal/httpapi"
	"github.com/rampart-ml/rampart/internal/inference"
	"github.com/rampart-ml/rampart/internal/runtime/supervisor"
)

// unavailable is a StatusError like the audit log's when it takes no
// records.
type unavailable struct{}

func (unavailable) Error() string { return "audit queue full: secret detail" }
func (unavailable) HTTPStatus() (int, string, string) {
	return http.StatusServiceUnavailable, "audit_unavailable", "the audit log is unavailable"
}

// TestStatusMapping checks that metrics, REST and gRPC agree on the status
// of every kind of failure, and that internal details never reach a gRPC
// client.
func TestStatusMapping(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		err    error
		status int
		code   codes.Code
		msg    string
	}{
		{"codec 400", codecError(&inference.Error{Status: 400, Msg: "bad shape"}), 400, codes.InvalidArgument, "bad shape"},
		{"codec 413", codecError(&inference.Error{Status: 413, Msg: "too many elements"}), 413, codes.ResourceExhausted, "too many elements"},
		{"not found", notFound, 404, codes.NotFound, "model-service not found"},
		{"rate limited", rateLimited("slow down", 0), 429, codes.ResourceExhausted, "slow down"},
		{"audit unavailable", fmt.Errorf("record: %w", unavailable{}), 503, codes.Unavailable, "the audit log is unavailable"},
		{"not ready", runtimeError(supervisor.ErrNotReady), 503, codes.Unavailable, "the model service is not ready"},
		{"stopped", runtimeError(errNotRunning), 503, codes.Unavailable, "the model service is not ready"},
		{"timeout", runtimeError(fmt.Errorf("call: %w", supervisor.ErrTimeout)), 504, codes.DeadlineExceeded, ""},
		{"model failed", runtimeError(supervisor.ErrModel), 422, codes.InvalidArgument, ""},
		{"unknown error", errors.New("disk on fire"), 500, codes.Internal, "internal error"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := httpStatusOf(tc.err); got != tc.status {
				t.Errorf("httpStatusOf = %d, want %d", got, tc.status)
			}
			st := status.Convert(grpcStatus(tc.err))
			if st.Code() != tc.code {
				t.Errorf("gRPC code %v, want %v", st.Code(), tc.code)
			}
			if tc.msg != "" && st.Message() != tc.msg {
				t.Errorf("gRPC message %q, want %q", st.Message(), tc.msg)
			}
			if st.Message() == "disk on fire" || st.Message() == "audit queue full: secret detail" {
				t.Errorf("gRPC message leaks %q", st.Message())
			}
		})
	}
	if _, ok := errors.AsType[*httpapi.HTTPError](rateLimited("x", 0)); !ok {
		t.Error("a rate limit refusal is no HTTPError")
	}
}
