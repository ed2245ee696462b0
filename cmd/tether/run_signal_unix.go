//go:build unix

package main

import "syscall"

// sigCont continues a stopped process; see forwarder.pass.
const sigCont = syscall.SIGCONT

// signalGroup sends s to process group pgid.
func signalGroup(pgid int, s syscall.Signal) {
	_ = syscall.Kill(-pgid, s) // best effort: the group may be gone
}
