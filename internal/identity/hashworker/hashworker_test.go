package hashworker

import (
	"bytes"
	"context"
	"encoding/binary"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/rampart-ml/rampart/internal/identity/password"
)

// TestMain makes this test binary a worker when re-executed by NewPool.
func TestMain(m *testing.M) {
	Main()
	os.Exit(m.Run())
}

var cheap = password.Params{MemoryKiB: 64, Time: 1, Threads: 1}

func newPool(t *testing.T, size int) *Pool {
	t.Helper()
	p, err := NewPool(os.Args[0], size)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

func TestPoolHashesAndVerifies(t *testing.T) {
	t.Parallel()
	p := newPool(t, 2)
	ctx := context.Background()
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pw := strings.Repeat("x", i+1) + " correct horse"
			h, err := p.Hash(ctx, pw, cheap)
			if err != nil {
				t.Error(err)
				return
			}
			if ok, err := p.Verify(ctx, pw, h); err != nil || !ok {
				t.Errorf("verify right password: %v %v", ok, err)
			}
			if ok, err := p.Verify(ctx, pw+"!", h); err != nil || ok {
				t.Errorf("verify wrong password: %v %v", ok, err)
			}
			// The worker's hash is an ordinary PHC string.
			if ok, err := password.Verify(pw, h); err != nil || !ok {
				t.Errorf("in-process verify of a worker hash: %v %v", ok, err)
			}
		}()
	}
	wg.Wait()
	if _, err := p.Verify(ctx, "pw", "not a hash"); err == nil {
		t.Error("malformed hash: no error")
	}
}

// A worker that dies is replaced: the request it was given fails, the
// next one succeeds.
func TestPoolReplacesDeadWorker(t *testing.T) {
	t.Parallel()
	p := newPool(t, 1)
	w := <-p.idle
	if err := w.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = w.cmd.Wait()
	p.idle <- w
	ctx := context.Background()
	if _, err := p.Hash(ctx, "pw", cheap); err == nil {
		t.Error("request to a dead worker succeeded")
	}
	if _, err := p.Hash(ctx, "pw", cheap); err != nil {
		t.Errorf("after replacement: %v", err)
	}
}

func TestPoolHonoursContext(t *testing.T) {
	t.Parallel()
	p := newPool(t, 1)
	w := <-p.idle // the only worker is busy
	defer func() { p.idle <- w }()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := p.Verify(ctx, "pw", "x"); err == nil {
		t.Error("cancelled context: no error")
	}
}

// The worker loop refuses oversized frames and unknown operations instead
// of reading or doing them.
func TestServeRefusesBadFrames(t *testing.T) {
	t.Parallel()
	var in bytes.Buffer
	_ = binary.Write(&in, binary.BigEndian, uint32(maxFrame+1))
	if err := serve(&in, &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "exceeds") {
		t.Errorf("oversized frame: %v", err)
	}
	in.Reset()
	if err := writeFrame(&in, request{Op: "delete-everything"}); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	_ = serve(&in, &out)
	var rep reply
	if err := readFrame(&out, &rep); err != nil || !strings.Contains(rep.Error, "unknown op") {
		t.Errorf("unknown op: reply %+v, err %v", rep, err)
	}
}

func FuzzServe(f *testing.F) {
	var seed bytes.Buffer
	_ = writeFrame(&seed, request{Op: "verify", Password: "pw", Hash: "$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$aGFzaA"})
	f.Add(seed.Bytes())
	f.Add([]byte{0, 0, 0, 2, '{', '}'})
	f.Fuzz(func(t *testing.T, data []byte) {
		_ = serve(bytes.NewReader(data), &bytes.Buffer{}) // must not panic
	})
}
