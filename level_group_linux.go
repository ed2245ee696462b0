package tether

import (
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"

	"github.com/tetherproc/tether/internal/fork"
	"github.com/tetherproc/tether/internal/sigabi"
	"golang.org/x/sys/unix"
)

// groupProc is a child at the group level (ContainGroup); the cgroup
// level's handle embeds it (the parent's own child there too). On Linux it
// is watched through a pidfd, which sits in Go's netpoller: waiting for
// 5,000 children parks 5,000 goroutines, not 5,000 threads. The child is not reaped when it exits, only when the
// Process releases it after close: while it is a zombie its pid, and so its
// process-group id, cannot be recycled, so signals to the group cannot reach
// a stranger.
type groupProc struct {
	pid    int
	pidfd  *os.File // nil where the kernel has no pidfds
	fd     int      // pidfd's number; Fd() would make the file blocking
	reaped bool     // set by wait or release, both run by the monitor
	// block: wait blocks its thread in waitid, as os/exec's Wait does,
	// rather than parking in the netpoller (Run: see blockingWait).
	block bool
}

// blockingWait makes wait block its thread (set before the monitor runs).
// Run's caller is blocked for the whole run anyway; its thread, kept in the
// kernel until the exit, is where the exit's wake-up lands and where the
// next fork is made. Measured with a program of Run loops of /bin/true, 3
// alternating pairs: 0.89–0.97× os/exec through the netpoller, 0.95–0.99×
// blocked (a wake-up of an idle vCPU costs this KVM guest tens of µs, and
// one through the netpoller lands where the scheduler likes). Start keeps
// the netpoller: 5,000 started children cost goroutines, not threads.
func (h *groupProc) blockingWait() { h.block = true }

func startOS(path string, argv, env []string, dir string, files []*os.File, fg bool) (*groupProc, error) {
	return startOSInto(path, argv, env, dir, files, fg, -1)
}

// startOSInto is startOS, the child cloned straight into the cgroup whose
// directory cgroupFD is open on (CLONE_INTO_CGROUP, Linux 5.7), or into this
// process's own with -1.
func startOSInto(path string, argv, env []string, dir string, files []*os.File, fg bool, cgroupFD int) (*groupProc, error) {
	pidfd := -1
	pid, err := forkOwned(func() (int, error) {
		sys := &syscall.SysProcAttr{PidFD: &pidfd}
		if cgroupFD >= 0 {
			sys.UseCgroupFD, sys.CgroupFD = true, cgroupFD
		}
		if fg {
			// The child makes its group the terminal's foreground before
			// exec, with its signals still blocked (no SIGTTOU, and no
			// read of the terminal before it is its own).
			sys.Foreground, sys.Ctty = true, int(files[0].Fd())
		}
		return fork.Exec(path, argv, env, dir, files, sys)
	})
	if err != nil {
		return nil, err
	}
	h := &groupProc{pid: pid}
	if pidfd >= 0 {
		// Non-blocking so that os.NewFile registers it with the netpoller.
		if err := syscall.SetNonblock(pidfd, true); err == nil {
			h.pidfd, h.fd = os.NewFile(uintptr(pidfd), "pidfd"), pidfd
		} else {
			_ = syscall.Close(pidfd) // best effort: fall back to wait4
		}
	}
	return h, nil
}

// wait blocks until the process exits and reports how, leaving it a zombie
// when it can (see groupProc).
func (h *groupProc) wait() (waitResult, error) {
	if h.pidfd == nil {
		h.reaped = true
		defer disown(h.pid)
		return waitBlocking(h.pid)
	}
	var info unix.Siginfo
	var ru unix.Rusage
	var werr error
	if h.block {
		// The pidfd is non-blocking (it is in the netpoller for Signal's
		// sake too): wait by pid, our unreaped child's.
		for {
			werr = unix.Waitid(unix.P_PID, h.pid, &info, unix.WEXITED|unix.WNOWAIT, &ru)
			if werr != unix.EINTR {
				break
			}
		}
		if werr != nil {
			return waitResult{}, fmt.Errorf("tether: wait for pid %d: %w", h.pid, werr)
		}
		return exitOf(&info, &ru), nil
	}
	rc, err := h.pidfd.SyscallConn()
	if err != nil {
		return waitResult{}, err
	}
	err = rc.Read(func(fd uintptr) bool {
		for {
			info = unix.Siginfo{}
			werr = unix.Waitid(unix.P_PIDFD, int(fd), &info, unix.WEXITED|unix.WNOHANG|unix.WNOWAIT, &ru)
			if werr != unix.EINTR {
				break
			}
		}
		if werr == unix.EAGAIN || (werr == nil && sigabi.ChildPID(&info) == 0) {
			return false // still running: wait for the pidfd to become readable
		}
		return true
	})
	if err == nil {
		err = werr
	}
	if errors.Is(err, unix.EINVAL) {
		// Kernel 5.2 or 5.3: pidfds from clone, but no waitid(P_PIDFD).
		h.reaped = true
		defer disown(h.pid)
		return waitBlocking(h.pid)
	}
	if err != nil {
		return waitResult{}, fmt.Errorf("tether: wait for pid %d: %w", h.pid, err)
	}
	return exitOf(&info, &ru), nil
}

// exitOf is the waitResult of a child waitid reported exited.
func exitOf(info *unix.Siginfo, ru *unix.Rusage) waitResult {
	w := waitResult{
		utime:  time.Duration(unix.TimevalToNsec(ru.Utime)),
		stime:  time.Duration(unix.TimevalToNsec(ru.Stime)),
		maxRSS: maxRSSBytes(int64(ru.Maxrss)), // int32 on 32-bit
	}
	status := sigabi.ChildStatus(info)
	switch info.Code {
	case sigabi.CLDExited:
		w.code = int(status)
	case sigabi.CLDDumped:
		w.core = true
		fallthrough
	default:
		w.signal = syscall.Signal(status)
	}
	return w
}

func maxRSSBytes(kib int64) int64 { return kib * 1024 }

// signal sends sig to the child (through its pidfd, so never to a recycled
// pid) and to its process group (pinned while the child is unreaped).
func (h *groupProc) signal(sig syscall.Signal) error {
	var err error
	if h.pidfd != nil {
		err = unix.PidfdSendSignal(h.fd, sig, nil, 0)
	} else {
		err = syscall.Kill(h.pid, sig)
	}
	if errors.Is(err, syscall.ESRCH) {
		err = nil
	}
	return errors.Join(err, signalGroup(h.pid, sig))
}

func (h *groupProc) sweep() {
	if groupAlive(h.pid) {
		_ = signalGroup(h.pid, syscall.SIGKILL) // best effort: they may be exiting
	}
}

// release reaps the zombie and closes the pidfd. Called once, by the monitor,
// with the Process's lock held so no signal races it.
func (h *groupProc) release() {
	if h.pidfd == nil {
		return
	}
	if !h.reaped {
		// By pid, not pidfd: the zombie pins its pid, and Linux 5.2 and
		// 5.3 give pidfds without waitid(P_PIDFD), where Run's wait by
		// pid left the child unreaped (a cold review reproduced the
		// zombie with a seccomp filter).
		var info unix.Siginfo
		for {
			err := unix.Waitid(unix.P_PID, h.pid, &info, unix.WEXITED|unix.WNOHANG, nil)
			if err != unix.EINTR {
				break
			}
		}
		h.reaped = true
		disown(h.pid)
	}
	_ = h.pidfd.Close() // best effort: the process is reaped
}
