//go:build darwin

package keeper

import (
	"errors"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// The macOS keeper. It is built in CI and NOT RUN there or here: the tests
// run on Linux. macOS has no child subreaper and no PDEATHSIG, so it keeps
// less than the Linux keeper: each tree is a process group (descendants that
// setsid or double-fork leave it and are out of reach), and a SIGKILLed
// keeper leaves its trees running. What it does keep: when the parent ends,
// however it ends, SIGKILL included — seen by kqueue (EVFILT_PROC,
// NOTE_EXIT) on the parent and by the socket's end — each tree gets its stop
// signal, its StopTimeout, then SIGKILL.

// kernelIgnored: on macOS only what os/signal knows (signal.Ignored).
func kernelIgnored(sig syscall.Signal) bool { return signal.Ignored(sig) }

// nameKeeper does nothing on macOS: a process's name there is that of the
// file it executed, and argv[0] ("tether-keeper") is what ps shows by
// default.
func nameKeeper() {}

type keeper struct {
	keeperLink
	kq    int // kqueue: NOTE_EXIT of the parent and of every leader
	ppid  int // the parent
	exits chan struct{}
	idle  *time.Timer

	mu       sync.Mutex           // guards what follows; held to signal and to reap
	trees    map[uint64]*keptTree // by id, until released and the group is empty
	leaders  map[int]*keptTree    // by pid, until reaped
	maxGrace time.Duration
}

type keptTree struct {
	id          uint64
	pid         int // also its process group
	stopSignal  syscall.Signal
	stopTimeout time.Duration
	released    bool
	// gone: the leader is reaped and its group was seen empty. A group's
	// number is not reused while the group exists; once it is empty it may
	// be, so the keeper never signals it again.
	gone bool
}

func runKeeper(ppid int, pidns bool, _ int) int {
	if pidns {
		return 2 // cannot happen: startInPIDNamespace refuses
	}
	kq, err := unix.Kqueue()
	if err != nil {
		return 2
	}
	syscall.CloseOnExec(kq)
	link, err := openKeeperLink()
	if err != nil {
		return 2
	}
	k := &keeper{
		keeperLink: link,
		kq:         kq,
		ppid:       ppid,
		exits:      make(chan struct{}, 1),
		trees:      map[uint64]*keptTree{},
		leaders:    map[int]*keptTree{},
	}
	if err := k.watch(ppid); err != nil || os.Getppid() != ppid {
		k.interrupt() // the parent is gone already
	}
	k.idle = time.AfterFunc(Idle, k.idleExit)
	// Before the hello: from it on the parent may clone trees into our
	// cgroups (no request of ours in between), and a SIGTERM must then
	// stop them gracefully, not kill the keeper by default and the trees
	// with its cgroups (seen: a SIGTERM a few ms after the start).
	k.interruptOnSignals()
	k.reply(Msg{Op: OpHello, Hello: &Hello{Version: Version, CgroupErr: "cgroups are Linux only"}})
	// Owner: the keeper. Ends when the keeper exits.
	go k.events()

	k.serve(&k.mu, k.idle, k.handle, k.teardown)
	return 0
}

// recvCloexec: macOS has no MSG_CMSG_CLOEXEC; serve's reader marks them.
const recvCloexec = 0

// watch asks kqueue for pid's exit.
func (k *keeper) watch(pid int) error {
	var ev unix.Kevent_t
	unix.SetKevent(&ev, pid, unix.EVFILT_PROC, unix.EV_ADD|unix.EV_ONESHOT)
	ev.Fflags = unix.NOTE_EXIT
	for {
		_, err := unix.Kevent(k.kq, []unix.Kevent_t{ev}, nil, nil)
		if !errors.Is(err, syscall.EINTR) {
			return err
		}
	}
}

// events waits in kevent: the parent's exit interrupts the keeper; a
// leader's is reaped and reported. Every second it also looks for a leader
// whose exit kqueue did not report (one that exited just as it was
// registered: macOS is known to drop that NOTE_EXIT). A keeper lives only
// while it has children, or 2 s idle, so this is no idle wake-up for life.
func (k *keeper) events() {
	evs := make([]unix.Kevent_t, 64)
	second := unix.NsecToTimespec(int64(time.Second))
	swept := time.Now()
	for {
		n, err := unix.Kevent(k.kq, nil, evs, &second)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil {
			return // cannot happen; teardown then polls
		}
		k.mu.Lock()
		if time.Since(swept) >= time.Second {
			k.reapExited()
			swept = time.Now()
		}
		for _, ev := range evs[:n] {
			pid := int(ev.Ident)
			if pid == k.ppid {
				k.interrupt()
				continue
			}
			// NOTE_EXIT can come before the child is reapable.
			k.reap(pid, true)
			k.idle.Reset(Idle)
		}
		k.mu.Unlock()
		select {
		case k.exits <- struct{}{}:
		default:
		}
	}
}

// prune forgets released trees whose group has emptied (after which its
// number could name another group). Called with k.mu held.
func (k *keeper) prune() {
	for id, t := range k.trees {
		if t.released && !k.groupAlive(t) {
			delete(k.trees, id)
		}
	}
}

func (k *keeper) idleExit() {
	k.mu.Lock()
	k.prune()
	if len(k.trees) > 0 || len(k.leaders) > 0 {
		k.mu.Unlock()
		return
	}
	os.Exit(0)
}

// handle dispatches one request (see the protocol in proto.go); called with
// k.mu held. Only a spawn has descriptors (serve closed any other's).
func (k *keeper) handle(in keeperIn) {
	m := in.m
	switch m.Op {
	case OpSpawn:
		k.spawn(in)
	case OpSignal:
		if t := k.trees[m.ID]; t != nil {
			k.signalTree(t, syscall.Signal(m.Sig))
		}
	case OpSweep:
		if t := k.trees[m.ID]; t != nil {
			k.signalTree(t, syscall.SIGKILL)
		}
	case OpRelease:
		if t := k.trees[m.ID]; t != nil {
			// What is left of the group is still the tree's: the
			// parent's end stops it too.
			t.released = true
			k.prune()
		}
	case OpShutdown:
		k.interrupt()
	}
	// tree and bye concern the cgroup level, which is Linux's.
}

// spawn starts a tree's leader and answers with its pid.
func (k *keeper) spawn(in keeperIn) {
	m := in.m
	pid, err := startChild(in, &syscall.SysProcAttr{})
	if err != nil {
		k.reply(spawnFailed(m.ID, err))
		return
	}
	t := &keptTree{id: m.ID, pid: pid, stopSignal: syscall.Signal(m.Spawn.StopSignal), stopTimeout: m.Spawn.StopTimeout}
	if t.stopSignal == 0 {
		t.stopSignal = syscall.SIGTERM
	}
	k.maxGrace = max(k.maxGrace, t.stopTimeout)
	for _, old := range k.trees {
		// The pid was free, so no group of that number exists: a tree
		// that had it is gone, whether or not we looked.
		if old.pid == pid {
			old.gone = true
		}
	}
	k.trees[t.id] = t
	k.leaders[pid] = t
	k.reply(Msg{Op: OpSpawned, ID: m.ID, Spawned: &SpawnResult{PID: pid}})
	if err := k.watch(pid); errors.Is(err, syscall.ESRCH) {
		// Gone already (kqueue refuses an exited process).
		k.reap(pid, true)
	} else {
		// A zombie can be registered without ever firing (and any other
		// failure to register leaves it to the sweep).
		k.reap(pid, false)
	}
}

// signalTree signals the leader while it is unreaped and its process group
// while it may exist. Called with k.mu held, so the leader is not reaped
// meanwhile.
func (k *keeper) signalTree(t *keptTree, sig syscall.Signal) {
	if k.leaders[t.pid] == t {
		_ = syscall.Kill(t.pid, sig) // best effort: it may be exiting
	}
	if k.groupAlive(t) {
		_ = syscall.Kill(-t.pid, sig) // best effort: the group may have just emptied
	}
}

// groupAlive says whether t's process group may still have members, and
// marks it gone for good once its leader is reaped and it is empty.
func (k *keeper) groupAlive(t *keptTree) bool {
	if t.gone {
		return false
	}
	if k.leaders[t.pid] == t || syscall.Kill(-t.pid, 0) == nil {
		return true
	}
	t.gone = true
	return false
}

// reap collects leader pid if it has exited and reports it. With exiting
// (its NOTE_EXIT came, or kqueue no longer knows it) it gives a process that
// is still on its way out up to 100 ms to become reapable, never blocking:
// the event may be stale, for an earlier process of that pid. What is left
// is found by the sweep. Called with k.mu held.
func (k *keeper) reap(pid int, exiting bool) {
	t := k.leaders[pid]
	if t == nil {
		return
	}
	tries := 1
	if exiting {
		tries = 50
	}
	var ws syscall.WaitStatus
	var ru syscall.Rusage
	for {
		got, err := syscall.Wait4(pid, &ws, syscall.WNOHANG, &ru)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err == nil && got == pid {
			break
		}
		if tries--; err != nil || tries == 0 {
			return // not exited yet: its NOTE_EXIT, or the sweep, will come
		}
		time.Sleep(2 * time.Millisecond)
	}
	delete(k.leaders, pid)
	k.reply(exitedMsg(t.id, pid, ws, &ru))
}

// reapExited reaps every leader that has exited. Called with k.mu held.
func (k *keeper) reapExited() {
	for pid := range k.leaders {
		k.reap(pid, false)
	}
}

// groupsAlive says whether any tree still has a process: its leader
// unreaped, or a member of its group.
func (k *keeper) groupsAlive() bool {
	alive := len(k.leaders) > 0
	for _, t := range k.trees {
		alive = k.groupAlive(t) || alive
	}
	return alive
}

// teardown runs once the parent is gone: each tree gets its stop signal
// (with SIGCONT), and after the largest grace what remains of the groups
// gets SIGKILL. The keeper returns once its children are reaped.
func (k *keeper) teardown() {
	k.mu.Lock()
	k.reply(Msg{Op: OpEnding}) // the parent, if it lives, starts nothing more here
	k.prune()
	for _, t := range k.trees {
		k.signalTree(t, t.stopSignal)
		k.signalTree(t, syscall.SIGCONT)
	}
	grace := k.maxGrace
	k.mu.Unlock()
	if grace <= 0 {
		grace = DefaultGrace
	}
	deadline := time.NewTimer(grace)
	defer deadline.Stop()
	poll := time.NewTicker(20 * time.Millisecond) // group members are not our children: no event says they left
	defer poll.Stop()
	for {
		k.mu.Lock()
		k.reapExited() // in case an exit went unreported
		alive := k.groupsAlive()
		k.mu.Unlock()
		if !alive {
			return
		}
		select {
		case <-k.exits:
		case <-poll.C:
		case <-deadline.C:
			k.mu.Lock()
			for _, t := range k.trees {
				k.signalTree(t, syscall.SIGKILL)
			}
			k.mu.Unlock()
			// Bounded: SIGKILL cannot be caught; the leaders' exits come.
			for {
				k.mu.Lock()
				k.reapExited()
				n := len(k.leaders)
				k.mu.Unlock()
				if n == 0 {
					return
				}
				select {
				case <-k.exits:
				case <-poll.C:
				}
			}
		}
	}
}
