package artifact_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/rampart-ml/rampart/internal/artifact"
	"github.com/rampart-ml/rampart/internal/artifact/artifacttest"
	"github.com/rampart-ml/rampart/internal/secrets"
)

type fsBackend struct{ dir string }

func (b fsBackend) Open(t *testing.T, master *secrets.Sealer) artifact.Store {
	t.Helper()
	return newFS(t, b.dir, master)
}

func newFS(t *testing.T, dir string, master *secrets.Sealer) *artifact.FS {
	t.Helper()
	s, err := artifact.NewFS(dir, master)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func (b fsBackend) path(t *testing.T, domain, digest string) string {
	t.Helper()
	s := newFS(t, b.dir, artifacttest.NewMaster(t)) // the layout needs no key
	p, err := artifact.BlobPath(s, domain, digest)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func (b fsBackend) ReadRaw(t *testing.T, domain, digest string) []byte {
	t.Helper()
	raw, err := os.ReadFile(b.path(t, domain, digest))
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func (b fsBackend) WriteRaw(t *testing.T, domain, digest string, raw []byte) {
	t.Helper()
	p := b.path(t, domain, digest)
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, raw, 0o600); err != nil {
		t.Fatal(err)
	}
}

func (b fsBackend) Leftovers(t *testing.T) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(b.dir, "tmp"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func TestFSConformance(t *testing.T) {
	t.Parallel()
	artifacttest.Run(t, func(t *testing.T) artifacttest.Backend {
		return fsBackend{dir: filepath.Join(t.TempDir(), "artifacts")}
	})
}

// TestFSLayout checks modes, that domain names never appear in paths, and
// that storing content twice leaves one file.
func TestFSLayout(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "artifacts")
	s := newFS(t, dir, artifacttest.NewMaster(t))
	data := []byte("weights")
	for range 2 {
		for _, d := range []string{"com.acme.vision", "*"} {
			if _, err := s.Put(context.Background(), d, bytes.NewReader(data)); err != nil {
				t.Fatal(err)
			}
		}
	}
	var blobs, keys int
	err := filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := e.Info()
		if err != nil {
			return err
		}
		want := fs.FileMode(0o600)
		if e.IsDir() {
			want = 0o700
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s: mode %04o, want %04o", p, fi.Mode().Perm(), want)
		}
		rel, _ := filepath.Rel(dir, p)
		if strings.Contains(rel, "acme") || strings.Contains(rel, "*") {
			t.Errorf("domain name in path %s", rel)
		}
		if !e.IsDir() {
			switch strings.Split(rel, string(filepath.Separator))[0] {
			case "blobs":
				blobs++
			case "domain-keys":
				keys++
				raw, _ := os.ReadFile(p)
				if bytes.Contains(raw, []byte("AGE-SECRET-KEY")) {
					t.Errorf("data key in clear in %s", rel)
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if blobs != 2 || keys != 2 {
		t.Errorf("%d blob files and %d key files, want 2 and 2", blobs, keys)
	}
}

func TestNewFSCleansTemp(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "artifacts")
	master := artifacttest.NewMaster(t)
	newFS(t, dir, master)
	stale := filepath.Join(dir, "tmp", "put-123")
	if err := os.WriteFile(stale, []byte("half an upload"), 0o600); err != nil {
		t.Fatal(err)
	}
	newFS(t, dir, master)
	if _, err := os.Stat(stale); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("stale temp file survived NewFS: %v", err)
	}
}

// TestPutDiskFull fails the temporary file's writes at several points
// (header, first chunk, last flush) as a full disk would.
func TestPutDiskFull(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "artifacts")
	s := newFS(t, dir, artifacttest.NewMaster(t))
	data := artifacttest.Content("1", 3<<20)
	for _, limit := range []int64{0, 100, 64 << 10, 1 << 20, 3<<20 - 1} {
		artifact.FailWritesAfter(s, limit, syscall.ENOSPC)
		_, err := s.Put(context.Background(), "com.acme", bytes.NewReader(data))
		if !errors.Is(err, syscall.ENOSPC) {
			t.Errorf("limit %d: Put = %v, want ENOSPC", limit, err)
		}
		if l := (fsBackend{dir}).Leftovers(t); len(l) > 0 {
			t.Errorf("limit %d: leftovers %v", limit, l)
		}
	}
	entries, _ := os.ReadDir(filepath.Join(dir, "blobs"))
	for _, e := range entries {
		sub, _ := filepath.Glob(filepath.Join(dir, "blobs", e.Name(), "*", "*"))
		if len(sub) > 0 {
			t.Errorf("blob files after failed Puts: %v", sub)
		}
	}
}

func TestPlaintextSize(t *testing.T) {
	t.Parallel()
	id, _ := age.GenerateX25519Identity()
	for _, n := range []int{0, 1, 65535, 65536, 65537, 2 * 65536, 2*65536 + 5, 1 << 20} {
		raw := encrypt(t, id, make([]byte, n))
		got, ok := artifact.PlaintextSize(raw[:min(len(raw), 4096)], int64(len(raw)))
		if !ok || got != int64(n) {
			t.Errorf("size %d: got %d, %v", n, got, ok)
		}
	}
}

func encrypt(t testing.TB, id *age.X25519Identity, data []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := age.Encrypt(&buf, id.Recipient())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// FuzzPlaintextSize: Stat parses the start of stored files, which an
// attacker with the disk controls; it must never panic or report a
// negative size.
func FuzzPlaintextSize(f *testing.F) {
	id, _ := age.GenerateX25519Identity()
	for _, n := range []int{0, 100, 70000} {
		raw := encrypt(f, id, make([]byte, n))
		f.Add(raw[:min(len(raw), 4096)], int64(len(raw)))
	}
	f.Add([]byte("age-encryption.org/v1\n--- x\n"), int64(5))
	f.Fuzz(func(t *testing.T, head []byte, total int64) {
		if n, ok := artifact.PlaintextSize(head, total); ok && n < 0 {
			t.Fatalf("negative size %d", n)
		}
	})
}

func TestNewFSRefusesOpenDirectory(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "artifacts")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := artifact.NewFS(dir, artifacttest.NewMaster(t)); err == nil || !strings.Contains(err.Error(), "chmod 700") {
		t.Errorf("NewFS on a 0755 directory = %v, want a chmod 700 hint", err)
	}
}

// TestKeyFileMovedToAnotherDomain: a sealed data key copied over another
// domain's key file opens nothing there, and Put refuses rather than
// replacing it with a fresh key.
func TestKeyFileMovedToAnotherDomain(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "artifacts")
	s := newFS(t, dir, artifacttest.NewMaster(t))
	ctx := context.Background()
	a, err := s.Put(ctx, "a.example", bytes.NewReader([]byte("a")))
	if err != nil {
		t.Fatal(err)
	}
	bBlob, err := s.Put(ctx, "b.example", bytes.NewReader([]byte("b")))
	if err != nil {
		t.Fatal(err)
	}
	keys, _ := filepath.Glob(filepath.Join(dir, "domain-keys", "*.key"))
	if len(keys) != 2 {
		t.Fatalf("key files %v", keys)
	}
	raw := map[string][]byte{}
	for _, k := range keys {
		raw[k], _ = os.ReadFile(k)
	}
	// Put a's key (with its domain field rewritten to b) in b's place,
	// and the other way round, unmodified.
	ka, kb := keys[0], keys[1]
	if !bytes.Contains(raw[ka], []byte("a.example")) {
		ka, kb = kb, ka
	}
	forged := bytes.ReplaceAll(raw[ka], []byte("a.example"), []byte("b.example"))
	for _, tc := range []struct {
		name   string
		domain string
		digest string
		file   string
		data   []byte
	}{
		{"domain field rewritten", "b.example", bBlob.Digest, kb, forged},
		{"copied as is", "a.example", a.Digest, ka, raw[kb]},
	} {
		if err := os.WriteFile(tc.file, tc.data, 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Open(ctx, tc.domain, tc.digest); err == nil {
			t.Errorf("%s: Open succeeded", tc.name)
		}
		if _, err := s.Put(ctx, tc.domain, bytes.NewReader([]byte("new"))); err == nil {
			t.Errorf("%s: Put succeeded over a bad key file", tc.name)
		}
	}
}

// TestNoGoroutineLeak: the hashing goroutines of Put and Open end with
// them, whether they finish, fail or are closed early. Not parallel, so
// the goroutine count is this test's own.
func TestNoGoroutineLeak(t *testing.T) {
	s := newFS(t, filepath.Join(t.TempDir(), "artifacts"), artifacttest.NewMaster(t))
	ctx := context.Background()
	data := artifacttest.Content("leak", 1<<20)
	blob, err := s.Put(ctx, "com.acme", bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	before := runtime.NumGoroutine()
	for range 20 {
		if _, err := s.Put(ctx, "com.acme", artifacttest.FailingReader(data, 500<<10, io.ErrClosedPipe)); err == nil {
			t.Fatal("Put of a failing reader succeeded")
		}
		rc, err := s.Open(ctx, "com.acme", blob.Digest)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := rc.Read(make([]byte, 1000)); err != nil {
			t.Fatal(err)
		}
		rc.Close()
		if _, err := rc.Read(make([]byte, 10)); err == nil {
			t.Fatal("Read after Close succeeded")
		}
		if _, err := s.Stat(ctx, "com.acme", blob.Digest); err != nil {
			t.Fatal(err)
		}
	}
	// A hashing goroutine has handed over its digest just before it
	// exits, so give the last ones a moment to be gone; a leak would be
	// 40 goroutines that never go.
	after := runtime.NumGoroutine()
	for i := 0; i < 500 && after > before; i++ {
		time.Sleep(time.Millisecond)
		after = runtime.NumGoroutine()
	}
	if after > before {
		t.Errorf("goroutines: %d before, %d after", before, after)
	}
}
