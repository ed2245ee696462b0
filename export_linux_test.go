package tether

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
