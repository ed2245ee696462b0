package tether

import (
	"os"

	"golang.org/x/sys/unix"
)

// pipeHeld says how many bytes pipe f holds (FIONREAD, which Linux calls
// TIOCINQ too; pipe(7)), if the kernel says.
func pipeHeld(f *os.File) (int, bool) {
	rc, err := f.SyscallConn()
	if err != nil {
		return 0, false
	}
	n, ierr := 0, error(nil)
	if err := rc.Control(func(fd uintptr) { n, ierr = unix.IoctlGetInt(int(fd), unix.TIOCINQ) }); err != nil || ierr != nil || n < 0 {
		return 0, false
	}
	return n, true
}
