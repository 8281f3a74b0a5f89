// Package oippb is the generated Go code of the KServe Open Inference
// Protocol v2 gRPC API (service inference.GRPCInferenceService). It holds
// only generated code and the .proto it comes from; regenerate it with
// `make proto` (scripts/gen-proto.sh), never edit it by hand. Conversions to
// and from Rampart's tensors live in package inference.
package oippb
