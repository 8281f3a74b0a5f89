package supervisor

import (
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/rampart-ml/rampart/internal/runtime/sandbox"
)

// TestShareWithWorkers: as root, the model directory becomes readable by
// the workers' group (0550/0440, owner root), and a symbolic link in it
// is refused.
func TestShareWithWorkers(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("the model directory is shared with the workers' group only when the server runs as root")
	}
	const gid = 4242
	tests := []struct {
		name    string
		link    bool
		wantErr bool
	}{
		{name: "files and a subdirectory"},
		{name: "symbolic link refused", link: true, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := filepath.Join(t.TempDir(), "model")
			if err := os.MkdirAll(filepath.Join(dir, "data"), 0o700); err != nil {
				t.Fatal(err)
			}
			for _, f := range []string{"model.onnx", "data/weights.bin"} {
				if err := os.WriteFile(filepath.Join(dir, f), []byte(f), 0o400); err != nil {
					t.Fatal(err)
				}
			}
			if tc.link {
				if err := os.Symlink("/etc/passwd", filepath.Join(dir, "data", "link")); err != nil {
					t.Fatal(err)
				}
			}
			err := shareWithWorkers(dir, sandbox.Options{GID: gid})
			if (err != nil) != tc.wantErr {
				t.Fatalf("shareWithWorkers = %v, want error %v", err, tc.wantErr)
			}
			if tc.wantErr {
				return
			}
			want := map[string]fs.FileMode{".": 0o550, "data": 0o550, "model.onnx": 0o440, "data/weights.bin": 0o440}
			for name, mode := range want {
				fi, err := os.Lstat(filepath.Join(dir, name))
				if err != nil {
					t.Fatal(err)
				}
				st := fi.Sys().(*syscall.Stat_t)
				if fi.Mode().Perm() != mode || st.Uid != 0 || st.Gid != gid {
					t.Errorf("%s: mode %v uid %d gid %d, want %v uid 0 gid %d", name, fi.Mode().Perm(), st.Uid, st.Gid, mode, gid)
				}
			}
		})
	}
}
