//go:build !linux

package hashworker

import "syscall"

func lowerPriority() {}

func sysProcAttr() *syscall.SysProcAttr { return nil }
