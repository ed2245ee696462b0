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
