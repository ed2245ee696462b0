package tether

import "time"

// KernelWaitsForTest is how many Waits are blocked in the kernel now, and
// MaxKernelWaits their bound.
func KernelWaitsForTest() int { return int(kernelWaits.Load()) }

const MaxKernelWaits = maxKernelWaits

// ExitWatcherRunsForTest reports whether the exit watcher's goroutine and
// epoll exist.
func ExitWatcherRunsForTest() bool {
	exits.mu.Lock()
	defer exits.mu.Unlock()
	return exits.procs != nil
}

// ReuseSlotForTest makes p's cgroup slot look taken by another tree since
// (its generation moves on, as takeSlot's reuse does), and reports whether
// p is at the cgroup level.
func ReuseSlotForTest(p *Process) bool {
	t, ok := p.h.(*cgroupTree)
	if !ok {
		return false
	}
	t.k.mu.Lock()
	t.s.gen++
	t.k.mu.Unlock()
	return true
}

// KeeperReadsForTest sets how long nobody must await a frame before the
// keeper client's readLoop reads (0: leave it), and reports how many answers
// and exit reports were read by their waiters and by readLoop so far.
func KeeperReadsForTest(idle time.Duration) (awaited, byLoop int) {
	if idle > 0 {
		idleRead = idle
	}
	keeperMu.Lock()
	k := keeperCl
	keeperMu.Unlock()
	if k == nil {
		return 0, 0
	}
	<-k.rtok // the token's holder alone counts
	defer func() { k.rtok <- struct{}{} }()
	return k.readByAwait, k.readIdle
}

// OldKernelForTest makes this process take the paths of the kernels that
// lack what it would use: noWaitid, waitid(P_PIDFD) (Linux 5.2 and 5.3:
// waits go by pid); noPoll, epoll on a pidfd (5.2: each started process
// gets a monitor goroutine, not the exit watcher). For a helper program of
// its own: both stay set.
func OldKernelForTest(noWaitid, noPoll bool) {
	if noWaitid {
		noPidfdWaitid.Store(true)
	}
	if noPoll {
		exits.unpollable.Store(true)
	}
}

// SetCgroupSignalHookForTest runs hook, in the signalling goroutine,
// between the read of a cgroup-level tree's members and their signals,
// with the tree's cgroup directory. For a helper program of its own: set
// before any signal.
func SetCgroupSignalHookForTest(hook func(dir string)) { cgroupSignalHook = hook }
