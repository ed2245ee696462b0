//go:build unix && !linux

package tether

import (
	"os"
	"syscall"
)

// shutdownKeeping is how a sockConn's shutdown ends the socket: for writing
// only, since shutting it for reading here discards what was received.
const shutdownKeeping = syscall.SHUT_WR

// kicker wakes a thread waiting in poll(2): r becomes readable at kick and
// stays so until reset. Where there is no eventfd, a pipe.
type kicker struct{ r, w int }

func newKicker() (*kicker, error) {
	var p [2]int
	syscall.ForkLock.RLock() // as os.Pipe: no fork inherits it
	err := syscall.Pipe(p[:])
	if err == nil {
		syscall.CloseOnExec(p[0])
		syscall.CloseOnExec(p[1])
	}
	syscall.ForkLock.RUnlock()
	if err != nil {
		return nil, os.NewSyscallError("pipe", err)
	}
	for _, fd := range p {
		if err := syscall.SetNonblock(fd, true); err != nil {
			_ = syscall.Close(p[0]) // best effort: never used
			_ = syscall.Close(p[1])
			return nil, os.NewSyscallError("fcntl", err)
		}
	}
	return &kicker{r: p[0], w: p[1]}, nil
}

func (k *kicker) kick() { _, _ = syscall.Write(k.w, []byte{1}) } // best effort: full only when kicked already

func (k *kicker) reset() {
	var b [64]byte
	for {
		if n, _ := syscall.Read(k.r, b[:]); n < len(b) {
			return
		}
	}
}

func (k *kicker) close() {
	_ = syscall.Close(k.r) // best effort: ours, unused now
	_ = syscall.Close(k.w)
}
