//go:build !linux

package main

import (
	"os"
	"syscall"

	"golang.org/x/term"
)

// Elsewhere tether run forwards signals and passes exit codes through, but
// does not reap orphans or hand over the terminal (not built yet).
type reaper struct{}

func becomeReaper() *reaper { return &reaper{} }
func (*reaper) stop()       {}

func forwardable() []os.Signal {
	return []os.Signal{os.Interrupt, syscall.SIGTERM}
}

// parseSignal reads a signal as every command does (readSignal).
func parseSignal(s string) (syscall.Signal, error) {
	return readSignal(s)
}

type ttyOwner struct{ ok bool }

func foregroundTTY() *ttyOwner { return &ttyOwner{} }
func (*ttyOwner) take()        {}

func signalOne(pid int, s os.Signal) {
	if p, err := os.FindProcess(pid); err == nil {
		_ = p.Signal(s) // best effort: it may have exited
	}
}

// isTerminal reports whether f is a terminal, as golang.org/x/term answers
// it for this OS (a console on Windows, TIOCGETA on the BSDs and macOS): a
// character device is not enough, /dev/null and NUL are ones.
func isTerminal(f *os.File) bool {
	return term.IsTerminal(int(f.Fd()))
}
