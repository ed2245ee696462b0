//go:build linux || darwin

package tether

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/signal"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// ---- parent side ----

var (
	keeperMu sync.Mutex
	keeperCl *keeperClient // started on the first kept start; replaced if it dies
	pidnsCl  *keeperClient // the same for ContainPIDNamespace
)

var errKeeperGone = errors.New("the keeper is gone")

// keeperClient is the parent's end of its keeper.
type keeperClient struct {
	conn   *net.UnixConn
	pid    int
	pidns  bool // PID 1 of a namespace of its own (ContainPIDNamespace)
	userns bool // ...inside a user namespace, for want of root

	hello     chan struct{} // closed when the keeper said what it offers, or died
	done      chan struct{} // closed when the keeper is gone and cleaned up after
	helloOnce sync.Once
	cgroup    string // the keeper's cgroup directory, "" if none
	cgroupErr string
	// controllers: Limits' controllers, "" if trees' cgroups have them,
	// else why not (the keeper's hello).
	controllers map[string]string
	helloErr    string // the keeper could not set itself up, and exits

	wmu sync.Mutex // one frame at a time on conn

	mu      sync.Mutex
	nextID  uint64
	replies map[uint64]chan keeperMsg // spawns awaiting their answer
	procs   map[uint64]*keptProc      // started, exit not yet reported
	dead    bool
	// retired: the parent let this keeper go (bye, Shutdown); later starts
	// get a new one, and its end kills nothing of the parent's.
	retired bool
	cg      cgPool // the cgroup level's tree cgroups (level_cgroup_linux.go)
	// released: trees closed since the last frame sent, whose releases go
	// with the next spawn, bye or shutdown (one write, one wake-up of the
	// keeper), or after releaseDelay if none comes. relTimer: owner the
	// client; stopped when the keeper is gone.
	released []uint64
	relTimer *time.Timer
}

// releaseDelay bounds how long a release waits for a frame to go with.
const releaseDelay = 50 * time.Millisecond

func getKeeper() (*keeperClient, error) { return getKeeperAt(false) }

// forget retires k: later starts get a new keeper. With keeperMu and k.mu
// held.
func (k *keeperClient) forget() {
	k.retired = true
	if keeperCl == k {
		keeperCl = nil
	}
	if pidnsCl == k {
		pidnsCl = nil
	}
}

// getKeeperAt returns the keeper for the keeper and cgroup levels, or with
// pidns the one for ContainPIDNamespace, starting it if none runs.
func getKeeperAt(pidns bool) (*keeperClient, error) {
	keeperMu.Lock()
	defer keeperMu.Unlock()
	cl := &keeperCl
	if pidns {
		cl = &pidnsCl
	}
	if k := *cl; k != nil {
		k.mu.Lock()
		dead := k.dead || k.retired
		k.mu.Unlock()
		if !dead {
			return k, nil
		}
	}
	k, err := startKeeper(pidns)
	if err != nil {
		return nil, err
	}
	{
		// The keeper can refuse to work (its /proc mount failed, or the
		// /proc it sees is another PID namespace's): learn it here, once,
		// rather than as a keeper gone at every spawn.
		<-k.hello
		if k.helloErr != "" {
			return nil, errors.New(k.helloErr)
		}
	}
	*cl = k
	return k, nil
}

// startKeeper re-executes this binary as the keeper, connected by a stream
// socketpair at its fd 3 (see keeper_frame.go), in a process group of its
// own so that a signal to the parent's group (a terminal's Ctrl-C) does not
// reach it first.
//
// With pidns it is PID 1 of a new PID namespace (see startInPIDNamespace).
func startKeeper(pidns bool) (*keeperClient, error) {
	exe, err := selfExe()
	if err != nil {
		return nil, fmt.Errorf("keeper: cannot re-execute this binary: %w", err)
	}
	fds, err := socketpairCloexec()
	if err != nil {
		return nil, fmt.Errorf("keeper socket: %w", err)
	}
	ours := os.NewFile(uintptr(fds[0]), "keeper")
	theirs := os.NewFile(uintptr(fds[1]), "keeper")
	defer theirs.Close()
	c, err := net.FileConn(ours)
	_ = ours.Close() // FileConn holds its own copy
	if err != nil {
		return nil, fmt.Errorf("keeper socket: %w", err)
	}
	null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		_ = c.Close()
		return nil, err
	}
	defer null.Close()
	env := make([]string, 0, len(os.Environ())+1)
	for _, kv := range os.Environ() {
		// The first of two entries wins in Go's getenv: drop ours' rivals.
		if !strings.HasPrefix(kv, keeperEnv+"=") && !strings.HasPrefix(kv, keeperNSEnv+"=") && !strings.HasPrefix(kv, "GOMAXPROCS=") {
			env = append(env, kv)
		}
	}
	// The keeper's work is syscalls from one loop; one P spares the machine
	// the scheduler's spinning threads (measured: 0.62x -> 0.70x os/exec
	// in the spawn benchmark on two CPUs).
	env = append(env, keeperEnv+"="+strconv.Itoa(os.Getpid()), "GOMAXPROCS=1")
	files := []*os.File{null, null, null, theirs}
	fork := func(attr *syscall.SysProcAttr) (int, error) {
		return forkOwned(func() (int, error) {
			return forkExec(exe, []string{"tether-keeper"}, env, "/", files, attr)
		})
	}
	var pid int
	var userns bool
	if pidns {
		pid, userns, err = startInPIDNamespace(&env, &files, fork)
	} else {
		pid, err = fork(&syscall.SysProcAttr{})
	}
	if err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("start keeper: %w", err)
	}
	k := &keeperClient{
		hello:   make(chan struct{}),
		done:    make(chan struct{}),
		conn:    c.(*net.UnixConn),
		pid:     pid,
		pidns:   pidns,
		userns:  userns,
		replies: map[uint64]chan keeperMsg{},
		procs:   map[uint64]*keptProc{},
	}
	// Owner: the package (keeperCl). Ends when the keeper's socket closes,
	// that is when the keeper exits; it then reaps the keeper.
	go k.readLoop()
	return k, nil
}

func (k *keeperClient) readLoop() {
	defer close(k.done)
	r := newFrameReader(func(p, oob []byte) (int, int, int, error) {
		n, oobn, flags, _, err := k.conn.ReadMsgUnix(p, oob)
		return n, oobn, flags, err
	})
	for {
		m, fds, err := r.next()
		closeFDs(fds) // the keeper sends none
		if err != nil {
			break
		}
		var job func() // a job event, reported once the lock is released
		k.mu.Lock()
		switch m.Op {
		case "hello":
			k.cgroup, k.cgroupErr, k.helloErr, k.controllers = m.Cgroup, m.CgroupErr, m.Err, m.Controllers
			k.helloOnce.Do(func() { close(k.hello) })
			k.armIdleLocked() // a keeper nothing is started through says bye too
		case "spawned":
			if ch := k.replies[m.ID]; ch != nil {
				delete(k.replies, m.ID)
				ch <- m
			}
		case "exited":
			if kp := k.procs[m.ID]; kp != nil {
				delete(k.procs, m.ID)
				kp.exit <- m
				k.armIdleLocked()
			}
		case "stopped", "continued":
			if kp := k.procs[m.ID]; kp != nil && kp.onJob != nil {
				stopped, sig := m.Op == "stopped", syscall.Signal(m.Sig)
				job = func() { kp.onJob(stopped, sig) }
			}
		}
		k.mu.Unlock()
		if job != nil {
			// Not under k.mu: it reaches the program's Observer, which may
			// start a process (and take k.mu) or be slow.
			job()
		}
	}
	k.helloOnce.Do(func() { close(k.hello) })
	k.mu.Lock()
	k.keeperGoneLocked()
	k.dead = true
	k.released = nil
	if k.relTimer != nil {
		k.relTimer.Stop()
	}
	for id, ch := range k.replies {
		ch <- keeperMsg{Op: "spawned", ID: id, Err: errKeeperGone.Error()}
	}
	// The keeper's children die with it (PDEATHSIG from its spawning
	// thread; in a PID namespace, every process in it).
	for _, kp := range k.procs {
		kp.exit <- keeperMsg{Op: "exited", Signal: int(syscall.SIGKILL), Err: errKeeperGone.Error()}
	}
	clear(k.replies)
	clear(k.procs)
	k.mu.Unlock()
	_ = k.conn.Close()
	var ws syscall.WaitStatus
	for {
		if _, err := syscall.Wait4(k.pid, &ws, 0, nil); !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	disown(k.pid)
	// A keeper that ends normally removes its cgroups; one that was killed
	// cannot. What is left in them (the parent's trees, which lost their
	// watchdog) is killed here: the cgroup level survives the keeper's
	// SIGKILL too.
	if k.cgroup != "" {
		cgroupDestroy(k.cgroup)
	}
	r.close()
}

func (k *keeperClient) send(m keeperMsg, fds []int) error {
	var b []byte
	if m.Op == "spawn" || m.Op == "bye" || m.Op == "shutdown" || m.Op == "release" {
		// The releases waiting go first, in the same write.
		k.mu.Lock()
		ids := k.released
		k.released = nil
		k.mu.Unlock()
		for _, id := range ids {
			b, _ = appendFrame(b, keeperMsg{Op: "release", ID: id}, 0) // cannot fail: small
		}
		if m.Op == "release" {
			m = keeperMsg{} // flushReleases: nothing of its own
		}
	}
	if m.Op != "" {
		var err error
		if b, err = appendFrame(b, m, len(fds)); err != nil {
			return err
		}
	}
	if len(b) == 0 {
		return nil
	}
	var oob []byte
	if len(fds) > 0 {
		oob = unix.UnixRights(fds...)
	}
	// One writer at a time: frames must not interleave on the stream.
	k.wmu.Lock()
	defer k.wmu.Unlock()
	n, _, err := k.conn.WriteMsgUnix(b, oob, nil)
	if err == nil && n < len(b) {
		var m int
		m, err = k.conn.Write(b[n:]) // the rest, without the descriptors
		n += m
	}
	if err != nil {
		if n > 0 {
			// Part of a frame is out: the stream cannot be resumed.
			// Closing it ends the keeper (EOF), which stops its trees,
			// and readLoop, which reports them gone.
			_ = k.conn.Close()
		}
		// The next start makes a new keeper, even before readLoop has
		// read the EOF of this one, when the socket says the keeper is
		// gone (a SIGKILLed keeper: EPIPE comes first) or a frame is cut.
		// Other errors (a bad descriptor of this spawn's) fail this send
		// alone.
		// (net.ErrClosed: readLoop saw the EOF and closed conn meanwhile.)
		if n > 0 || errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, net.ErrClosed) {
			k.mu.Lock()
			k.dead = true
			k.mu.Unlock()
			return fmt.Errorf("%w: %v", errKeeperGone, err)
		}
		return fmt.Errorf("tether: to the keeper: %w", err)
	}
	return nil
}

// startKept starts a child from the keeper; with pidns, from the one in a
// PID namespace of its own.
func startKept(spec keeperSpawn, files []*os.File, pidns bool, onJob func(bool, syscall.Signal)) (handle, int, error) {
	h, pid, err := startKeptOnce(spec, files, pidns, onJob)
	if errors.Is(err, errKeeperGone) {
		// The keeper may have exited idle just as we sent: once more, with
		// a new one.
		h, pid, err = startKeptOnce(spec, files, pidns, onJob)
	}
	return h, pid, err
}

// maxKeptFiles bounds the descriptors one spawn passes to the keeper: stdio,
// ExtraFiles and the IPC channel.
const maxKeptFiles = 64

func startKeptOnce(spec keeperSpawn, files []*os.File, pidns bool, onJob func(bool, syscall.Signal)) (handle, int, error) {
	// Only real descriptors travel; the child's numbers that get none
	// (nil ExtraFiles) are named in the request.
	fds := make([]int, 0, len(files))
	spec.Holes = nil
	for i, f := range files {
		if f == nil {
			spec.Holes = append(spec.Holes, i)
			continue
		}
		fds = append(fds, int(f.Fd()))
	}
	if len(fds) > maxKeptFiles {
		return nil, 0, fmt.Errorf("%d descriptors for the child; the keeper takes at most %d (stdio, ExtraFiles, IPC)", len(fds), maxKeptFiles)
	}
	k, err := getKeeperAt(pidns)
	if err != nil {
		return nil, 0, err
	}
	reply := make(chan keeperMsg, 1)
	kp := &keptProc{k: k, exit: make(chan keeperMsg, 1), onJob: onJob}
	k.mu.Lock()
	if k.dead || k.retired {
		k.mu.Unlock()
		return nil, 0, errKeeperGone
	}
	k.nextID++
	kp.id = k.nextID
	k.replies[kp.id] = reply
	k.procs[kp.id] = kp
	k.mu.Unlock()

	spec.Ignored = ignoredSignals()
	spec.encodeBytes()
	err = k.send(keeperMsg{Op: "spawn", ID: kp.id, Spawn: &spec}, fds)
	runtime.KeepAlive(files)
	var m keeperMsg
	if err == nil {
		m = <-reply // bounded: the keeper answers, or readLoop does when it dies
		if m.Errno != 0 || m.Err != "" {
			err = spawnErr(m)
		}
	}
	if err != nil {
		k.mu.Lock()
		delete(k.replies, kp.id)
		delete(k.procs, kp.id)
		k.armIdleLocked()
		k.mu.Unlock()
		return nil, 0, err
	}
	kp.pid = m.PID
	return kp, m.PID, nil
}

// shutdownKeepers asks the keepers that run to stop every tree and exit;
// each channel closes when its keeper is gone.
func shutdownKeepers() []<-chan struct{} {
	keeperMu.Lock()
	ks := []*keeperClient{keeperCl, pidnsCl}
	keeperMu.Unlock()
	var gone []<-chan struct{}
	for _, k := range ks {
		if k != nil {
			// Its end is asked for: it stops the trees in its cgroups
			// itself, and later starts get a new keeper.
			keeperMu.Lock()
			k.mu.Lock()
			k.retireLocked()
			k.mu.Unlock()
			keeperMu.Unlock()
			_ = k.send(keeperMsg{Op: "shutdown"}, nil) // fails only if it is gone already: done closes then
			gone = append(gone, k.done)
		}
	}
	return gone
}

func levelOf(h handle) Containment {
	if kp, ok := h.(*keptProc); ok {
		if kp.k.pidns {
			return ContainPIDNamespace
		}
		return ContainKeeper
	}
	if _, ok := h.(*cgroupTree); ok {
		return ContainCgroup
	}
	return ContainGroup
}

// keptProc is a child the keeper started for us.
type keptProc struct {
	k    *keeperClient
	id   uint64
	pid  int
	exit chan keeperMsg
	// onJob reports the leader stopped (with the signal) or continued;
	// called by readLoop with the client's lock held, so it must not block.
	// Set before the spawn is sent.
	onJob func(stopped bool, sig syscall.Signal)
}

func (h *keptProc) wait() (waitResult, error) {
	m := <-h.exit
	w := waitResult{
		code:   m.Code,
		signal: syscall.Signal(m.Signal),
		core:   m.Core,
		utime:  time.Duration(m.Utime),
		stime:  time.Duration(m.Stime),
		maxRSS: m.MaxRSS,

		treeUser: time.Duration(m.TreeUser),
		treeSys:  time.Duration(m.TreeSys),
		treePeak: m.TreePeak,
		treeOOM:  m.TreeOOM,
	}
	if m.Err != "" {
		return w, fmt.Errorf("tether: pid %d: %s; it was killed with it", h.pid, m.Err)
	}
	return w, nil
}

func (h *keptProc) signal(sig syscall.Signal) error {
	return h.k.send(keeperMsg{Op: "signal", ID: h.id, Sig: int(sig)}, nil)
}

func (h *keptProc) sweep() {
	_ = h.k.send(keeperMsg{Op: "sweep", ID: h.id}, nil) // best effort: a dead keeper took the tree with it
}

// release is sent with the client's next frame, within releaseDelay (see
// keeperClient.released).
func (h *keptProc) release() {
	k := h.k
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.dead {
		return // the keeper took the tree with it
	}
	k.released = append(k.released, h.id)
	if k.relTimer == nil {
		// Owner: the client. Each firing ends at once; stopped in readLoop.
		k.relTimer = time.AfterFunc(releaseDelay, func() {
			_ = k.send(keeperMsg{Op: "release"}, nil) // best effort: a dead keeper took the trees with it
		})
	} else if len(k.released) == 1 {
		k.relTimer.Reset(releaseDelay)
	}
}

// ---- keeper side, every Unix ----

func init() {
	if v := os.Getenv(keeperEnv); v != "" {
		ppid, _ := strconv.Atoi(v)
		_ = os.Unsetenv(keeperEnv)
		ns, pidns := os.LookupEnv(keeperNSEnv)
		_ = os.Unsetenv(keeperNSEnv)
		parentFD, _ := strconv.Atoi(ns)
		nameKeeper()
		os.Exit(runKeeper(ppid, pidns, parentFD))
	}
}

// keeperIdle is how long a keeper with nothing to keep lingers.
const keeperIdle = 2 * time.Second

// keeperLink is the keeper's end of its socket to the parent, and the loop
// that serves it: the part the Linux and macOS keepers share.
type keeperLink struct {
	fd  int    // the socket to the parent, blocking
	out []byte // replies not yet sent, under the keeper's lock
	// batching: serve handles a request with more read behind it; its
	// replies wait in out and go in one write with the last one's.
	batching bool

	sigs    chan os.Signal // the keeper's own ending signals (interruptOnSignals)
	ignored uint64         // the signals the keeper ignores now (ignoredSignals' form); serve's goroutine only
	discard chan os.Signal // notified of the signals applyIgnored un-ignores by a handler; never read
}

// openKeeperLink takes the socket the parent left at descriptor 3.
func openKeeperLink() (keeperLink, error) {
	l := keeperLink{fd: 3}
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
func (l *keeperLink) reply(m keeperMsg) {
	b, err := appendFrame(l.out, m, 0)
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
		_ = sendFrame(l.fd, l.out, nil) // best effort: a gone parent reads nothing (EPIPE)
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
	go func() { <-l.sigs; l.interrupt() }()
	// What the keeper ignores from here on, inherited from the parent at
	// its start: applyIgnored changes it to each spawn's parent's.
	l.ignored = ignoredSignals()
}

// keeperEndingSignals end the keeper as its parent's death does, unless the
// parent ignores them (applyIgnored).
var keeperEndingSignals = []os.Signal{syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP}

// ignoredSignals is the set of signals this process ignores now — those its
// children inherit ignored through exec, as os/exec's do: bit N-1 for
// signal N. (A Go program ignores what it passed to signal.Ignore, and
// SIGHUP and SIGINT if it was started with them ignored; the runtime
// replaces other inherited SIG_IGNs with its handler before main runs.)
//
// The runtime leaves SIGCONT, SIGTSTP, SIGTTIN and SIGTTOU as it found them
// unless asked to watch them, and signal.Ignored does not know of an
// inherited SIG_IGN there: those the kernel is asked about (kernelIgnored).
func ignoredSignals() uint64 {
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
	r := newFrameReader(func(p, oob []byte) (int, int, int, error) {
		n, oobn, flags, _, err := unix.Recvmsg(l.fd, p, oob, recvCloexec)
		return n, oobn, flags, err
	})
	// Where the kernel cannot mark them (no MSG_CMSG_CLOEXEC), the reader
	// does as they arrive, before the next fork, which only this
	// goroutine makes.
	r.cloexec = recvCloexec == 0
	for {
		m, fds, err := r.next()
		if err != nil {
			r.close()
			idle.Stop()
			teardown()
			return
		}
		if m.Op == "spawn" && m.Spawn != nil {
			l.applyIgnored(m.Spawn.Ignored)
		}
		// A burst (pipelined spawns, releases sent with a spawn) is
		// answered in one write, once its last request is handled.
		more := r.buffered()
		mu.Lock()
		l.batching = more
		handle(keeperIn{m, fds})
		l.batching = false
		if !more {
			l.flush()
		}
		idle.Reset(keeperIdle)
		mu.Unlock()
	}
}

// keeperIn is one request as the keeper read it.
type keeperIn struct {
	m   keeperMsg
	fds []int
}

// spawnFiles checks a spawn request and wraps its descriptors (stdio first)
// in Files, which own them from here; if the request is malformed, or some
// of its descriptors never arrived (-1: the keeper was out of them), it
// closes them and says why.
func spawnFiles(in keeperIn) ([]*os.File, error) {
	if in.m.Spawn == nil || len(in.fds) < 3 || len(in.fds) > maxKeptFiles || in.m.Spawn.decodeBytes() != nil {
		closeFDs(in.fds)
		return nil, errors.New("malformed spawn request")
	}
	if slices.Contains(in.fds, -1) {
		closeFDs(in.fds)
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
		closeFDs(in.fds[next:])
		for _, f := range files {
			if f != nil {
				_ = f.Close() // ours: received for this malformed request
			}
		}
		return nil, errors.New("malformed spawn request")
	}
	return files, nil
}

// cgroupSetupError is a spawn that failed while the keeper made its tree's
// cgroup, before any clone.
type cgroupSetupError struct {
	err  error
	gone bool // the keeper's own cgroup was removed; err names it
}

func (e *cgroupSetupError) Error() string { return e.err.Error() }

// spawnFailed is the answer to spawn id that failed with err.
func spawnFailed(id uint64, err error) keeperMsg {
	m := keeperMsg{Op: "spawned", ID: id}
	var errno syscall.Errno
	hasErrno := errors.As(err, &errno)
	if hasErrno {
		m.Errno = int(errno)
	}
	if cse, ok := err.(*cgroupSetupError); ok {
		m.Step, m.Gone, m.Err = "cgroup", cse.gone, cse.err.Error()
	} else if !hasErrno {
		m.Err = err.Error()
	}
	return m
}

// spawnErr is the error a failed spawn's answer m describes.
func spawnErr(m keeperMsg) error {
	var err error
	switch {
	case m.Gone:
		err = cgroupRemovedError(m.Err)
	case m.Errno != 0 && m.Err != "":
		err = &errnoText{m.Err, syscall.Errno(m.Errno)}
	case m.Errno != 0:
		err = syscall.Errno(m.Errno)
	case m.Err == errKeeperGone.Error():
		err = errKeeperGone
	default:
		err = errors.New(m.Err)
	}
	if m.Step != "" {
		err = &stepError{step: m.Step, err: err}
	}
	return err
}

// cgroupRemovedError names the keeper cgroup that was removed; it matches
// ErrCgroupRemoved.
type cgroupRemovedError string

func (e cgroupRemovedError) Error() string {
	return "the keeper's cgroup " + string(e) + " was removed by another program, with the trees in it; " +
		"the keeper made a new one for later starts"
}

func (e cgroupRemovedError) Is(target error) bool { return target == ErrCgroupRemoved }

// errnoText is an error whose text the keeper sent, matching its errno.
type errnoText struct {
	text  string
	errno syscall.Errno
}

func (e *errnoText) Error() string { return e.text }
func (e *errnoText) Unwrap() error { return e.errno }

// exitedMsg reports tree id's leader, pid as the parent knows it, reaped
// with ws and ru.
func exitedMsg(id uint64, pid int, ws syscall.WaitStatus, ru *syscall.Rusage) keeperMsg {
	m := keeperMsg{Op: "exited", ID: id, PID: pid,
		Utime: ru.Utime.Nano(), Stime: ru.Stime.Nano(), MaxRSS: maxRSSBytes(int64(ru.Maxrss))}
	switch {
	case ws.Exited():
		m.Code = ws.ExitStatus()
	case ws.Signaled():
		m.Signal, m.Core = int(ws.Signal()), ws.CoreDump()
	}
	return m
}
