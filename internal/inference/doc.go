// Package inference owns the wire formats of the KServe Open Inference
// Protocol v2 and the checks a request passes before it reaches a worker:
// REST request decoding (JSON tensors and the binary tensor data
// extension), response encoding, gRPC conversions (package oippb holds the
// generated code) and validation against a model's signature.
//
// Everything here is a pure function over bytes and tensor.Tensor values:
// no HTTP handlers, no I/O beyond the io.Writer a caller passes, no
// logging. Every problem with a request is an *Error carrying the HTTP
// status and a message safe to show the client; tensor contents never
// appear in a message beyond the one offending element.
package inference
