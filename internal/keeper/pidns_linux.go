package keeper

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// The keeper's side of ContainPIDNamespace (see the root package's
// level_pidns_linux.go for the whole).

// enterPIDNamespace runs first in the keeper of ContainPIDNamespace, on the
// thread that forks the children: it mounts a /proc of the namespace, in a
// mount namespace no other process shares, and returns a path to the
// parent's /proc.
func enterPIDNamespace() (hostProc string, err error) {
	fd, err := unix.Open("/proc", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return "", fmt.Errorf("tether: PID namespace: open /proc: %w", err)
	}
	// Private first: a shared / would carry our /proc mount to the host's.
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		_ = unix.Close(fd)
		return "", fmt.Errorf("tether: PID namespace: make mounts private: %w", err)
	}
	if err := unix.Mount("proc", "/proc", "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		_ = unix.Close(fd)
		return "", fmt.Errorf("tether: PID namespace: mount /proc: %w", err)
	}
	// Children inherit ambient capabilities across exec: in a user
	// namespace they must start with none (this thread forks them all).
	_ = unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) // best effort: fails only on kernels before 4.3, which have no ambient set to clear
	// The descriptor stays open for the keeper's life; the magic link in our
	// own /proc leads to the mount it was opened on.
	return "/proc/self/fd/" + strconv.Itoa(fd), nil
}

// parentsPID returns the pid in the parent's namespace of the keeper's child
// pid (a pid in ours), 0 if none is found. Called with k.mu held, before the
// child can be reaped. The child was the last forked, so the children lists
// are read from the end.
func (k *keeper) parentsPID(pid int) int {
	dir := k.hostProc + "/self/task"
	tasks, err := os.ReadDir(dir)
	if err != nil {
		return 0
	}
	for _, t := range tasks {
		b, err := os.ReadFile(dir + "/" + t.Name() + "/children")
		if err != nil {
			continue
		}
		f := strings.Fields(string(b))
		for i := len(f) - 1; i >= 0; i-- {
			host, err := strconv.Atoi(f[i])
			if err == nil && innermostPID(k.hostProc, host) == pid {
				return host
			}
		}
	}
	return 0
}

// innermostPID reads the last NSpid of host pid in proc: its pid in the
// innermost namespace it is in; 0 if it is gone.
func innermostPID(proc string, pid int) int {
	b, err := os.ReadFile(proc + "/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "NSpid:"); ok {
			f := strings.Fields(rest)
			if len(f) == 0 {
				return 0
			}
			n, _ := strconv.Atoi(f[len(f)-1])
			return n
		}
	}
	return 0
}
