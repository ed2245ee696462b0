// Package sigabi is what the library and the command read and write of the
// kernel's signal structures directly, where x/sys/unix has no accessor:
// a SIGCHLD siginfo's pid and status, and rt_sigaction's handler. Written
// once, for every Linux port.
package sigabi

import (
	"runtime"
	"strings"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// si_code of a SIGCHLD siginfo (asm-generic/siginfo.h).
const (
	CLDExited    = 1
	CLDKilled    = 2
	CLDDumped    = 3
	CLDStopped   = 5
	CLDContinued = 6
)

// siginfo's union starts after three ints, aligned like a pointer. (MIPS
// swaps errno and code, not the union.)
const siginfoUnion = (12 + unsafe.Sizeof(uintptr(0)) - 1) &^ (unsafe.Sizeof(uintptr(0)) - 1)

// ChildPID is a SIGCHLD siginfo's si_pid: the union holds pid_t si_pid,
// uid_t si_uid, int si_status.
func ChildPID(info *unix.Siginfo) int32 {
	return *(*int32)(unsafe.Add(unsafe.Pointer(info), siginfoUnion))
}

// ChildStatus is its si_status: the exit code, or the signal.
func ChildStatus(info *unix.Siginfo) int32 {
	return *(*int32)(unsafe.Add(unsafe.Pointer(info), siginfoUnion+8))
}

// mips: the kernel's sigset_t has 128 signals there, and its struct
// sigaction puts an int sa_flags (padded to a word) before the handler.
var mips = strings.HasPrefix(runtime.GOARCH, "mips")

// sigsetSize is the kernel's sigset_t in bytes.
var sigsetSize = func() uintptr {
	if mips {
		return 16
	}
	return 8
}()

// action is the kernel's struct sigaction: 32 bytes or less on every port,
// the handler first but on MIPS. All zero is SIG_DFL, no flags, no mask.
type action [8]uintptr

func (a *action) handler() uintptr {
	if mips {
		return a[1]
	}
	return a[0]
}

func rtSigaction(sig syscall.Signal, act, old *action) error {
	_, _, e := unix.RawSyscall6(unix.SYS_RT_SIGACTION, uintptr(sig), uintptr(unsafe.Pointer(act)), uintptr(unsafe.Pointer(old)), sigsetSize, 0, 0)
	if e != 0 {
		return e
	}
	return nil
}

// Ignored asks the kernel whether sig's disposition is SIG_IGN, what
// os/signal cannot tell for the signals the Go runtime leaves as inherited.
func Ignored(sig syscall.Signal) bool {
	var old action
	return rtSigaction(sig, nil, &old) == nil && old.handler() == 1 // SIG_IGN
}

// WithDefault runs f with sig's disposition SIG_DFL, then puts back word for
// word what it was (a Go handler the runtime installed, say). It returns an
// error, and does not run f, if the disposition cannot be changed.
func WithDefault(sig syscall.Signal, f func()) error {
	var dfl, old action
	if err := rtSigaction(sig, &dfl, &old); err != nil {
		return err
	}
	f()
	return rtSigaction(sig, &old, nil)
}
