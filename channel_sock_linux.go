package tether

import (
	"encoding/binary"
	"os"

	"golang.org/x/sys/unix"
)

// shutdownKeeping is how a sockConn's shutdown ends the socket: both ways,
// what was received staying readable.
const shutdownKeeping = unix.SHUT_RDWR

// kicker wakes a thread waiting in poll(2): r becomes readable at kick and
// stays so until reset. On Linux one eventfd(2) is both ends.
type kicker struct{ r, w int }

func newKicker() (*kicker, error) {
	fd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		return nil, os.NewSyscallError("eventfd", err)
	}
	return &kicker{r: fd, w: fd}, nil
}

func (k *kicker) kick() {
	var one [8]byte
	binary.NativeEndian.PutUint64(one[:], 1)
	_, _ = unix.Write(k.w, one[:]) // best effort: EAGAIN only when kicked already
}

func (k *kicker) reset() {
	var b [8]byte
	_, _ = unix.Read(k.r, b[:]) // best effort: EAGAIN when not kicked
}

func (k *kicker) close() { _ = unix.Close(k.r) } // best effort: ours, unused now
