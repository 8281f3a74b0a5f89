//go:build linux

package worker_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"

	"github.com/rampart-ml/rampart/internal/runtime/ipc"
	"github.com/rampart-ml/rampart/internal/runtime/sandbox"
	"github.com/rampart-ml/rampart/internal/runtime/worker"
	"github.com/rampart-ml/rampart/internal/tensor"
)

// probeEngine is a test-only engine: the first input's name picks a probe
// of the sandbox, run inside the worker; the answer is one UINT8 tensor
// "result" holding text.
type probeEngine struct{ model string }

func openProbe(path string, _ worker.EngineOptions) (worker.Engine, error) {
	b, err := os.ReadFile(path) // #nosec G304 -- the test's model
	if err != nil {
		return nil, err
	}
	return &probeEngine{model: string(b)}, nil
}

func (e *probeEngine) Metadata() ipc.Metadata {
	return ipc.Metadata{
		Inputs:  []ipc.TensorSpec{{Name: e.model, Datatype: tensor.Uint8, Shape: []int64{-1}}},
		Outputs: []ipc.TensorSpec{{Name: "result", Datatype: tensor.Uint8, Shape: []int64{-1}}},
	}
}

func (e *probeEngine) Close() error { return nil }

func text(s string) tensor.Tensor {
	return tensor.Tensor{Name: "result", Datatype: tensor.Uint8, Shape: []int64{int64(len(s))}, Data: []byte(s)}
}

func outcome(err error) string {
	if err != nil {
		return "error: " + err.Error()
	}
	return "ok"
}

func (e *probeEngine) Run(ctx context.Context, in []tensor.Tensor, _ []string) ([]tensor.Tensor, error) {
	if len(in) != 1 {
		return nil, &ipc.StatusError{Code: ipc.CodeInvalidArgument, Err: errors.New("want one input")}
	}
	arg := string(in[0].Data)
	switch in[0].Name {
	case "echo":
		return []tensor.Tensor{text(arg)}, nil
	case "dial":
		c, err := net.Dial("tcp", arg)
		if err == nil {
			_ = c.Close()
		}
		return []tensor.Tensor{text(outcome(err))}, nil
	case "inet":
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
		if err == nil {
			_ = unix.Close(fd)
		}
		return []tensor.Tensor{text(outcome(err))}, nil
	case "read":
		_, err := os.ReadFile(arg) // #nosec G304 -- the probe
		return []tensor.Tensor{text(outcome(err))}, nil
	case "write":
		err := os.WriteFile(arg, []byte("x"), 0o600)
		return []tensor.Tensor{text(outcome(err))}, nil
	case "ptrace":
		// Fatal under the seccomp policy: the kernel kills the worker.
		_, _, errno := unix.RawSyscall(unix.SYS_PTRACE, unix.PTRACE_TRACEME, 0, 0)
		return []tensor.Tensor{text(outcome(errno))}, nil
	case "limits":
		var as, nofile, core unix.Rlimit
		_ = unix.Getrlimit(unix.RLIMIT_AS, &as)
		_ = unix.Getrlimit(unix.RLIMIT_NOFILE, &nofile)
		_ = unix.Getrlimit(unix.RLIMIT_CORE, &core)
		return []tensor.Tensor{text(fmt.Sprintf("as=%d nofile=%d core=%d", as.Max, nofile.Max, core.Max))}, nil
	case "env":
		return []tensor.Tensor{text(strings.Join(os.Environ(), "\n"))}, nil
	case "hang":
		// Like a runtime call that ignores its context.
		select {}
	}
	return nil, &ipc.StatusError{Code: ipc.CodeInvalidArgument, Err: fmt.Errorf("unknown probe %q", in[0].Name)}
}

// envParent makes the test binary a parent that starts a worker, prints
// its pid and waits to be killed (for the parent-death test).
const envParent = "RAMPART_TEST_WORKER_PARENT"

// openORT opens .onnx models with ONNX Runtime in builds with the
// ortcheck tag (ort_check_test.go); nil otherwise.
var openORT worker.EngineFactory

// openEngine dispatches on the model: the ONNX check's real models, or the
// probe engine.
func openEngine(path string, opts worker.EngineOptions) (worker.Engine, error) {
	if openORT != nil && strings.HasSuffix(path, ".onnx") {
		return openORT(path, opts)
	}
	return openProbe(path, opts)
}

func TestMain(m *testing.M) {
	worker.RegisterEngine(openEngine)
	worker.Main()
	if dir := os.Getenv(envParent); dir != "" {
		p, err := worker.Start(context.Background(), worker.Spec{ModelDir: dir, ModelFile: "model"}, os.Stderr)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Println(p.Pid())
		select {}
	}
	os.Exit(m.Run())
}

// modelDir prepares a model directory the way the supervisor would: its
// ancestors (the test's temporary directory) stay closed to the worker.
func modelDir(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "model")
	if err := os.Mkdir(dir, 0o755); err != nil { // #nosec G301 -- the worker's identity must enter it
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "model"), []byte("probe"), 0o644); err != nil { // #nosec G306 -- the worker must read it
		t.Fatal(err)
	}
	return dir
}

func start(t *testing.T, maxConcurrent int) *worker.Process {
	t.Helper()
	var stderr bytes.Buffer
	p, err := worker.Start(context.Background(), worker.Spec{ModelDir: modelDir(t), ModelFile: "model", MaxConcurrent: maxConcurrent, MemoryBytes: 512 << 20}, &stderr)
	if err != nil {
		t.Fatalf("start worker: %v (stderr: %s)", err, stderr.String())
	}
	t.Logf("worker %d sandbox: %s", p.Pid(), p.Sandbox())
	t.Cleanup(func() { p.Kill(); _ = p.Wait() })
	return p
}

func probe(t *testing.T, p *worker.Process, name, arg string) string {
	t.Helper()
	in := tensor.Tensor{Name: name, Datatype: tensor.Uint8, Shape: []int64{int64(len(arg))}, Data: []byte(arg)}
	out, err := p.Client().Infer(context.Background(), []tensor.Tensor{in}, nil)
	if err != nil {
		t.Fatalf("probe %s: %v", name, err)
	}
	return string(out[0].Data)
}

func TestWorkerMetadataAndConcurrentRequests(t *testing.T) {
	t.Parallel()
	p := start(t, 4)
	if got := p.Client().Metadata().Inputs[0].Name; got != "probe" {
		t.Errorf("metadata input %q, want the model's content %q", got, "probe")
	}
	var wg sync.WaitGroup
	for i := range 32 {
		wg.Go(func() {
			want := strconv.Itoa(i)
			in := tensor.Tensor{Name: "echo", Datatype: tensor.Uint8, Shape: []int64{int64(len(want))}, Data: []byte(want)}
			out, err := p.Client().Infer(context.Background(), []tensor.Tensor{in}, nil)
			if err != nil {
				t.Error(err)
				return
			}
			if diff := cmp.Diff([]tensor.Tensor{text(want)}, out); diff != "" {
				t.Errorf("request %d (-want +got):\n%s", i, diff)
			}
		})
	}
	wg.Wait()
}

func TestWorkerHasNoNetwork(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	p := start(t, 1)
	if got := probe(t, p, "dial", ln.Addr().String()); !strings.HasPrefix(got, "error:") {
		t.Errorf("worker connected to %s: %s", ln.Addr(), got)
	}
	if got := probe(t, p, "inet", ""); !strings.Contains(got, "operation not permitted") {
		t.Errorf("worker AF_INET socket: %s, want EPERM", got)
	}
}

func TestWorkerSeesEmptyEnvironment(t *testing.T) {
	t.Setenv("RAMPART_TEST_SECRET", "x")
	p := start(t, 1)
	if got := probe(t, p, "env", ""); got != "" {
		t.Errorf("worker environment = %q, want empty", got)
	}
}

func TestDangerousSyscallKillsWorker(t *testing.T) {
	t.Parallel()
	p := start(t, 1)
	in := tensor.Tensor{Name: "ptrace", Datatype: tensor.Uint8, Shape: []int64{0}}
	if _, err := p.Client().Infer(context.Background(), []tensor.Tensor{in}, nil); !errors.Is(err, ipc.ErrWorkerDied) {
		t.Errorf("ptrace probe = %v, want ErrWorkerDied", err)
	}
	var exit *exec.ExitError
	if err := p.Wait(); !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGSYS {
		t.Errorf("worker ended with %v, want SIGSYS", err)
	}
}

func TestWorkerLimits(t *testing.T) {
	t.Parallel()
	p := start(t, 1)
	// start asks for 512 MiB with one thread and one call at a time.
	want := fmt.Sprintf("as=%d nofile=%d core=0", 512<<20+sandbox.HeadroomFor(2), sandbox.DefaultMaxFiles)
	if got := probe(t, p, "limits", ""); got != want {
		t.Errorf("worker limits %q, want %q", got, want)
	}
}

func TestWorkerCannotWriteFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o777); err != nil { // #nosec G302 -- world-writable like /tmp, on purpose
		t.Fatal(err)
	}
	p := start(t, 1)
	path := filepath.Join(dir, "written")
	if got := probe(t, p, "write", path); !strings.Contains(got, "operation not permitted") {
		t.Errorf("worker writing %s: %s, want EPERM", path, got)
	}
}

func TestWorkerCannotReadDataDir(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("needs root: only then does the worker get an identity of its own")
	}
	data := filepath.Join(t.TempDir(), "data")
	if err := os.Mkdir(data, 0o700); err != nil {
		t.Fatal(err)
	}
	secret := filepath.Join(data, "secret")
	if err := os.WriteFile(secret, []byte("key"), 0o600); err != nil {
		t.Fatal(err)
	}
	p := start(t, 1)
	if got := probe(t, p, "read", secret); !strings.Contains(got, "permission denied") {
		t.Errorf("worker reading %s: %s, want permission denied", secret, got)
	}
}

func TestWorkerKilledMidRequest(t *testing.T) {
	t.Parallel()
	p := start(t, 2)
	errc := make(chan error, 1)
	go func() {
		_, err := p.Client().Infer(context.Background(), []tensor.Tensor{{Name: "hang", Datatype: tensor.Uint8, Shape: []int64{0}}}, nil)
		errc <- err
	}()
	// A ping answered after the request was sent means the worker is
	// serving; the hanging request is then in flight or queued.
	if err := p.Client().Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(p.Pid(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; !errors.Is(err, ipc.ErrWorkerDied) {
		t.Errorf("Infer = %v, want ErrWorkerDied", err)
	}
	if err := p.Wait(); err == nil {
		t.Error("Wait = nil after SIGKILL")
	}
}

func TestHangingEngineHonoursDeadline(t *testing.T) {
	t.Parallel()
	p := start(t, 2)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := p.Client().Infer(ctx, []tensor.Tensor{{Name: "hang", Datatype: tensor.Uint8, Shape: []int64{0}}}, nil)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Infer = %v, want DeadlineExceeded", err)
	}
	// The connection still serves other requests.
	if got := probe(t, p, "echo", "still here"); got != "still here" {
		t.Errorf("echo after a timeout = %q", got)
	}
}

func TestCloseWithHangingRequest(t *testing.T) {
	t.Parallel()
	p := start(t, 1)
	errc := make(chan error, 1)
	go func() {
		_, err := p.Client().Infer(context.Background(), []tensor.Tensor{{Name: "hang", Datatype: tensor.Uint8, Shape: []int64{0}}}, nil)
		errc <- err
	}()
	if err := p.Client().Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
	// Closing the connection ends the worker although its engine call
	// never returns.
	if err := p.Close(); err != nil {
		t.Errorf("Close = %v, want a clean exit", err)
	}
	if err := <-errc; !errors.Is(err, ipc.ErrWorkerDied) {
		t.Errorf("Infer = %v, want ErrWorkerDied", err)
	}
}

func TestWorkerDiesWithParent(t *testing.T) {
	t.Parallel()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	parent := exec.Command(exe, "-test.run=^$") // #nosec G204 -- this test binary
	parent.Env = append(os.Environ(), envParent+"="+modelDir(t))
	parent.Stderr = os.Stderr
	out, err := parent.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := parent.Start(); err != nil {
		t.Fatal(err)
	}
	var pid int
	if _, err := fmt.Fscan(out, &pid); err != nil {
		_ = parent.Process.Kill()
		t.Fatalf("read worker pid: %v", err)
	}
	if !alive(pid) {
		t.Fatalf("worker %d not running", pid)
	}
	if err := parent.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = parent.Wait()
	// Bounded poll: the kernel delivers SIGKILL to the orphan at once; the
	// test's own timeout bounds the wait.
	for alive(pid) {
		time.Sleep(5 * time.Millisecond)
	}
}

// alive says pid exists and is not a zombie.
func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	fields := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	return len(fields) > 0 && fields[0] != "Z" && fields[0] != "X"
}

func TestStartRefusesBadSpec(t *testing.T) {
	t.Parallel()
	for _, file := range []string{"", "..", "a/b", "/etc/passwd"} {
		if _, err := worker.Start(context.Background(), worker.Spec{ModelDir: t.TempDir(), ModelFile: file}, nil); err == nil {
			t.Errorf("Start with model file %q succeeded", file)
		}
	}
}

func TestStartReportsEngineFailure(t *testing.T) {
	t.Parallel()
	dir := modelDir(t)
	if err := os.Remove(filepath.Join(dir, "model")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "other"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := worker.Start(context.Background(), worker.Spec{ModelDir: dir, ModelFile: "model"}, nil)
	var re *ipc.RemoteError
	if !errors.As(err, &re) || re.Code != ipc.CodeUnavailable {
		t.Errorf("Start with a missing model = %v, want a RemoteError with CodeUnavailable", err)
	}
}

// BenchmarkWorkerRoundTrip is one tiny request to a sandboxed worker
// process and back.
func BenchmarkWorkerRoundTrip(b *testing.B) {
	dir := filepath.Join(b.TempDir(), "model")
	if err := os.Mkdir(dir, 0o755); err != nil { // #nosec G301 -- the worker's identity must enter it
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "model"), []byte("probe"), 0o644); err != nil { // #nosec G306 -- the worker must read it
		b.Fatal(err)
	}
	p, err := worker.Start(context.Background(), worker.Spec{ModelDir: dir, ModelFile: "model"}, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = p.Close() }()
	in := []tensor.Tensor{{Name: "echo", Datatype: tensor.Uint8, Shape: []int64{4}, Data: []byte("ping")}}
	ctx := context.Background()
	for b.Loop() {
		if _, err := p.Client().Infer(ctx, in, nil); err != nil {
			b.Fatal(err)
		}
	}
}
