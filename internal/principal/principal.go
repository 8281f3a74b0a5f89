// Package principal defines who is making a request. Authenticators produce a
// Principal from verified credentials only (a token, a client certificate);
// it is never built from a header a client can set.
//
// It is a leaf package so identity, access and httpapi can share the type
// without importing each other.
package principal

import "context"

// Kind says what sort of subject a principal is.
type Kind string

const (
	User           Kind = "user"
	ServiceAccount Kind = "service-account"
)

// Principal is an authenticated subject. It carries no privileges: those are
// looked up per request so revocation takes effect at once.
type Principal struct {
	ID     string
	Kind   Kind
	Groups []string
	Admin  bool
}

type contextKey struct{}

// WithContext returns a copy of ctx carrying p.
func WithContext(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, contextKey{}, p)
}

// FromContext returns the principal in ctx, if any.
func FromContext(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(contextKey{}).(Principal)
	return p, ok
}
