//go:build unix

package main

import (
	"syscall"

	"github.com/tetherproc/tether"
)

// continueTree sends SIGCONT to p's tree after a stop signal, as the
// library's Stop does: a stopped process cannot act on the signal (it stays
// pending) and would wait out the grace, then die by SIGKILL without
// cleaning up.
func continueTree(p *tether.Process) {
	_ = p.Signal(syscall.SIGCONT) // best effort: after its close there is nothing left to continue
}
