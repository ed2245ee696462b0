//go:build !windows

package testproc

import (
	"errors"
	"os"
	"syscall"
)

// hasProc says whether this system has a Linux /proc to read.
var hasProc = func() bool { _, err := os.Stat("/proc/self/stat"); return err == nil }()

// alive reads the process's state in /proc: a zombie is dead. Without /proc
// (macOS, the BSDs) it asks kill(pid, 0), which counts a zombie as alive: a
// survivor check there may fail for a zombie, never pass for want of a file.
func alive(pid int) bool {
	if hasProc {
		state, ok := procState(pid)
		return ok && state != 'Z' && state != 'X'
	}
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

func processStart(pid int) (string, bool) {
	if hasProc {
		return procStartTime(pid)
	}
	if !alive(pid) {
		return "", false
	}
	return "?", true // no start time to tell a reused pid from the one recorded
}
