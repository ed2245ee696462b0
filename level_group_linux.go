package tether

import (
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/tetherproc/tether/internal/fork"
	"github.com/tetherproc/tether/internal/sigabi"
	"golang.org/x/sys/unix"
)

// groupProc is a child at the group level (ContainGroup); the cgroup
// level's handle embeds it (the parent's own child there too). On Linux it
// is held through a pidfd. The child is not reaped when it exits, only when
// the Process releases it after close: while it is a zombie its pid, and so
// its process-group id, cannot be recycled, so signals to the group cannot
// reach a stranger.
//
// Its exit is seen by one of three waits (see Process.watch): the exit
// watcher's epoll set, which holds the pidfds of every started child
// nobody waits for yet (5,000 started children cost no thread and no
// goroutine each); a Wait, or Run, blocked in waitid, as os/exec's are; or,
// where the watcher cannot take the pidfd (Linux 5.2: pidfds cannot be
// polled) or there is no pidfd, a goroutine blocked in waitid.
type groupProc struct {
	pid    int
	fd     int  // the pidfd, -1 where the kernel has none
	reaped bool // set by wait or release, both run by the Process's closer
}

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
	return &groupProc{pid: pid, fd: pidfd}, nil
}

// pidfd is the child's pidfd, -1 if there is none.
func (h *groupProc) pidfd() int { return h.fd }

// wait blocks until the process exits and reports how, leaving it a zombie
// when it has a pidfd (see groupProc).
func (h *groupProc) wait() (waitResult, error) {
	if h.fd < 0 {
		h.reaped = true
		defer disown(h.pid)
		return waitBlocking(h.pid)
	}
	var info unix.Siginfo
	var ru unix.Rusage
	if err := h.waitid(&info, unix.WEXITED|unix.WNOWAIT, &ru); err != nil {
		return waitResult{}, fmt.Errorf("tether: wait for pid %d: %w", h.pid, err)
	}
	return exitOf(&info, &ru), nil
}

// noPidfdWaitid: the kernel has pidfds but no waitid(P_PIDFD) (Linux 5.2
// and 5.3), learnt from the first EINVAL.
var noPidfdWaitid atomic.Bool

// waitid is waitid(2) on the child with a pidfd: through the pidfd, so
// that it can never meet another process even if something else reaped
// ours (a host's wait(-1), SIGCHLD ignored), or by pid where the kernel
// cannot, the zombie pinning the pid until release.
func (h *groupProc) waitid(info *unix.Siginfo, options int, ru *unix.Rusage) error {
	for {
		var err error
		if noPidfdWaitid.Load() {
			err = unix.Waitid(unix.P_PID, h.pid, info, options, ru)
		} else {
			err = unix.Waitid(unix.P_PIDFD, h.fd, info, options, ru)
			if err == unix.EINVAL {
				noPidfdWaitid.Store(true)
				continue
			}
		}
		if err != unix.EINTR {
			return err
		}
	}
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
	if h.fd >= 0 {
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
	if h.fd < 0 {
		return
	}
	if !h.reaped {
		// Where the kernel has no waitid(P_PIDFD) (5.2, 5.3), by pid,
		// which the zombie pins: a reap through the pidfd alone left the
		// child a zombie there (a cold review reproduced it with a
		// seccomp filter).
		var info unix.Siginfo
		_ = h.waitid(&info, unix.WEXITED|unix.WNOHANG, nil) // best effort: reaped, or reaped by another
		h.reaped = true
		disown(h.pid)
	}
	_ = unix.Close(h.fd) // best effort: the process is reaped
	h.fd = -1
}
