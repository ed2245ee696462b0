//go:build linux || darwin

package keeper

// The keeper itself, the part Linux's and macOS's share: its end of the
// socket and the loop that serves it, the child's signal dispositions, and
// the answers it sends. Only the keeper process runs this (see init).

import (
	"errors"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/tetherproc/tether/internal/fork"
	"golang.org/x/sys/unix"
)

func init() {
	if os.Getenv(ProbeEnv) != "" {
		os.Exit(0) // the keeper's probe (probeCloneInto): it only had to run
	}
	if v := os.Getenv(ParentEnv); v != "" {
		_, probed = os.LookupEnv(ProbedEnv)
		_ = os.Unsetenv(ProbedEnv)
		ppid, _ := strconv.Atoi(v)
		_ = os.Unsetenv(ParentEnv)
		ns, pidns := os.LookupEnv(PIDNSEnv)
		_ = os.Unsetenv(PIDNSEnv)
		parentFD, _ := strconv.Atoi(ns)
		nameKeeper()
		os.Exit(runKeeper(ppid, pidns, parentFD))
	}
}

// probed: the parent says an earlier keeper's probe passed (ProbedEnv).
var probed bool

// Idle is how long a keeper with nothing to keep lingers.
const Idle = 2 * time.Second

// keeperLink is the keeper's end of its socket to the parent, and the loop
// that serves it: the part the Linux and macOS keepers share.
type keeperLink struct {
	fd  int    // the socket to the parent, blocking
	out []byte // replies not yet sent, under the keeper's lock
	// batching: serve handles a request with more read behind it; its
	// replies wait in out and go in one write with the last one's.
	batching bool

	sigs chan os.Signal // the keeper's own ending signals (interruptOnSignals)
	// asked: the keeper's end was asked for (a signal to it, shutdown),
	// while the parent may live; else the end is the parent's death.
	asked   *atomic.Bool
	ignored uint64         // the signals the keeper ignores now (IgnoredSignals' form); serve's goroutine only
	discard chan os.Signal // notified of the signals applyIgnored un-ignores by a handler; never read
}

// openKeeperLink takes the socket the parent left at descriptor 3.
func openKeeperLink() (keeperLink, error) {
	l := keeperLink{fd: 3, asked: new(atomic.Bool)}
	if err := syscall.SetNonblock(l.fd, false); err != nil {
		return l, err
	}
	// Inherited without close-on-exec; the children must not hold it, or a
	// dead keeper's socket would never reach EOF in the parent.
	syscall.CloseOnExec(l.fd)
	return l, nil
}

// reply sends m to the parent, at once or, in a burst of requests, with the
// burst's last answer; called with the keeper's lock held.
func (l *keeperLink) reply(m Msg) {
	b, err := AppendFrame(l.out, m, 0)
	if err != nil {
		return // cannot happen: replies are small
	}
	l.out = b
	if !l.batching {
		l.flush()
	}
}

// flush sends the replies waiting in out; called with the keeper's lock held.
func (l *keeperLink) flush() {
	if len(l.out) > 0 {
		_ = SendFrame(l.fd, l.out, nil) // best effort: a gone parent reads nothing (EPIPE)
		l.out = l.out[:0]
	}
}

// interrupt ends serve as the parent's death does: shutting our reading
// side makes the blocked recvmsg return 0.
func (l *keeperLink) interrupt() {
	_ = unix.Shutdown(l.fd, unix.SHUT_RD) // best effort: EOF may have come already
}

// interruptOnSignals makes SIGTERM, SIGINT and SIGHUP to the keeper itself
// end it as its parent's death does.
func (l *keeperLink) interruptOnSignals() {
	l.sigs = make(chan os.Signal, 4)
	signal.Notify(l.sigs, keeperEndingSignals...)
	// Owner: the keeper. Ends at the first of these signals.
	go func() { <-l.sigs; l.asked.Store(true); l.interrupt() }()
	// What the keeper ignores from here on, inherited from the parent at
	// its start: applyIgnored changes it to each spawn's parent's.
	l.ignored = IgnoredSignals()
}

// keeperEndingSignals end the keeper as its parent's death does, unless the
// parent ignores them (applyIgnored).
var keeperEndingSignals = []os.Signal{syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP}

// IgnoredSignals is the set of signals this process ignores now — those its
// children inherit ignored through exec, as os/exec's do: bit N-1 for
// signal N. (A Go program ignores what it passed to signal.Ignore, and
// SIGHUP and SIGINT if it was started with them ignored; the runtime
// replaces other inherited SIG_IGNs with its handler before main runs.)
//
// The runtime leaves SIGCONT, SIGTSTP, SIGTTIN and SIGTTOU as it found them
// unless asked to watch them, and signal.Ignored does not know of an
// inherited SIG_IGN there: those the kernel is asked about (kernelIgnored).
func IgnoredSignals() uint64 {
	var set uint64
	for n := 1; n <= 64; n++ {
		if signal.Ignored(syscall.Signal(n)) {
			set |= 1 << (n - 1)
		}
	}
	for _, s := range jobControlSignals {
		if kernelIgnored(s) {
			set |= 1 << (s - 1)
		}
	}
	return set
}

var jobControlSignals = []syscall.Signal{syscall.SIGCONT, syscall.SIGTSTP, syscall.SIGTTIN, syscall.SIGTTOU}

// keeperCannotIgnore are signals the keeper must not ignore to give a
// child the parent's dispositions: SIG_IGN for SIGCHLD would make the
// kernel reap the keeper's children itself, and the keeper's reaper would
// lose their exits. (SIGKILL and SIGSTOP cannot be ignored at all.)
var keeperCannotIgnore = uint64(1)<<(syscall.SIGCHLD-1) | uint64(1)<<(syscall.SIGKILL-1) | uint64(1)<<(syscall.SIGSTOP-1)

// applyIgnored makes the keeper ignore exactly the signals in want, before
// it forks a child for a parent that ignores them: exec keeps SIG_IGN, so
// the child starts as the parent's own child would (os/exec), not with the
// keeper's dispositions. A signal the parent no longer ignores gets its
// default back (and the keeper's ending signals their handler). Called by
// serve's goroutine only, which makes every fork.
func (l *keeperLink) applyIgnored(want uint64) {
	want &^= keeperCannotIgnore
	for n := 1; n <= 64; n++ {
		bit := uint64(1) << (n - 1)
		if (want^l.ignored)&bit == 0 {
			continue
		}
		s := syscall.Signal(n)
		if want&bit != 0 {
			signal.Ignore(s)
			continue
		}
		signal.Reset(s)
		if l.sigs != nil && slices.Contains(keeperEndingSignals, os.Signal(s)) {
			signal.Notify(l.sigs, s)
		} else if kernelIgnored(s) {
			// The runtime leaves the job-control signals as they were
			// (inherited SIG_IGN) when Reset: a handler of its own is
			// what a fork resets to SIG_DFL in the child.
			if l.discard == nil {
				l.discard = make(chan os.Signal, 1)
			}
			signal.Notify(l.discard, s)
		}
	}
	l.ignored = want
}

// serve reads the parent's requests with a plain blocking recvmsg, so a
// request wakes the calling thread itself, and handles each with mu held,
// pushing idle back. At the end of the stream — the parent is gone, however
// it ended (the kernel closed its descriptors), or interrupt — it stops idle
// and runs teardown.
func (l *keeperLink) serve(mu *sync.Mutex, idle *time.Timer, handle func(keeperIn), teardown func()) {
	r := NewFrameReader(func(p, oob []byte) (int, int, int, error) {
		n, oobn, flags, _, err := unix.Recvmsg(l.fd, p, oob, recvCloexec)
		return n, oobn, flags, err
	})
	// Where the kernel cannot mark them (no MSG_CMSG_CLOEXEC), the reader
	// does as they arrive, before the next fork, which only this
	// goroutine makes.
	r.Cloexec = recvCloexec == 0
	for {
		m, fds, err := r.Next()
		if errors.Is(err, ErrFrame) && m.Op == OpSpawn && m.ID != 0 {
			// A spawn whose payload this keeper cannot read (a bug: the
			// parent is this binary) fails alone, with an error that says
			// so, rather than every tree with the keeper.
			mu.Lock()
			l.reply(spawnFailed(m.ID, errors.New("malformed spawn request: the keeper could not read it")))
			mu.Unlock()
			continue
		}
		if err != nil {
			r.Close()
			idle.Stop()
			teardown()
			return
		}
		if m.Op == OpSpawn && m.Spawn != nil {
			l.applyIgnored(m.Spawn.Ignored)
		} else if m.Op != OpSpawn {
			CloseFDs(fds) // only a spawn carries descriptors
			fds = nil
		}
		// A burst (pipelined spawns, releases sent with a spawn) is
		// answered in one write, once its last request is handled.
		more := r.Buffered()
		mu.Lock()
		l.batching = more
		handle(keeperIn{m, fds})
		l.batching = false
		if !more {
			l.flush()
		}
		idle.Reset(Idle)
		mu.Unlock()
	}
}

// keeperIn is one request as the keeper read it.
type keeperIn struct {
	m   Msg
	fds []int
}

// spawnFiles checks a spawn request and wraps its descriptors (stdio first)
// in Files, which own them from here; if the request is malformed, or some
// of its descriptors never arrived (-1: the keeper was out of them), it
// closes them and says why.
func spawnFiles(in keeperIn) ([]*os.File, error) {
	if in.m.Spawn == nil || len(in.fds) < 3 || len(in.fds) > MaxFiles {
		CloseFDs(in.fds)
		return nil, errors.New("malformed spawn request")
	}
	if slices.Contains(in.fds, -1) {
		CloseFDs(in.fds)
		return nil, syscall.EMFILE // the kernel could not install them in the keeper
	}
	holes := in.m.Spawn.Holes
	files := make([]*os.File, len(in.fds)+len(holes))
	next := 0
	for i := range files {
		if len(holes) > 0 && holes[0] == i {
			holes = holes[1:]
			continue // nil: closed in the child
		}
		if next == len(in.fds) {
			break // fewer descriptors than the holes leave room for: caught below
		}
		files[i] = os.NewFile(uintptr(in.fds[next]), "stdio")
		next++
	}
	if next != len(in.fds) || len(holes) > 0 || files[0] == nil || files[1] == nil || files[2] == nil {
		CloseFDs(in.fds[next:])
		for _, f := range files {
			if f != nil {
				_ = f.Close() // ours: received for this malformed request
			}
		}
		return nil, errors.New("malformed spawn request")
	}
	return files, nil
}

// startChild forks and executes a spawn request's child with attr, which it
// completes (a foreground child's terminal), and closes the keeper's copies
// of the child's descriptors.
func startChild(in keeperIn, attr *syscall.SysProcAttr) (int, error) {
	files, err := spawnFiles(in)
	if err != nil {
		return 0, err
	}
	defer func() {
		for _, f := range files {
			if f != nil {
				_ = f.Close() // best effort: the child has its copies
			}
		}
	}()
	s := in.m.Spawn
	if s.Cgroup || s.MemoryMax != 0 || s.PidsMax != 0 {
		// The parent clones the cgroup level's trees itself.
		return 0, errors.New("malformed spawn request: the cgroup level is the parent's to start")
	}
	if s.Foreground {
		attr.Foreground, attr.Ctty = true, in.fds[0] // see level_group_linux.go
	}
	return fork.Exec(s.Path, s.Argv, s.Env, s.Dir, files, attr)
}

// spawnFailed is the answer to spawn id that failed with err.
func spawnFailed(id uint64, err error) Msg {
	r := &SpawnResult{}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		r.Errno = int(errno)
	} else {
		r.Err = err.Error()
	}
	return Msg{Op: OpSpawned, ID: id, Spawned: r}
}

// exitedMsg reports tree id's leader, pid as the parent knows it, reaped
// with ws and ru.
func exitedMsg(id uint64, pid int, ws syscall.WaitStatus, ru *syscall.Rusage) Msg {
	e := &ExitReport{PID: pid, Utime: ru.Utime.Nano(), Stime: ru.Stime.Nano(), MaxRSS: int64(ru.Maxrss) * 1024 /* KiB */}
	switch {
	case ws.Exited():
		e.Code = ws.ExitStatus()
	case ws.Signaled():
		e.Signal, e.Core = int(ws.Signal()), ws.CoreDump()
	}
	return Msg{Op: OpExited, ID: id, Exited: e}
}
