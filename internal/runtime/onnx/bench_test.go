package onnx

import (
	"testing"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/rampart-ml/rampart/internal/onnxmeta/testmodels"
	"github.com/rampart-ml/rampart/internal/tensor"
)

// The in-process baselines of issue 8: what one Run costs with no process,
// sandbox or network in the way. Not part of make test.

func BenchmarkPaddleClsInProcess(b *testing.B) {
	s := open(b, testmodels.Path(b, testmodels.OCRClassifier))
	in := []tensor.Tensor{clsInput(0)}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Run(in, nil); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRandomForestInProcess(b *testing.B) {
	s := open(b, testmodels.RandomForest(b))
	in := []tensor.Tensor{fp32("X", []int64{1, 4}, 5.9, 3.0, 5.1, 1.8)}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Run(in, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPaddleClsInProcessParallel: one session shared by GOMAXPROCS
// goroutines, one intra-op thread each.
func BenchmarkPaddleClsInProcessParallel(b *testing.B) {
	s := open(b, testmodels.Path(b, testmodels.OCRClassifier))
	in := []tensor.Tensor{clsInput(0)}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := s.Run(in, nil); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkRandomForestBinding calls the binding directly, input tensor made
// once, to show what this package's conversions cost on top (same run).
func BenchmarkRandomForestBinding(b *testing.B) {
	opts, err := sessionOptions(Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = opts.Destroy() }()
	s, err := ort.NewDynamicAdvancedSession(testmodels.RandomForest(b), []string{"X"}, []string{"output_label"}, opts)
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = s.Destroy() }()
	x, err := ort.NewTensor(ort.NewShape(1, 4), []float32{5.9, 3.0, 5.1, 1.8})
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = x.Destroy() }()
	b.ReportAllocs()
	for b.Loop() {
		out := []ort.Value{nil}
		if err := s.Run([]ort.Value{x}, out); err != nil {
			b.Fatal(err)
		}
		_ = out[0].Destroy()
	}
}
