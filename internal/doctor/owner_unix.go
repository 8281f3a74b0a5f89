//go:build unix

package doctor

import (
	"io/fs"
	"syscall"
)

// owner returns the uid owning the file fi describes, or -1.
func owner(fi fs.FileInfo) int {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return int(st.Uid)
	}
	return -1
}
