//go:build unix

package tether_test

import (
	"io"
	"os"
	"syscall"
	"testing"

	"github.com/tetherproc/tether"
)

// The per-OS parts of the helper programs: what the shared test files ask
// of the system, said once per OS.

// newSessionAttr starts a child in a session of its own when setsid is set
// (out of the parent's process group and terminal: what a daemon does).
func newSessionAttr(setsid bool) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setsid: setsid}
}

// reapAndBlock reaps the children that exit, then blocks until killed.
func reapAndBlock() {
	for {
		var ws syscall.WaitStatus
		if _, err := syscall.Wait4(-1, &ws, 0, nil); err == syscall.ECHILD {
			blockForever()
		}
	}
}

// lowerFDLimit sets the descriptor limit (RLIMIT_NOFILE) to n.
func lowerFDLimit(n uint64) error {
	var lim syscall.Rlimit
	setLimit(&lim.Cur, n) // uint64 on Linux and macOS, int64 on FreeBSD
	setLimit(&lim.Max, n)
	return syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
}

func setLimit[T ~int64 | ~uint64](p *T, n uint64) { *p = T(n) }

// treeDiesAtClose: on Unix what of the tree outlives the process is left
// alone at close (unless Stop or Kill ended it).
const treeDiesAtClose = false

// pipeCapacity is what a pipe holds before a writer blocks: 64 KiB on Linux
// and macOS.
const pipeCapacity = 64 << 10

func skipOnWindows(testing.TB, string) {}

func skipUnderWine(testing.TB, string) {}

const ctrlBreakRefused = ""

const exitFiguresKnown = true

// openDescriptors counts this process's open descriptors (0 without /proc).
func openDescriptors() int {
	e, _ := os.ReadDir("/proc/self/fd")
	return len(e)
}

// rawChannel is descriptor fd, the channel's socket, to write to as it is.
func rawChannel(fd int) io.Writer { return os.NewFile(uintptr(fd), "ipc") }

// endedByStopSignal says whether a process ended by the default stop
// signal, SIGTERM.
func endedByStopSignal(st *tether.Exit) bool { return st.Signal == syscall.SIGTERM }
