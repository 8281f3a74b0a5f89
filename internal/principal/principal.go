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
	// ID is stable and unique across kinds and issuers: an account or
	// service account id, or "<issuer name>:<sub>" for a federated user.
	ID   string
	Kind Kind
	// Name is for display (user name, service account name); it is personal
	// data and never goes into logs or audit records.
	Name   string
	Groups []string
	Admin  bool
	// Auditor may read the audit log and resolve pseudonyms.
	Auditor bool
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
