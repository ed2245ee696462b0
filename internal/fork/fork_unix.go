//go:build unix

// Package fork starts tether's children on Unix: the group and cgroup
// levels' from the parent, the keeper level's from the keeper.
package fork

import (
	"os"
	"runtime"
	"syscall"
)

// Exec starts the child in a process group of its own (pgid = pid), so the
// tree can be signalled as one and a terminal's Ctrl-C reaches the parent,
// which decides, rather than the child.
func Exec(path string, argv, env []string, dir string, files []*os.File, sys *syscall.SysProcAttr) (int, error) {
	fds := make([]uintptr, len(files))
	for i, f := range files {
		fds[i] = ^uintptr(0) // -1: syscall.ForkExec closes that descriptor in the child
		if f != nil {
			fds[i] = f.Fd()
		}
	}
	sys.Setpgid = true
	pid, err := syscall.ForkExec(path, argv, &syscall.ProcAttr{Dir: dir, Env: env, Files: fds, Sys: sys})
	for _, f := range files {
		// Fd() above leaves the files in blocking mode; keep them alive until
		// the child has its copies.
		runtime.KeepAlive(f)
	}
	return pid, err
}
