//go:build unix

package main

import (
	"runtime"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

// signalNamed is the signal called name ("SIGTERM"), in this OS's table.
func signalNamed(name string) (syscall.Signal, bool) {
	n := unix.SignalNum(name)
	return n, n != 0
}

// signalName is sig's name, "SIGTERM", or its number when it has none (a
// real-time signal).
func signalName(sig syscall.Signal) string {
	if n := unix.SignalName(sig); n != "" {
		return n
	}
	return strconv.Itoa(int(sig))
}

// signalExists reports whether sig is one of this OS's: a named one, or on
// Linux a real-time one (32 to 64, which have no names).
func signalExists(sig syscall.Signal) bool {
	return unix.SignalName(sig) != "" || runtime.GOOS == "linux" && sig >= 32 && sig <= 64
}
