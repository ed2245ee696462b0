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
// of every pipe at the tree's processes' descriptors 1 and 2, through
// /proc/PID/fd (a pipe opened there is the same pipe); then, without having
// read anything, it closes those another process still reads (a terminal's
// `| tee`, the parent's own pipes at Shutdown: theirs), and drains the rest,
// discarding what it reads, until the teardown is over: the tree's writes
// succeed, and never block.
// (A write in the instant between the parent's death and this is not
// saved: nothing reads then.)

// holdOutputs opens the read side of the pipes at descriptors 1 and 2 of
// each of pids, each pipe once, and drains those that no other process
// reads, until stop is called; the others are closed unread, so nothing is
// taken from their reader. Owner of the goroutine and the descriptors: the
// teardown, which calls stop at its end; stop closes them.
func holdOutputs(pids []int) (stop func()) {
	seen := map[string]bool{}
	var fds []int
	var names []string // the pipe ("pipe:[INODE]") of each of fds
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
			names = append(names, target)
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
		// Held, not read, while it looks: writes wait in the pipe.
		others := readElsewhere(seen)
		var mine []int
		for i, fd := range fds {
			if others[names[i]] {
				_ = unix.Close(fd) // someone else reads it: theirs
				fds[i] = -1
			} else {
				mine = append(mine, fd)
			}
		}
		drain(mine, wake[0])
	}()
	return func() {
		_, _ = unix.Write(wake[1], []byte{0}) // best effort: a one-byte write to our own pipe
		<-done
		CloseFDs(fds) // -1s (closed above) are skipped
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

// readElsewhere reports which of pipes (by their /proc link, "pipe:[N]")
// some process other than the keeper holds open for reading — the tree's
// own processes too (a pipeline inside the tree reads its stdout): a read
// end's /proc/PID/fd entry has no write permission. A walk of /proc at the
// teardown only, where the tree has such pipes.
func readElsewhere(pipes map[string]bool) map[string]bool {
	self := os.Getpid()
	out := map[string]bool{}
	procs, _ := os.ReadDir("/proc")
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil || pid == self {
			continue
		}
		dir := filepath.Join("/proc", p.Name(), "fd")
		fds, _ := os.ReadDir(dir)
		for _, f := range fds {
			path := filepath.Join(dir, f.Name())
			target, err := os.Readlink(path)
			if err != nil || !pipes[target] || out[target] {
				continue
			}
			if st, err := os.Lstat(path); err == nil && st.Mode().Perm()&0o200 == 0 {
				out[target] = true
			}
		}
	}
	return out
}
