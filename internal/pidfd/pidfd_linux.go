// Package pidfd watches a process for its exit with a pidfd (Linux 5.3):
// the keeper and tether run -die-with-parent both watch their parent so.
package pidfd

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// OpenParent opens a pidfd of ppid, this process's parent as the caller
// knows it. gone is true (and fd -1) when that parent has already ended:
// the pidfd is opened first and getppid checked after, so a parent that died
// in between — this process reparented — is never mistaken for the one that
// adopted it. err is set only when pidfds are missing (ENOSYS before Linux
// 5.3) or refused.
func OpenParent(ppid int) (fd int, gone bool, err error) {
	fd, err = unix.PidfdOpen(ppid, 0)
	if errors.Is(err, unix.ESRCH) {
		return -1, true, nil
	}
	if err != nil {
		return -1, false, err
	}
	if os.Getppid() != ppid {
		_ = unix.Close(fd)
		return -1, true, nil
	}
	return fd, false, nil
}

// WaitExit blocks until the process pidfd fd refers to has exited (the fd
// becomes readable), waiting in the netpoller, not in a thread of its own,
// and closes fd. An error means it could not wait; fd is closed then too.
func WaitExit(fd int) error {
	// Non-blocking, or os.File would not poll it and the wait would
	// return at once.
	if err := unix.SetNonblock(fd, true); err != nil {
		_ = unix.Close(fd)
		return err
	}
	f := os.NewFile(uintptr(fd), "pidfd")
	defer f.Close()
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	first := true
	return rc.Read(func(uintptr) bool {
		if first {
			first = false
			return false // wait for readability: the process exited
		}
		return true
	})
}
