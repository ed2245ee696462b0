//go:build unix

package tether

import (
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"
)

// waitResult is what the OS told us about an exit.
type waitResult struct {
	code   int
	signal syscall.Signal // 0 if the process exited
	core   bool
	utime  time.Duration
	stime  time.Duration
	maxRSS int64

	treeUser, treeSys time.Duration // cgroup level only
	treePeak          int64
	treeOOM           int
}

func (w waitResult) fill(e *Exit) {
	e.Code = w.code
	if w.signal != 0 {
		e.Code = -1
		e.Signal = w.signal
		e.CoreDumped = w.core
	}
	e.UserTime, e.SystemTime, e.MaxRSS = w.utime, w.stime, w.maxRSS
	e.TreeUserTime, e.TreeSystemTime, e.TreeMaxMemory, e.TreeOOMKills = w.treeUser, w.treeSys, w.treePeak, w.treeOOM
}

func toSyscallSignal(sig os.Signal) (syscall.Signal, error) {
	s, ok := sig.(syscall.Signal)
	if !ok {
		return 0, fmt.Errorf("tether: signal %v is not a syscall.Signal", sig)
	}
	return s, nil
}

var sigKill os.Signal = syscall.SIGKILL
var sigTerm os.Signal = syscall.SIGTERM

// sigCont follows a stop's signal, so that stopped members act on it.
var sigCont os.Signal = syscall.SIGCONT

// waitBlocking reaps pid with wait4 from a goroutine parked in the syscall:
// the fallback where the kernel offers no pidfd (it costs a thread per child).
func waitBlocking(pid int) (waitResult, error) {
	var ws syscall.WaitStatus
	var ru syscall.Rusage
	for {
		_, err := syscall.Wait4(pid, &ws, 0, &ru)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EINTR) {
			return waitResult{}, fmt.Errorf("tether: wait for pid %d: %w", pid, err)
		}
	}
	w := waitResult{
		utime:  time.Duration(ru.Utime.Nano()),
		stime:  time.Duration(ru.Stime.Nano()),
		maxRSS: maxRSSBytes(int64(ru.Maxrss)),
	}
	switch {
	case ws.Exited():
		w.code = ws.ExitStatus()
	case ws.Signaled():
		w.signal = ws.Signal()
		w.core = ws.CoreDump()
	}
	return w, nil
}

// signalGroup sends sig to process group pgid. A group with no members left
// is not an error.
func signalGroup(pgid int, sig syscall.Signal) error {
	err := syscall.Kill(-pgid, sig)
	if err == nil || errors.Is(err, syscall.ESRCH) {
		return nil
	}
	return err
}

// groupAlive reports whether process group pgid still has a member.
func groupAlive(pgid int) bool {
	err := syscall.Kill(-pgid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

func signalNumber(s os.Signal) int {
	n, _ := s.(syscall.Signal)
	return int(n)
}
