//go:build unix

package testproc

import "syscall"

func kill(pid int) { _ = syscall.Kill(pid, syscall.SIGKILL) } // best effort: it may be exiting
