package datadir

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestOpenCreatesPrivateDir(t *testing.T) {
	t.Parallel()
	p := filepath.Join(t.TempDir(), "a", "data")
	d, err := Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	fi, err := os.Stat(p)
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("data dir mode = %v, %v; want 0700", fi.Mode().Perm(), err)
	}
	if got := d.Path("x", "y"); got != filepath.Join(p, "x", "y") {
		t.Errorf("Path = %q", got)
	}
}

func TestSecondOpenIsRefusedUntilClose(t *testing.T) {
	t.Parallel()
	p := filepath.Join(t.TempDir(), "data")
	d, err := Open(p)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Open(p)
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "pid") {
		t.Fatalf("second Open: %v, want ErrLocked naming the pid", err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	d2, err := Open(p)
	if err != nil {
		t.Fatalf("Open after Close: %v", err)
	}
	d2.Close()
}

func TestInsecurePermissionsRefused(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		setup func(dir string) string // returns the path that must be named
		fix   string
	}{
		{"world-readable dir", func(dir string) string { os.Chmod(dir, 0o755); return dir }, "chmod 700 "},
		{"group-readable secret", func(dir string) string {
			p := filepath.Join(dir, InitialAdminPassword)
			os.WriteFile(p, []byte("x"), 0o640)
			os.Chmod(p, 0o640)
			return p
		}, "chmod 600 "},
		{"readable key in subdir", func(dir string) string {
			os.Mkdir(filepath.Join(dir, TLSDir), 0o700)
			p := filepath.Join(dir, TLSDir, "server-key.pem")
			os.WriteFile(p, []byte("x"), 0o600)
			os.Chmod(p, 0o644)
			return p
		}, "chmod 600 "},
		{"open subdir", func(dir string) string {
			p := filepath.Join(dir, TLSDir)
			os.Mkdir(p, 0o700)
			os.Chmod(p, 0o755)
			return p
		}, "chmod 700 "},
		{"symlink", func(dir string) string {
			p := filepath.Join(dir, "rampart.db")
			os.Symlink("/etc/passwd", p)
			return p
		}, "symbolic link"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			os.Chmod(dir, 0o700)
			bad := tc.setup(dir)
			_, err := Open(dir)
			if !errors.Is(err, ErrPermissions) || !strings.Contains(err.Error(), bad) || !strings.Contains(err.Error(), tc.fix) {
				t.Fatalf("Open: %v; want ErrPermissions naming %s and %q", err, bad, tc.fix)
			}
		})
	}
}

func TestPublicCertificatesMayBeReadable(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	os.Chmod(dir, 0o700)
	os.Mkdir(filepath.Join(dir, TLSDir), 0o700)
	os.WriteFile(filepath.Join(dir, TLSDir, "ca.pem"), []byte("cert"), 0o644)
	d, err := Open(dir)
	if err != nil {
		t.Fatalf("0644 certificate refused: %v", err)
	}
	d.Close()
}

// A server that died running services as root leaves their model copies
// shared with the workers' group; the next start must not refuse them
// (they are removed), but still refuses what others may read.
func TestRunDirLeftoversSharedWithWorkers(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name              string
		dirMode, fileMode os.FileMode
		ok                bool
	}{
		{"group read", 0o550, 0o440, true},
		{"others read", 0o555, 0o444, false},
		{"group write", 0o570, 0o460, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := filepath.Join(t.TempDir(), "data")
			svc := filepath.Join(p, RunDir, "cls-1")
			if err := os.MkdirAll(svc, 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(svc, "model.onnx"), []byte("x"), tc.fileMode); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(filepath.Join(svc, "model.onnx"), tc.fileMode); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(svc, tc.dirMode); err != nil { // #nosec G302 -- the modes under test
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = os.Chmod(svc, 0o700) }) // so TempDir can remove it
			d, err := Open(p)
			if tc.ok && err != nil {
				t.Fatalf("Open: %v", err)
			}
			if !tc.ok && !errors.Is(err, ErrPermissions) {
				t.Fatalf("Open: %v, want ErrPermissions", err)
			}
			if d != nil {
				d.Close()
			}
		})
	}
}

func TestOpenUnusablePath(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "file")
	os.WriteFile(file, nil, 0o600)
	if _, err := Open(filepath.Join(file, "data")); err == nil || !strings.Contains(err.Error(), "create data dir") {
		t.Fatalf("Open under a regular file: %v", err)
	}
}

func TestWriteSecretFile(t *testing.T) {
	t.Parallel()
	p := filepath.Join(t.TempDir(), "secret")
	if err := WriteSecretFile(p, []byte("s3cret")); err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(p)
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v", fi.Mode().Perm())
	}
	if err := WriteSecretFile(p, []byte("other")); err == nil {
		t.Error("existing secret overwritten")
	}
	if b, _ := os.ReadFile(p); string(b) != "s3cret" {
		t.Errorf("content %q", b)
	}
}
