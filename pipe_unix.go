//go:build !windows

package tether

import (
	"errors"
	"io"
	"os"
	"syscall"
)

// brokenPipe says whether err is a write to a pipe whose reader is gone,
// and returns it as the error to wrap: one that matches syscall.EPIPE.
func brokenPipe(err error) (error, bool) { return err, errors.Is(err, syscall.EPIPE) }

// readNow reads f once without waiting for data: errWouldBlock when there is
// none yet, io.EOF at the end, as f.Read would say. f is a pipe in the
// netpoller, so non-blocking.
func readNow(f *os.File, b []byte) (int, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return 0, err
	}
	var n int
	var rerr error
	err = rc.Read(func(fd uintptr) bool {
		for {
			n, rerr = syscall.Read(int(fd), b)
			if rerr != syscall.EINTR {
				return true // never wait: the caller decides
			}
		}
	})
	switch {
	case err != nil:
		return 0, err
	case errors.Is(rerr, syscall.EAGAIN):
		return 0, errWouldBlock
	case rerr != nil:
		return 0, rerr
	case n == 0:
		return 0, io.EOF
	}
	return n, nil
}
