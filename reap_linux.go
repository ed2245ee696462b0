package tether

import (
	"errors"
	"os"
	"sync"
	"syscall"

	"github.com/tetherproc/tether/internal/procfs"
)

// The children tether itself started and reaps (group-level children and
// keepers): ReapOrphans leaves them alone. forkMu is read-held from fork to
// registration and write-held by ReapOrphans, so it never sees a child of
// ours not yet registered. Counts, not flags: a pid reused by a new child
// before the old one's disown stays registered.
var (
	forkMu  sync.RWMutex
	ownMu   sync.Mutex
	ownPIDs = map[int]int{}
)

// forkOwned runs fork (which returns the new pid) and registers the child.
func forkOwned(fork func() (int, error)) (int, error) {
	forkMu.RLock()
	defer forkMu.RUnlock()
	pid, err := fork()
	if err == nil {
		ownMu.Lock()
		ownPIDs[pid]++
		ownMu.Unlock()
	}
	return pid, err
}

// disown forgets a child tether has reaped.
func disown(pid int) {
	ownMu.Lock()
	if ownPIDs[pid]--; ownPIDs[pid] <= 0 {
		delete(ownPIDs, pid)
	}
	ownMu.Unlock()
}

// ReapOrphans reaps every exited child of this process that tether did not
// start, and returns how many. It is for an init: a process that is PID 1 or
// a child subreaper (PR_SET_CHILD_SUBREAPER) inherits orphans, which stay
// zombies unless it reaps them. Call it when SIGCHLD arrives (it does not
// block). Do not use it in a program that also starts processes with os/exec
// or syscall: it would reap those too, and their Wait would fail (the
// go-reaper and runc bugs); tether's own children are never touched. It
// reads /proc, and fails where the /proc mounted is another PID
// namespace's (see Containment's keeper levels).
func ReapOrphans() (int, error) {
	if err := procfs.IsOurs(); err != nil {
		return 0, err // its children lists would be another process's
	}
	forkMu.Lock()
	defer forkMu.Unlock()
	n := 0
	for _, pid := range procfs.Children(os.Getpid()) {
		ownMu.Lock()
		ours := ownPIDs[pid] > 0
		ownMu.Unlock()
		if ours {
			continue
		}
		var ws syscall.WaitStatus
		for {
			got, err := syscall.Wait4(pid, &ws, syscall.WNOHANG, nil)
			if errors.Is(err, syscall.EINTR) {
				continue
			}
			if got == pid {
				n++
			}
			break
		}
	}
	return n, nil
}
