//go:build !unix

package main

import (
	"os"
	"syscall"
)

// sigCont is 0: without SIGSTOP there is no stopped process to continue.
const sigCont = syscall.Signal(0)

// sigPipe: none here.
var sigPipe []os.Signal

// signalGroup sends s to the program alone: no process groups here.
func signalGroup(pid int, s syscall.Signal) { signalOne(pid, s) }
