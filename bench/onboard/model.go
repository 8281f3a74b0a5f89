package main

import (
	"archive/tar"
	"bufio"
	"crypto/ecdsa"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/rampart-ml/rampart/internal/modelsign"
)

// weightsFile is the external-data file of the generated model.
const weightsFile = "weights.bin"

// writeModel writes a model directory into dir: model.onnx, a valid ONNX
// graph y = MatMul(x, w) whose initializer w (FP32 [size/4, 1]) lives in
// weights.bin, size bytes of pseudo-random data (incompressible, so no
// layer can take a shortcut), and model.sig signed with key.
func writeModel(dir string, size int64, key *ecdsa.PrivateKey) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	k := uint64(max(size, 0)) / 4 // #nosec G115 -- clamped to non-negative
	node := cat(str(1, "x"), str(1, "w"), str(2, "y"), str(4, "MatMul"))
	w := cat(vint(1, k), vint(1, 1), vint(2, 1), str(8, "w"),
		msg(13, str(1, "location"), str(2, weightsFile)), vint(14, 1))
	g := cat(msg(1, node), str(2, "bench"), msg(5, w),
		msg(11, str(1, "x"), msg(2, tensorType(1, 1, k))),
		msg(12, str(1, "y"), msg(2, tensorType(1, 1, 1))))
	model := cat(vint(1, 9), msg(8, str(1, ""), vint(2, 17)), msg(7, g))
	if err := os.WriteFile(filepath.Join(dir, "model.onnx"), model, 0o600); err != nil {
		return err
	}
	if err := writeWeights(filepath.Join(dir, weightsFile), size); err != nil {
		return err
	}
	m, err := modelsign.DigestDirectory(dir, modelsign.Options{})
	if err != nil {
		return err
	}
	sig, err := modelsign.Sign(m, key)
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, modelsign.SignatureFile), sig, 0o600)
}

func writeWeights(name string, size int64) (err error) {
	f, err := os.Create(name) // #nosec G304 -- the benchmark's own work directory
	if err != nil {
		return err
	}
	defer func() {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}()
	// ChaCha8 with a fixed seed: reproducible and fast; not a secret.
	src := rand.NewChaCha8([32]byte{'r', 'a', 'm', 'p', 'a', 'r', 't'})
	_, err = io.CopyN(f, src, size)
	return err
}

// writeTar packs the files of dir (flat) into a tar at out.
func writeTar(dir, out string) (err error) {
	f, err := os.Create(out) // #nosec G304 -- the benchmark's own work directory
	if err != nil {
		return err
	}
	defer func() {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}()
	bw := bufio.NewWriterSize(f, 1<<20)
	tw := tar.NewWriter(bw)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if err := addFile(tw, filepath.Join(dir, e.Name()), e.Name()); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return bw.Flush()
}

func addFile(tw *tar.Writer, path, name string) error {
	f, err := os.Open(path) // #nosec G304 -- the benchmark's own work directory
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: st.Size(), Typeflag: tar.TypeReg}); err != nil {
		return err
	}
	if _, err := io.Copy(tw, f); err != nil {
		return fmt.Errorf("tar %s: %w", name, err)
	}
	return nil
}

// Minimal protobuf writers for the ONNX ModelProto.
func msg(num protowire.Number, parts ...[]byte) []byte {
	b := protowire.AppendTag(nil, num, protowire.BytesType)
	return protowire.AppendBytes(b, cat(parts...))
}

func str(num protowire.Number, s string) []byte { return msg(num, []byte(s)) }

func vint(num protowire.Number, v uint64) []byte {
	return protowire.AppendVarint(protowire.AppendTag(nil, num, protowire.VarintType), v)
}

func cat(parts ...[]byte) []byte {
	var out []byte
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// tensorType is a TypeProto: tensor_type = 1 {elem_type = 1, shape = 2
// {dim = 1 {dim_value = 1}}}.
func tensorType(elem uint64, dims ...uint64) []byte {
	var ds [][]byte
	for _, d := range dims {
		ds = append(ds, msg(1, vint(1, d)))
	}
	return msg(1, vint(1, elem), msg(2, ds...))
}
