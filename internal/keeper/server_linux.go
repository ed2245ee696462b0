package keeper

import (
	"errors"
	"fmt"
	"slices"

	"github.com/tetherproc/tether/internal/cgroupfs"
	"github.com/tetherproc/tether/internal/fork"

	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/tetherproc/tether/internal/pidfd"
	"github.com/tetherproc/tether/internal/procfs"
	"github.com/tetherproc/tether/internal/sigabi"
)

// kernelIgnored asks the kernel whether sig is ignored (see IgnoredSignals).
func kernelIgnored(sig syscall.Signal) bool { return sigabi.Ignored(sig) }

// ---- keeper side ----

// nameKeeper makes ps, top and docker top show the keeper as tether-keeper,
// not as "exe" (the name of /proc/self/exe, which it was executed as).
// PR_SET_NAME names the calling thread; package init runs on the main
// thread, whose name is the process's, and threads made later copy it.
func nameKeeper() {
	name := []byte("tether-keeper\x00")
	_ = unix.Prctl(unix.PR_SET_NAME, uintptr(unsafe.Pointer(&name[0])), 0, 0, 0) // best effort: only a name
}

type keeper struct {
	keeperLink
	// groupsStopped: the process groups of trees the teardown signalled
	// as one (signalNew); under mu.
	groupsStopped map[int]bool
	self          int
	ppid          int           // the parent, whose children the cgroup level's tree leaders are
	kick          chan struct{} // a spawn: wakes the reaper when it had no children
	exits         chan struct{} // the reaper collected a child (for teardown)
	idle          *time.Timer   // idleExit, pushed back by every request and reap

	mu       sync.Mutex           // guards what follows; held to signal and to reap
	trees    map[uint64]*keptTree // by id, until the parent releases them
	leaders  map[int]*keptTree    // by pid, until reaped
	maxGrace time.Duration        // the largest StopTimeout of any tree started
	cgDir    string               // where the parent's trees' cgroups go (cgOwn.dir); "" if none can be had
	cgOwn    *cgroupfs.KeeperDir  // cgDir and the lock that proves it ours; nil without
	cgErr    string               // why not
	// slots: what the parent told of its tree cgroups under cgDir ("tree"
	// frames): the stop signal and grace of each at its death. A slot not
	// told of has SIGTERM and DefaultGrace.
	slots map[string]slotStop
	// parentGone is closed when the parent's pidfd says it exited.
	parentGone     chan struct{}
	parentGoneOnce sync.Once
	// bye: the parent clones no more into cgDir; until it says so, the
	// keeper of a cgDir never exits idle (see level_cgroup_linux.go).
	bye bool
	// controllers maps each of cgroupfs.LimitControllers to "" if trees' cgroups
	// have it, else to why not (cgroupfs.EnableControllers).
	controllers map[string]string

	// In a PID namespace (ContainPIDNamespace) the keeper is PID 1 and the
	// /proc it reads is its namespace's; hostProc is the parent's /proc,
	// where the pids the parent knows are found. "" otherwise.
	hostProc string
}

type keptTree struct {
	id          uint64
	pid         int // in the keeper's namespace
	hostPID     int // in the parent's: pid but at ContainPIDNamespace
	stopSignal  syscall.Signal
	stopTimeout time.Duration
	reaped      bool
	killed      bool // killTree froze it: its SIGSTOP is ours, not job control
}

// runKeeper is the keeper's life. ppid is the parent's pid; with pidns the
// keeper is PID 1 of a PID namespace of its own, and parentFD a pidfd of the
// parent (-1 if the parent could not make one).
func runKeeper(ppid int, pidns bool, parentFD int) int {
	// Every descendant that loses its parent becomes ours: double-forked
	// daemons and setsid children stay in this subtree, and we reap them.
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return 2
	}
	// Writes to a parent that is gone fail with EPIPE: Go raises SIGPIPE only
	// for descriptors 1 and 2, which are /dev/null here. (Ignoring SIGPIPE
	// would be inherited by every child through exec.)
	// Children get PDEATHSIG=SIGKILL, which the kernel ties to the thread
	// that forked them (golang/go#27505): this goroutine reads the parent's
	// requests and forks every child, and keeps its thread until the keeper
	// exits (serve: a request wakes this very thread, no hand-off through
	// the scheduler to a locked goroutine).
	runtime.LockOSThread()
	link, err := openKeeperLink()
	if err != nil {
		return 2
	}
	k := &keeper{
		keeperLink: link,
		self:       os.Getpid(),
		ppid:       ppid,
		trees:      map[uint64]*keptTree{},
		leaders:    map[int]*keptTree{},
		kick:       make(chan struct{}, 1),
		exits:      make(chan struct{}, 1),
		slots:      map[string]slotStop{},
		parentGone: make(chan struct{}),
	}
	if pidns {
		// Before anything reads /proc: ours, and the children's, must
		// show this namespace's pids.
		hostProc, err := enterPIDNamespace()
		if err != nil {
			k.reply(Msg{Op: OpHello, Hello: &Hello{Version: Version, Err: err.Error()}})
			return 2
		}
		k.hostProc = hostProc
		// Trees get no cgroups here: the keeper's cgroup is named by its
		// pid, 1 in every namespace, and the level does without them.
		k.cgErr = "no cgroups at the PID-namespace level"
	} else if err := procfs.IsOurs(); err != nil {
		// Its tree walk and teardown would read, and signal, another
		// namespace's processes by their pids.
		k.reply(Msg{Op: OpHello, Hello: &Hello{Version: Version, Err: err.Error()}})
		return 2
	} else if own, err := cgroupfs.NewKeeperDir(); err != nil {
		k.cgErr = err.Error()
	} else if err := probeCloneInto(own.Dir); err != nil {
		cgroupfs.RemoveAll(own.Dir)
		own.Close()
		k.cgErr = err.Error()
	} else {
		k.cgOwn, k.cgDir = own, own.Dir
		k.controllers = cgroupfs.EnableControllers(own.Dir, cgroupfs.LimitControllers)
	}
	// A keeper with no tree and no descendant for Idle exits: a
	// parent that spawned once does not keep it for life, and the next
	// start makes a new one. Requests and reaps push the deadline back.
	k.idle = time.AfterFunc(Idle, k.idleExit)
	// Before the hello: from it on the parent may clone trees into our
	// cgroups (no request of ours in between), and a SIGTERM must then
	// stop them gracefully, not kill the keeper by default and the trees
	// with its cgroups (seen: a SIGTERM a few ms after the start).
	k.interruptOnSignals()
	k.reply(Msg{Op: OpHello, Hello: &Hello{Version: Version, Cgroup: k.cgDir, CgroupErr: k.cgErr, Controllers: k.controllers}})
	// Owner: the keeper. Ends when the parent's pidfd becomes readable: a
	// second witness beside the socket's EOF, in case a child of the parent
	// inherited the socket.
	if pidns {
		// The parent is outside our namespace: its pid means nothing here,
		// so it handed us a pidfd of itself.
		if parentFD > 0 {
			go watchPidfd(parentFD, k.parentDied)
		}
	} else {
		go watchParent(ppid, k.parentDied)
	}
	// Owner: the keeper. Ends when the keeper exits.
	go k.reaper()

	k.serve(&k.mu, k.idle, k.handle, k.teardown)
	return 0
}

// errCloneKilled: see probeCloneInto.
var errCloneKilled = errors.New("a child cloned into a cgroup of its own is SIGKILLed before it runs here: " +
	"this process's cgroup had its cgroup.kill written before the process joined it, and this kernel then " +
	"kills every child cloned from it into another cgroup (measured on Linux 6.18); run tether from a cgroup " +
	"that was never killed (see docs/design.md)")

// probeCloneInto clones one short child into a new cgroup under dir and
// says whether it lived. Measured on Linux 6.18: when the cloning process's
// cgroup, or the target cgroup, ever had cgroup.kill written, the kernel
// SIGKILLs the child before it runs (it compares the two cgroups' kill
// counts). A target is fresh here, but the parent's cgroup (the keeper's,
// the same) may have been killed once before the parent joined it: then the
// cgroup level would kill every tree at birth, and the keeper offers none.
// It costs a fork and exec of /bin/true (or of this binary, which exits in
// init) once per keeper.
func probeCloneInto(dir string) error {
	if probed {
		return nil
	}
	probe := filepath.Join(dir, "probe")
	if err := os.Mkdir(probe, 0o755); err != nil {
		return err
	}
	defer cgroupfs.Remove(probe) // best effort: empty once the probe is reaped
	fd, err := unix.Open(probe, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer null.Close()
	path, argv := "/bin/true", []string{"true"}
	if _, err := os.Stat(path); err != nil {
		path, argv = "/proc/self/exe", []string{"tether-keeper-probe"} // exits in init (ProbeEnv)
	}
	pid, err := fork.Exec(path, argv, []string{ProbeEnv + "=1"}, "/", []*os.File{null, null, null},
		&syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: fd})
	if err != nil {
		return fmt.Errorf("clone into a cgroup: %w", err)
	}
	var ws syscall.WaitStatus
	for {
		// The reaper does not run yet: this is the keeper's only child.
		if _, err = syscall.Wait4(pid, &ws, 0, nil); !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	if err == nil && ws.Signaled() && ws.Signal() == syscall.SIGKILL {
		return errCloneKilled
	}
	return nil
}

// recvCloexec makes the kernel mark received descriptors close-on-exec.
const recvCloexec = unix.MSG_CMSG_CLOEXEC

// idleExit runs when Idle passed without a request or a reap: with no
// tree and no descendant the keeper exits (under the lock, so no request is
// half handled; one that arrives now is never read, and the parent, seeing
// EOF, retries it with a new keeper).
func (k *keeper) idleExit() {
	k.mu.Lock()
	if (k.cgDir != "" && !k.bye) || len(k.trees) > 0 || len(procfs.Children(k.self)) > 0 {
		k.mu.Unlock()
		return // a reap or the next request rearms the timer
	}
	k.removeCgroupsLocked()
	os.Exit(0)
}

// reaper is the keeper's one waiting thread: blocked in waitid(P_ALL) until
// any child exits — a leader or an orphan reparented to us — whatever the
// number of children. It looks with WNOWAIT and reaps under the lock the
// signalling code holds, so no pid is signalled after it was reaped.
func (k *keeper) reaper() {
	for {
		var info unix.Siginfo
		err := unix.Waitid(unix.P_ALL, 0, &info, unix.WEXITED|unix.WSTOPPED|unix.WCONTINUED|unix.WNOWAIT, nil)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if errors.Is(err, syscall.ECHILD) {
			<-k.kick // no children: wait for a spawn
			continue
		}
		if err != nil {
			return // cannot happen; the keeper then reaps in teardown
		}
		if info.Code == sigabi.CLDStopped || info.Code == sigabi.CLDContinued {
			k.jobControl(int(sigabi.ChildPID(&info)), info.Code == sigabi.CLDStopped)
			continue
		}
		k.mu.Lock()
		k.reap(int(sigabi.ChildPID(&info)))
		k.idle.Reset(Idle)
		k.mu.Unlock()
		select {
		case k.exits <- struct{}{}:
		default:
		}
	}
}

// jobControl consumes a child's stop or continue report (the WNOWAIT look
// left it there) and, for a tree's leader, tells the parent: a terminal's
// Ctrl-Z stops the leader, and a wrapper such as tether run must follow it
// as a shell's job would. waitid with WSTOPPED or WCONTINUED alone never
// reaps: an exit in between stays for the reaper.
func (k *keeper) jobControl(pid int, stopped bool) {
	opt := unix.WCONTINUED
	if stopped {
		opt = unix.WSTOPPED
	}
	var info unix.Siginfo
	var err error
	for {
		if err = unix.Waitid(unix.P_PID, pid, &info, opt|unix.WNOHANG, nil); !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	if err != nil || int(sigabi.ChildPID(&info)) != pid {
		return // continued, or gone, between the look and now: nothing to report
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	t := k.leaders[pid]
	if t == nil {
		return // an orphan's, or a member's: the tree's leader is what parents follow
	}
	if stopped && t.killed {
		return // the freeze of killTree, a moment before its SIGKILL
	}
	if stopped {
		k.reply(Msg{Op: OpStopped, ID: t.id, Sig: int(sigabi.ChildStatus(&info))})
	} else {
		k.reply(Msg{Op: OpContinued, ID: t.id})
	}
}

// parentDied: the parent's pidfd says it exited; the teardown follows.
func (k *keeper) parentDied() {
	k.parentGoneOnce.Do(func() { close(k.parentGone) })
	k.interrupt()
}

// watchParent calls gone when the parent, ppid, has ended (at once if it
// already has). Without pidfds the socket's EOF is the only witness, which
// is enough.
func watchParent(ppid int, gone func()) {
	fd, dead, err := pidfd.OpenParent(ppid)
	if err != nil {
		return
	}
	if dead || pidfd.WaitExit(fd) == nil {
		gone()
	}
}

// watchPidfd calls gone when the process pidfd fd refers to has exited, and
// closes fd.
func watchPidfd(fd int, gone func()) {
	if pidfd.WaitExit(fd) == nil {
		gone()
	}
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
			if syscall.Signal(m.Sig) == syscall.SIGKILL {
				k.killTree(t)
			} else {
				signalAll(k.members(t, k.snapshot()), syscall.Signal(m.Sig))
			}
		}
	case OpSweep:
		if t := k.trees[m.ID]; t != nil {
			k.killTree(t)
		}
	case OpRelease:
		delete(k.trees, m.ID)
	case OpShutdown:
		// The parent asks for what its death would bring: every tree
		// stopped gracefully, then the keeper's exit.
		k.asked.Store(true)
		k.interrupt()
	case OpTree:
		if t := m.Tree; t != nil && t.Sig > 0 && t.Sig < 65 && strings.HasPrefix(t.Cgroup, "tree.") && !strings.Contains(t.Cgroup, "/") {
			if len(k.slots) >= 256 {
				// The parent removes slots (killed ones, past its free
				// list's bound) and names new ones: forget the gone.
				for name := range k.slots {
					if _, err := os.Stat(filepath.Join(k.cgDir, name)); errors.Is(err, os.ErrNotExist) {
						delete(k.slots, name)
					}
				}
			}
			k.slots[t.Cgroup] = slotStop{syscall.Signal(t.Sig), t.Grace}
		}
	case OpBye:
		k.bye = true
		if len(k.trees) == 0 && len(procfs.Children(k.self)) == 0 {
			k.removeCgroupsLocked()
			os.Exit(0)
		}
	}
}

// spawn starts a tree's leader, a child of the keeper's spawning thread
// (PDEATHSIG: see runKeeper), and answers with its pid as the parent knows
// it.
func (k *keeper) spawn(in keeperIn) {
	m := in.m
	pid, err := startChild(in, &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL})
	hostPID := pid
	if err == nil && k.hostProc != "" {
		// The parent knows its own namespace's pids. The child cannot
		// have been reaped yet: reaping takes k.mu.
		if hostPID = k.parentsPID(pid); hostPID == 0 {
			_ = syscall.Kill(pid, syscall.SIGKILL) // the reaper collects it as an orphan
			err = fmt.Errorf("pid %d has no pid in the parent's namespace", pid)
		}
	}
	if err != nil {
		k.reply(spawnFailed(m.ID, err))
		return
	}
	t := &keptTree{id: m.ID, pid: pid, hostPID: hostPID, stopSignal: syscall.Signal(m.Spawn.StopSignal), stopTimeout: m.Spawn.StopTimeout}
	if t.stopSignal == 0 {
		t.stopSignal = syscall.SIGTERM
	}
	k.maxGrace = max(k.maxGrace, t.stopTimeout)
	k.trees[t.id] = t
	k.leaders[t.pid] = t
	select {
	case k.kick <- struct{}{}:
	default:
	}
	k.reply(Msg{Op: OpSpawned, ID: m.ID, Spawned: &SpawnResult{PID: hostPID}})
}

// slotStop is how the keeper stops the tree in one of the parent's tree
// cgroups at the parent's death.
type slotStop struct {
	sig   syscall.Signal
	grace time.Duration
}

// killTree SIGKILLs a tree at once: a freeze of its members and a kill.
// Called with k.mu held.
func (k *keeper) killTree(t *keptTree) {
	t.killed = true
	freezeKill(func() []int { return k.members(t, k.snapshot()) })
}

// reap collects child pid, which has exited: a leader's exit goes to the
// parent; an orphan reparented to us is just reaped. Called with k.mu held.
func (k *keeper) reap(pid int) {
	var ws syscall.WaitStatus
	var ru syscall.Rusage
	for {
		_, err := syscall.Wait4(pid, &ws, syscall.WNOHANG, &ru)
		if !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	t := k.leaders[pid]
	if t == nil {
		return
	}
	delete(k.leaders, pid)
	t.reaped = true
	k.reply(exitedMsg(t.id, t.hostPID, ws, &ru))
}

// procInfo is one process under the keeper, as /proc showed it.
type procInfo struct{ pid, ppid, pgid int }

// snapshot walks the keeper's subtree once: /proc/PID/task/*/children for the
// shape, /proc/PID/stat for the process group.
func (k *keeper) snapshot() []procInfo {
	var out []procInfo
	type item struct{ pid, ppid int }
	queue := []item{}
	for _, c := range procfs.Children(k.self) {
		queue = append(queue, item{c, k.self})
	}
	for len(queue) > 0 {
		it := queue[0]
		queue = queue[1:]
		out = append(out, procInfo{it.pid, it.ppid, pgidOf(it.pid)})
		for _, c := range procfs.Children(it.pid) {
			queue = append(queue, item{c, it.pid})
		}
	}
	return out
}

// members lists a tree's live processes in a snapshot: the leader and its
// descendants while the leader lives, and every process still in the
// leader's process group (descendants orphaned when the leader exited).
// Processes that left both (setsid after their parent died) are reached when
// the parent ends, by the teardown; the cgroup level reaches them.
func (k *keeper) members(t *keptTree, snap []procInfo) []int {
	in := map[int]bool{}
	if !t.reaped {
		in[t.pid] = true
	}
	// snap is breadth first: a parent comes before its children.
	for _, p := range snap {
		if in[p.ppid] || p.pgid == t.pid {
			in[p.pid] = true
		}
	}
	out := make([]int, 0, len(in))
	for pid := range in {
		out = append(out, pid)
	}
	return out
}

func signalAll(pids []int, sig syscall.Signal) {
	for _, pid := range pids {
		_ = syscall.Kill(pid, sig) // best effort: it may have exited since the walk
	}
}

// freezeKill stops every process list() names, again until a walk finds no
// new one (a stopped process cannot fork), then kills them all: nothing forks
// its way out while the tree is torn down.
func freezeKill(list func() []int) {
	stopped := map[int]bool{}
	for round := 0; round < 1000; round++ {
		fresh := 0
		for _, pid := range list() {
			if !stopped[pid] {
				_ = syscall.Kill(pid, syscall.SIGSTOP) // best effort: it may be exiting
				stopped[pid] = true
				fresh++
			}
		}
		if fresh == 0 {
			break
		}
	}
	for pid := range stopped {
		_ = syscall.Kill(pid, syscall.SIGKILL) // best effort: as above
	}
}

// teardown runs once the parent is gone: each tree gets its stop signal and
// every other descendant SIGTERM, all with SIGCONT (a stopped process cannot
// act on a signal), and so does every process in the parent's tree cgroups
// (the cgroup level), with its slot's stop signal; after the largest grace
// whatever remains is frozen and killed, and the cgroups cgroup.kill'ed.
// The keeper returns once its subtree and its cgroups are empty.
//
// /proc/PID/task/*/children can miss a process that is being reparented while
// it is read, and a mass exit reparents many: so the subtree is walked again
// as children exit (at most every 20 ms), and orphans that were not signalled
// yet are. Processes forked later by a signalled parent are left to it (a
// cleanup handler's own commands must not be killed), as systemd does; the
// final SIGKILL reaches them.
func (k *keeper) teardown() {
	signalled := map[int]bool{}
	stopped := map[string]time.Time{} // the slots signalled, and when each one's grace ends (zero: killed)
	k.mu.Lock()
	// The parent, if it lives (the keeper was sent SIGTERM, or shutdown),
	// starts nothing more here; a tree it started meanwhile is signalled
	// below as its slot fills.
	k.reply(Msg{Op: OpEnding})
	// Before any stop signal: the tree's output pipes keep a reader, so a
	// stopping process's last words do not kill it (outputs_linux.go). At
	// the parent's death, once the parent has closed its descriptors (its
	// pidfd says it exited; the socket's EOF can come first): until then
	// its pipes still have it as a reader.
	if !k.asked.Load() {
		k.mu.Unlock()
		select {
		case <-k.parentGone:
		case <-time.After(200 * time.Millisecond): // no pidfd to tell: bounded
		}
		k.mu.Lock()
	}
	members := descendants(k.self)
	if k.cgDir != "" {
		members = append(members, cgroupfs.ProcsTree(k.cgDir)...)
	}
	release := holdOutputs(members)
	defer release()
	k.signalNew(signalled, true)
	grace := max(k.maxGrace, k.signalSlots(stopped, signalled))
	k.mu.Unlock()
	last := time.Now()
	if grace <= 0 {
		grace = DefaultGrace // no tree ever started: only orphans, if any
	}
	deadline := time.NewTimer(grace)
	defer deadline.Stop()
	end := time.Now().Add(grace)
	// The parent's trees are not the keeper's children: no reap wakes us
	// when they exit. cgroup.events is looked at every 2 ms while they run.
	var poll <-chan time.Time
	for {
		children, populated := len(procfs.Children(k.self)) > 0, k.cgDir != "" && cgroupfs.Populated(k.cgDir)
		if !children && !populated {
			break
		}
		if time.Since(last) >= 20*time.Millisecond {
			k.mu.Lock()
			k.signalNew(signalled, false)
			// Trees started before the parent read "ending", each with
			// its own grace, which the teardown waits out.
			if g := k.signalSlots(stopped, signalled); g > 0 && time.Now().Add(g).After(end) {
				end = time.Now().Add(g)
				deadline.Reset(time.Until(end))
			}
			k.mu.Unlock()
			last = time.Now()
		}
		poll = nil
		if populated {
			poll = time.After(2 * time.Millisecond)
		}
		if populated {
			k.killSlotsPastGrace(stopped)
		}
		select {
		case <-k.exits: // the reaper collected someone
		case <-poll:
		case <-deadline.C:
			k.mu.Lock()
			if k.cgDir != "" {
				_ = cgroupfs.Kill(k.cgDir) // best effort: cgroupfs.Destroy below kills again
			}
			for _, t := range k.leaders { // the freeze's stops are ours, as in killTree
				t.killed = true
			}
			freezeKill(func() []int { return descendants(k.self) })
			k.mu.Unlock()
			// Bounded: everything is SIGKILLed, and the reaper collects it.
			for len(procfs.Children(k.self)) > 0 {
				<-k.exits
			}
			k.destroyCgroups()
			return
		}
	}
	k.destroyCgroups()
}

// signalSlots sends each process in the parent's tree cgroups its slot's
// stop signal and SIGCONT, but in the slots in stopped (signalled before:
// what their members forked since is left to them, as signalNew does), adds
// the slots it signalled to stopped with the end of their grace, and returns
// the largest grace of a slot it signalled. signalled holds the pids that
// had their stop signal. Called with k.mu held.
//
// A stopped slot is signalled again when the parent cloned a new tree into
// it since: until the parent reads "ending" it may reuse a slot whose tree
// exited, and the new tree's leader, a child of the parent never signalled,
// gets its own stop signal and its own grace (before, it inherited the old
// tree's, and was SIGKILLed at its end without a stop signal:
// TestKeeperEndingTakesNoNewTrees).
func (k *keeper) signalSlots(stopped map[string]time.Time, signalled map[int]bool) time.Duration {
	if k.cgDir == "" {
		return 0
	}
	entries, _ := os.ReadDir(k.cgDir)
	var grace time.Duration
	var leaders map[int]bool // the parent's children, read once, if needed
	for _, e := range entries {
		if !e.IsDir() || !strings.HasPrefix(e.Name(), "tree.") {
			continue
		}
		pids := cgroupfs.ProcsTree(filepath.Join(k.cgDir, e.Name()))
		if len(pids) == 0 {
			continue
		}
		if _, done := stopped[e.Name()]; done {
			if leaders == nil {
				leaders = map[int]bool{}
				for _, pid := range procfs.Children(k.ppid) {
					leaders[pid] = true
				}
			}
			// A leader leads its process group (the parent starts
			// every tree in a group of its own); an orphan of a
			// stopped tree reparented to a parent that is a
			// subreaper is the parent's child too, but not that.
			if !slices.ContainsFunc(pids, func(pid int) bool { return leaders[pid] && !signalled[pid] && pgidOf(pid) == pid }) {
				continue
			}
		}
		stop, ok := k.slots[e.Name()]
		if !ok {
			stop = slotStop{syscall.SIGTERM, DefaultGrace}
		}
		grace = max(grace, stop.grace)
		// Frozen while it is read and signalled: a member forking just
		// then would leave a child out of the read, unsignalled (a shell
		// whose trap then waits for that child's end missed its grace:
		// the guarantee matrix's polite shell, 1 cell in 16 at times).
		// What members fork once thawed, acting on the signal (their
		// cleanup), is theirs.
		dir := filepath.Join(k.cgDir, e.Name())
		thaw := cgroupfs.Freeze(dir, freezeWait)
		for _, pid := range cgroupfs.ProcsTree(dir) {
			if !signalled[pid] {
				_ = syscall.Kill(pid, stop.sig) // best effort: it may be exiting
				_ = syscall.Kill(pid, syscall.SIGCONT)
				signalled[pid] = true
			}
		}
		thaw()
		stopped[e.Name()] = time.Now().Add(stop.grace) // from the signal: the freeze is not the tree's grace
	}
	return grace
}

// freezeWait bounds the wait for a slot to freeze before its stop signal
// (a member in uninterruptible sleep freezes late; it is signalled all the
// same).
const freezeWait = 100 * time.Millisecond

// killSlotsPastGrace cgroup.kills the slots whose own grace has ended: a
// tree waits for its own StopTimeout, not for the largest one's.
func (k *keeper) killSlotsPastGrace(stopped map[string]time.Time) {
	now := time.Now()
	for name, end := range stopped {
		if !end.IsZero() && now.After(end) {
			dir := filepath.Join(k.cgDir, name)
			if cgroupfs.Populated(dir) {
				_ = cgroupfs.Kill(dir) // best effort: the deadline's kill of the whole directory follows
			}
			stopped[name] = time.Time{} // killed: not again
		}
	}
}

// destroyCgroups kills what is left in the keeper's cgroups and removes
// them, at its end.
func (k *keeper) destroyCgroups() {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.cgDir != "" {
		cgroupfs.Destroy(k.cgDir)
	}
}

// removeCgroupsLocked removes the keeper's cgroups when it exits idle: they
// are empty (the parent said bye once no tree ran in them). Best effort: a
// cgroup with processes stays, and then the lock, dropped at our exit, lets
// the next keeper collect it.
func (k *keeper) removeCgroupsLocked() {
	if k.cgDir != "" {
		cgroupfs.RemoveAll(k.cgDir)
	}
}

// signalNew sends the stop signal to processes under the keeper that have not
// had it — all of them the first time, then only the keeper's own children
// (orphans) — with their tree's StopSignal where they belong to one, else
// SIGTERM.
func (k *keeper) signalNew(signalled map[int]bool, first bool) {
	snap := k.snapshot()
	orphan := map[int]bool{}
	for _, p := range snap {
		orphan[p.pid] = p.ppid == k.self
	}
	send := func(pid int, sig syscall.Signal) {
		// A process in a group signalled as one had its signal then, or
		// was forked since, acting on it: not again (even one the walk
		// missed then, orphaned since). Its group as it is now: one that
		// left the group had no signal from it.
		if !signalled[pid] && (first || orphan[pid]) && !(len(k.groupsStopped) > 0 && k.groupsStopped[pgidOf(pid)]) {
			_ = syscall.Kill(pid, sig) // best effort: it may be exiting
			_ = syscall.Kill(pid, syscall.SIGCONT)
			signalled[pid] = true
		}
	}
	for _, t := range k.trees {
		members := k.members(t, snap)
		if first && !t.reaped {
			// The leader, unreaped, pins its process group: the group
			// gets the stop signal as one, atomically with any fork in it
			// (a member forking as the snapshot was read left its child
			// out, unsignalled; a shell whose trap waited for that child
			// missed its grace, 1 cell in 32 of the guarantee matrix).
			// Members seen in the group are not signalled again (a second
			// SIGTERM means "force" to many programs).
			_ = syscall.Kill(-t.pid, t.stopSignal) // best effort: the group may be empty
			_ = syscall.Kill(-t.pid, syscall.SIGCONT)
			if k.groupsStopped == nil {
				k.groupsStopped = map[int]bool{}
			}
			k.groupsStopped[t.pid] = true
			// Read again, after the kill: one that left the group since
			// the walk (setpgid, setsid) had no signal from it, and gets
			// its own below.
			for _, p := range snap {
				if p.pgid == t.pid && pgidOf(p.pid) == t.pid {
					signalled[p.pid] = true
				}
			}
		}
		for _, pid := range members {
			send(pid, t.stopSignal)
		}
	}
	for _, p := range snap {
		send(p.pid, syscall.SIGTERM)
	}
}

// descendants lists every process below pid, breadth first.
func descendants(pid int) []int {
	var out []int
	queue := procfs.Children(pid)
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		out = append(out, p)
		queue = append(queue, procfs.Children(p)...)
	}
	return out
}

// pgidOf reads field 5 of /proc/PID/stat; -1 if the process is gone.
func pgidOf(pid int) int {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return -1
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return -1
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 3 {
		return -1
	}
	pg, err := strconv.Atoi(f[2])
	if err != nil {
		return -1
	}
	return pg
}
