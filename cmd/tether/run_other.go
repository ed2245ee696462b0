//go:build !linux

package main

import (
	"errors"
	"os"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/term"

	"github.com/tetherproc/tether"
)

// Elsewhere tether run forwards signals and passes exit codes through, but
// does not reap orphans or hand over the terminal (not built yet).
type reaper struct {
	program atomic.Int64 // unused here: no stop reports
}

func becomeReaper(chan<- tether.Event) *reaper { return &reaper{} }
func (*reaper) stop()                          {}

func forwardable() []os.Signal {
	return []os.Signal{os.Interrupt, syscall.SIGTERM}
}

type ttyOwner struct{ ok bool }

func foregroundTTY() *ttyOwner { return &ttyOwner{} }

func (*ttyOwner) followsJobs() bool { return false }
func (*ttyOwner) takeFrom(int)      {}

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

// leftovers is not known here: no /proc to walk.
func leftovers() []procDesc { return nil }

// inheritedFiles: passing descriptors on is done on Linux only so far.
func inheritedFiles() ([]*os.File, error) { return nil, nil }

// watchParent: -die-with-parent is Linux only so far.
func watchParent(on bool) (<-chan struct{}, error) {
	if on {
		return nil, errors.New("-die-with-parent: only on Linux so far")
	}
	return nil, nil
}

// isInit: only Linux's tether run acts as a PID namespace's init.
func isInit() bool { return false }

func stopNamespace(syscall.Signal, time.Duration, *reaper, func()) {}

// giveIfOurs: no terminal handling here.
func (*ttyOwner) giveIfOurs(int) {}

// stopSelf: job control is Linux only so far.
func stopSelf(syscall.Signal) {}

// isStopped: job control is Linux only so far.
func isStopped(int) bool { return false }
