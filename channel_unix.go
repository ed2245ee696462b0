//go:build unix

package tether

import (
	"fmt"
	"net"
	"os"
	"syscall"
)

// channelPair makes the socketpair of an IPC channel: the parent's Channel and
// the child's end, to be passed to it and then closed.
func channelPair() (*Channel, *os.File, error) {
	fds, err := socketpairCloexec()
	if err != nil {
		return nil, nil, fmt.Errorf("socketpair: %w", err)
	}
	parent := os.NewFile(uintptr(fds[0]), "ipc")
	child := os.NewFile(uintptr(fds[1]), "ipc-child")
	conn, err := net.FileConn(parent) // a duplicate in the netpoller
	_ = parent.Close()                // the duplicate is what we keep
	if err != nil {
		_ = child.Close()
		return nil, nil, err
	}
	return newChannel(conn.(*net.UnixConn)), child, nil
}

// channelFromFD adopts descriptor fd, inherited from the parent, as a Channel.
func channelFromFD(fd int) (*Channel, error) {
	var st syscall.Stat_t
	if err := syscall.Fstat(fd, &st); err != nil {
		return nil, fmt.Errorf("tether: %s=%d: %w", nodeChannelFD, fd, err)
	}
	if st.Mode&syscall.S_IFMT != syscall.S_IFSOCK {
		return nil, fmt.Errorf("tether: %s=%d is not a socket", nodeChannelFD, fd)
	}
	// Our own children must not inherit the channel: a grandchild holding it
	// would keep the parent from seeing this process's end.
	syscall.CloseOnExec(fd)
	f := os.NewFile(uintptr(fd), "ipc")
	conn, err := net.FileConn(f)
	_ = f.Close() // the duplicate in conn is what we keep
	if err != nil {
		return nil, fmt.Errorf("tether: %s=%d: %w", nodeChannelFD, fd, err)
	}
	uc, ok := conn.(*net.UnixConn)
	if !ok {
		_ = conn.Close()
		return nil, fmt.Errorf("tether: %s=%d is not a unix socket", nodeChannelFD, fd)
	}
	return newChannel(uc), nil
}

// socketpairCloexec makes a stream socketpair whose ends no other fork
// inherits (darwin has no SOCK_CLOEXEC, so under ForkLock as os.Pipe does).
func socketpairCloexec() ([2]int, error) {
	syscall.ForkLock.RLock()
	defer syscall.ForkLock.RUnlock()
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err == nil {
		syscall.CloseOnExec(fds[0])
		syscall.CloseOnExec(fds[1])
	}
	return fds, err
}

func shutdownFD(fd uintptr) {
	_ = syscall.Shutdown(int(fd), syscall.SHUT_RDWR) // best effort: see shutdown
}

// writeOnce writes b to the channel's socket with one write(2) that does not
// wait: n < len(b) with a nil error when the socket is full.
func (c *Channel) writeOnce(b []byte) (n int, err error) {
	if c.rc == nil {
		return 0, net.ErrClosed
	}
	rerr := c.rc.Write(func(fd uintptr) bool {
		n, err = syscall.Write(int(fd), b)
		return true // never wait: what is left goes to the writer
	})
	switch {
	case rerr != nil: // closed, or past the write deadline
		return 0, rerr
	case err == syscall.EAGAIN || err == syscall.EINTR:
		return 0, nil
	case err != nil:
		return 0, os.NewSyscallError("write", err)
	}
	return n, nil
}
