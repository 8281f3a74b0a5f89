package supervisor

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestFailReason(t *testing.T) {
	t.Parallel()
	ortErr := errors.New("start worker for model.onnx: runtime worker could not start: runtime worker: open model: " +
		"open /proc/self/fd/4/model.onnx: Error loading temporary session: Load model from /proc/self/fd/4/model.onnx " +
		`failed:This is an invalid model. In Node, ("", NoSuchOperator, "", -1) : ("x": tensor(float),) -> ("y": tensor(float),) , ` +
		"Error No Op registered for NoSuchOperator with domain_version of 17")
	tests := []struct {
		name   string
		prefix string
		err    error
		want   []string // substrings that must survive
		exact  string   // the whole reason, when short
	}{
		{name: "short", prefix: "did not start: ", err: errors.New("boom"), exact: "did not start: boom"},
		{name: "cause at the end survives", prefix: "the worker did not start 5 times in a row: ", err: ortErr,
			want: []string{"the worker did not start 5 times in a row: start worker", " … ", "No Op registered for NoSuchOperator with domain_version of 17"}},
		{name: "multi-byte runes cut cleanly", prefix: "p: ", err: errors.New(strings.Repeat("é", 300)), want: []string{"p: é", " … "}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := failReason(tc.prefix, tc.err)
			if tc.exact != "" && got != tc.exact {
				t.Errorf("failReason = %q, want %q", got, tc.exact)
			}
			if len(got) > maxReason {
				t.Errorf("failReason is %d bytes, want at most %d: %q", len(got), maxReason, got)
			}
			if !utf8.ValidString(got) {
				t.Errorf("failReason is not valid UTF-8: %q", got)
			}
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("failReason = %q, want it to hold %q", got, w)
				}
			}
		})
	}
}
