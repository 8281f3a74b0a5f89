package sandbox

import (
	seccomp "github.com/elastic/go-seccomp-bpf"
	"golang.org/x/sys/unix"
)

// allowed are the system calls the Go runtime, glibc and ONNX Runtime need
// to load a library, map a model, run threads and talk over the inherited
// socket. Anything else fails with EPERM, except the calls in fatal.
var allowed = []string{
	// memory
	"brk", "mmap", "munmap", "mremap", "mprotect", "madvise", "mincore", "membarrier",
	// files reached through inherited descriptors (/proc/self/fd/N/...)
	"read", "pread64", "readv", "preadv", "write", "pwrite64", "writev", "close", "lseek",
	"stat", "fstat", "lstat", "newfstatat", "statx", "fstatfs", "statfs",
	"readlink", "readlinkat", "getdents64", "access", "faccessat", "faccessat2",
	"fcntl", "dup", "dup2", "dup3", "fadvise64", "getcwd", "pipe2",
	// polling and waiting
	"epoll_create1", "epoll_ctl", "epoll_wait", "epoll_pwait", "epoll_pwait2", "eventfd2",
	"poll", "ppoll", "pselect6", "futex", "futex_waitv", "nanosleep", "clock_nanosleep", "sched_yield",
	// the socket to the supervisor
	"recvmsg", "sendmsg", "recvfrom", "sendto", "shutdown",
	"getsockopt", "setsockopt", "getsockname", "getpeername",
	// threads, signals, identity, time
	"set_robust_list", "get_robust_list", "set_tid_address", "rseq", "arch_prctl", "prctl",
	"rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "sigaltstack", "rt_sigtimedwait",
	"restart_syscall", "exit", "exit_group",
	"getpid", "gettid", "getppid", "getuid", "geteuid", "getgid", "getegid", "getresuid", "getresgid", "getgroups",
	"sched_getaffinity", "sched_setaffinity", "sched_getparam", "sched_getscheduler",
	"sched_get_priority_min", "sched_get_priority_max", "getpriority",
	"getrlimit", "getrusage", "sysinfo", "uname", "times",
	"clock_gettime", "clock_getres", "gettimeofday", "time", "getrandom",
	"setitimer", "getitimer", "timer_create", "timer_settime", "timer_gettime", "timer_delete",
}

// fatal are calls a model runtime never makes and an attacker would: the
// process is killed rather than told EPERM.
var fatal = []string{
	"ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "pidfd_getfd",
	"mount", "umount2", "pivot_root", "chroot", "move_mount", "open_tree", "fsopen", "fsmount", "fsconfig",
	"setns", "unshare", "bpf", "perf_event_open", "userfaultfd",
	"kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module",
	"reboot", "swapon", "swapoff", "acct", "syslog", "iopl", "ioperm", "quotactl",
	"keyctl", "add_key", "request_key", "open_by_handle_at", "name_to_handle_at",
	"settimeofday", "clock_settime", "clock_adjtime", "adjtimex",
	"execve", "execveat", "fork", "vfork",
}

// writeFlags are the open flags that write or create.
const writeFlags = unix.O_WRONLY | unix.O_RDWR | unix.O_CREAT | unix.O_TRUNC

// Policy is the worker's seccomp policy. pid is the worker's own pid:
// signals may only go to its own threads.
func Policy(pid int) seccomp.Policy {
	return seccomp.Policy{
		DefaultAction: seccomp.ActionErrno, // EPERM
		Syscalls: []seccomp.SyscallGroup{
			{Action: seccomp.ActionAllow, Names: allowed},
			{Action: seccomp.ActionAllow, NamesWithCondtions: []seccomp.NameWithConditions{
				// Sockets only of the unix family: no network, even
				// without a network namespace.
				{Name: "socket", Conditions: []seccomp.Condition{{Argument: 0, Operation: seccomp.Equal, Value: unix.AF_UNIX}}},
				// Files open read-only: a worker has nothing to write (no
				// creating, truncating or filling a world-writable /tmp).
				{Name: "openat", Conditions: []seccomp.Condition{{Argument: 2, Operation: seccomp.BitsNotSet, Value: writeFlags}}},
				{Name: "open", Conditions: []seccomp.Condition{{Argument: 1, Operation: seccomp.BitsNotSet, Value: writeFlags}}},
				// ioctl, but not the terminal ones that inject input into or
				// control a terminal the worker's stderr might be.
				{Name: "ioctl", Conditions: []seccomp.Condition{
					{Argument: 1, Operation: seccomp.NotEqual, Value: unix.TIOCSTI},
					{Argument: 1, Operation: seccomp.NotEqual, Value: unix.TIOCLINUX},
				}},
				// clone only for threads, never a new process.
				{Name: "clone", Conditions: []seccomp.Condition{{Argument: 0, Operation: seccomp.BitsSet, Value: unix.CLONE_THREAD}}},
				// Signals (Go's preemption, ORT's threads) only within
				// this process.
				{Name: "tgkill", Conditions: []seccomp.Condition{{Argument: 0, Operation: seccomp.Equal, Value: uint64(pid)}}}, // #nosec G115 -- a pid is positive
				// Reading limits (glibc, Go) and lowering them; raising
				// above the hard limit is refused by the kernel anyway.
				{Name: "prlimit64", Conditions: []seccomp.Condition{{Argument: 0, Operation: seccomp.Equal, Value: 0}}},
			}},
			// glibc falls back to clone when clone3 is "not implemented";
			// clone3's flags live in memory where seccomp cannot check them.
			{Action: seccomp.ActionErrno | seccomp.Action(unix.ENOSYS), Names: []string{"clone3"}},
			{Action: seccomp.ActionKillProcess, Names: fatal},
		},
	}
}
