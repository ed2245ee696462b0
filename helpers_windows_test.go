package tether_test

import (
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"
	"testing"

	"github.com/tetherproc/tether"

	"golang.org/x/sys/windows"
)

// newSessionAttr starts a child as far from its parent as Windows allows
// without leaving the Job Object: DETACHED_PROCESS (no console) in a new
// process group (no console control events from the parent's group). The
// Job Object holds it all the same.
func newSessionAttr(setsid bool) *syscall.SysProcAttr {
	if !setsid {
		return nil
	}
	return &syscall.SysProcAttr{CreationFlags: windows.DETACHED_PROCESS | windows.CREATE_NEW_PROCESS_GROUP}
}

// reapAndBlock blocks until killed: Windows has no zombies to reap.
func reapAndBlock() { blockForever() }

// lowerFDLimit: Windows has no descriptor limit to lower.
func lowerFDLimit(uint64) error {
	return errors.New("no RLIMIT_NOFILE on Windows")
}

// treeDiesAtClose: on Windows a Process's close closes its Job Object,
// which kills whatever of the tree is still in it (see level_group_windows.go).
const treeDiesAtClose = true

// pipeCapacity is what a pipe holds before a writer blocks: Windows gives
// os.Pipe's anonymous pipes a 4 KiB buffer.
const pipeCapacity = 4 << 10

// underWine says whether this is Wine, not Windows: Wine's ntdll exports
// wine_get_version.
var underWine = windows.NewLazySystemDLL("ntdll.dll").NewProc("wine_get_version").Find() == nil

// skipOnWindows skips a test that cannot apply on Windows, saying why.
func skipOnWindows(t testing.TB, why string) {
	t.Helper()
	t.Skip("not on Windows: " + why)
}

// skipUnderWine skips a test that Windows would run but Wine cannot.
func skipUnderWine(t testing.TB, why string) {
	t.Helper()
	if underWine {
		t.Skip("not under Wine: " + why)
	}
}

// ctrlBreakRefused is why the tests of a graceful stop by signal skip under
// Wine: it refuses GenerateConsoleCtrlEvent to a process group, so a stop
// signal falls straight to TerminateJobObject there.
const ctrlBreakRefused = "Wine 8 refuses GenerateConsoleCtrlEvent to a process group (a stop signal falls to TerminateJobObject)"

// exitFiguresKnown: Wine may report an exited child's CPU times, and always
// its peak working set, as zero.
var exitFiguresKnown = !underWine

// openDescriptors is 0: Windows handles are not counted. The count moves
// with the runtime's threads (each waiting child parks one, and idle ones
// are kept with their handles), so it would not show a leak of ours.
func openDescriptors() int { return 0 }

// rawChannel is the channel's pipe (C runtime descriptor fd), to write to
// as it is, one libuv frame per write.
func rawChannel(fd int) io.Writer {
	w, err := tether.RawChannelForTest(fd)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	return w
}

// statusControlCExit is how a console program that does not handle
// CTRL_BREAK_EVENT exits.
const statusControlCExit = 0xC000013A

// endedByStopSignal says whether a process ended by the default stop
// signal: CTRL_BREAK_EVENT on Windows, unhandled (STATUS_CONTROL_C_EXIT);
// or, where that cannot be sent (Wine, a parent without a console), the
// TerminateJobObject the stop falls to, which Exit reports as SIGKILL.
func endedByStopSignal(st *tether.Exit) bool {
	return st.Signal == syscall.SIGKILL || st.Code == statusControlCExit
}
