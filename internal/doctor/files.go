package doctor

import (
	"io/fs"
	"path"
	"strings"

	"github.com/rampart-ml/rampart/internal/datadir"
)

// FileInfo is what the permission check needs to know about one entry of
// the data directory.
type FileInfo struct {
	Path    string // slash-separated, relative to the data directory ("." for itself)
	Mode    fs.FileMode
	UID     int // owner; -1 when unknown (not Unix)
	Symlink bool
}

// IsPublic reports whether a data-directory file holds no secret by design
// (certificates, public keys), so the usual 0644 is fine. It mirrors the
// rule internal/datadir applies at server start.
func IsPublic(name string) bool {
	base := path.Base(name)
	return strings.HasSuffix(base, ".pem") && !strings.HasSuffix(base, "-key.pem")
}

// Permissions checks every entry of the data directory: directories 0700,
// files 0600 (public ones excepted), no symbolic links, all owned by uid
// (the account the server runs as; -1 skips the owner check). It returns
// one result per problem, or one PASS.
func Permissions(dir string, entries []FileInfo, uid int) []Result {
	var rs []Result
	for _, e := range entries {
		id := "perm." + e.Path
		if e.Path == "." {
			id = "perm.datadir"
		}
		full := path.Join(dir, e.Path)
		// Running services' model copies under run/ are shared read-only
		// with the workers' group when the server runs as root
		// (supervisor.shareWithWorkers): group read is by design there.
		private := fs.FileMode(0o077)
		if strings.HasPrefix(e.Path, datadir.RunDir+"/") {
			private = 0o027
		}
		switch {
		case e.Symlink:
			rs = append(rs, fail(id, "replace the link by the file it points to, or remove it: the server refuses to start with links in the data directory",
				"%s is a symbolic link", full))
			continue
		case e.Mode.IsDir() && e.Mode.Perm()&private != 0:
			rs = append(rs, fail(id, "chmod 700 "+full, "directory %s has mode %04o: group or others can list or enter it", full, uint32(e.Mode.Perm())))
		case !e.Mode.IsDir() && !IsPublic(e.Path) && e.Mode.Perm()&private != 0:
			rs = append(rs, fail(id, "chmod 600 "+full, "%s has mode %04o: group or others can read a secret", full, uint32(e.Mode.Perm())))
		case !e.Mode.IsDir() && e.Mode.Perm()&0o002 != 0:
			rs = append(rs, fail(id, "chmod 644 "+full, "%s is writable by everyone", full))
		}
		if uid >= 0 && e.UID >= 0 && e.UID != uid {
			rs = append(rs, warn(id+".owner", "chown the data directory to the account that runs rampart serve",
				"%s is owned by uid %d, not %d", full, e.UID, uid))
		}
	}
	if len(rs) == 0 {
		return []Result{pass("perm", "%d entries under %s: directories 0700, secrets 0600, no links", len(entries), dir)}
	}
	return rs
}

// InitialPassword warns while the generated bootstrap password file is
// still there: either nobody has changed the admin's password yet, or the
// old password lies around in a file.
func InitialPassword(file string, present bool) Result {
	if !present {
		return pass("admin.initial-password", "no %s file", path.Base(file))
	}
	return warn("admin.initial-password", "log in as admin, change the password (rampart passwd --stdin), then delete "+file,
		"%s is still present: the generated admin password may be unchanged", file)
}
