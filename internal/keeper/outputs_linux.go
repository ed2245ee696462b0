package keeper

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// Outputs that outlive their reader. A tree's stdout and stderr are often
// pipes the parent reads (tether up prefixes every line; Cmd.Stdout =
// Pipe()). When the parent dies, those pipes lose their only reader, and
// the first write of a tree that is stopping — a server's "shutting down",
// or a shell's "Terminated" for a job it reaps — kills it with SIGPIPE
// before its clean-up has run (measured: 7 of 25 SIGKILLs of tether up left
// a polite shell uncleaned; TestPoliteChildWritesAfterParentDeath). So
// before the teardown sends a stop signal, the keeper opens the read side
// of every such pipe of the tree's processes through /proc/PID/fd (a pipe
// opened there is the same pipe) and drains it, discarding what it reads,
// until the teardown is over: the tree's writes succeed, and never block.
// (A write in the instant between the parent's death and this is not
// saved: nothing reads then.)

// holdOutputs opens the read side of the pipes at descriptors 1 and 2 of
// each of pids, each pipe once, and drains them until stop is called.
// Owner of the goroutine and the descriptors: the teardown, which calls
// stop at its end; stop closes them.
func holdOutputs(pids []int) (stop func()) {
	seen := map[string]bool{}
	var fds []int
	for _, pid := range pids {
		for _, n := range []string{"1", "2"} {
			p := filepath.Join("/proc", strconv.Itoa(pid), "fd", n)
			target, err := os.Readlink(p)
			if err != nil || !strings.HasPrefix(target, "pipe:") || seen[target] {
				continue
			}
			// O_RDONLY on a pipe's /proc entry gives a read end of the
			// same pipe; O_NONBLOCK so that the drain never waits on it.
			fd, err := unix.Open(p, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
			if err != nil {
				continue // it exited, or its descriptor changed: nothing to hold
			}
			seen[target] = true
			fds = append(fds, fd)
		}
	}
	if len(fds) == 0 {
		return func() {}
	}
	// A pipe to wake the drain at stop.
	var wake [2]int
	if err := unix.Pipe2(wake[:], unix.O_CLOEXEC|unix.O_NONBLOCK); err != nil {
		CloseFDs(fds)
		return func() {}
	}
	done := make(chan struct{})
	// Owner: the teardown (stop). Ends when stop writes to wake.
	go func() {
		defer close(done)
		drain(fds, wake[0])
	}()
	return func() {
		_, _ = unix.Write(wake[1], []byte{0}) // best effort: a one-byte write to our own pipe
		<-done
		CloseFDs(fds)
		CloseFDs(wake[:])
	}
}

// drain reads and discards what arrives on fds until wake is readable. A
// pipe whose writers are all gone (EOF) is dropped from the poll.
func drain(fds []int, wake int) {
	buf := make([]byte, 64<<10)
	polls := make([]unix.PollFd, 0, len(fds)+1)
	polls = append(polls, unix.PollFd{Fd: int32(wake), Events: unix.POLLIN})
	for _, fd := range fds {
		polls = append(polls, unix.PollFd{Fd: int32(fd), Events: unix.POLLIN})
	}
	for {
		if _, err := unix.Poll(polls, -1); err != nil && !errors.Is(err, syscall.EINTR) {
			return
		}
		if polls[0].Revents != 0 {
			return
		}
		for i := 1; i < len(polls); i++ {
			if polls[i].Revents == 0 {
				continue
			}
			for {
				n, err := unix.Read(int(polls[i].Fd), buf)
				if n > 0 {
					continue // discarded: the parent that read it is gone
				}
				if n == 0 && err == nil {
					polls[i].Fd = -1 // EOF: poll ignores a negative descriptor
				}
				break // EAGAIN: drained for now
			}
		}
	}
}
