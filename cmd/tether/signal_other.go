//go:build !unix

package main

import (
	"strconv"
	"syscall"
)

// signals are the signals Go's syscall package names on every OS. (On
// Windows the library can deliver SIGTERM, SIGINT and SIGKILL; Start
// refuses a stop signal it cannot, saying so.)
var signals = []struct {
	name string
	sig  syscall.Signal
}{
	{"SIGHUP", syscall.SIGHUP}, {"SIGINT", syscall.SIGINT}, {"SIGQUIT", syscall.SIGQUIT},
	{"SIGILL", syscall.SIGILL}, {"SIGTRAP", syscall.SIGTRAP}, {"SIGABRT", syscall.SIGABRT},
	{"SIGBUS", syscall.SIGBUS}, {"SIGFPE", syscall.SIGFPE}, {"SIGKILL", syscall.SIGKILL},
	{"SIGSEGV", syscall.SIGSEGV}, {"SIGPIPE", syscall.SIGPIPE}, {"SIGALRM", syscall.SIGALRM},
	{"SIGTERM", syscall.SIGTERM},
}

func signalNamed(name string) (syscall.Signal, bool) {
	for _, e := range signals {
		if e.name == name {
			return e.sig, true
		}
	}
	return 0, false
}

func signalName(sig syscall.Signal) string {
	for _, e := range signals {
		if e.sig == sig {
			return e.name
		}
	}
	return strconv.Itoa(int(sig))
}

func signalExists(sig syscall.Signal) bool {
	_, ok := signalNamed(signalName(sig))
	return ok
}
