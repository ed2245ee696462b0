//go:build unix

package tether

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// channelPair makes the socketpair of an IPC channel: the parent's Channel and
// the child's end, to be passed to it and then closed.
func channelPair() (*Channel, *os.File, error) {
	fds, err := socketpairCloexec()
	if err != nil {
		return nil, nil, fmt.Errorf("socketpair: %w", err)
	}
	s, err := newSockConn(fds[0])
	if err != nil {
		_ = syscall.Close(fds[0]) // best effort: never used
		_ = syscall.Close(fds[1]) // likewise
		return nil, nil, err
	}
	return newChannel(s), os.NewFile(uintptr(fds[1]), "ipc-child"), nil
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
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		return nil, fmt.Errorf("tether: %s=%d: %w", nodeChannelFD, fd, os.NewSyscallError("getsockname", err))
	}
	typ, err := syscall.GetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_TYPE)
	if err != nil {
		return nil, fmt.Errorf("tether: %s=%d: %w", nodeChannelFD, fd, os.NewSyscallError("getsockopt", err))
	}
	if _, ok := sa.(*syscall.SockaddrUnix); !ok || typ != syscall.SOCK_STREAM {
		return nil, fmt.Errorf("tether: %s=%d is not a unix stream socket", nodeChannelFD, fd)
	}
	// Our own children must not inherit the channel: a grandchild holding it
	// would keep the parent from seeing this process's end.
	syscall.CloseOnExec(fd)
	s, err := newSockConn(fd)
	if err != nil {
		return nil, fmt.Errorf("tether: %s=%d: %w", nodeChannelFD, fd, err)
	}
	return newChannel(s), nil
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

// pollWindow is how long a read of a sockConn waits in poll(2), its thread
// blocked, before it waits in Go's netpoller instead.
const pollWindow = 5 * time.Millisecond

// maxPollWaits bounds the reads of all Channels waiting in poll(2) at
// once, each holding a thread; beyond it a read waits in the netpoller at
// once. (300 channels starting to wait together made 300 threads.)
const maxPollWaits = 32

// pollWaits counts the reads in their poll(2) window, of every sockConn.
var pollWaits atomic.Int32

// fallbackSlice: a wait with no descriptor to spare for the netpoller
// waits in poll(2) this long at a time, trying again between (and a write
// looking at its deadline).
const fallbackSlice = 10 * time.Millisecond

// sockConn is a Channel's Unix stream socket, kept out of Go's netpoller
// while messages flow. A read that must wait blocks its thread in poll(2)
// (as os/exec's Wait blocks in wait4) for up to pollWindow; after that it
// waits in the netpoller through a duplicate descriptor registered for that
// one wait, so an idle channel holds no thread. A write that must wait (the
// peer is behind: only a stream of messages fills the socket) waits in the
// netpoller at once: then throughput matters, not the wake-up, and a
// thread blocked in poll(2) cost a stream to a Node child 5% with
// GOMAXPROCS=1 (the runtime hands the P of a thread in a system call to
// another). Where no descriptor is left for the duplicate (EMFILE), a wait
// stays in poll(2) rather than fail the channel.
//
// Why not the netpoller throughout, as a net.UnixConn: it registers the
// socket edge-triggered for reading and writing, so on a busy channel each
// message that arrives (EPOLLIN) and each one the peer takes from the
// socket (EPOLLOUT) wakes the thread parked in epoll_wait, and the
// goroutine the message is for is readied by a second thread. On one CPU a
// Go echo's round trip took 13 µs through the netpoller and 7.5 µs through
// poll(2) (docs/benchmarks.md, sixth session).
//
// Read is called by one reader at a time (the Channel's rsem); Write and
// writeNow by one writer at a time (the Channel's writing flag: they would
// interleave bytes); shutdown and the deadlines from any goroutine. A read
// deadline set while a read waits in poll(2) wakes it at once (through
// kick); a deadline set while a wait is in the netpoller goes to the
// duplicate; Close wakes every wait by shutting the socket down. Deadlines
// are net.Conn's, except that what can be read or written without waiting
// still is after the deadline.
type sockConn struct {
	fd      int           // O_NONBLOCK; closed by Close once no operation uses it
	window  time.Duration // pollWindow, unless a test says otherwise
	kick    *kicker       // wakes a read waiting in poll(2)
	cleanup runtime.Cleanup

	mu      sync.Mutex
	refs    int           // operations using fd
	closing bool          // Close began: no new operation may start
	idle    chan struct{} // made by Close if refs > 0; closed when refs reach 0
	polling bool          // the read (one at a time) waits in poll(2): a read deadline kicks
	dir     [2]sockDir    // read, write

	beforePoll func() // for tests: run after a read's snapshot, before poll(2)
}

// sockDir is the state of one direction of a sockConn (under its mu).
type sockDir struct {
	deadline  time.Time // see sockConn
	slow      *os.File  // the netpoller's duplicate while a wait is there
	slowN     int       // for tests: waits that went to the netpoller,
	fallbackN int       // and waits that could not
}

const (
	dirRead  = 0
	dirWrite = 1
)

// sockFDs are a sockConn's descriptors, for its cleanup: a Channel dropped
// without Close releases them when it is collected, as a net.Conn's
// finalizer would.
type sockFDs struct {
	fd   int
	kick *kicker
}

func newSockConn(fd int) (*sockConn, error) {
	if err := syscall.SetNonblock(fd, true); err != nil {
		return nil, os.NewSyscallError("fcntl", err)
	}
	// Made now, so that running out of descriptors fails the channel's
	// making, not a wait on a channel in use.
	kick, err := newKicker()
	if err != nil {
		return nil, err
	}
	s := &sockConn{fd: fd, window: pollWindow, kick: kick}
	s.cleanup = runtime.AddCleanup(s, func(f sockFDs) {
		_ = syscall.Close(f.fd) // best effort: nobody can use it now
		f.kick.close()
	}, sockFDs{fd, kick})
	return s, nil
}

// acquire marks an operation on fd; it fails once Close began.
func (s *sockConn) acquire() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return net.ErrClosed
	}
	s.refs++
	return nil
}

func (s *sockConn) release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refs--
	if s.refs == 0 && s.idle != nil {
		close(s.idle)
		s.idle = nil
	}
}

// Read reads what is there, waiting for something (or the peer's end: 0,
// io.EOF) until the read deadline.
func (s *sockConn) Read(b []byte) (int, error) {
	if err := s.acquire(); err != nil {
		return 0, err
	}
	defer s.release()
	var until time.Time // the end of the poll(2) window, from the first wait
	slot := false       // this read holds one of maxPollWaits
	defer func() {
		if slot {
			pollWaits.Add(-1)
		}
	}()
	fallback := false // no descriptor for the netpoller: poll(2), fallbackSlice at a time
	for {
		n, err := syscall.Read(s.fd, b)
		switch {
		case err == nil && n == 0 && len(b) > 0:
			return 0, io.EOF
		case err == nil:
			return n, nil
		case err == syscall.EINTR:
			continue
		case err != syscall.EAGAIN:
			return 0, os.NewSyscallError("read", err)
		}
		if until.IsZero() {
			until = time.Now().Add(s.window)
			slot = takePollSlot() // else too many wait so: the netpoller at once
		}
		if slot || fallback {
			late, err := s.wait(until)
			if err != nil {
				return 0, err
			}
			if !late {
				continue
			}
			if slot {
				pollWaits.Add(-1)
				slot = false
			}
		}
		n, err = s.slowly(dirRead, func(f *os.File) (int, error) { return f.Read(b) })
		if err != errNotPollable {
			return n, err
		}
		fallback = true // in poll(2) a slice at a time, then the netpoller again
		until = time.Now().Add(fallbackSlice)
	}
}

// takePollSlot takes one of the maxPollWaits, if one is free.
func takePollSlot() bool {
	for w := pollWaits.Load(); w < maxPollWaits; w = pollWaits.Load() {
		if pollWaits.CompareAndSwap(w, w+1) {
			return true
		}
	}
	return false
}

// Write writes all of b, waiting for room until the write deadline.
func (s *sockConn) Write(b []byte) (int, error) {
	if err := s.acquire(); err != nil {
		return 0, err
	}
	defer s.release()
	done := 0
	for done < len(b) {
		n, err := syscall.Write(s.fd, b[done:])
		switch {
		case err == nil:
			done += n
			continue
		case err == syscall.EINTR:
			continue
		case err != syscall.EAGAIN:
			return done, os.NewSyscallError("write", err)
		}
		n, err = s.slowly(dirWrite, func(f *os.File) (int, error) { return f.Write(b[done:]) })
		if err != errNotPollable {
			return done + n, err
		}
		if err := s.waitWritable(); err != nil {
			return done, err
		}
	}
	return done, nil
}

// writeNow writes what the socket takes now, without waiting: n < len(b)
// with a nil error when it is full.
func (s *sockConn) writeNow(b []byte) (int, error) {
	if err := s.acquire(); err != nil {
		return 0, err
	}
	defer s.release()
	for {
		n, err := syscall.Write(s.fd, b)
		switch {
		case err == nil:
			return n, nil
		case err == syscall.EINTR:
			continue
		case err == syscall.EAGAIN:
			return 0, nil
		}
		return 0, os.NewSyscallError("write", err)
	}
}

// wait waits in poll(2) until the socket may be read, the read deadline
// passes (os.ErrDeadlineExceeded), Close (net.ErrClosed), or until; late
// says until came first. The caller reads again after a wait without error.
func (s *sockConn) wait(until time.Time) (late bool, err error) {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return false, net.ErrClosed
	}
	dl := s.dir[dirRead].deadline
	s.polling = true
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.polling = false
		s.mu.Unlock()
	}()
	if s.beforePoll != nil {
		s.beforePoll()
	}
	// A deadline set from here on kicks: poll(2) returns at once.
	now := time.Now()
	if !dl.IsZero() && !now.Before(dl) {
		return false, os.ErrDeadlineExceeded
	}
	if !now.Before(until) {
		return true, nil
	}
	end := until
	if !dl.IsZero() && dl.Before(end) {
		end = dl
	}
	ms := int((end.Sub(now) + time.Millisecond - 1) / time.Millisecond)
	fds := []unix.PollFd{{Fd: int32(s.fd), Events: unix.POLLIN}, {Fd: int32(s.kick.r), Events: unix.POLLIN}}
	if _, err := unix.Poll(fds, ms); err != nil && err != unix.EINTR {
		return false, os.NewSyscallError("poll", err)
	}
	if fds[1].Revents != 0 {
		s.kick.reset()
	}
	return false, nil
}

// waitWritable waits in poll(2) for room, a write that could not wait in
// the netpoller (no descriptor for it): fallbackSlice at a time, looking at
// the write deadline and Close between.
func (s *sockConn) waitWritable() error {
	for {
		s.mu.Lock()
		closing, dl := s.closing, s.dir[dirWrite].deadline
		s.mu.Unlock()
		if closing {
			return net.ErrClosed
		}
		now := time.Now()
		if !dl.IsZero() && !now.Before(dl) {
			return os.ErrDeadlineExceeded
		}
		wait := fallbackSlice
		if !dl.IsZero() && dl.Sub(now) < wait {
			wait = dl.Sub(now)
		}
		fds := []unix.PollFd{{Fd: int32(s.fd), Events: unix.POLLOUT}}
		if _, err := unix.Poll(fds, int((wait+time.Millisecond-1)/time.Millisecond)); err != nil && err != unix.EINTR {
			return os.NewSyscallError("poll", err)
		}
		if fds[0].Revents != 0 {
			return nil // room, or an error the write will return
		}
	}
}

// errNotPollable: slowly did nothing, having no descriptor for the
// duplicate, or the netpoller would not take it.
var errNotPollable = errors.New("no descriptor for the netpoller")

// slowly runs op on a duplicate of the socket registered in Go's
// netpoller, for one wait, under the deadline of its direction; it returns
// errNotPollable, having done nothing, when it cannot.
func (s *sockConn) slowly(dir int, op func(*os.File) (int, error)) (int, error) {
	f, err := s.pollable()
	if err != nil {
		s.mu.Lock()
		s.dir[dir].fallbackN++
		s.mu.Unlock()
		return 0, errNotPollable
	}
	s.mu.Lock()
	d := &s.dir[dir]
	d.slow = f
	d.slowN++
	setFileDeadline(f, dir, d.deadline) // pollable: cannot fail
	s.mu.Unlock()
	n, err := op(f)
	s.mu.Lock()
	d.slow = nil
	s.mu.Unlock()
	_ = f.Close() // best effort: a duplicate; this leaves the netpoller
	return n, err
}

// pollable returns a duplicate of the socket in Go's netpoller.
func (s *sockConn) pollable() (*os.File, error) {
	syscall.ForkLock.RLock() // as os.Pipe: no fork inherits it
	dup, err := syscall.Dup(s.fd)
	if err == nil {
		syscall.CloseOnExec(dup)
	}
	syscall.ForkLock.RUnlock()
	if err != nil {
		return nil, os.NewSyscallError("dup", err)
	}
	f := os.NewFile(uintptr(dup), "ipc") // non-blocking, so in the netpoller if it has room
	if err := f.SetReadDeadline(time.Time{}); err != nil {
		_ = f.Close()   // best effort: unused
		return nil, err // os.ErrNoDeadline: not in the netpoller
	}
	return f, nil
}

// setFileDeadline sets the deadline of direction dir of f.
func setFileDeadline(f *os.File, dir int, t time.Time) {
	if dir == dirRead {
		_ = f.SetReadDeadline(t) // cannot fail: f is pollable and open
	} else {
		_ = f.SetWriteDeadline(t) // likewise
	}
}

// setDeadline sets the deadline of one direction and wakes its wait.
func (s *sockConn) setDeadline(dir int, t time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := &s.dir[dir]
	d.deadline = t
	if d.slow != nil {
		setFileDeadline(d.slow, dir, t)
	}
	if dir == dirRead && s.polling {
		s.kick.kick()
	}
}

func (s *sockConn) SetReadDeadline(t time.Time) error  { s.setDeadline(dirRead, t); return nil }
func (s *sockConn) SetWriteDeadline(t time.Time) error { s.setDeadline(dirWrite, t); return nil }

// shutdown ends the connection without closing the descriptor (see
// Channel.shutdown): in both directions on Linux, where what was received
// stays readable and then reads end; elsewhere for writing only, since the
// BSDs and macOS discard the unread data of a socket shut for reading
// (sorflush), so reads end when every holder of the peer's end has closed it.
func (s *sockConn) shutdown() {
	if s.acquire() != nil {
		return // closed already
	}
	defer s.release()
	_ = syscall.Shutdown(s.fd, shutdownKeeping) // best effort: the peer may be gone
}

// Close closes the socket. An operation in progress is woken by shutting
// the socket down (the peer sees the same end as at the close) and is
// waited for, so that the descriptor's number is never reused under it.
func (s *sockConn) Close() error {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return net.ErrClosed
	}
	s.closing = true
	var idle chan struct{}
	if s.refs > 0 {
		idle = make(chan struct{})
		s.idle = idle
	}
	s.mu.Unlock()
	if idle != nil {
		_ = syscall.Shutdown(s.fd, syscall.SHUT_RDWR) // best effort: wakes poll(2) and the netpoller
		<-idle                                        // bounded: every wait ends at the shutdown
	}
	s.cleanup.Stop()
	s.kick.close() // nobody uses it now: refs are 0 and closing is set
	return os.NewSyscallError("close", syscall.Close(s.fd))
}
