//go:build linux || darwin

package tether

// The keeper's client: the parent's end of the keeper protocol
// (internal/keeper, whose package documentation is the protocol), and the
// keeper level's handle, keptProc. The code that runs in the keeper is
// internal/keeper's server_*.go; the cgroup level's slots, which the parent
// clones into, are level_cgroup_linux.go.

import (
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/tetherproc/tether/internal/cgroupfs"
	"github.com/tetherproc/tether/internal/fork"
	"github.com/tetherproc/tether/internal/keeper"

	"golang.org/x/sys/unix"
)

var (
	keeperMu sync.Mutex
	keeperCl *keeperClient // started on the first kept start; replaced if it dies
	pidnsCl  *keeperClient // the same for ContainPIDNamespace
)

var errKeeperGone = errors.New("the keeper is gone")

// errKeeperVersion is a keeper's hello of another protocol version (or one
// that does not decode here): only where the binary is re-executed by path
// (macOS), and it was replaced since this program started.
const errKeeperVersion = "the keeper speaks another version of its protocol: this program's binary was replaced since it started; restart it"

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

	// Reading conn (see await). rtok holds the read token while nobody
	// reads; the token's holder alone uses fr and eof. ended is closed by
	// the holder that read the stream's end, for readLoop to finish up.
	rtok  chan struct{}
	fr    *keeper.FrameReader
	eof   bool
	ended chan struct{}
	// For tests: the answers and exit reports read by their waiters' awaits,
	// and by readLoop.
	readByAwait, readIdle int
	// readLoop reads only when nobody has awaited a frame for idleRead:
	// idleT, reset each time want falls to 0, kicks it through idleKick.
	idleT    *time.Timer
	idleKick chan struct{}
	jobsDone *sync.Cond // on mu: a process's job events were all reported (deliverJobs)

	mu      sync.Mutex
	want    int    // goroutines in await
	awaits  uint64 // awaits begun, ever
	nextID  uint64
	replies map[uint64]chan *keeper.SpawnResult // spawns awaiting their answer
	procs   map[uint64]*keptProc                // started, exit not yet reported
	dead    bool
	// retired: the parent let this keeper go (bye, Shutdown); later starts
	// get a new one, and its end kills nothing of the parent's.
	retired bool
	// ending: the keeper said it is stopping its trees (it was sent
	// SIGTERM, say); later starts get a new one, and its end is a death
	// for the trees it had.
	ending bool
	cg     cgPool // the cgroup level's tree cgroups (level_cgroup_linux.go)
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

// cloneProbed: a keeper's probe of a clone into a cgroup passed; later
// keepers skip it (keeper.ProbedEnv).
var cloneProbed atomic.Bool

// closedLocked reports whether nothing more may be started through k: it
// died, the parent let it go, or it is ending. With k.mu held.
func (k *keeperClient) closedLocked() bool { return k.dead || k.retired || k.ending }

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
		dead := k.closedLocked()
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
		await(k, k.hello)
		if k.helloErr != "" {
			return nil, errors.New(k.helloErr)
		}
	}
	*cl = k
	return k, nil
}

// startKeeper re-executes this binary as the keeper, connected by a stream
// socketpair at its fd 3 (see internal/keeper/frame.go), in a process group of its
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
		if !strings.HasPrefix(kv, keeper.ParentEnv+"=") && !strings.HasPrefix(kv, keeper.PIDNSEnv+"=") &&
			!strings.HasPrefix(kv, keeper.ProbedEnv+"=") && !strings.HasPrefix(kv, "GOMAXPROCS=") {
			env = append(env, kv)
		}
	}
	// The keeper's work is syscalls, and two of its threads spend their
	// lives blocked in them (serve's recvmsg, the reaper's waitid), each
	// holding a P while it is. Measured in the spawn benchmark on two CPUs:
	// with as many Ps as CPUs the runtime's spinning threads cost 0.62x
	// os/exec; with one P 0.70-0.75x, but sysmon, finding every P held in
	// a syscall, takes them back every 20 µs (19 context switches in the
	// keeper per spawn); with three 0.75-0.79x (12 switches). The keeper's
	// Go work is small: its spare Ps idle.
	env = append(env, keeper.ParentEnv+"="+strconv.Itoa(os.Getpid()), "GOMAXPROCS=3")
	if cloneProbed.Load() {
		// An earlier keeper's probe passed: this process's cgroup is
		// the same, and clones into a cgroup live (probeCloneInto).
		env = append(env, keeper.ProbedEnv+"=1")
	}
	files := []*os.File{null, null, null, theirs}
	start := func(attr *syscall.SysProcAttr) (int, error) {
		return forkOwned(func() (int, error) {
			return fork.Exec(exe, []string{"tether-keeper"}, env, "/", files, attr)
		})
	}
	var pid int
	var userns bool
	if pidns {
		pid, userns, err = startInPIDNamespace(&env, &files, start)
	} else {
		pid, err = start(&syscall.SysProcAttr{})
	}
	if err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("start keeper: %w", err)
	}
	k := newKeeperClient(c.(*net.UnixConn), pid)
	k.pidns, k.userns = pidns, userns
	// Owner: the package (keeperCl). Ends when the keeper's socket closes,
	// that is when the keeper exits; it then reaps the keeper.
	go k.readLoop()
	return k, nil
}

// newKeeperClient is the client of the keeper pid at the other end of conn;
// its readLoop must be started.
func newKeeperClient(conn *net.UnixConn, pid int) *keeperClient {
	k := &keeperClient{
		hello:    make(chan struct{}),
		done:     make(chan struct{}),
		conn:     conn,
		pid:      pid,
		replies:  map[uint64]chan *keeper.SpawnResult{},
		procs:    map[uint64]*keptProc{},
		rtok:     make(chan struct{}, 1),
		ended:    make(chan struct{}),
		idleKick: make(chan struct{}, 1),
	}
	k.rtok <- struct{}{}
	k.jobsDone = sync.NewCond(&k.mu)
	k.fr = keeper.NewFrameReader(func(p, oob []byte) (int, int, int, error) {
		n, oobn, flags, _, err := conn.ReadMsgUnix(p, oob)
		return n, oobn, flags, err
	})
	// Owner: the client; stopped when readLoop finishes. Each firing ends
	// at once. Until a first await, readLoop reads from the start.
	k.idleT = time.AfterFunc(time.Hour, k.idleFired)
	k.idleKick <- struct{}{}
	return k
}

// Reading the keeper's socket. A goroutine that waits for a frame (a start
// for its answer, a wait for its exit report, getKeeperAt for the hello)
// reads the socket itself while nobody else does (its thread blocked in
// poll(2): waitReadable), and hands the frames that are not its own to their
// waiters. A lone spawn's answer or exit report then wakes the goroutine
// that waits for it, with no reading goroutine handing it on through a
// channel: each such hand-off
// readies a goroutine, which wakes a second thread (the runtime's wakep),
// and in this KVM guest a spawn and wait paid two of them (see
// docs/benchmarks.md). readLoop reads only when nobody has waited for
// idleRead, so that frames nobody awaits (the keeper's end, its ending)
// are read too.

// idleRead is how long nobody must have awaited a frame before readLoop
// reads: longer than the gap between a Run's start and its wait, or two
// Runs in a row.
var idleRead = 5 * time.Millisecond // (a variable for tests)

// await returns what ch brings (an answer, an exit report, the hello's
// close), reading frames itself while nobody else reads.
func await[T any](k *keeperClient, ch <-chan T) T {
	k.mu.Lock()
	k.want++
	k.awaits++
	k.mu.Unlock()
	defer func() {
		k.mu.Lock()
		if k.want--; k.want == 0 {
			k.idleT.Reset(idleRead)
		}
		k.mu.Unlock()
	}()
	for {
		select {
		case v := <-ch:
			return v
		case <-k.ended:
			// Nothing more is read: streamEnded answered every waiter.
			return <-ch
		case <-k.rtok:
			select {
			case v := <-ch: // it came while this goroutine took the token
				k.rtok <- struct{}{}
				return v
			default:
			}
			k.waitReadable()
			k.readFrame(true) // bounded: a frame or the end (which answers every waiter)
			k.rtok <- struct{}{}
		}
	}
}

// waitReadable blocks the calling goroutine's thread in poll(2) until the
// keeper's socket has something to read, or is at its end, as os/exec's
// Wait blocks in wait4. Parked in the netpoller instead, an await left every
// P idle, and the frame's arrival woke a thread from epoll_wait and then,
// at its first syscall, the runtime's sysmon from its idle sleep
// (entersyscallWakeSysmon). Only the read token's holder calls it, so it
// holds one thread per keeper client at most; it returns at once when the
// reader has a whole frame already. The socket stays open while it polls
// (Control holds it): a Close waits for the poll, which the keeper's end,
// or send's shutdown of a cut stream, ends.
func (k *keeperClient) waitReadable() {
	if k.eof || k.fr.Buffered() {
		return
	}
	rc, err := k.conn.SyscallConn()
	if err != nil {
		return // the read says why
	}
	_ = rc.Control(func(fd uintptr) { // best effort: a closed conn fails the read that follows
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}} // (the end, too, reads as readable)
		for {
			if _, err := unix.Poll(fds, -1); !errors.Is(err, syscall.EINTR) {
				return
			}
		}
	})
}

// idleFired wakes readLoop if nobody awaits a frame.
func (k *keeperClient) idleFired() {
	k.mu.Lock()
	idle := k.want == 0
	k.mu.Unlock()
	if idle {
		select {
		case k.idleKick <- struct{}{}:
		default: // kicked already
		}
	}
}

// readLoop reads the frames nobody awaits (see await), and finishes up when
// the stream ended: it reaps the keeper.
func (k *keeperClient) readLoop() {
	defer close(k.done)
	for {
		select {
		case <-k.idleKick:
		case <-k.ended:
		}
		<-k.rtok // bounded: a holder reads one frame at a time
		k.mu.Lock()
		since, waited := k.awaits, k.want > 0
		k.mu.Unlock()
		if waited && !k.eof {
			// An await began since the kick: it reads.
			k.rtok <- struct{}{}
			continue
		}
		for !k.eof {
			k.readFrame(false)
			k.mu.Lock()
			awaited := k.want > 0 || k.awaits != since
			k.mu.Unlock()
			if awaited {
				break // the waiters read from here on
			}
		}
		eof := k.eof
		k.rtok <- struct{}{}
		if eof {
			break
		}
	}
	k.idleT.Stop() // (an await ending after this rearms it: a firing then only fills idleKick)
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
		cgroupfs.Destroy(k.cgroup)
	}
	k.fr.Close() // without the token: after eof, nobody reads
}

// readFrame reads one frame and hands it to whom it concerns; at the
// stream's end it answers every waiter and sets eof. Only the read token's
// holder calls it: an await, or readLoop (awaited false).
func (k *keeperClient) readFrame(awaited bool) {
	if k.eof {
		return
	}
	m, fds, err := k.fr.Next()
	keeper.CloseFDs(fds) // the keeper sends none
	if err != nil {
		k.streamEnded(errors.Is(err, keeper.ErrFrame))
		return
	}
	if m.Op == keeper.OpSpawned || m.Op == keeper.OpExited {
		if awaited {
			k.readByAwait++
		} else {
			k.readIdle++
		}
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	switch {
	case m.Op == keeper.OpHello:
		h := m.Hello
		if h == nil || h.Version != keeper.Version {
			h = &keeper.Hello{Err: errKeeperVersion}
		}
		k.cgroup, k.cgroupErr, k.helloErr, k.controllers = h.Cgroup, h.CgroupErr, h.Err, h.Controllers
		if k.cgroup != "" {
			cloneProbed.Store(true)
		}
		k.helloOnce.Do(func() { close(k.hello) })
		k.armIdleLocked() // a keeper nothing is started through says bye too
	case m.Op == keeper.OpSpawned && m.Spawned != nil:
		if ch := k.replies[m.ID]; ch != nil {
			delete(k.replies, m.ID)
			ch <- m.Spawned
		}
	case m.Op == keeper.OpExited && m.Exited != nil:
		if kp := k.procs[m.ID]; kp != nil {
			delete(k.procs, m.ID)
			kp.exit <- m.Exited // buffered: the one report
			k.armIdleLocked()
		}
	case m.Op == keeper.OpEnding:
		// Its teardown began: no tree must start in it from now on
		// (it signalled its trees once, and kills the rest at the
		// grace's end).
		k.ending = true
	case m.Op == keeper.OpStopped || m.Op == keeper.OpContinued:
		if kp := k.procs[m.ID]; kp != nil && kp.onJob != nil {
			stopped, sig := m.Op == keeper.OpStopped, syscall.Signal(m.Sig)
			kp.jobs = append(kp.jobs, func() { kp.onJob(stopped, sig) })
			if !kp.jobbing {
				kp.jobbing = true
				// Owner: kp. Ends when none of its job events waits.
				go k.deliverJobs(kp)
			}
		}
	}
}

// deliverJobs reports kp's job events as they are read, in order, from a
// goroutine of kp's own. Not from the reader: they reach the program's
// Observer, which may start a process (and await its answer: it must find
// the read token free) or be slow. Not from a goroutine all processes
// share: an Observer busy with one process's event, waiting for another
// process, would hold up that other's events, and its Wait behind them.
// A panic or runtime.Goexit in the Observer ends the program (observe), as
// at every event.
func (k *keeperClient) deliverJobs(kp *keptProc) {
	for {
		k.mu.Lock()
		if len(kp.jobs) == 0 {
			kp.jobs, kp.jobbing = nil, false
			k.jobsDone.Broadcast()
			k.mu.Unlock()
			return
		}
		job := kp.jobs[0]
		kp.jobs[0] = nil // reported: nothing keeps it
		kp.jobs = kp.jobs[1:]
		k.mu.Unlock()
		job()
	}
}

// streamEnded answers every waiter once the keeper's stream ended;
// unreadable says it ended at a frame that did not decode (keeper.ErrFrame):
// if no hello came before it, the keeper is of another version.
func (k *keeperClient) streamEnded(unreadable bool) {
	k.eof = true
	defer close(k.ended)
	k.helloOnce.Do(func() {
		if unreadable {
			// No hello came, only a frame this version cannot read: a
			// keeper of another version too, whose hello is not even the
			// JSON every version since 1 sends (keeper.Version). The same
			// error as a hello of another Version, not a keeper gone at
			// every start.
			k.helloErr = errKeeperVersion
		}
		close(k.hello)
	})
	k.mu.Lock()
	k.keeperGoneLocked()
	k.dead = true
	k.released = nil
	if k.relTimer != nil {
		k.relTimer.Stop()
	}
	for _, ch := range k.replies {
		ch <- &keeper.SpawnResult{Err: errKeeperGone.Error()}
	}
	// The keeper's children die with it (PDEATHSIG from its spawning
	// thread; in a PID namespace, every process in it).
	for _, kp := range k.procs {
		kp.exit <- &keeper.ExitReport{Signal: int(syscall.SIGKILL), Err: errKeeperGone.Error()}
	}
	clear(k.replies)
	clear(k.procs)
	k.mu.Unlock()
}

func (k *keeperClient) send(m keeper.Msg, fds []int) error {
	var b []byte
	var ids []uint64
	if m.Op == keeper.OpSpawn || m.Op == keeper.OpBye || m.Op == keeper.OpShutdown || m.Op == keeper.OpRelease {
		// The releases waiting go first, in the same write.
		k.mu.Lock()
		ids = k.released
		k.released = nil
		k.mu.Unlock()
		for _, id := range ids {
			b, _ = keeper.AppendFrame(b, keeper.Msg{Op: keeper.OpRelease, ID: id}, 0) // cannot fail: small
		}
		if m.Op == keeper.OpRelease {
			m = keeper.Msg{} // flushReleases: nothing of its own
		}
	}
	// unsent puts the releases back when nothing was written: they go with
	// the next frame (a keeper that never hears of a release keeps the
	// tree, and never exits idle).
	unsent := func() {
		if len(ids) > 0 {
			k.mu.Lock()
			k.released = append(ids, k.released...)
			k.mu.Unlock()
		}
	}
	if m.Op != 0 {
		var err error
		if b, err = keeper.AppendFrame(b, m, len(fds)); err != nil {
			unsent()
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
			// Shutting it ends the keeper (EOF), which stops its trees,
			// and wakes a reader polling it (waitReadable), which reads
			// the end and reports them gone; the close then takes effect
			// (it waits for that poll).
			if rc, err := k.conn.SyscallConn(); err == nil {
				_ = rc.Control(func(fd uintptr) {
					_ = syscall.Shutdown(int(fd), syscall.SHUT_RDWR) // best effort: the close follows
				})
			}
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
		unsent()
		return fmt.Errorf("tether: to the keeper: %w", err)
	}
	return nil
}

// startKept starts a child from the keeper; with pidns, from the one in a
// PID namespace of its own.
func startKept(spec keeper.Spawn, files []*os.File, pidns bool, onJob func(bool, syscall.Signal)) (handle, int, error) {
	h, pid, err := startKeptOnce(spec, files, pidns, onJob)
	if errors.Is(err, errKeeperGone) {
		// The keeper may have exited idle just as we sent: once more, with
		// a new one.
		h, pid, err = startKeptOnce(spec, files, pidns, onJob)
	}
	return h, pid, err
}

func startKeptOnce(spec keeper.Spawn, files []*os.File, pidns bool, onJob func(bool, syscall.Signal)) (handle, int, error) {
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
	if len(fds) > keeper.MaxFiles {
		return nil, 0, fmt.Errorf("%d descriptors for the child; the keeper takes at most %d (stdio, ExtraFiles, IPC)", len(fds), keeper.MaxFiles)
	}
	k, err := getKeeperAt(pidns)
	if err != nil {
		return nil, 0, err
	}
	reply := make(chan *keeper.SpawnResult, 1)
	kp := &keptProc{k: k, exit: make(chan *keeper.ExitReport, 1), onJob: onJob}
	k.mu.Lock()
	if k.closedLocked() {
		k.mu.Unlock()
		return nil, 0, errKeeperGone
	}
	k.nextID++
	kp.id = k.nextID
	k.replies[kp.id] = reply
	k.procs[kp.id] = kp
	k.mu.Unlock()

	spec.Ignored = keeper.IgnoredSignals()
	err = k.send(keeper.Msg{Op: keeper.OpSpawn, ID: kp.id, Spawn: &spec}, fds)
	runtime.KeepAlive(files)
	var r *keeper.SpawnResult
	if err == nil {
		r = await(k, reply) // bounded: the keeper answers, or streamEnded does when it dies
		if r.Errno != 0 || r.Err != "" {
			err = spawnErr(r)
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
	k.mu.Lock() // deliverJobs may name it already (a child that stopped itself at once)
	kp.pid = r.PID
	k.mu.Unlock()
	return kp, r.PID, nil
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
			_ = k.send(keeper.Msg{Op: keeper.OpShutdown}, nil) // fails only if it is gone already: done closes then
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
	exit chan *keeper.ExitReport
	// onJob reports the leader stopped (with the signal) or continued;
	// called by deliverJobs, one event at a time and in order.
	// Set before the spawn is sent.
	onJob func(stopped bool, sig syscall.Signal)
	// jobs: its job events read and not yet reported; jobbing: its
	// deliverJobs runs. Under k.mu; wait returns once none is left.
	jobs    []func()
	jobbing bool
}

func (h *keptProc) wait() (waitResult, error) {
	m := await(h.k, h.exit)
	// A stop reported just before the exit (a stopped child SIGKILLed)
	// reaches the Observer first: no event comes after the close. (The
	// keeper reports no stop of its own freeze before a SIGKILL, and so
	// none that a user's SIGSTOP made just before the kill either.)
	h.k.mu.Lock()
	for h.jobbing {
		h.k.jobsDone.Wait() // bounded: deliverJobs reports them (the Observer must not wait for this process)
	}
	h.k.mu.Unlock()
	w := waitResult{
		code:   m.Code,
		signal: syscall.Signal(m.Signal),
		core:   m.Core,
		utime:  time.Duration(m.Utime),
		stime:  time.Duration(m.Stime),
		maxRSS: m.MaxRSS,
	}
	if m.Err != "" {
		return w, fmt.Errorf("tether: pid %d: %s; it was killed with it", h.pid, m.Err)
	}
	return w, nil
}

func (h *keptProc) signal(sig syscall.Signal) error {
	return h.k.send(keeper.Msg{Op: keeper.OpSignal, ID: h.id, Sig: int(sig)}, nil)
}

func (h *keptProc) sweep() {
	_ = h.k.send(keeper.Msg{Op: keeper.OpSweep, ID: h.id}, nil) // best effort: a dead keeper took the tree with it
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
		// Owner: the client. Each firing ends at once; stopped in streamEnded.
		k.relTimer = time.AfterFunc(releaseDelay, func() {
			_ = k.send(keeper.Msg{Op: keeper.OpRelease}, nil) // best effort: a dead keeper took the trees with it
		})
	} else if len(k.released) == 1 {
		k.relTimer.Reset(releaseDelay)
	}
}

// spawnErr is the error a failed spawn's answer r describes.
func spawnErr(r *keeper.SpawnResult) error {
	switch {
	case r.Errno != 0 && r.Err != "":
		return &errnoText{r.Err, syscall.Errno(r.Errno)}
	case r.Errno != 0:
		return syscall.Errno(r.Errno)
	case r.Err == errKeeperGone.Error():
		return errKeeperGone
	}
	return errors.New(r.Err)
}

// cgroupRemovedError names the keeper cgroup that was removed; it matches
// ErrCgroupRemoved.
type cgroupRemovedError string

func (e cgroupRemovedError) Error() string {
	return "the keeper's cgroup " + string(e) + " was removed by another program, with the trees in it; " +
		"later starts get a new one"
}

func (e cgroupRemovedError) Is(target error) bool { return target == ErrCgroupRemoved }

// errnoText is an error whose text the keeper sent, matching its errno.
type errnoText struct {
	text  string
	errno syscall.Errno
}

func (e *errnoText) Error() string { return e.text }
func (e *errnoText) Unwrap() error { return e.errno }
