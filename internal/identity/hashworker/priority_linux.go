package hashworker

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// workerNice is the workers' scheduling niceness: the kernel runs the
// server's threads first when both want a CPU.
const workerNice = 10

func lowerPriority() {
	_ = unix.Setpriority(unix.PRIO_PROCESS, 0, workerNice)
}

// sysProcAttr kills a worker when the server dies, even by SIGKILL.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
