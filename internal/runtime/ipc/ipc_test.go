package ipc

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"math"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"golang.org/x/sys/unix"

	"github.com/rampart-ml/rampart/internal/tensor"
)

// socketpair returns both ends of a unix stream socketpair as *net.UnixConn,
// the way the supervisor and the worker hold them.
func socketpair(t testing.TB) (net.Conn, net.Conn) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	var conns [2]net.Conn
	for i, fd := range fds {
		f := os.NewFile(uintptr(fd), fmt.Sprint("sock", i))
		c, err := net.FileConn(f)
		_ = f.Close()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		conns[i] = c
	}
	return conns[0], conns[1]
}

func fp32(name string, shape []int64, vals ...float32) tensor.Tensor {
	t := tensor.Tensor{Name: name, Datatype: tensor.FP32, Shape: shape}
	for _, v := range vals {
		t.Data = binary.LittleEndian.AppendUint32(t.Data, math.Float32bits(v))
	}
	return t
}

var codecCases = []struct {
	name    string
	inputs  []tensor.Tensor
	outputs []string
}{
	{"empty", nil, nil},
	{"scalar", []tensor.Tensor{{Name: "sr", Datatype: tensor.Int64, Data: make([]byte, 8)}}, []string{"out"}},
	{"matrix", []tensor.Tensor{fp32("x", []int64{2, 2}, 1, 2, 3, 4)}, []string{"a", "b"}},
	{"big", []tensor.Tensor{{Name: "x", Datatype: tensor.Uint8, Shape: []int64{3, 10000}, Data: bytes.Repeat([]byte{7}, 30000)}, fp32("y", []int64{1}, 5)}, nil},
	{"bytes", []tensor.Tensor{{Name: "s", Datatype: tensor.Bytes, Shape: []int64{2}, Data: []byte{1, 0, 0, 0, 'a', 0, 0, 0, 0}}}, []string{""}},
	{"zero-size", []tensor.Tensor{{Name: "z", Datatype: tensor.FP64, Shape: []int64{0, 5}}}, nil},
}

// frameBytes joins an encoded frame and splits off its header.
func frameBytes(t testing.TB, bufs net.Buffers) (Frame, []byte) {
	t.Helper()
	var all []byte
	for _, b := range bufs {
		all = append(all, b...)
	}
	f, n, err := parseHeader(all[:headerSize], DefaultMaxFrameBytes)
	if err != nil {
		t.Fatal(err)
	}
	if n != len(all)-headerSize {
		t.Fatalf("header says %d payload bytes, frame has %d", n, len(all)-headerSize)
	}
	return f, all[headerSize:]
}

var tensorOpts = cmp.Options{cmpopts.EquateEmpty()}

func TestInferCodecRoundTrip(t *testing.T) {
	t.Parallel()
	for _, tc := range codecCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			bufs, err := EncodeInfer(42, tc.inputs, tc.outputs, DefaultMaxFrameBytes)
			if err != nil {
				t.Fatal(err)
			}
			f, payload := frameBytes(t, bufs)
			if f.Type != TypeInfer || f.ID != 42 {
				t.Fatalf("header = %s %d", f.Type, f.ID)
			}
			in, out, err := DecodeInfer(payload)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.inputs, in, tensorOpts); diff != "" {
				t.Errorf("inputs (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.outputs, out, tensorOpts); diff != "" {
				t.Errorf("outputs (-want +got):\n%s", diff)
			}
		})
	}
}

func TestHelloAndErrorRoundTrip(t *testing.T) {
	t.Parallel()
	m := Metadata{
		Inputs:  []TensorSpec{{Name: "x", Datatype: tensor.FP32, Shape: []int64{-1, 3, -1, -1}}},
		Outputs: []TensorSpec{{Name: "y", Datatype: tensor.FP32, Shape: []int64{-1, 2}}, {Name: "s", Datatype: tensor.Int64}},
	}
	bufs, err := EncodeHello(m, DefaultMaxFrameBytes)
	if err != nil {
		t.Fatal(err)
	}
	_, p := frameBytes(t, bufs)
	got, err := DecodeHello(p)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(m, got, tensorOpts); diff != "" {
		t.Errorf("metadata (-want +got):\n%s", diff)
	}
	_, p = frameBytes(t, EncodeError(7, CodeInvalidArgument, "no input x"))
	re, err := DecodeError(p)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(&RemoteError{Code: CodeInvalidArgument, Msg: "no input x"}, re); diff != "" {
		t.Errorf("error (-want +got):\n%s", diff)
	}
	if !errors.Is(re, ErrInvalidArgument) {
		t.Error("an invalid-argument RemoteError does not match ErrInvalidArgument")
	}
}

func TestDecodeRejects(t *testing.T) {
	t.Parallel()
	good, _ := EncodeInfer(1, codecCases[2].inputs, nil, DefaultMaxFrameBytes)
	_, payload := frameBytes(t, good)
	tests := []struct {
		name    string
		payload []byte
	}{
		{"truncated", payload[:len(payload)-3]},
		{"trailing", append(bytes.Clone(payload), 0)},
		{"too many tensors", binary.LittleEndian.AppendUint32(nil, maxTensors+1)},
		{"bad datatype", func() []byte { p := bytes.Clone(payload); p[4+2+1] = 99; return p }()},
		{"rank too large", func() []byte { p := bytes.Clone(payload); p[4+2+1+1] = MaxRank + 1; return p }()},
		{"negative dimension", func() []byte { p := bytes.Clone(payload); p[4+2+1+1+1+7] = 0x80; return p }()},
		{"data length lies", func() []byte { p := bytes.Clone(payload); p[4+2+1+1+1+16] = 15; return p }()},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if _, _, err := DecodeInfer(tc.payload); !errors.Is(err, ErrMalformed) && !errors.Is(err, tensor.ErrDataSize) {
				t.Errorf("DecodeInfer = %v, want ErrMalformed", err)
			}
		})
	}
}

func TestEncodeRefusesOversizeFrame(t *testing.T) {
	t.Parallel()
	in := []tensor.Tensor{{Name: "x", Datatype: tensor.Uint8, Shape: []int64{100}, Data: make([]byte, 100)}}
	if _, err := EncodeInfer(1, in, nil, 64); !errors.Is(err, ErrFrameTooLarge) {
		t.Errorf("EncodeInfer = %v, want ErrFrameTooLarge", err)
	}
	var hdr [headerSize]byte
	binary.LittleEndian.PutUint32(hdr[:], 1<<20)
	hdr[4] = byte(TypeInfer)
	if _, _, err := parseHeader(hdr[:], 1<<10); !errors.Is(err, ErrFrameTooLarge) {
		t.Errorf("parseHeader = %v, want ErrFrameTooLarge", err)
	}
}

func FuzzDecodeInfer(f *testing.F) {
	for _, tc := range codecCases {
		bufs, err := EncodeInfer(1, tc.inputs, tc.outputs, DefaultMaxFrameBytes)
		if err != nil {
			f.Fatal(err)
		}
		_, p := frameBytes(f, bufs)
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, p []byte) {
		in, out, err := DecodeInfer(p)
		if err != nil {
			return
		}
		// What decodes re-encodes to the same bytes.
		bufs, err := EncodeInfer(1, in, out, DefaultMaxFrameBytes)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		_, again := frameBytes(t, bufs)
		if !bytes.Equal(p, again) {
			t.Fatal("re-encoding differs")
		}
	})
}

func FuzzDecodeFrame(f *testing.F) {
	for _, tc := range codecCases {
		bufs, _ := EncodeResult(3, tc.inputs, DefaultMaxFrameBytes)
		var all []byte
		for _, b := range bufs {
			all = append(all, b...)
		}
		f.Add(all)
	}
	f.Add(EncodeError(1, CodeInternal, "x")[0])
	f.Fuzz(func(t *testing.T, b []byte) {
		a, c := net.Pipe()
		defer a.Close()
		go func() { _, _ = c.Write(b); _ = c.Close() }()
		conn := NewConn(a, 1<<16)
		for {
			fr, err := conn.Read()
			if err != nil {
				return
			}
			switch fr.Type {
			case TypeResult:
				_, _ = DecodeResult(fr.Payload)
			case TypeHello:
				_, _ = DecodeHello(fr.Payload)
			case TypeError:
				_, _ = DecodeError(fr.Payload)
			}
		}
	})
}

// echo returns its inputs under the requested output names.
func echo(ctx context.Context, in []tensor.Tensor, out []string) ([]tensor.Tensor, error) {
	res := make([]tensor.Tensor, len(in))
	copy(res, in)
	for i := range res {
		if i < len(out) {
			res[i].Name = out[i]
		}
	}
	if len(in) > 0 && in[0].Name == "block" {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	if len(in) > 0 && in[0].Name == "bad" {
		return nil, &StatusError{Code: CodeInvalidArgument, Err: errors.New("no input named bad")}
	}
	return res, nil
}

// startPair serves h on one end of a socketpair and returns a client on
// the other.
func startPair(t testing.TB, h Handler, maxConcurrent int) (*Client, *Conn) {
	t.Helper()
	a, b := socketpair(t)
	server := NewConn(b, 0)
	bufs, err := EncodeHello(Metadata{Inputs: []TensorSpec{{Name: "x", Datatype: tensor.FP32, Shape: []int64{-1}}}}, server.MaxFrame())
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		if server.Write(bufs) == nil {
			_ = Serve(server, h, maxConcurrent)
		}
		_ = server.Close()
	}()
	c, err := NewClient(context.Background(), NewConn(a, 0))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c, server
}

func TestClientConcurrentRequestsGetTheirOwnAnswers(t *testing.T) {
	t.Parallel()
	c, _ := startPair(t, echo, 4)
	if got := c.Metadata().Inputs[0].Name; got != "x" {
		t.Errorf("metadata input = %q", got)
	}
	var wg sync.WaitGroup
	for i := range 64 {
		wg.Go(func() {
			in := fp32("x", []int64{1}, float32(i))
			out, err := c.Infer(context.Background(), []tensor.Tensor{in}, []string{fmt.Sprint("y", i)})
			if err != nil {
				t.Error(err)
				return
			}
			want := []tensor.Tensor{fp32(fmt.Sprint("y", i), []int64{1}, float32(i))}
			if diff := cmp.Diff(want, out, tensorOpts); diff != "" {
				t.Errorf("request %d (-want +got):\n%s", i, diff)
			}
		})
	}
	wg.Wait()
}

func TestClientCancelKeepsConnection(t *testing.T) {
	t.Parallel()
	c, _ := startPair(t, echo, 2)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := c.Infer(ctx, []tensor.Tensor{fp32("block", []int64{1}, 1)}, nil)
		errc <- err
	}()
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled Infer = %v", err)
	}
	if _, err := c.Infer(context.Background(), []tensor.Tensor{fp32("x", []int64{1}, 1)}, nil); err != nil {
		t.Fatalf("Infer after a cancel = %v", err)
	}
	if err := c.Ping(context.Background()); err != nil {
		t.Fatalf("Ping = %v", err)
	}
	_, err := c.Infer(context.Background(), []tensor.Tensor{fp32("bad", []int64{1}, 1)}, nil)
	if !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("refused Infer = %v, want ErrInvalidArgument", err)
	}
}

func TestClientWorkerDied(t *testing.T) {
	t.Parallel()
	c, server := startPair(t, echo, 2)
	errc := make(chan error, 2)
	for range 2 {
		go func() {
			_, err := c.Infer(context.Background(), []tensor.Tensor{fp32("block", []int64{1}, 1)}, nil)
			errc <- err
		}()
	}
	// Wait until both requests are registered, then break the stream.
	for {
		c.mu.Lock()
		n := len(c.pending)
		c.mu.Unlock()
		if n == 2 {
			break
		}
		runtime.Gosched()
	}
	_ = server.Close()
	for range 2 {
		if err := <-errc; !errors.Is(err, ErrWorkerDied) {
			t.Errorf("in-flight Infer = %v, want ErrWorkerDied", err)
		}
	}
	if _, err := c.Infer(context.Background(), nil, nil); !errors.Is(err, ErrWorkerDied) {
		t.Errorf("later Infer = %v, want ErrWorkerDied", err)
	}
	<-c.Done()
}

func BenchmarkRoundTrip(b *testing.B) {
	c, _ := startPair(b, echo, 1)
	in := []tensor.Tensor{fp32("x", []int64{1, 4}, 1, 2, 3, 4)}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Infer(ctx, in, []string{"y"}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRoundTrip1MiB(b *testing.B) {
	c, _ := startPair(b, echo, 1)
	in := []tensor.Tensor{{Name: "x", Datatype: tensor.Uint8, Shape: []int64{1 << 20}, Data: make([]byte, 1<<20)}}
	ctx := context.Background()
	b.SetBytes(2 << 20)
	for b.Loop() {
		if _, err := c.Infer(ctx, in, nil); err != nil {
			b.Fatal(err)
		}
	}
}

func TestQueuedRequestCancelled(t *testing.T) {
	t.Parallel()
	// One slot, taken by a request that blocks until cancelled.
	c, _ := startPair(t, echo, 1)
	blockCtx, unblock := context.WithCancel(context.Background())
	defer unblock()
	go func() { _, _ = c.Infer(blockCtx, []tensor.Tensor{fp32("block", []int64{1}, 1)}, nil) }()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := c.Infer(ctx, []tensor.Tensor{fp32("x", []int64{1}, 1)}, nil)
		errc <- err
	}()
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("queued Infer = %v, want Canceled", err)
	}
	// Pings are answered by the read loop even while the slot is taken.
	if err := c.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
	unblock()
	if _, err := c.Infer(context.Background(), []tensor.Tensor{fp32("x", []int64{1}, 1)}, nil); err != nil {
		t.Fatalf("Infer after the slot is free = %v", err)
	}
}

var update = flag.Bool("update", false, "rewrite the golden files")

// TestWireFormatGolden pins the bytes of each frame kind: a change to the
// wire format must be deliberate (both ends ship in one binary, but the
// fuzz corpus and any external tooling read these).
func TestWireFormatGolden(t *testing.T) {
	t.Parallel()
	infer, _ := EncodeInfer(1, codecCases[2].inputs, codecCases[2].outputs, DefaultMaxFrameBytes)
	result, _ := EncodeResult(2, codecCases[1].inputs, DefaultMaxFrameBytes)
	hello, _ := EncodeHello(Metadata{Inputs: []TensorSpec{{Name: "x", Datatype: tensor.FP32, Shape: []int64{-1, 2}}}}, DefaultMaxFrameBytes)
	var got strings.Builder
	for _, f := range []struct {
		name string
		bufs net.Buffers
	}{
		{"infer", infer}, {"result", result}, {"hello", hello},
		{"error", EncodeError(3, CodeInvalidArgument, "bad")}, {"ping", EncodeEmpty(TypePing, 4)},
	} {
		var all []byte
		for _, b := range f.bufs {
			all = append(all, b...)
		}
		fmt.Fprintf(&got, "%s %x\n", f.name, all)
	}
	path := filepath.Join("testdata", "frames.golden")
	if *update {
		if err := os.WriteFile(path, []byte(got.String()), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path) // #nosec G304 -- fixed test file
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(string(want), got.String()); diff != "" {
		t.Errorf("frames (-golden +got):\n%s", diff)
	}
}
