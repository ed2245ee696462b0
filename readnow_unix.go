//go:build unix

package tether

import (
	"errors"
	"io"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// readNow reads f once without waiting for data: errWouldBlock when there is
// none yet, or when f is not in non-blocking mode (a pipe the runtime could
// not add to its poller, epoll_ctl failing for want of memory or of
// max_user_watches, is left blocking: a read there would wait); io.EOF at
// the end, as f.Read would say.
//
// *mode caches what f's mode was found to be (0 not looked at yet, 1
// non-blocking, -1 blocking): it does not change, and one fcntl a pipe is
// enough.
func readNow(f *os.File, b []byte, mode *int8) (int, error) {
	if *mode < 0 {
		return 0, errWouldBlock
	}
	rc, err := f.SyscallConn()
	if err != nil {
		return 0, err
	}
	var n int
	var rerr error
	err = rc.Read(func(fd uintptr) bool {
		if *mode == 0 {
			*mode = -1
			if fl, err := unix.FcntlInt(fd, unix.F_GETFL, 0); err == nil && fl&unix.O_NONBLOCK != 0 {
				*mode = 1
			}
		}
		if *mode < 0 {
			rerr = errWouldBlock
			return true
		}
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
