//go:build linux && (amd64 || arm64)

package artifact

import "syscall"

// sync_file_range(2) flags.
const (
	syncFileRangeWaitBefore = 1
	syncFileRangeWrite      = 2
	syncFileRangeWaitAfter  = 4
)

func syncFileRange(fd uintptr, off, n int64, flags int) {
	// #nosec G115 -- off and n count bytes written (never negative), and uintptr is 64 bits on these architectures
	_, _, _ = syscall.Syscall6(syscall.SYS_SYNC_FILE_RANGE, fd, uintptr(off), uintptr(n), uintptr(flags), 0, 0)
}

// startWriteback starts writing the dirty pages of the range to disk
// without waiting.
func startWriteback(fd uintptr, off, n int64) { syncFileRange(fd, off, n, syncFileRangeWrite) }

// waitWriteback waits until the range has been written to disk (data only:
// the closing fsync still writes the metadata and makes it durable).
func waitWriteback(fd uintptr, off, n int64) {
	syncFileRange(fd, off, n, syncFileRangeWaitBefore|syncFileRangeWrite|syncFileRangeWaitAfter)
}
