package tether

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/tetherproc/tether/internal/cgroupfs"
	"github.com/tetherproc/tether/internal/keeper"

	"golang.org/x/sys/unix"
)

// The cgroup level (ContainCgroup), parent side.
//
// The parent clones each child straight into a cgroup of its own
// (CLONE_INTO_CGROUP): one of the keeper's tree cgroups, "slots", made by
// the parent under the keeper's directory and reused once empty, so that
// neither a round trip to the keeper nor a cgroup's creation sits on the
// spawn path. The child is the parent's own, waited for through a pidfd as
// at the group level; Signal, Stop and Kill act on its cgroup from here.
//
// The keeper is the watchdog: it holds the directory (and its lock, which
// proves it the keeper's), and when the parent ends, however it ends, it
// stops every tree in it gracefully — each slot's stop signal to every
// member, SIGCONT, the grace, cgroup.kill — and removes the cgroups. It
// learns a slot's stop signal and grace from a one-way "tree" frame, sent
// only when they differ from what it was last told of that slot (a new
// slot's are SIGTERM and DefaultStopTimeout, the keeper's defaults), so a
// program that starts its children alike sends none.
//
// Orphans at this level are reaped by the nearest subreaper or PID 1, as
// those of os/exec's children are: the cgroup, not the reaper, holds the
// tree (an exited, unreaped orphan no longer counts as a member of its
// cgroup: cgroup.events says "populated 0").
//
// The keeper never leaves on its own while the parent may clone into its
// directory: the parent says "bye" once no slot has been in use for
// keeper.Idle, and starts a new keeper for the next tree (byeIfIdle). A
// keeper that dies while trees run in its slots (SIGKILLed) leaves them
// without a watchdog: the parent then kills them, as the keeper level's
// trees die with their keeper.

// cgSlot is one tree cgroup, "tree.N" under the keeper's directory.
type cgSlot struct {
	name string
	dir  string
	// fd is the directory, open O_RDONLY: CLONE_INTO_CGROUP's target; files
	// its cpu.stat and cgroup.events, kept open. Owner: the slot; closed
	// when the slot is dropped (removed, or its keeper gone).
	fd    int
	files *cgroupfs.File
	// What the keeper was last told of this slot: the stop signal and the
	// grace it uses at the parent's death.
	sig   syscall.Signal
	grace time.Duration
	// The limits written to the slot.
	limits Limits
	// cpu.stat when the slot was last found empty: the tree's figures
	// count from its start, not the cgroup's.
	baseUser, baseSys time.Duration
	// killed: tether wrote the slot's cgroup.kill. Such a cgroup is not
	// reused: measured on Linux 6.18, a child cloned into a cgroup that
	// was ever cgroup.kill'ed is SIGKILLed before it runs (the kernel
	// compares the cgroup's kill count with the parent's cgroup's).
	killed bool
	// gen counts the trees the slot was taken for: a tree's own gen names
	// its slot while the slot is its (cgroupTree.leftovers).
	gen uint64
}

// maxFreeSlots bounds the empty slots kept for reuse (each holds a
// descriptor and a cgroup): a burst of many trees at once does not leave as
// many behind.
const maxFreeSlots = 32

// cgPool is a keeper's slots, under the client's lock.
type cgPool struct {
	free     []*cgSlot // empty, ready for a tree
	draining []*cgSlot // released with processes still in them (orphans): reused once empty
	made     int       // slots made so far: the next one's number
	live     int       // slots taken and not yet free: a tree runs in it, or it drains
	trees    map[*cgroupTree]bool
	// idle says bye to the keeper once no slot and no kept tree has been
	// in use for keeper.Idle (byeIfIdle). Owner: the client; stopped when
	// the keeper is gone.
	idle *time.Timer
}

// cgroupTree is a child at the cgroup level: the parent's own child, in a
// slot.
type cgroupTree struct {
	*groupProc
	k   *keeperClient
	s   *cgSlot
	gen uint64 // s.gen when the tree was started in it
	// lost: the keeper died while the tree ran, and the parent killed the
	// tree (readLoop).
	lost atomic.Bool
}

// startCgroupLevel starts spec's child in a slot of the keeper's directory.
func startCgroupLevel(spec keeper.Spawn, files []*os.File, _ func(bool, syscall.Signal)) (handle, int, error) {
	sig, grace := syscall.Signal(spec.StopSignal), spec.StopTimeout
	if sig == 0 {
		sig = syscall.SIGTERM
	}
	var lastErr error
	// A keeper that said bye (or died) just as we took it, or a slot that
	// another program removed: again, a bounded number of times.
	for attempt := 0; attempt < 4; attempt++ {
		k, err := getKeeper()
		if err != nil {
			return nil, 0, err
		}
		if k.cgroup == "" {
			return nil, 0, &stepError{step: "cgroup", err: errors.New("no writable cgroup v2 subtree: " + k.cgroupErr)}
		}
		s, err := k.takeSlot()
		if err == nil && !k.alive() {
			// Its death is not read yet: a tree cloned now would be
			// killed with its cgroups when it is. (One that dies from
			// here to the clone takes the tree with it; Wait says so.)
			k.dropSlot(s)
			k.mu.Lock()
			k.dead = true
			k.mu.Unlock()
			err = errKeeperGone
		}
		if errors.Is(err, errKeeperGone) {
			lastErr = err
			continue
		}
		if err != nil {
			return nil, 0, &stepError{step: "cgroup", err: err}
		}
		if s.sig != sig || s.grace != grace {
			// Before the clone: the keeper has it even if we die the
			// next instant (the frame waits in its socket).
			if err := k.send(keeper.Msg{Op: keeper.OpTree, Tree: &keeper.TreeStop{Cgroup: s.name, Sig: int(sig), Grace: grace}}, nil); err != nil {
				k.dropSlot(s)
				lastErr = err
				continue
			}
			s.sig, s.grace = sig, grace
		}
		if err := k.setLimits(s, Limits{MemoryMax: spec.MemoryMax, PidsMax: spec.PidsMax}); err != nil {
			k.putSlot(s)
			return nil, 0, &stepError{step: "cgroup", err: err}
		}
		h, err := startOSInto(spec.Path, spec.Argv, spec.Env, spec.Dir, files, spec.Foreground, s.fd)
		if errors.Is(err, syscall.ENODEV) || errors.Is(err, syscall.ENOENT) && !dirExists(s.dir) {
			// The slot was removed (ENODEV: a removed cgroup): by the
			// keeper's end, or by the parent's clean-up after its death
			// (then a new keeper), or else by another program: nothing of
			// tether's removes a slot in use.
			k.dropSlot(s)
			if k.gone() {
				lastErr = errKeeperGone
				continue
			}
			if !dirExists(k.cgroup) {
				// With the keeper's directory: the trees in it were
				// killed (rmdir needs them gone). Later starts get a new
				// keeper.
				k.retire()
				return nil, 0, &stepError{step: "cgroup", err: cgroupRemovedError(k.cgroup)}
			}
			lastErr = err
			continue
		}
		if err != nil {
			k.putSlot(s)
			return nil, 0, err
		}
		t := &cgroupTree{groupProc: h, k: k, s: s, gen: s.gen} // s is ours alone until putSlot
		k.mu.Lock()
		if k.cg.trees == nil {
			k.cg.trees = map[*cgroupTree]bool{}
		}
		k.cg.trees[t] = true
		dead := k.dead
		k.mu.Unlock()
		if dead {
			// The keeper died between takeSlot and now, and readLoop
			// killed what was in its directory then: this tree is
			// unwatched. It goes the same way.
			t.lost.Store(true)
			_ = cgroupfs.Kill(s.dir)
			_ = h.signal(syscall.SIGKILL)
		}
		return t, h.pid, nil
	}
	return nil, 0, lastErr
}

// dirExists reports whether dir is there: only ENOENT says it is not.
func dirExists(dir string) bool {
	_, err := os.Stat(dir)
	return !errors.Is(err, os.ErrNotExist)
}

// gone reports whether the keeper died, ends, or was let go: its
// directory's removal is then its own doing, not another program's.
func (k *keeperClient) gone() bool {
	k.mu.Lock()
	closed := k.closedLocked()
	k.mu.Unlock()
	return closed || !k.alive()
}

// takeSlot hands out an empty slot, making one if none is free.
func (k *keeperClient) takeSlot() (*cgSlot, error) {
	k.mu.Lock()
	if k.closedLocked() {
		k.mu.Unlock()
		return nil, errKeeperGone
	}
	p := &k.cg
	if len(p.free) == 0 && len(p.draining) > 0 {
		k.recheckDrainingLocked()
	}
	p.live++
	if n := len(p.free); n > 0 {
		s := p.free[n-1]
		p.free = p.free[:n-1]
		s.gen++
		k.mu.Unlock()
		return s, nil
	}
	p.made++
	name := "tree." + strconv.Itoa(p.made)
	k.mu.Unlock()

	// Made outside the lock: a mkdir costs a quarter of a millisecond of
	// kernel time, and other starts need not wait for it.
	s := &cgSlot{name: name, dir: filepath.Join(k.cgroup, name), fd: -1, sig: syscall.SIGTERM, grace: DefaultStopTimeout}
	err := os.Mkdir(s.dir, 0o755)
	if err == nil {
		s.fd, err = unix.Open(s.dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			_ = cgroupfs.Remove(s.dir) // best effort: nothing entered it
		} else {
			s.files = cgroupfs.OpenFiles(s.dir)
		}
	}
	if err != nil {
		k.mu.Lock()
		p.live--
		k.mu.Unlock()
		k.armIdle()
		if errors.Is(err, os.ErrNotExist) && k.gone() {
			return nil, errKeeperGone // its end removed the directory: a new keeper
		}
		if errors.Is(err, os.ErrNotExist) && !dirExists(k.cgroup) {
			k.retire()
			return nil, cgroupRemovedError(k.cgroup)
		}
		return nil, err
	}
	return s, nil
}

// setLimits writes the tree's limits to its slot where they differ from
// what the slot has.
func (k *keeperClient) setLimits(s *cgSlot, want Limits) error {
	if err := cgroupfs.SetLimits(s.dir, cgroupfs.Limits(want), cgroupfs.Limits(s.limits), k.controllers); err != nil {
		return err
	}
	s.limits = want
	return nil
}

// putSlot takes back a slot whose tree is over (or never started): free
// once it is empty, draining while orphans of the tree run in it.
func (k *keeperClient) putSlot(s *cgSlot) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.closedLocked() {
		// The keeper removes its directory as it goes; nothing to keep.
		k.cg.live--
		closeSlot(s)
		return
	}
	if s.files.Populated() {
		k.cg.draining = append(k.cg.draining, s)
		k.armIdleLocked()
		return
	}
	k.freeSlotLocked(s)
}

// freeSlotLocked makes an empty slot free, or removes it where it must not
// be reused: with the memory controller on, memory.peak and memory.events
// count a cgroup's whole life, so each tree gets a new one; a killed one
// would kill the next tree (cgSlot.killed); and past maxFreeSlots.
func (k *keeperClient) freeSlotLocked(s *cgSlot) {
	k.cg.live--
	if why, ok := k.controllers["memory"]; (ok && why == "") || s.killed || len(k.cg.free) >= maxFreeSlots {
		_ = cgroupfs.Remove(s.dir) // best effort: the keeper removes what is left at its end
		closeSlot(s)
	} else {
		s.baseUser, s.baseSys = s.files.CPU()
		k.cg.free = append(k.cg.free, s)
	}
	k.armIdleLocked()
}

// dropSlot forgets a slot that was removed, or was never told to the keeper.
func (k *keeperClient) dropSlot(s *cgSlot) {
	k.mu.Lock()
	k.cg.live--
	k.armIdleLocked()
	k.mu.Unlock()
	_ = cgroupfs.Remove(s.dir) // best effort: empty, or gone already
	closeSlot(s)
}

func closeSlot(s *cgSlot) {
	if s.fd >= 0 {
		_ = unix.Close(s.fd) // best effort: only a directory
		s.fd = -1
	}
	if s.files != nil {
		s.files.Close()
	}
}

// recheckDrainingLocked frees the draining slots that have emptied.
func (k *keeperClient) recheckDrainingLocked() {
	var empty []*cgSlot
	d := k.cg.draining[:0]
	for _, s := range k.cg.draining {
		if s.files.Populated() {
			d = append(d, s)
		} else {
			empty = append(empty, s)
		}
	}
	clear(k.cg.draining[len(d):])
	k.cg.draining = d
	// Freed once draining says what still drains: freeSlotLocked's
	// idle check counts it.
	for _, s := range empty {
		k.freeSlotLocked(s)
	}
}

// armIdle starts the countdown to bye when nothing of the keeper's is in
// use: no slot taken, no kept tree, no spawn awaiting its answer.
func (k *keeperClient) armIdle() {
	k.mu.Lock()
	k.armIdleLocked()
	k.mu.Unlock()
}

func (k *keeperClient) armIdleLocked() {
	if k.closedLocked() || k.cgroup == "" {
		return
	}
	if k.cg.live-len(k.cg.draining) > 0 || len(k.procs) > 0 || len(k.replies) > 0 {
		return
	}
	if k.cg.idle == nil {
		k.cg.idle = time.AfterFunc(keeper.Idle, k.byeIfIdle)
	} else {
		k.cg.idle.Reset(keeper.Idle)
	}
}

// byeIfIdle says bye to the keeper if nothing of it has been used since
// the timer was armed (a start stops nothing: the use is seen here), and
// makes the next start get a new keeper. With orphans draining in a slot,
// it looks again later.
func (k *keeperClient) byeIfIdle() {
	keeperMu.Lock()
	k.mu.Lock()
	if k.closedLocked() {
		k.mu.Unlock()
		keeperMu.Unlock()
		return
	}
	if len(k.cg.draining) > 0 {
		k.recheckDrainingLocked()
	}
	if k.cg.live > 0 || len(k.procs) > 0 || len(k.replies) > 0 {
		if k.cg.live > 0 && k.cg.live == len(k.cg.draining) {
			k.cg.idle.Reset(keeper.Idle) // orphans only: look again later
		}
		k.mu.Unlock()
		keeperMu.Unlock()
		return
	}
	k.retireLocked()
	k.mu.Unlock()
	keeperMu.Unlock()
	_ = k.send(keeper.Msg{Op: keeper.OpBye}, nil) // fails only if it is gone already
}

// retire makes later starts get a new keeper, and lets this one go.
func (k *keeperClient) retire() {
	keeperMu.Lock()
	k.mu.Lock()
	already := k.closedLocked()
	k.retireLocked()
	k.mu.Unlock()
	keeperMu.Unlock()
	if !already {
		_ = k.send(keeper.Msg{Op: keeper.OpBye}, nil) // fails only if it is gone already
	}
}

// retireLocked: with keeperMu and k.mu held.
func (k *keeperClient) retireLocked() {
	k.forget()
	for _, s := range k.cg.free {
		closeSlot(s)
	}
	k.cg.free = nil
	if k.cg.idle != nil {
		k.cg.idle.Stop()
	}
}

// keeperGoneLocked runs when the keeper's stream ended, with k.mu held, on
// whichever goroutine read the end (streamEnded: an await, perhaps
// getKeeperAt's with keeperMu held, or readLoop); it takes no other lock.
// Unless the parent let it go (bye, Shutdown), the trees in its slots lost
// their watchdog, and are killed with the directory (readLoop's
// cgroupfs.Destroy).
func (k *keeperClient) keeperGoneLocked() {
	if !k.retired {
		for t := range k.cg.trees {
			t.lost.Store(true)
		}
	}
	for _, s := range k.cg.free {
		closeSlot(s)
	}
	for _, s := range k.cg.draining {
		closeSlot(s)
	}
	k.cg.free, k.cg.draining = nil, nil
	if k.cg.idle != nil {
		k.cg.idle.Stop()
	}
}

func (t *cgroupTree) wait() (waitResult, error) {
	w, err := t.groupProc.wait()
	// The tree's CPU time, from its cgroup: its members' too, reaped or
	// not, since the slot was last found empty.
	u, s := t.s.files.CPU()
	w.treeUser, w.treeSys = max(u-t.s.baseUser, 0), max(s-t.s.baseSys, 0)
	if why, ok := t.k.controllers["memory"]; ok && why == "" {
		// Only slots with the memory controller have the files, and
		// those are never reused: no failing opens on every exit
		// elsewhere.
		w.treePeak, w.treeOOM = cgroupfs.MemoryPeak(t.s.dir), cgroupfs.OOMKills(t.s.dir)
	}
	if err == nil && t.lost.Load() && w.signal == syscall.SIGKILL {
		err = fmt.Errorf("tether: pid %d: %s; it was killed with it", t.pid, errKeeperGone)
	}
	return w, err
}

// signal sends sig to the leader (through its pidfd), to its process group
// (pinned while the leader is unreaped, as at the group level) and to every
// other member of its cgroup and the cgroups below. SIGKILL goes to the
// leader and its group first, which leaves a slot with nothing else in it
// reusable (cgSlot.killed), then the cgroup is read once: the leader cannot
// fork once SIGKILL is pending, and a child forked before it landed is in
// the group (a group kill is atomic with fork), so anything else found there
// was beyond the group, and the tree gets cgroup.kill, which nothing can fork
// its way out of.
func (t *cgroupTree) signal(sig syscall.Signal) error {
	var procs []int
	if sig != syscall.SIGKILL {
		procs = t.s.files.ProcsTree()
	}
	return t.signalRead(sig, procs)
}

// signalAll is signal with the tree frozen while its members are read and
// signalled (Stop's signal; see stopSignaler): a member outside the
// leader's process group (whose signal is one, atomic with a fork in it)
// forking in that instant left its child without the signal, to meet
// SIGKILL at the grace's end, its clean-up never run
// (TestStopReachesAMemberForkedAsTheTreeIsRead). The keeper's teardown
// freezes the same way; the thaw delivers the signals.
func (t *cgroupTree) signalAll(sig syscall.Signal) error {
	if sig == syscall.SIGKILL {
		return t.signal(sig) // cgroup.kill: nothing forks past it
	}
	thaw := cgroupfs.Freeze(t.s.dir, signalFreezeWait)
	defer thaw()
	procs := t.s.files.ProcsTree()
	if h := cgroupSignalHook; h != nil {
		h(t.s.dir)
	}
	return t.signalRead(sig, procs)
}

// signalRead sends sig to the leader and its group, and to procs, the
// members as read (for SIGKILL, the tree's cgroup.kill).
func (t *cgroupTree) signalRead(sig syscall.Signal, procs []int) error {
	err := t.groupProc.signal(sig) // the leader, through its pidfd, and its group
	if sig == syscall.SIGKILL {
		procs = t.s.files.ProcsTree()
		if slices.ContainsFunc(procs, func(pid int) bool { return pid != t.pid }) && t.kill() == nil {
			return err
		}
	}
	for _, pid := range procs {
		if pid != t.pid {
			_ = syscall.Kill(pid, sig) // best effort: it may have exited since the read
		}
	}
	return err
}

// signalFreezeWait bounds the wait for a tree to freeze before a signal
// (cgroupfs.Freeze): a member in uninterruptible sleep can hold it up.
const signalFreezeWait = 100 * time.Millisecond

// cgroupSignalHook, for tests, runs between the read of a tree's members
// and their signals in signalAll, with the tree's cgroup directory.
var cgroupSignalHook func(dir string)

// kill is cgroup.kill on the tree's slot.
func (t *cgroupTree) kill() error {
	t.k.mu.Lock()
	t.s.killed = true
	t.k.mu.Unlock()
	return cgroupfs.Kill(t.s.dir)
}

func (t *cgroupTree) sweep() {
	if t.s.files.Populated() && t.kill() != nil {
		t.groupProc.sweep()
	}
}

func (t *cgroupTree) release() {
	t.groupProc.release()
	t.k.mu.Lock()
	delete(t.k.cg.trees, t)
	t.k.mu.Unlock()
	t.k.putSlot(t.s)
}

// signalLeftovers sends sig, after release, to what is left of the tree:
// the members still in its slot (a leader's `sleep 30 &`) while the slot
// drains. It reports false when nothing is left to reach: the slot
// emptied, or was freed, reused (its gen moved on) or dropped with its
// keeper. SIGKILL is cgroup.kill; another signal goes to each member read
// from the slot, best effort, as at signal.
func (t *cgroupTree) signalLeftovers(sig syscall.Signal) bool {
	// Under the keeper client's lock: the slot cannot be freed, and so
	// reused, while it is held (recheckDrainingLocked).
	t.k.mu.Lock()
	defer t.k.mu.Unlock()
	// (A slot dropped with its keeper is no longer in draining.)
	if t.s.gen != t.gen || !slices.Contains(t.k.cg.draining, t.s) || !t.s.files.Populated() {
		return false
	}
	if sig == syscall.SIGKILL {
		t.s.killed = true // never reused (cgSlot.killed)
		return cgroupfs.Kill(t.s.dir) == nil
	}
	procs := t.s.files.ProcsTree()
	for _, pid := range procs {
		_ = syscall.Kill(pid, sig) // best effort: it may have exited since the read
	}
	return len(procs) > 0
}

// waitLeftovers waits up to d for the tree's slot to empty after
// signalLeftovers, and reports whether it did (or is another tree's by now:
// once empty it may be taken again).
func (t *cgroupTree) waitLeftovers(d time.Duration) bool {
	ours := func() bool {
		t.k.mu.Lock()
		defer t.k.mu.Unlock()
		return t.s.gen == t.gen && t.s.fd >= 0
	}
	return !ours() || cgroupfs.WaitEmpty(t.s.dir, d, ours) // dir: set at the slot's making, never changed
}

// alive reports whether the keeper's end of the socket is still open: a
// keeper that died closed it (the kernel did, when its last thread exited),
// perhaps before readLoop read the end. One poll(2), no round trip.
func (k *keeperClient) alive() bool {
	rc, err := k.conn.SyscallConn()
	if err != nil {
		return false
	}
	up := true
	err = rc.Control(func(fd uintptr) {
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLRDHUP}}
		for {
			n, err := unix.Poll(fds, 0)
			if errors.Is(err, syscall.EINTR) {
				continue
			}
			up = err != nil || n == 0 || fds[0].Revents&(unix.POLLRDHUP|unix.POLLHUP|unix.POLLERR) == 0
			return
		}
	})
	return up && err == nil // closed: readLoop read the end
}
