// Package opa compares access.Policy.Decide with Open Policy Agent (OPA)
// evaluating the same policy in Rego, in-process: a differential test
// (identical decisions on 100,000 random queries) and a benchmark that
// reports both times per decision and their ratio, measured in the same
// run (access control issue: goal ≥ 20× faster than OPA).
//
// The package holds only tests, compiled with the build tag "opa" (`make
// bench-opa`), so `go test ./...` never needs OPA. OPA itself lives in the
// separate module in ./rego, a small program the tests build and feed the
// workload as JSON: Go forbids a module to import another module's
// internal packages, and Rampart's go.mod must never require OPA, so the
// two sides talk through files instead of sharing a process.
package opa
