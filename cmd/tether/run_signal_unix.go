//go:build unix

package main

import (
	"os"
	"syscall"
)

// sigCont continues a stopped process; see forwarder.pass.
const sigCont = syscall.SIGCONT

// sigPipe is caught apart and dropped by tether run (see wrap).
var sigPipe = []os.Signal{syscall.SIGPIPE}

// signalGroup sends s to process group pgid.
func signalGroup(pgid int, s syscall.Signal) {
	_ = syscall.Kill(-pgid, s) // best effort: the group may be gone
}
