package main

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"os/signal"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tetherproc/tether"
	"github.com/tetherproc/tether/internal/pidfd"
	"github.com/tetherproc/tether/internal/procfs"
	"github.com/tetherproc/tether/internal/sigabi"
)

// reaper reaps orphans re-parented to tether: it is PID 1 in a container, or
// a child subreaper otherwise. tether's own children are left to tether.
type reaper struct {
	chld   chan os.Signal
	done   chan struct{}
	reaped chan struct{} // a SIGCHLD was handled (cap 1: coalesced)

	// At the group and cgroup levels PROGRAM is tether's own child, and a SIGCHLD is
	// how its stops are known: program is its pid (0: none to watch), and
	// jobs gets EventStopped and EventContinued for it.
	program atomic.Int64
	jobs    chan<- tether.Event
}

func becomeReaper(jobs chan<- tether.Event) *reaper {
	if os.Getpid() != 1 {
		// Orphans of the tree come to us rather than to PID 1 (which, on
		// some machines, never reaps them).
		_ = unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) // best effort: old kernels; the keeper is one anyway
	}
	r := &reaper{chld: make(chan os.Signal, 1), done: make(chan struct{}), reaped: make(chan struct{}, 1), jobs: jobs}
	signal.Notify(r.chld, syscall.SIGCHLD)
	// Owner: wrap (stop). Ends when stop closes done.
	go func() {
		for {
			select {
			case <-r.chld:
				_, _ = tether.ReapOrphans() // fails only under another namespace's /proc: orphans stay zombies then
				if pid := int(r.program.Load()); pid != 0 && r.jobs != nil {
					// Every report: SIGCHLDs coalesce, and a continue and
					// a stop (bg, then a read of the terminal) may come
					// with one.
					for {
						e := tether.Event{PID: pid}
						switch stopped, continued, sig := stopReport(pid); {
						case stopped:
							e.Kind, e.Signal = tether.EventStopped, sig
						case continued:
							e.Kind = tether.EventContinued
						}
						if e.Kind == 0 {
							break
						}
						select {
						case r.jobs <- e:
						default: // serve is gone: nothing to follow
						}
					}
				}
				select {
				case r.reaped <- struct{}{}:
				default:
				}
			case <-r.done:
				return
			}
		}
	}()
	return r
}

func (r *reaper) stop() {
	signal.Stop(r.chld)
	close(r.done)
	_, _ = tether.ReapOrphans() // the last ones
}

// forwardable lists the signals tether passes on: every catchable one but
// SIGCHLD (ours), the synchronous ones (a fault of tether's own), SIGURG (the
// Go runtime's preemption) and the terminal's SIGTTIN and SIGTTOU (as tini).
func forwardable() []os.Signal {
	skip := map[syscall.Signal]bool{
		syscall.SIGCHLD: true, syscall.SIGURG: true, syscall.SIGKILL: true, syscall.SIGSTOP: true,
		syscall.SIGFPE: true, syscall.SIGILL: true, syscall.SIGSEGV: true, syscall.SIGBUS: true,
		syscall.SIGABRT: true, syscall.SIGTRAP: true, syscall.SIGSYS: true,
		syscall.SIGTTIN: true, syscall.SIGTTOU: true,
		// Raised by tether's own writes to a closed stderr (-v, the
		// notes): passing it on would kill PROGRAM for tether's write.
		// wrap catches it apart, so the write fails with EPIPE instead.
		syscall.SIGPIPE: true,
	}
	var out []os.Signal
	for s := syscall.Signal(1); s <= 31; s++ {
		if !skip[s] {
			out = append(out, s)
		}
	}
	return out
}

// ttyOwner knows whether tether runs in the foreground of a terminal: then
// the child is started in the foreground (Cmd.Foreground), so that Ctrl-C,
// ^Z and reads from the terminal behave as without tether, and tether takes
// the foreground back when the child is done.
type ttyOwner struct {
	fd, ours int
	ok       bool // tether started in the terminal's foreground: PROGRAM gets it
	term     bool // stdin is the controlling terminal of tether's session: tether is a shell's job
}

// foregroundTTY looks at stdin: a ttyOwner that is a shell's job's (term)
// when stdin is the controlling terminal of tether's session, and that hands
// the terminal to PROGRAM (ok) when tether's group is its foreground;
// otherwise one that does nothing.
func foregroundTTY() *ttyOwner {
	fd := int(os.Stdin.Fd())
	if _, err := unix.IoctlGetTermios(fd, unix.TCGETS); err != nil {
		return &ttyOwner{}
	}
	sid, err := unix.IoctlGetInt(fd, unix.TIOCGSID)
	if own, _ := unix.Getsid(0); err != nil || sid != own {
		return &ttyOwner{} // a terminal, but not ours: leave it alone
	}
	t := &ttyOwner{fd: fd, ours: syscall.Getpgrp(), term: true}
	pg, err := unix.IoctlGetInt(fd, unix.TIOCGPGRP)
	t.ok = err == nil && pg == t.ours // else started in the background (&, or bg)
	return t
}

// followsJobs reports whether tether acts as a shell's job: stops when
// PROGRAM stops, goes on when continued. Not as PID 1 (a container's init
// cannot be stopped by its own signals), nor without a terminal.
func (t *ttyOwner) followsJobs() bool { return t.term && !isInit() }

// takeFrom makes tether's own group the foreground again, if the terminal's
// foreground is pgid (PROGRAM's group): not when the shell has it (tether
// was put in the background with bg), which would take the terminal from
// under the shell.
func (t *ttyOwner) takeFrom(pgid int) {
	if !t.term {
		return
	}
	if fg, err := unix.IoctlGetInt(t.fd, unix.TIOCGPGRP); err == nil && fg == pgid {
		_ = setForeground(t.fd, t.ours) // best effort: the terminal may be gone
	}
}

// giveIfOurs makes pgid the foreground if the terminal's foreground is
// tether's own group: after `fg`, not after `bg`.
func (t *ttyOwner) giveIfOurs(pgid int) {
	if !t.term {
		return
	}
	if fg, err := unix.IoctlGetInt(t.fd, unix.TIOCGPGRP); err == nil && fg == t.ours {
		_ = setForeground(t.fd, pgid) // best effort: the terminal may be gone
	}
}

// stopSelf stops tether with sig, as a job's process stops, and returns
// once tether is continued (a shell's fg or bg). SIGSTOP cannot be caught;
// for SIGTSTP, SIGTTIN and SIGTTOU, which tether may have a handler for,
// the default action is put back for the moment of the kill (rt_sigaction,
// the old action restored word for word afterwards): a shell then reports
// the job "Stopped" as it would without tether.
func stopSelf(sig syscall.Signal) {
	// The signal goes to this very thread (tgkill), unblocked here: the
	// thread takes it on its way out of the syscall and the whole process
	// stops there, before this function goes on. Sent to the process
	// (kill), another thread could take it while this one ran ahead and
	// continued PROGRAM before tether had stopped at all.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	self := func(s syscall.Signal) { _ = unix.Tgkill(os.Getpid(), unix.Gettid(), s) }
	if sig == syscall.SIGSTOP || sig == 0 {
		self(syscall.SIGSTOP) // returns once continued
		return
	}
	err := sigabi.WithDefault(sig, func() {
		var set, oldMask unix.Sigset_t
		set.Val[(sig-1)/64] = 1 << (uint(sig-1) % 64)
		_ = unix.PthreadSigmask(unix.SIG_UNBLOCK, &set, &oldMask) // cannot fail with a valid set
		self(sig)
		_ = unix.PthreadSigmask(unix.SIG_SETMASK, &oldMask, nil)
	})
	if err != nil {
		self(syscall.SIGSTOP)
	}
}

// stopReport reads, without reaping, whether pid (tether's own child: the
// group level) was stopped or continued since last asked: the kernel's
// stop and continue reports (waitid WSTOPPED|WCONTINUED; no WEXITED, so an
// exit stays for the library).
func stopReport(pid int) (stopped, continued bool, sig syscall.Signal) {
	var info unix.Siginfo
	for {
		err := unix.Waitid(unix.P_PID, pid, &info, unix.WSTOPPED|unix.WCONTINUED|unix.WNOHANG, nil)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil || sigabi.ChildPID(&info) != int32(pid) {
			return false, false, 0
		}
		break
	}
	switch info.Code {
	case sigabi.CLDStopped:
		return true, false, syscall.Signal(sigabi.ChildStatus(&info))
	case sigabi.CLDContinued:
		return false, true, 0
	}
	return false, false, 0
}

// setForeground is tcsetpgrp. From the background it would raise SIGTTOU
// unless the signal is blocked: block it on this thread only (an ignored
// SIGTTOU would be inherited by children through exec).
func setForeground(fd, pgid int) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var set, old unix.Sigset_t
	set.Val[0] = 1 << (uint(syscall.SIGTTOU) - 1)
	if err := unix.PthreadSigmask(unix.SIG_BLOCK, &set, &old); err != nil {
		return err
	}
	defer func() { _ = unix.PthreadSigmask(unix.SIG_SETMASK, &old, nil) }() // restores what we read: cannot fail
	return unix.IoctlSetPointerInt(fd, unix.TIOCSPGRP, pgid)
}

// signalOne sends s to pid alone.
func signalOne(pid int, s os.Signal) {
	if n, ok := s.(syscall.Signal); ok {
		_ = syscall.Kill(pid, n) // best effort: it may have exited
	}
}

// isTerminal reports whether f is a terminal (it answers TCGETS).
func isTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// maxWalks bounds the walks of one leftovers call (see below): a tree that
// forks without end would keep it walking.
const maxWalks = 8

// leftovers lists the live processes below tether, its keepers aside, in
// pid order: what a stop is waiting for. (/proc/PID/task/*/children: Linux
// 3.5+.)
func leftovers() []procDesc {
	if procfs.IsOurs() != nil {
		return nil // another PID namespace's /proc: nothing in it is ours
	}
	var out []procDesc
	for _, pid := range below(os.Getpid(), procfs.Children, maxWalks) {
		if st := procfs.State(pid); st == 0 || st == 'Z' {
			continue // gone, or exited and not yet reaped
		}
		if comm, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm"); strings.TrimSpace(string(comm)) == "tether-keeper" {
			continue
		}
		out = append(out, procDesc{pid, procCmdline(pid)})
	}
	return out
}

// below lists the pids below root, sorted, from children (one process's
// children list). The lists are read one process at a time, and an orphan
// reparented meanwhile — a double-forked daemon whose middle process
// exits, a child of the program that has just exited — moves from a list
// not read yet to its subreaper's (tether's, or a keeper's below it), read
// already: one walk can miss a process that was there all along. So the
// tree is walked again until a walk finds none that the walks before it had
// not, at most walks times: an orphan moves once, to its nearest
// subreaper, and the walk after the one it slipped through finds it there.
func below(root int, children func(int) []int, walks int) []int {
	seen := map[int]bool{}
	for range walks {
		grew := false
		queue := children(root)
		for len(queue) > 0 {
			pid := queue[0]
			queue = append(queue[1:], children(pid)...)
			if !seen[pid] {
				seen[pid], grew = true, true
			}
		}
		if !grew {
			break
		}
	}
	return slices.Sorted(maps.Keys(seen))
}

// procCmdline is pid's command line on one line (a note is one line, and
// sh -c scripts hold newlines), shortened to 60 bytes.
func procCmdline(pid int) string {
	b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	s := strings.Join(strings.Fields(strings.ReplaceAll(string(b), "\x00", " ")), " ")
	if s == "" {
		comm, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm")
		s = "[" + strings.TrimSpace(string(comm)) + "]"
	}
	if len(s) > 60 {
		s = s[:57] + "..."
	}
	return s
}

// maxInherited bounds the descriptors passed on: the keeper takes 64 per
// spawn, stdio included.
const maxInherited = 61

// inheritedFiles returns the descriptors from 3 up that tether was started
// with, as Files at index fd-3 (nil in a gap), and marks them close-on-exec
// so that only PROGRAM (through ExtraFiles) gets them, not a keeper. They
// are those without close-on-exec: every descriptor Go opens has it.
func inheritedFiles() ([]*os.File, error) {
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return nil, err
	}
	var fds []int
	for _, e := range entries {
		fd, err := strconv.Atoi(e.Name())
		if err != nil || fd < 3 {
			continue
		}
		flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
		if err != nil || flags&unix.FD_CLOEXEC != 0 {
			continue // ReadDir's own, now closed, or one of Go's
		}
		fds = append(fds, fd)
	}
	if len(fds) == 0 {
		return nil, nil
	}
	slices.Sort(fds)
	if len(fds) > maxInherited {
		return nil, fmt.Errorf("%d inherited descriptors (%s): tether passes on at most %d", len(fds), describeFDs(fds), maxInherited)
	}
	files := make([]*os.File, fds[len(fds)-1]-2)
	for _, fd := range fds {
		syscall.CloseOnExec(fd)
		files[fd-3] = os.NewFile(uintptr(fd), "inherited-"+strconv.Itoa(fd))
	}
	return files, nil
}

// watchParent, when on, returns a channel closed when tether's parent ends,
// however it ends: a pidfd of the parent becomes readable (Linux 5.3). The
// pidfd is opened, then getppid checked, so a parent that died before
// (tether already reparented) closes the channel at once.
func watchParent(on bool) (<-chan struct{}, error) {
	if !on {
		return nil, nil
	}
	gone := make(chan struct{})
	if os.Getppid() == 0 {
		return nil, errors.New("-die-with-parent: tether's parent is outside its PID namespace (tether is its init), where it cannot be watched; as PID 1 the namespace ends with tether anyway")
	}
	fd, dead, err := pidfd.OpenParent(os.Getppid())
	if err != nil {
		return nil, fmt.Errorf("-die-with-parent watches the parent with a pidfd (Linux 5.3 or later): %w", err)
	}
	if dead {
		close(gone)
		return gone, nil
	}
	// Owner: the run. Ends when the parent ends; a parent that outlives
	// tether leaves it blocked until tether exits.
	go func() {
		if pidfd.WaitExit(fd) == nil {
			close(gone)
		}
	}()
	return gone, nil
}

// isInit reports whether tether is PID 1 of its PID namespace (a
// container's init): there the kernel kills every process in the namespace
// when tether dies, SIGKILL included, so no keeper is needed.
func isInit() bool { return os.Getpid() == 1 }

// stopNamespace stops every other process of tether's PID namespace, as
// its init: the stop signal and SIGCONT to all (kill(-1), which spares
// PID 1 itself), up to grace for them to exit (the reaper reaps them), then
// killing (after it says so) SIGKILL to what is left. It returns when none
// is left, or after the SIGKILL's reaping has had five seconds.
func stopNamespace(stop syscall.Signal, grace time.Duration, r *reaper, killing func()) {
	anyLeft := func() bool { return syscall.Kill(-1, 0) == nil }
	if !anyLeft() {
		return
	}
	_ = syscall.Kill(-1, stop)            // best effort: ESRCH once all are gone
	_ = syscall.Kill(-1, syscall.SIGCONT) // a stopped process cannot act on it
	// waitGone waits up to d for every other process to be gone; each exit
	// comes to tether, their init, as a SIGCHLD. The children lists the
	// reaper reads can miss an orphan in the middle of its reparenting, and
	// no SIGCHLD may follow to look again: so it looks again every 100 ms
	// too.
	waitGone := func(d time.Duration) bool {
		deadline := time.NewTimer(d)
		defer deadline.Stop()
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for anyLeft() {
			select {
			case <-r.reaped:
			case <-tick.C:
				_, _ = tether.ReapOrphans() // fails only under another namespace's /proc
			case <-deadline.C:
				return !anyLeft()
			}
		}
		return true
	}
	if waitGone(grace) {
		return
	}
	if killing != nil {
		killing()
	}
	_ = syscall.Kill(-1, syscall.SIGKILL) // the grace is over
	waitGone(5 * time.Second)
}

// isStopped reports whether pid is stopped now (state T in /proc/PID/stat).
func isStopped(pid int) bool { st := procfs.State(pid); return st == 'T' || st == 't' }
