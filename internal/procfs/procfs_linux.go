// Package procfs reads what the library and the command need from /proc:
// a process's children, its state, and whether the /proc mounted here is
// this PID namespace's at all.
package procfs

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Children lists pid's children from /proc/PID/task/*/children (Linux 3.5+,
// CONFIG_PROC_CHILDREN): each thread lists the children it forked. A
// process being reparented as the lists are read can be missed.
func Children(pid int) []int {
	dir := "/proc/" + strconv.Itoa(pid) + "/task"
	tasks, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var out []int
	for _, t := range tasks {
		b, err := os.ReadFile(dir + "/" + t.Name() + "/children")
		if err != nil {
			continue // the thread exited
		}
		for _, f := range strings.Fields(string(b)) {
			if c, err := strconv.Atoi(f); err == nil {
				out = append(out, c)
			}
		}
	}
	return out
}

// State is pid's state letter from /proc/PID/stat (R, S, T, Z...), 0 if it
// is gone.
func State(pid int) byte {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	i := strings.LastIndexByte(string(b), ')') // the command name may hold anything
	if i < 0 || i+2 >= len(b) {
		return 0
	}
	return b[i+2]
}

// IsOurs checks that the /proc mounted here shows this process's PID
// namespace: in a PID namespace that kept the host's /proc (unshare --pid
// without --mount-proc, bwrap --unshare-pid without --proc), /proc/PID names
// another process than the pid kill(2) and waitid(2) speak of, and nothing
// read there may be acted on.
func IsOurs() error {
	self, err := os.Readlink("/proc/self")
	if err != nil {
		return fmt.Errorf("tether: /proc: %w", err)
	}
	if self != strconv.Itoa(os.Getpid()) {
		return fmt.Errorf("tether: the /proc mounted here belongs to another PID namespace (it says this process is %s, the kernel says %d): "+
			"mount one for this namespace (unshare --mount-proc, bwrap --proc /proc) to use the keeper levels", self, os.Getpid())
	}
	return nil
}
