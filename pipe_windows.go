package tether

import (
	"errors"
	"fmt"
	"os"
	"syscall"

	"golang.org/x/sys/windows"
)

// brokenPipe says whether err is a write to a pipe whose reader is gone,
// and returns it as the error to wrap: one that matches syscall.EPIPE, as
// tether documents on every OS. Windows says ERROR_NO_DATA ("the pipe is
// being closed") or ERROR_BROKEN_PIPE, neither of which is EPIPE to
// errors.Is.
func brokenPipe(err error) (error, bool) {
	if errors.Is(err, syscall.EPIPE) {
		return err, true
	}
	if errors.Is(err, windows.ERROR_NO_DATA) || errors.Is(err, windows.ERROR_BROKEN_PIPE) {
		return fmt.Errorf("%w (%w)", syscall.EPIPE, err), true
	}
	return err, false
}

// readNow would read f without waiting; Windows' anonymous pipes are not in
// the netpoller, and a read may block: it says it cannot tell, and the
// monitor arms the drain bound as it always did there.
func readNow(*os.File, []byte, *int8) (int, error) { return 0, errWouldBlock }
