// Package datadir owns the layout, permissions and exclusive lock of
// Rampart's data directory.
//
// The directory holds the database, TLS keys and bootstrap secrets, so it is
// created 0700 and Open refuses to use it when it, or a secret in it, can be
// read by group or others. One server at a time: Open takes an exclusive
// lock that the kernel releases if the process dies.
package datadir

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// Names of well-known entries, relative to the data directory.
const (
	DatabaseFile = "rampart.db"
	TLSDir       = "tls"
	// ArtifactsDir holds the encrypted model artefacts (internal/artifact).
	ArtifactsDir = "artifacts"
	// StagingDir holds uploads being unpacked; emptied at every start.
	StagingDir = "staging"
	// RunDir holds the verified models of running services, one fresh
	// directory per start; emptied at every start.
	RunDir               = "run"
	InitialAdminPassword = "initial-admin-password"
	// KeysDir holds MasterKeyFile, the key every stored secret (signing
	// keys, TOTP secrets) is sealed under.
	KeysDir       = "keys"
	MasterKeyFile = "master.key"
	lockFile      = "rampart.lock"
)

// ErrLocked means another process holds the data directory.
var ErrLocked = errors.New("data directory is in use by another rampart process")

// ErrPermissions means a file or directory is readable by group or others.
var ErrPermissions = errors.New("insecure permissions")

// Dir is an open, locked data directory.
type Dir struct {
	path string
	lock *os.File
}

// Open creates path (0700) if needed, checks the permissions of the
// directory and the secrets in it, and takes the exclusive lock.
func Open(path string) (*Dir, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("data dir %s: %w", path, err)
	}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	if err := checkPrivate(abs); err != nil {
		return nil, err
	}
	d := &Dir{path: abs}
	if err := d.acquireLock(); err != nil {
		return nil, err
	}
	if err := d.checkSecrets(); err != nil {
		_ = d.Close()
		return nil, err
	}
	return d, nil
}

// Path returns the absolute path of name inside the data directory.
func (d *Dir) Path(name ...string) string {
	return filepath.Join(append([]string{d.path}, name...)...)
}

// MkdirPrivate creates a 0700 subdirectory (and checks an existing one).
func (d *Dir) MkdirPrivate(name string) (string, error) {
	p := d.Path(name)
	if err := os.Mkdir(p, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return "", fmt.Errorf("create %s: %w", p, err)
	}
	return p, checkPrivate(p)
}

// Close releases the lock.
func (d *Dir) Close() error {
	if d.lock == nil {
		return nil
	}
	err := d.lock.Close() // closing the descriptor drops the flock
	d.lock = nil
	return err
}

func (d *Dir) acquireLock() error {
	p := d.Path(lockFile)
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o600) // #nosec G304 -- operator-configured path (flag or data dir), never request input
	if err != nil {
		return fmt.Errorf("data dir %s is not writable: %w", d.path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		holder, _ := os.ReadFile(p) // #nosec G304 -- operator-configured path (flag or data dir), never request input
		_ = f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return fmt.Errorf("%w: %s (pid %s); stop it first, or use another --data-dir",
				ErrLocked, d.path, strings.TrimSpace(string(holder)))
		}
		return fmt.Errorf("lock %s: %w", p, err)
	}
	// The pid is informational only; the flock is what excludes.
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	d.lock = f
	return nil
}

// checkSecrets walks the data directory: every directory must be 0700-ish
// and every file that is not public by design must be 0600-ish.
func (d *Dir) checkSecrets() error {
	var problems []error
	err := filepath.WalkDir(d.path, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !e.IsDir() && isPublic(e.Name()) {
			return nil
		}
		if sharedWithWorkers(d.path, p) {
			return nil
		}
		if err := checkPrivate(p); err != nil {
			problems = append(problems, err)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("check data dir %s: %w", d.path, err)
	}
	return errors.Join(problems...)
}

// sharedWithWorkers reports whether p is a running service's model copy
// under RunDir that the supervisor shared read-only with the workers'
// group (0550/0440, when the server runs as root). A server that died with
// services running leaves them behind; they are removed at start, so
// refusing to start over them would only block recovery. Others may still
// not read them, and nobody but the owner may write.
func sharedWithWorkers(root, p string) bool {
	rel, err := filepath.Rel(filepath.Join(root, RunDir), p)
	if err != nil || rel == "." || strings.HasPrefix(rel, "..") {
		return false
	}
	fi, err := os.Lstat(p)
	return err == nil && fi.Mode()&fs.ModeSymlink == 0 && fi.Mode().Perm()&0o027 == 0
}

// isPublic lists files that hold no secret (certificates), so the usual
// 0644 is fine for them.
func isPublic(name string) bool {
	return strings.HasSuffix(name, ".pem") && !strings.HasSuffix(name, "-key.pem")
}

func checkPrivate(p string) error {
	fi, err := os.Lstat(p)
	if err != nil {
		return err
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		return fmt.Errorf("%w: %s is a symbolic link; the data dir must contain only regular files", ErrPermissions, p)
	}
	if fi.Mode().Perm()&0o077 == 0 {
		return nil
	}
	want := "600"
	if fi.IsDir() {
		want = "700"
	}
	return fmt.Errorf("%w: %s has mode %04o, readable by group or others; run: chmod %s %s",
		ErrPermissions, p, fi.Mode().Perm(), want, p)
}

// WriteSecretFile creates the file at path with mode 0600 and contents
// data, synced to disk. It fails if the file exists, so a secret is never
// silently replaced, and leaves nothing behind when it fails.
func WriteSecretFile(path string, data []byte) error {
	return writeNewFile(path, data, 0o600)
}

// WritePublicFile is WriteSecretFile for a file meant to be read by others
// (a public key): mode 0644.
func WritePublicFile(path string, data []byte) error {
	return writeNewFile(path, data, 0o644)
}

// ReadSecretFile reads at most max bytes of the file at path, refusing it
// (ErrPermissions, with the chmod that fixes it) if group or others may
// read it.
func ReadSecretFile(path string, max int64) ([]byte, error) {
	f, err := os.Open(path) // #nosec G304 -- operator-configured path (flag or data dir), never request input
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%w: %s has mode %04o, readable by group or others; run: chmod 600 %s",
			ErrPermissions, path, fi.Mode().Perm(), path)
	}
	b, err := io.ReadAll(io.LimitReader(f, max))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return b, nil
}

func writeNewFile(path string, data []byte, perm os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm) // #nosec G302 G304 -- operator-configured path (flag or data dir); perm is 0600 or 0644 for public keys
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(path)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
