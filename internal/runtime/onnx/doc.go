// Package onnx runs ONNX models in process with ONNX Runtime (ORT 1.24.1,
// loaded at run time from a shared library through the cgo binding
// github.com/yalue/onnxruntime_go v1.27.0).
//
// It owns the ORT environment (Init, once per process), sessions (Open, one
// per model file), and the conversion between tensor.Tensor (the KServe v2
// datatypes and binary layout) and ORT values. Inputs are handed to ORT over
// their tensor.Data without a copy where the binding allows it; outputs are
// allocated by ORT and copied into tensor.Data once (or, for outputs whose
// shape the model fixes, written by ORT straight into tensor.Data).
//
// It must never: decide who may run a model (the caller checks access), log
// or return tensor contents in errors, or let bad input reach the binding in
// a form that makes it panic (zero-input models, scalars of types it cannot
// wrap, strings with NUL bytes are refused with an error first).
//
// ORT is C++ code running in this process: a model that exploits a bug in it
// owns the process. Untrusted models belong in the sandboxed worker process,
// which uses this package inside the sandbox.
package onnx
