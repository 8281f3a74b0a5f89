package modelarchive

import (
	"encoding/binary"
	"errors"
	"strings"
	"testing"
)

func files(paths ...string) Manifest {
	var m Manifest
	for _, p := range paths {
		m.Files = append(m.Files, File{Path: p, Size: 1})
	}
	return m
}

func TestCheckFiles(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		m    Manifest
		want []error // every error the result must match; nil: accepted
	}{
		{name: "model only", m: files("model.onnx")},
		{name: "full directory", m: files("model.onnx", "model.onnx_data", "weights/a.data", "b.bin", "c.weights",
			"config.json", "p.yaml", "q.yml", "labels.txt", "README.md", "LICENSE", "README", "model.sig")},
		{name: "single onnx with another name", m: files("resnet50.onnx", "labels.txt")},
		{name: "several onnx with model.onnx", m: files("model.onnx", "sub/encoder.onnx")},
		{name: "upper-case extension", m: files("MODEL.ONNX")},
		{name: "no model", m: files("labels.txt"), want: []error{ErrNoModel}},
		{name: "ambiguous model", m: files("a.onnx", "b.onnx"), want: []error{ErrAmbiguousModel}},
		{name: "pickle", m: files("model.onnx", "w.pkl"), want: []error{ErrCodeExecutingFormat}},
		{name: "pytorch", m: files("model.pt"), want: []error{ErrCodeExecutingFormat, ErrNoModel}},
		{name: "pth joblib pickle npy npz", m: files("model.onnx", "a.pth", "b.joblib", "c.pickle", "d.npy", "e.npz"), want: []error{ErrCodeExecutingFormat}},
		{name: "keras", m: files("model.onnx", "a.h5", "b.keras", "c.hdf5"), want: []error{ErrCodeExecutingFormat}},
		{name: "savedmodel", m: files("model.onnx", "saved_model.pb", "variables/variables.index"), want: []error{ErrCodeExecutingFormat, ErrUnknownFileType}},
		{name: "code", m: files("model.onnx", "x.py", "y.so", "z.dll", "w.exe", "v.sh"), want: []error{ErrCodeExecutingFormat}},
		{name: "unknown extension", m: files("model.onnx", "weights.safetensors"), want: []error{ErrUnknownFileType}},
		{name: "unknown bare name", m: files("model.onnx", "Makefile"), want: []error{ErrUnknownFileType}},
		{name: "hidden file", m: files("model.onnx", ".DS_Store"), want: []error{ErrUnknownFileType}},
		{name: "macOS resource fork", m: files("model.onnx", "__MACOSX/._model.onnx"), want: []error{ErrUnknownFileType}},
		{name: "model.sig below the top", m: files("model.onnx", "sub/model.sig"), want: []error{ErrUnknownFileType}},
		{name: "pickle content under an allowed name", m: Manifest{Files: []File{{Path: "model.onnx"}, {Path: "w.bin", Content: ContentPickle}}}, want: []error{ErrCodeExecutingFormat}},
		{name: "pytorch content under an allowed name", m: Manifest{Files: []File{{Path: "model.onnx", Content: ContentPyTorch}}}, want: []error{ErrCodeExecutingFormat}},
		{name: "zip content", m: Manifest{Files: []File{{Path: "model.onnx"}, {Path: "x.data", Content: ContentZip}}}, want: []error{ErrUnknownFileType}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := CheckFiles(tt.m)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("CheckFiles = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatal("CheckFiles accepted it")
			}
			for _, w := range tt.want {
				if !errors.Is(err, w) {
					t.Errorf("CheckFiles = %v, want %v", err, w)
				}
			}
		})
	}
}

func TestModelFile(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		m    Manifest
		want string
	}{
		{files("a.onnx", "model.onnx", "z.onnx"), "model.onnx"},
		{files("sub/model.onnx", "x.txt"), "sub/model.onnx"},
	} {
		if got, err := ModelFile(tt.m); err != nil || got != tt.want {
			t.Errorf("ModelFile = %q, %v; want %q", got, err, tt.want)
		}
	}
}

func zipLocal(name string) []byte {
	b := make([]byte, 30, 30+len(name))
	copy(b, "PK\x03\x04")
	binary.LittleEndian.PutUint16(b[26:], uint16(len(name)))
	return append(b, name...)
}

func TestSniff(t *testing.T) {
	t.Parallel()
	pe := make([]byte, 128)
	copy(pe, "MZ")
	binary.LittleEndian.PutUint32(pe[0x3c:], 64)
	copy(pe[64:], "PE\x00\x00")
	tests := []struct {
		name string
		head []byte
		want ContentKind
	}{
		{"pickle protocol 2", []byte("\x80\x02}q\x00"), ContentPickle},
		{"pickle protocol 4", []byte("\x80\x04\x95\x10\x00\x00\x00"), ContentPickle},
		{"pickle protocol 5", []byte("\x80\x05\x95"), ContentPickle},
		{"torch legacy magic", []byte("\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19."), ContentPickle},
		{"float16 weights starting 80 02", []byte("\x80\x02\x11\x22\x33"), ""},
		{"pickle protocol 1 header absent", []byte("\x80\x01}"), ""},
		{"pytorch zip", zipLocal("archive/data.pkl"), ContentPyTorch},
		{"pytorch zip, named", zipLocal("resnet/data.pkl"), ContentPyTorch},
		{"other zip", zipLocal("config.json"), ContentZip},
		{"gzip", []byte{0x1f, 0x8b, 8, 0}, ContentGzip},
		{"hdf5", []byte("\x89HDF\r\n\x1a\n\x00"), ContentHDF5},
		{"numpy", []byte("\x93NUMPY\x01\x00"), ContentNumpy},
		{"elf", []byte("\x7fELF\x02\x01"), ContentELF},
		{"pe", pe, ContentPE},
		{"MZ without PE", append([]byte("MZ"), make([]byte, 100)...), ""},
		{"script", []byte("#!/bin/sh\n"), ContentScript},
		{"onnx", []byte("\x08\x07\x12\x07pytorch"), ""},
		{"json", []byte(`{"a":1}`), ""},
		{"empty", nil, ""},
	}
	for _, tt := range tests {
		if got := Sniff(tt.head); got != tt.want {
			t.Errorf("%s: Sniff = %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestExtractSniffs(t *testing.T) {
	t.Parallel()
	data := makeTar(t, tent{name: "model.onnx", body: "\x08\x07"}, tent{name: "weights.bin", body: "\x80\x02}q\x00." + strings.Repeat("x", 1000)})
	_, m, err := extractTo(t, data, testLimits())
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckFiles(m); !errors.Is(err, ErrCodeExecutingFormat) {
		t.Fatalf("CheckFiles = %v, want ErrCodeExecutingFormat for a pickle named .bin", err)
	}
}
