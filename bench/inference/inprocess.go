package main

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rampart-ml/rampart/internal/onnxmeta/testmodels"
	"github.com/rampart-ml/rampart/internal/runtime/onnx"
	"github.com/rampart-ml/rampart/internal/tensor"
)

// model is one benchmarked model and the input sent to it.
type model struct {
	name  string // the service name
	path  string
	input tensor.Tensor
}

func fp32(name string, shape []int64, vals []float32) tensor.Tensor {
	data := make([]byte, 0, 4*len(vals))
	for _, v := range vals {
		data = binary.LittleEndian.AppendUint32(data, math.Float32bits(v))
	}
	return tensor.Tensor{Name: name, Datatype: tensor.FP32, Shape: shape, Data: data}
}

// image is a deterministic FP32 image of shape 1×3×h×w in [-1, 1).
func image(h, w int) tensor.Tensor {
	vals := make([]float32, 3*h*w)
	for i := range vals {
		vals[i] = float32((i*7)%255)/127.5 - 1
	}
	return fp32("x", []int64{1, 3, int64(h), int64(w)}, vals)
}

// models locates the two real models: PaddleOCR's classifier (fetched by
// scripts/fetch-test-models.sh) and the binding's random forest.
func models() (cls, rf model, err error) {
	dir, err := testmodels.Dir()
	if err != nil {
		return cls, rf, err
	}
	clsPath := filepath.Join(dir, "@gutenye", "ocr-models@1.4.2", testmodels.OCRClassifier)
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/yalue/onnxruntime_go").Output()
	if err != nil {
		return cls, rf, fmt.Errorf("locate github.com/yalue/onnxruntime_go (run make deps): %w", err)
	}
	rfPath := filepath.Join(strings.TrimSpace(string(out)), "test_data", "sklearn_randomforest.onnx")
	for _, p := range []string{clsPath, rfPath} {
		if _, err := os.Stat(p); err != nil {
			return cls, rf, fmt.Errorf("model missing (run make test-deps): %w", err)
		}
	}
	return model{name: "cls", path: clsPath, input: image(48, 192)},
		model{name: "rf", path: rfPath, input: fp32("X", []int64{1, 4}, []float32{5.9, 3.0, 5.1, 1.8})}, nil
}

// sequential times n calls of f one after another, after warm calls.
func sequential(n, warm int, f func() error) ([]time.Duration, error) {
	for range warm {
		if err := f(); err != nil {
			return nil, err
		}
	}
	out := make([]time.Duration, 0, n)
	for range n {
		start := time.Now()
		if err := f(); err != nil {
			return nil, err
		}
		out = append(out, time.Since(start))
	}
	return out, nil
}

// parallel runs f from g goroutines for d and returns calls per second.
func parallel(g int, d time.Duration, f func() error) (float64, error) {
	var calls atomic.Int64
	var stop atomic.Bool
	var wg sync.WaitGroup
	errs := make([]error, g)
	start := time.Now()
	for i := range g {
		wg.Go(func() {
			for !stop.Load() {
				if err := f(); err != nil {
					errs[i] = err
					return
				}
				calls.Add(1)
			}
		})
	}
	time.Sleep(d)
	stop.Store(true)
	wg.Wait()
	elapsed := time.Since(start).Seconds()
	return float64(calls.Load()) / elapsed, errors.Join(errs...)
}

// memProbe is what -mem-probe prints: the RSS of a fresh process with
// only ORT and one session of the model, after one Run.
type memProbe struct {
	Start, AfterInit, AfterSession int64 // VmRSS in bytes
	AnonAfterSession               int64 // RssAnon in bytes
}

// runMemProbe is the child side: it loads ORT and the model, runs the
// input once and prints a memProbe as JSON.
func runMemProbe(path, shape string) error {
	var p memProbe
	var err error
	if p.Start, err = procStatus(os.Getpid(), "VmRSS"); err != nil {
		return err
	}
	if err := onnx.Init(onnx.LibraryPath()); err != nil {
		return err
	}
	if p.AfterInit, err = procStatus(os.Getpid(), "VmRSS"); err != nil {
		return err
	}
	s, err := onnx.Open(path, onnx.Options{})
	if err != nil {
		return err
	}
	var in tensor.Tensor
	if shape == "image" {
		in = image(48, 192)
	} else {
		in = fp32("X", []int64{1, 4}, []float32{5.9, 3.0, 5.1, 1.8})
	}
	if _, err := s.Run([]tensor.Tensor{in}, nil); err != nil {
		return err
	}
	runtime.GC()
	if p.AfterSession, err = procStatus(os.Getpid(), "VmRSS"); err != nil {
		return err
	}
	if p.AnonAfterSession, err = procStatus(os.Getpid(), "RssAnon"); err != nil {
		return err
	}
	return json.NewEncoder(os.Stdout).Encode(p)
}

// probeMemory runs this program again as a memory probe for m.
func probeMemory(m model) (memProbe, error) {
	shape := "rf"
	if len(m.input.Shape) == 4 {
		shape = "image"
	}
	self, err := os.Executable()
	if err != nil {
		return memProbe{}, err
	}
	// #nosec G204 -- this program itself, with its own model paths
	out, err := exec.Command(self, "-mem-probe", m.path, "-mem-probe-input", shape).Output()
	if err != nil {
		return memProbe{}, fmt.Errorf("memory probe %s: %w", m.name, err)
	}
	var p memProbe
	return p, json.Unmarshal(out, &p)
}

// procStatus reads a "kB" field of /proc/<pid>/status, in bytes.
func procStatus(pid int, field string) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", field, pid)
}
