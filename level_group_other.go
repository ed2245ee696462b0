//go:build !unix && !windows

package tether

import (
	"os"
	"syscall"
	"time"
)

// Platforms other than Unix and Windows (plan9, js, wasip1): Start returns
// ErrUnsupported and nothing else here runs.

type groupProc struct{ pid int }

type waitResult struct {
	code         int
	utime, stime time.Duration
}

func (w waitResult) fill(e *Exit) { e.Code = w.code }

var sigKill os.Signal = os.Kill
var sigTerm os.Signal = os.Kill
var sigCont os.Signal

func toSyscallSignal(sig os.Signal) (syscall.Signal, error) {
	s, _ := sig.(syscall.Signal)
	return s, nil
}

func startOS(string, []string, []string, string, []*os.File, bool) (*groupProc, error) {
	return nil, ErrUnsupported
}

func (h *groupProc) wait() (waitResult, error)   { return waitResult{}, ErrUnsupported }
func (h *groupProc) signal(syscall.Signal) error { return ErrUnsupported }
func (h *groupProc) release()                    {}
func (h *groupProc) sweep()                      {}

func signalNumber(s os.Signal) int {
	n, _ := s.(syscall.Signal)
	return int(n)
}
