// Package artifacttest is the conformance suite every artifact.Store
// implementation must pass.
package artifacttest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	mathrand "math/rand/v2"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/rampart-ml/rampart/internal/artifact"
	"github.com/rampart-ml/rampart/internal/secrets"
)

// Backend is one storage location (a directory, a bucket) seen by the
// suite both through stores and, like an attacker with the disk or a
// backup, raw.
type Backend interface {
	// Open returns a store over this backend's storage whose data keys
	// are sealed by master. Every call opens the same storage, as a
	// restart does.
	Open(t *testing.T, master *secrets.Sealer) artifact.Store
	// ReadRaw returns the stored (encrypted) bytes of a blob.
	ReadRaw(t *testing.T, domain, digest string) []byte
	// WriteRaw replaces (or creates) the stored bytes of a blob.
	WriteRaw(t *testing.T, domain, digest string, b []byte)
	// Leftovers names the temporary objects of unfinished Puts; there
	// must be none once every Put has returned.
	Leftovers(t *testing.T) []string
}

// Run runs the suite; newBackend returns fresh, empty storage each call.
func Run(t *testing.T, newBackend func(t *testing.T) Backend) {
	tests := []struct {
		name string
		fn   func(t *testing.T, b Backend)
	}{
		{"RoundTrip", testRoundTrip},
		{"SameContentTwice", testSameContentTwice},
		{"NotFound", testNotFound},
		{"Invalid", testInvalid},
		{"Tampered", testTampered},
		{"Truncated", testTruncated},
		{"SwappedBlob", testSwapped},
		{"WrongDomain", testWrongDomain},
		{"Delete", testDelete},
		{"DeleteDomainShreds", testDeleteDomain},
		{"RotateMasterKey", testRotate},
		{"ConcurrentPuts", testConcurrentPuts},
		{"CancelMidPut", testCancelMidPut},
		{"ReaderFailsMidPut", testReaderFails},
		{"OpenCancelled", testOpenCancelled},
		{"DeleteDomainDuringPut", testDeleteDomainDuringPut},
		{"Stage", testStage},
		{"DeleteDomainDuringStage", testDeleteDomainDuringStage},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.fn(t, newBackend(t))
		})
	}
}

// NewMaster returns a sealer over a random master key.
func NewMaster(t testing.TB) *secrets.Sealer {
	t.Helper()
	key := make([]byte, secrets.KeySize)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	s, err := secrets.New(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Content returns n reproducible pseudo-random bytes named by seed:
// incompressible test data, not secrets.
func Content(seed string, n int) []byte {
	b := make([]byte, n)
	_, _ = mathrand.NewChaCha8(sha256.Sum256([]byte(seed))).Read(b) // #nosec G404 -- deterministic test data
	return b
}

func digestOf(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

func put(t *testing.T, s artifact.Store, domain string, data []byte) artifact.Blob {
	t.Helper()
	blob, err := s.Put(context.Background(), domain, bytes.NewReader(data))
	if err != nil {
		t.Fatalf("Put(%q, %d bytes): %v", domain, len(data), err)
	}
	want := artifact.Blob{Digest: digestOf(data), Size: int64(len(data))}
	if diff := cmp.Diff(want, blob); diff != "" {
		t.Fatalf("Put(%q) blob (-want +got):\n%s", domain, diff)
	}
	return blob
}

// readAll opens and reads a blob to EOF.
func readAll(s artifact.Store, domain, digest string) ([]byte, error) {
	rc, err := s.Open(context.Background(), domain, digest)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

func mustRead(t *testing.T, s artifact.Store, domain, digest string, want []byte) {
	t.Helper()
	got, err := readAll(s, domain, digest)
	if err != nil {
		t.Fatalf("read %s/%s: %v", domain, digest[:8], err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("read %s/%s: got %d bytes, not the %d put", domain, digest[:8], len(got), len(want))
	}
}

// mustFail reads a blob expecting an error, and checks that whatever was
// returned before the error is a prefix of the original: authenticated
// bytes may arrive before a failure is detected, wrong bytes never.
func mustFail(t *testing.T, s artifact.Store, domain, digest string, orig []byte) error {
	t.Helper()
	got, err := readAll(s, domain, digest)
	if err == nil {
		t.Fatalf("read %s/%s succeeded (%d bytes), want an error", domain, digest[:8], len(got))
	}
	if !errors.Is(err, artifact.ErrCorrupt) && !errors.Is(err, artifact.ErrNotFound) {
		t.Errorf("read %s/%s: error %v is neither ErrCorrupt nor ErrNotFound", domain, digest[:8], err)
	}
	if orig != nil && !bytes.HasPrefix(orig, got) {
		t.Fatalf("read %s/%s returned %d bytes that are not the original's", domain, digest[:8], len(got))
	}
	return err
}

func noLeftovers(t *testing.T, b Backend) {
	t.Helper()
	if l := b.Leftovers(t); len(l) > 0 {
		t.Errorf("leftovers of unfinished Puts: %v", l)
	}
}

func testRoundTrip(t *testing.T, b Backend) {
	s := b.Open(t, NewMaster(t))
	for _, tc := range []struct {
		name   string
		domain string
		size   int
	}{
		{"empty", "com.acme", 0},
		{"one byte", "com.acme", 1},
		{"small", "*", 1000},
		{"one chunk exactly", "com.acme.vision", 64 << 10},
		{"one chunk and a byte", "com.acme.vision", 64<<10 + 1},
		{"multi MiB", "org.example", 3<<20 + 7},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := Content(tc.name, tc.size)
			blob := put(t, s, tc.domain, data)
			mustRead(t, s, tc.domain, blob.Digest, data)
			st, err := s.Stat(context.Background(), tc.domain, blob.Digest)
			if err != nil {
				t.Fatalf("Stat: %v", err)
			}
			if diff := cmp.Diff(blob, st); diff != "" {
				t.Errorf("Stat (-put +stat):\n%s", diff)
			}
			raw := b.ReadRaw(t, tc.domain, blob.Digest)
			if tc.size >= 16 && bytes.Contains(raw, data[:16]) {
				t.Error("plaintext visible in the stored bytes")
			}
		})
	}
	noLeftovers(t, b)
}

func testSameContentTwice(t *testing.T, b Backend) {
	s := b.Open(t, NewMaster(t))
	data := Content("1", 100<<10)
	b1 := put(t, s, "com.acme", data)
	b2 := put(t, s, "com.acme", data)
	if b1 != b2 {
		t.Fatalf("same content, two blobs: %v, %v", b1, b2)
	}
	mustRead(t, s, "com.acme", b1.Digest, data)
	// One Delete removes it: there was one blob.
	if err := s.Delete(context.Background(), "com.acme", b1.Digest); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Stat(context.Background(), "com.acme", b1.Digest); !errors.Is(err, artifact.ErrNotFound) {
		t.Errorf("after one Delete, Stat = %v, want ErrNotFound", err)
	}
	noLeftovers(t, b)
}

func testNotFound(t *testing.T, b Backend) {
	s := b.Open(t, NewMaster(t))
	ctx := context.Background()
	put(t, s, "com.acme", []byte("something"))
	unknown := digestOf([]byte("never stored"))
	for _, domain := range []string{"com.acme", "com.never", "*"} {
		if _, err := s.Open(ctx, domain, unknown); !errors.Is(err, artifact.ErrNotFound) {
			t.Errorf("Open(%q, unknown) = %v, want ErrNotFound", domain, err)
		}
		if _, err := s.Stat(ctx, domain, unknown); !errors.Is(err, artifact.ErrNotFound) {
			t.Errorf("Stat(%q, unknown) = %v, want ErrNotFound", domain, err)
		}
		if err := s.Delete(ctx, domain, unknown); !errors.Is(err, artifact.ErrNotFound) {
			t.Errorf("Delete(%q, unknown) = %v, want ErrNotFound", domain, err)
		}
	}
	if err := s.DeleteDomain(ctx, "com.never"); err != nil {
		t.Errorf("DeleteDomain of an empty domain: %v", err)
	}
}

func testInvalid(t *testing.T, b Backend) {
	s := b.Open(t, NewMaster(t))
	ctx := context.Background()
	good := digestOf(nil)
	for _, tc := range []struct{ domain, digest string }{
		{"", good},
		{"../etc", good},
		{"com/acme", good},
		{"Com.Acme", good},
		{"com.acme.", good},
		{"**", good},
		{"com.acme", ""},
		{"com.acme", "../" + good[3:]},
		{"com.acme", good[:63]},
		{"com.acme", good + "0"},
		{"com.acme", "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855"},
		{"com.acme", good[:62] + "/x"},
	} {
		name := fmt.Sprintf("%q/%q", tc.domain, tc.digest)
		if _, err := s.Open(ctx, tc.domain, tc.digest); !errors.Is(err, artifact.ErrInvalid) {
			t.Errorf("Open %s = %v, want ErrInvalid", name, err)
		}
		if _, err := s.Stat(ctx, tc.domain, tc.digest); !errors.Is(err, artifact.ErrInvalid) {
			t.Errorf("Stat %s = %v, want ErrInvalid", name, err)
		}
		if err := s.Delete(ctx, tc.domain, tc.digest); !errors.Is(err, artifact.ErrInvalid) {
			t.Errorf("Delete %s = %v, want ErrInvalid", name, err)
		}
		if tc.digest == good {
			if _, err := s.Put(ctx, tc.domain, bytes.NewReader(nil)); !errors.Is(err, artifact.ErrInvalid) {
				t.Errorf("Put %s = %v, want ErrInvalid", name, err)
			}
			if err := s.DeleteDomain(ctx, tc.domain); !errors.Is(err, artifact.ErrInvalid) {
				t.Errorf("DeleteDomain %s = %v, want ErrInvalid", name, err)
			}
		}
	}
	noLeftovers(t, b)
}

func testTampered(t *testing.T, b Backend) {
	s := b.Open(t, NewMaster(t))
	data := Content("2", 200<<10)
	blob := put(t, s, "com.acme", data)
	raw := b.ReadRaw(t, "com.acme", blob.Digest)
	for _, pos := range []int{0, 30, 100, len(raw) / 3, len(raw) / 2, len(raw) - 17, len(raw) - 1} {
		t.Run(fmt.Sprint(pos), func(t *testing.T) {
			bad := bytes.Clone(raw)
			bad[pos] ^= 0x40
			b.WriteRaw(t, "com.acme", blob.Digest, bad)
			_ = mustFail(t, s, "com.acme", blob.Digest, data)
		})
	}
	b.WriteRaw(t, "com.acme", blob.Digest, raw)
	mustRead(t, s, "com.acme", blob.Digest, data)
}

func testTruncated(t *testing.T, b Backend) {
	s := b.Open(t, NewMaster(t))
	data := Content("3", 2*64<<10) // exactly two full chunks
	blob := put(t, s, "com.acme", data)
	raw := b.ReadRaw(t, "com.acme", blob.Digest)
	chunk := 64<<10 + 16
	for _, n := range []int{0, 10, 200, len(raw) - 2*chunk, len(raw) - chunk, len(raw) - chunk/2, len(raw) - 1} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			b.WriteRaw(t, "com.acme", blob.Digest, raw[:n])
			_ = mustFail(t, s, "com.acme", blob.Digest, data)
		})
	}
	// Appending is detected too.
	b.WriteRaw(t, "com.acme", blob.Digest, append(bytes.Clone(raw), 0))
	_ = mustFail(t, s, "com.acme", blob.Digest, data)
}

// testSwapped stores one blob's valid ciphertext under another's name in
// the same domain: every chunk authenticates, only the digest check at EOF
// catches it.
func testSwapped(t *testing.T, b Backend) {
	s := b.Open(t, NewMaster(t))
	x := put(t, s, "com.acme", []byte("the real model"))
	y := put(t, s, "com.acme", []byte("an evil model!"))
	b.WriteRaw(t, "com.acme", x.Digest, b.ReadRaw(t, "com.acme", y.Digest))
	if err := mustFail(t, s, "com.acme", x.Digest, nil); !errors.Is(err, artifact.ErrCorrupt) {
		t.Errorf("swapped blob: %v, want ErrCorrupt", err)
	}
}

func testWrongDomain(t *testing.T, b Backend) {
	s := b.Open(t, NewMaster(t))
	ctx := context.Background()
	data := []byte("model of domain a")
	blob := put(t, s, "a.example", data)
	put(t, s, "b.example", []byte("b has a key too"))
	for _, d := range []string{"b.example", "c.example", "*", "example", "x.a.example"} {
		if _, err := s.Open(ctx, d, blob.Digest); !errors.Is(err, artifact.ErrNotFound) {
			t.Errorf("Open in %q = %v, want ErrNotFound", d, err)
		}
	}
	// Copying the ciphertext into another domain does not make it
	// readable there: b's key does not open it.
	b.WriteRaw(t, "b.example", blob.Digest, b.ReadRaw(t, "a.example", blob.Digest))
	if err := mustFail(t, s, "b.example", blob.Digest, nil); !errors.Is(err, artifact.ErrNotFound) {
		t.Errorf("copied into b: %v, want ErrNotFound (ErrNoKey)", err)
	}
	mustRead(t, s, "a.example", blob.Digest, data)
}

func testDelete(t *testing.T, b Backend) {
	s := b.Open(t, NewMaster(t))
	ctx := context.Background()
	x := put(t, s, "com.acme", []byte("x"))
	y := put(t, s, "com.acme", []byte("y"))
	if err := s.Delete(ctx, "com.acme", x.Digest); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Open(ctx, "com.acme", x.Digest); !errors.Is(err, artifact.ErrNotFound) {
		t.Errorf("Open after Delete = %v, want ErrNotFound", err)
	}
	if err := s.Delete(ctx, "com.acme", x.Digest); !errors.Is(err, artifact.ErrNotFound) {
		t.Errorf("second Delete = %v, want ErrNotFound", err)
	}
	mustRead(t, s, "com.acme", y.Digest, []byte("y"))
}

func testDeleteDomain(t *testing.T, b Backend) {
	master := NewMaster(t)
	s := b.Open(t, master)
	ctx := context.Background()
	data := Content("4", 150<<10)
	blob := put(t, s, "com.acme", data)
	other := put(t, s, "org.other", data)
	backup := b.ReadRaw(t, "com.acme", blob.Digest)

	if err := s.DeleteDomain(ctx, "com.acme"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Stat(ctx, "com.acme", blob.Digest); !errors.Is(err, artifact.ErrNotFound) {
		t.Errorf("Stat after DeleteDomain = %v, want ErrNotFound", err)
	}
	// Restore the blob from the "backup": without the key it stays shut,
	// also after a restart.
	b.WriteRaw(t, "com.acme", blob.Digest, backup)
	for _, st := range []artifact.Store{s, b.Open(t, master)} {
		if _, err := st.Stat(ctx, "com.acme", blob.Digest); !errors.Is(err, artifact.ErrNotFound) {
			t.Errorf("Stat of restored blob = %v, want ErrNotFound", err)
		}
		_ = mustFail(t, st, "com.acme", blob.Digest, nil)
	}
	// Re-creating the domain makes a new key, which does not open the old
	// blob either.
	put(t, s, "com.acme", []byte("new life"))
	b.WriteRaw(t, "com.acme", blob.Digest, backup)
	if err := mustFail(t, s, "com.acme", blob.Digest, nil); !errors.Is(err, artifact.ErrNotFound) {
		t.Errorf("restored blob in re-created domain: %v, want ErrNotFound (ErrNoKey)", err)
	}
	if _, err := s.Stat(ctx, "com.acme", blob.Digest); !errors.Is(err, artifact.ErrNotFound) {
		t.Errorf("Stat of restored blob in re-created domain = %v, want ErrNotFound", err)
	}
	// Other domains are untouched.
	mustRead(t, s, "org.other", other.Digest, data)
}

func testRotate(t *testing.T, b Backend) {
	oldMaster, newMaster := NewMaster(t), NewMaster(t)
	s := b.Open(t, oldMaster)
	ctx := context.Background()
	type stored struct {
		domain string
		data   []byte
		blob   artifact.Blob
		raw    []byte
	}
	var all []stored
	for _, d := range []string{"com.acme", "*", "org.example.deep"} {
		data := Content(d, 70<<10)
		blob := put(t, s, d, data)
		all = append(all, stored{d, data, blob, b.ReadRaw(t, d, blob.Digest)})
	}
	if err := s.RotateMasterKey(ctx, newMaster); err != nil {
		t.Fatal(err)
	}
	for _, st := range all {
		mustRead(t, s, st.domain, st.blob.Digest, st.data)
		if !bytes.Equal(b.ReadRaw(t, st.domain, st.blob.Digest), st.raw) {
			t.Errorf("blob in %q was rewritten by rotation", st.domain)
		}
	}
	restarted := b.Open(t, newMaster)
	for _, st := range all {
		mustRead(t, restarted, st.domain, st.blob.Digest, st.data)
	}
	stale := b.Open(t, oldMaster)
	for _, st := range all {
		if _, err := readAll(stale, st.domain, st.blob.Digest); !errors.Is(err, secrets.ErrDecrypt) {
			t.Errorf("old master opened the key of %q: %v", st.domain, err)
		}
	}
	// A store on the old master must not make a fresh key over a rotated
	// one (that would orphan every blob of the domain).
	if _, err := stale.Put(ctx, "com.acme", bytes.NewReader([]byte("x"))); err == nil {
		t.Error("Put with the old master succeeded")
	}
	// Running the rotation again (as after a crash half-way) is harmless.
	if err := stale.RotateMasterKey(ctx, newMaster); err != nil {
		t.Fatalf("second rotation: %v", err)
	}
	for _, st := range all {
		mustRead(t, stale, st.domain, st.blob.Digest, st.data)
	}
	// A wrong new key on top of a rotated store fails and changes nothing.
	if err := b.Open(t, NewMaster(t)).RotateMasterKey(ctx, NewMaster(t)); err == nil {
		t.Error("rotation with a master that opens no key succeeded")
	}
	mustRead(t, restarted, all[0].domain, all[0].blob.Digest, all[0].data)
}

func testConcurrentPuts(t *testing.T, b Backend) {
	s := b.Open(t, NewMaster(t))
	data := Content("5", 300<<10)
	const n = 8
	blobs := make([]artifact.Blob, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			// A fresh domain: the first Puts also race to create its key.
			blobs[i], errs[i] = s.Put(context.Background(), "com.race", bytes.NewReader(data))
		})
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("Put %d: %v", i, errs[i])
		}
		if blobs[i].Digest != digestOf(data) {
			t.Fatalf("Put %d: digest %s", i, blobs[i].Digest)
		}
	}
	mustRead(t, s, "com.race", blobs[0].Digest, data)
	noLeftovers(t, b)
}

// cancelReader cancels its context after `after` bytes and keeps serving.
type cancelReader struct {
	r      io.Reader
	after  int
	n      int
	cancel context.CancelFunc
}

func (c *cancelReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	if c.n >= c.after {
		c.cancel()
	}
	return n, err
}

func testCancelMidPut(t *testing.T, b Backend) {
	s := b.Open(t, NewMaster(t))
	data := Content("6", 4<<20)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, err := s.Put(ctx, "com.acme", &cancelReader{r: bytes.NewReader(data), after: 1 << 20, cancel: cancel})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Put = %v, want context.Canceled", err)
	}
	if _, err := s.Stat(context.Background(), "com.acme", digestOf(data)); !errors.Is(err, artifact.ErrNotFound) {
		t.Errorf("Stat after cancelled Put = %v, want ErrNotFound", err)
	}
	noLeftovers(t, b)
}

var errBroken = errors.New("connection reset by test")

// FailingReader returns n bytes of data, then err.
func FailingReader(data []byte, n int, err error) io.Reader {
	return io.MultiReader(bytes.NewReader(data[:n]), iotestErr{err})
}

type iotestErr struct{ err error }

func (e iotestErr) Read([]byte) (int, error) { return 0, e.err }

func testReaderFails(t *testing.T, b Backend) {
	s := b.Open(t, NewMaster(t))
	data := Content("7", 1<<20)
	for _, n := range []int{0, 1, 64 << 10, 1<<20 - 1} {
		_, err := s.Put(context.Background(), "com.acme", FailingReader(data, n, errBroken))
		if !errors.Is(err, errBroken) {
			t.Errorf("Put with a reader failing after %d bytes = %v, want its error", n, err)
		}
		if _, err := s.Stat(context.Background(), "com.acme", digestOf(data[:n])); !errors.Is(err, artifact.ErrNotFound) {
			t.Errorf("after failed Put of %d bytes: Stat = %v, want ErrNotFound", n, err)
		}
	}
	noLeftovers(t, b)
}

func testOpenCancelled(t *testing.T, b Backend) {
	s := b.Open(t, NewMaster(t))
	blob := put(t, s, "com.acme", Content("8", 200<<10))
	ctx, cancel := context.WithCancel(context.Background())
	rc, err := s.Open(ctx, "com.acme", blob.Digest)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if _, err := rc.Read(make([]byte, 1000)); err != nil {
		t.Fatal(err)
	}
	cancel()
	if _, err := io.ReadAll(rc); !errors.Is(err, context.Canceled) {
		t.Errorf("read after cancel = %v, want context.Canceled", err)
	}
	if _, err := s.Open(ctx, "com.acme", blob.Digest); !errors.Is(err, context.Canceled) {
		t.Errorf("Open with a cancelled context = %v, want context.Canceled", err)
	}
}

// gateReader serves data in two halves and waits for release before the
// second, so a test can act while a Put is in the middle of its stream.
type gateReader struct {
	data    []byte
	off     int
	reached chan struct{}
	release chan struct{}
	waited  bool
}

func (g *gateReader) Read(p []byte) (int, error) {
	if g.off == len(g.data)/2 && !g.waited {
		g.waited = true
		close(g.reached)
		<-g.release
	}
	end := len(g.data)
	if g.off < len(g.data)/2 {
		end = len(g.data) / 2
	}
	n := copy(p, g.data[g.off:end])
	g.off += n
	if n == 0 {
		return 0, io.EOF
	}
	return n, nil
}

// testDeleteDomainDuringPut: a Put that started before its domain was
// shredded must not land a blob after it, whether or not the domain was
// re-created (with a new key) in between.
func testDeleteDomainDuringPut(t *testing.T, b Backend) {
	s := b.Open(t, NewMaster(t))
	ctx := context.Background()
	for _, recreate := range []bool{false, true} {
		put(t, s, "com.acme", []byte("first"))
		data := Content(fmt.Sprint(recreate), 1<<20)
		reached, release := make(chan struct{}), make(chan struct{})
		g := &gateReader{data: data, reached: reached, release: release}
		errc := make(chan error, 1)
		go func() {
			_, err := s.Put(ctx, "com.acme", g)
			errc <- err
		}()
		<-reached
		if err := s.DeleteDomain(ctx, "com.acme"); err != nil {
			t.Fatal(err)
		}
		if recreate {
			put(t, s, "com.acme", []byte("second life"))
		}
		close(release)
		if err := <-errc; !errors.Is(err, artifact.ErrNotFound) {
			t.Errorf("recreate=%v: Put across DeleteDomain = %v, want ErrNoKey", recreate, err)
		}
		if _, err := s.Stat(ctx, "com.acme", digestOf(data)); !errors.Is(err, artifact.ErrNotFound) {
			t.Errorf("recreate=%v: Stat = %v, want ErrNotFound", recreate, err)
		}
		if err := s.DeleteDomain(ctx, "com.acme"); err != nil {
			t.Fatal(err)
		}
	}
	noLeftovers(t, b)
}

// stageFile creates, writes and closes one staged file.
func stageFile(t *testing.T, p artifact.Pending, name string, data []byte) {
	t.Helper()
	f, err := p.Create(name)
	if err != nil {
		t.Fatalf("Create(%q): %v", name, err)
	}
	if _, err := f.Write(data); err != nil {
		t.Fatalf("write %q: %v", name, err)
	}
	if err := f.Close(); err != nil {
		t.Fatalf("close %q: %v", name, err)
	}
	if got := hex.EncodeToString(func() []byte { d := f.SHA256(); return d[:] }()); got != digestOf(data) {
		t.Fatalf("SHA256 of %q = %s, want %s", name, got, digestOf(data))
	}
}

// testStage: staged files are invisible until committed, read back as
// written, become ordinary blobs one by one, and Abort removes the rest.
func testStage(t *testing.T, b Backend) {
	s := b.Open(t, NewMaster(t))
	ctx := context.Background()
	const domain = "com.acme"
	a, c := Content("staged a", 200<<10+3), Content("staged c", 1000)
	p, err := s.Stage(ctx, domain)
	if err != nil {
		t.Fatal(err)
	}
	stageFile(t, p, "a", a)
	stageFile(t, p, "dir/empty", nil)
	stageFile(t, p, "c", c)
	if _, err := p.Create("a"); err == nil {
		t.Error("Create of a name staged already succeeded")
	}
	open, err := p.Create("open")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Commit(ctx, "open"); err == nil {
		t.Error("Commit of an unclosed file succeeded")
	}
	for _, d := range []string{digestOf(a), digestOf(nil), digestOf(c)} {
		if _, err := s.Stat(ctx, domain, d); !errors.Is(err, artifact.ErrNotFound) {
			t.Errorf("before Commit, Stat(%s) = %v, want ErrNotFound", d[:8], err)
		}
	}
	rc, err := p.Open("a")
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rc)
	_ = rc.Close()
	if err != nil || !bytes.Equal(got, a) {
		t.Fatalf("Open(a) read %d bytes, %v; want the %d staged", len(got), err, len(a))
	}
	for name, data := range map[string][]byte{"a": a, "dir/empty": nil} {
		blob, err := p.Commit(ctx, name)
		if err != nil {
			t.Fatalf("Commit(%q): %v", name, err)
		}
		if want := (artifact.Blob{Digest: digestOf(data), Size: int64(len(data))}); blob != want {
			t.Errorf("Commit(%q) = %+v, want %+v", name, blob, want)
		}
		mustRead(t, s, domain, blob.Digest, data)
	}
	if _, err := p.Commit(ctx, "a"); err == nil {
		t.Error("a second Commit of a succeeded")
	}
	_, _ = open.Write([]byte("never closed"))
	if err := p.Abort(); err != nil {
		t.Fatalf("Abort: %v", err)
	}
	if _, err := s.Stat(ctx, domain, digestOf(c)); !errors.Is(err, artifact.ErrNotFound) {
		t.Errorf("after Abort, Stat(c) = %v, want ErrNotFound", err)
	}
	mustRead(t, s, domain, digestOf(a), a)
	noLeftovers(t, b)
}

// testDeleteDomainDuringStage: a file staged before its domain was
// deleted is not committed (its key is shredded), and Abort removes it.
func testDeleteDomainDuringStage(t *testing.T, b Backend) {
	s := b.Open(t, NewMaster(t))
	ctx := context.Background()
	const domain = "com.acme"
	data := Content("doomed", 1000)
	p, err := s.Stage(ctx, domain)
	if err != nil {
		t.Fatal(err)
	}
	stageFile(t, p, "f", data)
	if err := s.DeleteDomain(ctx, domain); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Commit(ctx, "f"); !errors.Is(err, artifact.ErrNotFound) {
		t.Errorf("Commit after DeleteDomain = %v, want ErrNotFound", err)
	}
	if err := p.Abort(); err != nil {
		t.Fatalf("Abort: %v", err)
	}
	if _, err := s.Stat(ctx, domain, digestOf(data)); !errors.Is(err, artifact.ErrNotFound) {
		t.Errorf("Stat = %v, want ErrNotFound", err)
	}
	noLeftovers(t, b)
}
