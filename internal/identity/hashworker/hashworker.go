// Package hashworker computes password hashes for logins in child
// processes (the same binary, re-executed) running at a lower scheduling
// priority. Under a login flood the kernel then serves API calls and
// inference before hashing, and the hashes' memory (19 MiB each) never
// touches the server's heap.
//
// The children inherit nothing: an empty environment except the marker
// variable, no open files but the two pipes, and they die with the
// server. They never see the database, the keys or the network; each
// request carries one password and, to verify, one hash.
package hashworker

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync/atomic"

	"github.com/rampart-ml/rampart/internal/identity/password"
)

// EnvMarker, set to "1", makes Main run the worker loop.
const EnvMarker = "RAMPART_HASH_WORKER"

// maxFrame bounds one request or reply.
const maxFrame = 64 << 10

// Bounds on the parameters a worker accepts (config allows at most 1 GiB).
const (
	maxMemoryKiB = 1 << 20
	maxTime      = 100
)

// request and reply are the wire format: a 4-byte big-endian length, then
// JSON.
type request struct {
	Op       string          `json:"op"` // "verify" or "hash"
	Password string          `json:"password"`
	Hash     string          `json:"hash,omitempty"`
	Params   password.Params `json:"params"`
}

type reply struct {
	OK    bool   `json:"ok,omitempty"`
	Hash  string `json:"hash,omitempty"`
	Error string `json:"error,omitempty"`
}

// supported is set by Main: only a binary that calls Main first thing can
// be re-executed as a worker. Any other (a test binary, say) would run its
// own main again, so NewPool refuses it.
var supported atomic.Bool

// ErrUnsupported: this binary does not call Main, so it cannot be a worker.
var ErrUnsupported = errors.New("this binary cannot run password hash workers (it does not call hashworker.Main)")

// Supported reports whether Main was called in this process.
func Supported() bool { return supported.Load() }

// Main runs the worker loop and exits if this process was started as a
// hash worker; otherwise it records that this binary can be one and
// returns. Call it first thing in main (and in TestMain of tests that
// start workers).
func Main() {
	if os.Getenv(EnvMarker) != "1" {
		supported.Store(true)
		return
	}
	lowerPriority()
	// serve returns when the server closes the pipe (io.EOF) or breaks it.
	if err := serve(os.Stdin, os.Stdout); !errors.Is(err, io.EOF) {
		fmt.Fprintln(os.Stderr, "rampart hash worker:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// serve answers requests until reading or writing fails; it never returns
// nil (io.EOF is the normal end).
func serve(in io.Reader, out io.Writer) error {
	r, w := bufio.NewReader(in), bufio.NewWriter(out)
	for {
		var req request
		if err := readFrame(r, &req); err != nil {
			return err
		}
		var rep reply
		var err error
		switch req.Op {
		case "verify":
			rep.OK, err = password.Verify(req.Password, req.Hash)
		case "hash":
			if p := req.Params; p.MemoryKiB > maxMemoryKiB || p.Time > maxTime {
				err = fmt.Errorf("argon2 parameters %+v exceed the worker's bounds", p)
				break
			}
			rep.Hash, err = password.Hash(req.Password, req.Params)
		default:
			err = fmt.Errorf("unknown op %q", req.Op)
		}
		if err != nil {
			rep.Error = err.Error()
		}
		if err := writeFrame(w, rep); err != nil {
			return err
		}
		if err := w.Flush(); err != nil {
			return err
		}
	}
}

func readFrame(r io.Reader, v any) error {
	var n uint32
	if err := binary.Read(r, binary.BigEndian, &n); err != nil {
		return err
	}
	if n > maxFrame {
		return fmt.Errorf("frame of %d bytes exceeds %d", n, maxFrame)
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(r, buf); err != nil {
		return err
	}
	return json.Unmarshal(buf, v)
}

func writeFrame(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if len(b) > maxFrame {
		return fmt.Errorf("frame of %d bytes exceeds %d", len(b), maxFrame)
	}
	if err := binary.Write(w, binary.BigEndian, uint32(len(b))); err != nil { // #nosec G115 -- bounded by maxFrame
		return err
	}
	_, err = w.Write(b)
	return err
}

// Pool is a set of worker processes; each handles one request at a time.
// A worker that fails is discarded and replaced on the next request.
type Pool struct {
	exe  string
	idle chan *worker
}

type worker struct {
	cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Reader
}

// NewPool starts size workers from the executable exe (os.Executable()
// for this binary). Its callers must bound their concurrency to size (the
// login hash limiter does); more would wait.
func NewPool(exe string, size int) (*Pool, error) {
	if !Supported() {
		return nil, ErrUnsupported
	}
	p := &Pool{exe: exe, idle: make(chan *worker, size)}
	for range size {
		w, err := p.start()
		if err != nil {
			p.Close()
			return nil, err
		}
		p.idle <- w
	}
	return p, nil
}

func (p *Pool) start() (*worker, error) {
	cmd := exec.Command(p.exe) // #nosec G204 -- this binary, re-executed
	cmd.Env = []string{EnvMarker + "=1"}
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = sysProcAttr()
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start password hash worker: %w", err)
	}
	return &worker{cmd: cmd, in: in, out: bufio.NewReader(out)}, nil
}

// Verify checks pw against the PHC hash encoded.
func (p *Pool) Verify(ctx context.Context, pw, encoded string) (bool, error) {
	rep, err := p.call(ctx, request{Op: "verify", Password: pw, Hash: encoded})
	return rep.OK, err
}

// Hash hashes pw with params.
func (p *Pool) Hash(ctx context.Context, pw string, params password.Params) (string, error) {
	rep, err := p.call(ctx, request{Op: "hash", Password: pw, Params: params})
	return rep.Hash, err
}

func (p *Pool) call(ctx context.Context, req request) (reply, error) {
	var w *worker
	select {
	case w = <-p.idle:
	case <-ctx.Done():
		return reply{}, ctx.Err()
	}
	if w == nil {
		var err error
		if w, err = p.start(); err != nil {
			p.idle <- nil // keep the slot; try again next time
			return reply{}, err
		}
	}
	var rep reply
	err := writeFrame(w.in, req)
	if err == nil {
		err = readFrame(w.out, &rep)
	}
	if err != nil {
		w.kill()
		p.idle <- nil
		return reply{}, fmt.Errorf("password hash worker: %w", err)
	}
	p.idle <- w
	if rep.Error != "" {
		return reply{}, errors.New(rep.Error)
	}
	return rep, nil
}

func (w *worker) kill() {
	_ = w.in.Close()
	_ = w.cmd.Process.Kill()
	_ = w.cmd.Wait()
}

// Close stops the idle workers; call it once no request is in flight
// (workers still busy end with the server anyway: see sysProcAttr).
func (p *Pool) Close() {
	for {
		select {
		case w := <-p.idle:
			if w != nil {
				_ = w.in.Close() // EOF ends the worker's loop
				_ = w.cmd.Wait()
			}
		default:
			return
		}
	}
}
