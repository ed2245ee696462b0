//go:build !linux

package tether

// watch: only Linux has the exit watcher; elsewhere Start runs the monitor
// in a goroutine.
func (p *Process) watch() bool { return false }

func (p *Process) unwatch() bool { return false }

func doneKernelWait() {}
