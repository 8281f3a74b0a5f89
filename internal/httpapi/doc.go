// Package httpapi is Rampart's HTTP front door: the router, the fixed
// middleware chain, the error type handlers return, JSON helpers, and the
// health, readiness and metrics endpoints.
//
// Every route declares whether it is Public; every other route passes
// authentication, authorisation and audit, which deny until a real
// implementation is plugged in. Identity never comes from a header a client
// can set, and internal error details never reach the client.
package httpapi
