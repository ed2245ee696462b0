package tether

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/tetherproc/tether/internal/execwhy"
	"github.com/tetherproc/tether/internal/keeper"
)

// Default bounds, used where a Cmd leaves the field zero.
const (
	DefaultStopTimeout  = 10 * time.Second
	DefaultDrainTimeout = 2 * time.Second
)

// Cmd describes a program to run. It is configuration only: Start may be
// called any number of times, and each call returns a new Process (this is how
// a supervisor restarts a program). Do not change a Cmd while Start runs.
type Cmd struct {
	// Path is the program to run. Command fills it from a name by searching
	// $PATH the way os/exec does.
	Path string

	// Args holds the command-line arguments, including the program name as
	// Args[0]. If Args is empty, the child gets just {Path}.
	Args []string

	// Env is the child's environment as "KEY=value" entries. If Env is nil,
	// the child inherits the parent's environment.
	Env []string

	// Dir is the child's working directory. If Dir is empty, the child runs
	// in the parent's current directory.
	Dir string

	// Stdin, Stdout and Stderr say where the child's standard streams go.
	// The zero value of each is Null(). See Pipe, Inherit, File, Writer and
	// Reader.
	Stdin, Stdout, Stderr Stdio

	// StopSignal is what Stop (and the end of Start's context) sends to the
	// tree first, followed by SIGCONT so that stopped members act on it. If
	// nil, it is SIGTERM.
	StopSignal os.Signal

	// StopTimeout is how long Stop waits after StopSignal before it sends
	// SIGKILL. If zero, it is DefaultStopTimeout.
	StopTimeout time.Duration

	// DrainTimeout bounds how long after its exit a process may stay open
	// because a pipe has not reached EOF — a descendant still holds it, or a
	// reader stopped consuming more than 1 MiB. When it runs out the pipes are
	// closed and their readers get ErrDrainTimeout after any bytes already
	// drained. If zero, it is DefaultDrainTimeout.
	DrainTimeout time.Duration

	// ExtraFiles are passed to the child as descriptors 3, 4, ... in order
	// (as in os/exec); a nil entry leaves that descriptor closed in the
	// child. The caller keeps and closes its own copies. At most 61 non-nil
	// ones at the keeper levels (64 descriptors per spawn, stdio included).
	// On Windows they are the C runtime's descriptors 3, 4, ... (passed in
	// STARTUPINFO as libuv passes them): a Node or C child finds them by
	// number, a Go child has no C runtime to find them with.
	ExtraFiles []*os.File

	// IPC, if true, gives the child a Node-compatible IPC channel (see
	// Channel): a socketpair end at the descriptor after ExtraFiles (3 when
	// there are none) named by NODE_CHANNEL_FD, with
	// NODE_CHANNEL_SERIALIZATION_MODE=json. On Windows it is a named pipe
	// at that C runtime descriptor, the messages in libuv's IPC frames, as
	// Node does it there. A Node child uses process.send and
	// process.on('message'); a Go child calls ParentChannel. The parent's
	// end is Process.Channel.
	IPC bool

	// StopMessage, if not nil and IPC is set, is what Stop (and the end of
	// Start's context) first asks the child to stop with: it is sent on the
	// channel, followed by SIGCONT to the tree (a stopped child cannot read
	// it), and if the process has not closed within StopTimeout the stop
	// continues as usual with StopSignal, StopTimeout and SIGKILL. PM2 sends
	// "shutdown"; execa {"type": "execa:ipc:cancel"}. If the message cannot
	// be sent (the channel is closed), the stop goes straight to StopSignal.
	// On Windows, where the stop signal reaches console programs only (and
	// none under Wine), it is the graceful stop.
	StopMessage any

	// Foreground, if true, makes the child's process group the foreground
	// of the terminal that is its stdin, as a shell does for a job it runs
	// in the foreground: Ctrl-C, Ctrl-Z and reads from the terminal then
	// belong to the child's group rather than the parent's. The child does
	// it before exec. Stdin must be a terminal of this process's session
	// (Start fails otherwise); taking the foreground back is the caller's.
	Foreground bool

	// Containment is how the tree is held; the zero value is ContainAuto.
	Containment Containment

	// Limits caps what the tree may use. They need the cgroup level
	// (ContainCgroup, or ContainAuto where it resolves to it) and the
	// controllers enabled for tether's cgroups, which `tether doctor`
	// reports; otherwise Start fails with a *StartError saying which is
	// missing. The zero value sets none.
	Limits Limits

	// Observer, if not nil, receives every lifecycle event of every Process
	// started from this Cmd, one at a time and in order for each process;
	// two processes' events may come at once. It should return quickly. It
	// may signal the event's own process (Signal, Kill: their EventSignal
	// comes after this call returns) but must not wait for it (Stop, Wait,
	// Done): its later events wait for this one. It may start, stop and
	// wait for other processes (two Observers each waiting for the other's
	// process wait forever). Exit and close are delivered from the
	// goroutine that waits for them — Run's caller's under Run, Output and
	// CombinedOutput; after Start, a Wait's caller's where that Wait closes
	// the Process (see Process.Wait), else a goroutine of the Process's
	// own; the keeper's reports of a stop or continue (EventStopped,
	// EventContinued) from a goroutine of the Process's own, or Start's
	// caller's for those that came before EventSpawn. The events of Signal,
	// Kill and Stop come from their caller's goroutine, or, if another
	// event is being delivered then, after it from a goroutine delivering
	// the process's events (those calls may then return before the
	// Observer has seen their event). An Observer that signals its own
	// process at every EventSignal never stops. It must not panic: a panic or
	// runtime.Goexit in it, at any event, ends the program, since unwinding
	// what emitted the event (Start, Signal, Stop, the monitor) would leave
	// a Process half started, half stopped or half closed. See
	// SlogObserver.
	Observer func(Event)

	lookErr error
}

// Command returns a Cmd that runs name with args. A name without a path
// separator is looked up in $PATH now; if that fails, Start reports it,
// matching errors.Is(err, fs.ErrNotExist).
func Command(name string, args ...string) *Cmd {
	c := &Cmd{Path: name, Args: append([]string{name}, args...)}
	if filepath.Base(name) == name {
		lp, err := exec.LookPath(name)
		if lp != "" {
			c.Path = lp
		}
		if err != nil {
			c.lookErr = wrapLookErr(err)
		}
	}
	return c
}

// String describes the command line, for logs.
func (c *Cmd) String() string {
	if len(c.Args) == 0 {
		return c.Path
	}
	b := new(strings.Builder)
	b.WriteString(c.Path)
	for _, a := range c.Args[1:] {
		b.WriteByte(' ')
		b.WriteString(a)
	}
	return b.String()
}

// Start starts the program and returns at once. When ctx is done the process
// tree is stopped as by Process.Stop. The Process must be waited for (Wait,
// Done) or stopped; its resources are released when it closes.
//
// Errors are *StartError values: errors.Is(err, fs.ErrNotExist) for a missing
// program or Dir, fs.ErrPermission for one that may not be executed,
// syscall.EMFILE when out of file descriptors. A failed Start leaves no
// descriptor or process behind.
func (c *Cmd) Start(ctx context.Context) (*Process, error) {
	p, err := c.start(ctx)
	if err != nil {
		return nil, err
	}
	if !p.watch() {
		// Owner: the Process. Ends at close (or ends the program:
		// runMonitor).
		go runMonitor(p, p.monitor)
	}
	return p, nil
}

// start is Start but for the monitor, which the caller must run: Start in
// a goroutine of the Process's own, Run in the goroutine that called it, as
// os/exec's Run waits in its caller's. (A goroutine handed the exit would cost every
// Run two scheduler hand-offs: about 5% of a /bin/true's spawn and wait.)
func (c *Cmd) start(ctx context.Context) (*Process, error) {
	if ctx == nil {
		return nil, c.startErr("context", errors.New("nil Context"))
	}
	if err := ctx.Err(); err != nil {
		return nil, c.startErr("context", err)
	}
	if c.lookErr != nil {
		return nil, c.startErr("lookup", c.lookErr)
	}
	if c.Path == "" {
		return nil, c.startErr("lookup", errors.New("no program (Path is empty)"))
	}
	if c.Dir != "" {
		fi, err := os.Stat(c.Dir)
		if err == nil && !fi.IsDir() {
			err = fmt.Errorf("%s is not a directory", c.Dir)
		}
		if err != nil {
			return nil, c.startErr("dir", err)
		}
	}
	if c.StopMessage != nil && !c.IPC {
		return nil, c.startErr("StopMessage", errors.New("StopMessage needs IPC"))
	}
	if err := c.Limits.check(c.Containment); err != nil {
		return nil, c.startErr("Limits", err)
	}
	p := &Process{
		path:         c.Path,
		stopMessage:  c.StopMessage,
		stopSignal:   c.StopSignal,
		stopTimeout:  c.StopTimeout,
		drainTimeout: c.DrainTimeout,
		observer:     c.Observer,
		exited:       make(chan struct{}),
		done:         make(chan struct{}),
	}
	if p.stopSignal == nil {
		p.stopSignal = sigTerm
	}
	if _, err := toSyscallSignal(p.stopSignal); err != nil {
		return nil, c.startErr("StopSignal", err)
	}
	if p.stopTimeout <= 0 {
		p.stopTimeout = DefaultStopTimeout
	}
	if p.drainTimeout <= 0 {
		p.drainTimeout = DefaultDrainTimeout
	}

	var s stdioSetup
	if err := s.open(c, p); err != nil {
		s.closeAll()
		return nil, c.startErr(s.op, err)
	}
	argv := c.Args
	if len(argv) == 0 {
		argv = []string{c.Path}
	}
	env := c.Env
	if env == nil {
		env = os.Environ()
	}
	files := append(s.child[:], c.ExtraFiles...)
	if c.IPC {
		ch, child, err := channelPair()
		if err != nil {
			s.closeAll()
			return nil, c.startErr("ipc", err)
		}
		p.channel = ch
		s.childEnds = append(s.childEnds, child)
		files = append(files, child)
		env = withChannelEnv(env, len(files)-1)
	}
	p.started = time.Now()
	h, pid, err := c.startHandle(p, argv, env, files)
	s.closeChildEnds()
	if err != nil {
		s.closeParentEnds()
		if p.channel != nil {
			_ = p.channel.Close() // best effort: nobody else has it
		}
		op := "exec"
		if se, ok := err.(*stepError); ok {
			op, err = se.step, se.err
		}
		return nil, c.startErr(op, err)
	}
	p.h, p.pid, p.level = h, pid, levelOf(h)
	p.stdin, p.stdout, p.stderr = s.stdin, s.stdout, s.stderr
	if s.stdin != nil {
		s.stdin.pid = p.pid
	}
	addLive(p)
	p.emitSpawn()
	for _, cp := range s.copiers {
		// Owner: the Process. Ends when the stream reaches EOF, or fails, or
		// the monitor abandons its pipe at the drain timeout.
		go cp.run()
	}
	if s.stdinCopy != nil {
		// Owner: the Process. Ends when r returns EOF or an error, or when a
		// write fails because the monitor closed the pipe at close.
		go s.stdinCopy.run()
	}
	p.stopCtx = context.AfterFunc(ctx, func() {
		cause := context.Cause(ctx)
		p.ctxErr.Store(&cause)
		_ = p.Stop() // the caller asked for this by ending ctx; errors surface in Wait
	})
	p.streams = s.streams()
	return p, nil
}

// startHandle starts the child at the Cmd's containment level.
func (c *Cmd) startHandle(p *Process, argv, env []string, files []*os.File) (handle, int, error) {
	level := c.Containment
	if level == ContainAuto {
		level = autoLevel()
	}
	switch level {
	case ContainGroup:
		h, err := startOS(c.Path, argv, env, c.Dir, files, c.Foreground)
		if err != nil {
			return nil, 0, err
		}
		return h, h.pid, nil
	case ContainCgroup:
		return startCgroupLevel(keeper.Spawn{
			Path: c.Path, Argv: argv, Env: env, Dir: c.Dir,
			StopSignal:  signalNumber(p.stopSignal),
			StopTimeout: p.stopTimeout,
			Cgroup:      true,
			Foreground:  c.Foreground,
			MemoryMax:   c.Limits.MemoryMax,
			PidsMax:     c.Limits.PidsMax,
		}, files, p.jobEvent)
	case ContainKeeper, ContainPIDNamespace:
		dir := c.Dir
		if dir == "" {
			// The keeper runs in "/": the child gets our directory, as a
			// fork of ours would.
			wd, err := os.Getwd()
			if err != nil {
				return nil, 0, fmt.Errorf("current directory: %w", err)
			}
			dir = wd
		}
		return startKept(keeper.Spawn{
			Path: c.Path, Argv: argv, Env: env, Dir: dir,
			StopSignal:  signalNumber(p.stopSignal),
			StopTimeout: p.stopTimeout,
			Foreground:  c.Foreground,
		}, files, level == ContainPIDNamespace, p.jobEvent)
	}
	return nil, 0, fmt.Errorf("unknown Containment %v", level)
}

// withChannelEnv returns env with Node's channel variables naming fd and
// 'json', replacing any the caller's environment had.
func withChannelEnv(env []string, fd int) []string {
	out := make([]string, 0, len(env)+2)
	for _, kv := range env {
		if strings.HasPrefix(kv, nodeChannelFD+"=") || strings.HasPrefix(kv, nodeChannelMode+"=") {
			continue
		}
		out = append(out, kv)
	}
	return append(out, nodeChannelFD+"="+strconv.Itoa(fd), nodeChannelMode+"=json")
}

func (c *Cmd) startErr(op string, err error) error {
	se := &StartError{Path: c.Path, Op: op, Err: err}
	if op == "exec" {
		path := c.Path
		if c.Dir != "" && !filepath.IsAbs(path) {
			path = filepath.Join(c.Dir, path)
		}
		se.why = execwhy.Why(path, err)
	}
	err = se
	if c.Observer != nil {
		observe(c.Observer, Event{Kind: EventError, Time: time.Now(), Path: c.Path, Err: err})
	}
	return err
}

// Run starts the program, waits for it to close and returns how it exited.
// The error is an *ExitError when the exit status is not 0, a *StartError
// when it could not start, or an I/O error from its streams; when ctx
// ended and so stopped the program, it also matches ctx's error
// (errors.Is(err, context.DeadlineExceeded), or context.Canceled), whatever
// the exit status, as with os/exec.
func (c *Cmd) Run(ctx context.Context) (*Exit, error) {
	p, err := c.start(ctx)
	if err != nil {
		return nil, err
	}
	// Nobody else holds p: this goroutine is its monitor, and where the
	// level allows, it waits for the exit in the kernel, as os/exec's Run
	// does (groupProc.wait; see watch_linux.go for why).
	runMonitor(p, p.monitor)
	st, err := p.Wait()
	// A status other than 0 is Run's error, whatever else went wrong
	// (a Writer that failed, the drain bound), which goes with it.
	if !st.Success() {
		err = joinLine(&ExitError{Exit: st}, err)
	}
	if cerr := p.ctxErr.Load(); cerr != nil && *cerr != nil {
		// Stopped because ctx ended: say so even if it then exited 0, as
		// os/exec does; errors.As still finds the *ExitError.
		err = joinLine(err, fmt.Errorf("tether: %s stopped: %w", c.Path, *cerr))
	}
	return st, err
}

// runMonitor runs p's monitor in this goroutine: Run's, a Wait's that came
// before the exit, or one of the Process's own. A panic there ends the
// program: a caller that recovered it would hold a Process half closed, its
// pipes, its pidfd or cgroup slot never released and Done never closed. So
// does a runtime.Goexit there, which would leave the same half-closed
// Process and every other Wait, Stop and Shutdown on it hanging. (The
// Observer's, at the exit and close events the monitor emits, end it
// already in observe.)
func runMonitor(p *Process, monitor func()) {
	mustFinish(func() string { return "the monitor of " + p.path }, monitor)
}

// mustFinish runs f (what names it, built only for a panic: f runs on
// every exit) and ends the program if f panics or calls runtime.Goexit:
// either would leave what f was doing half done, and whoever waits for it
// (Wait, Stop, Shutdown) hanging.
func mustFinish(what func() string, f func()) {
	finished := false
	defer func() {
		if r := recover(); r != nil || !finished {
			endProgram(what, r)
		}
	}()
	f()
	finished = true
}

// endProgram ends the program with a panic naming what (called only now)
// and r, the value recovered (nil: runtime.Goexit), with this goroutine's
// stack; it never returns. Called from a deferred function, after recover.
func endProgram(what func() string, r any) {
	if r == nil {
		r = "runtime.Goexit (t.Fatal or t.SkipNow in an Observer?)"
	}
	stack := debug.Stack()
	// Owner: none; it ends the program, even if printing r (the user's
	// Error or String) panics or calls runtime.Goexit.
	go func() {
		printed := false
		defer func() {
			if !printed {
				panic("tether: panic in " + what() + " (its value could not be printed)")
			}
		}()
		msg := fmt.Sprintf("tether: panic in %s: %v\n\n%s", what(), r, stack)
		printed = true
		panic(msg)
	}()
	select {} // until that panic ends the program
}

// Output runs the program and returns its standard output. If Stderr is
// Null(), the last 32 KiB of standard error are kept in the *ExitError.
func (c *Cmd) Output(ctx context.Context) ([]byte, error) {
	if c.Stdout.kind != stdioNull {
		return nil, c.startErr("Output", errors.New("Stdout already set"))
	}
	cc := *c
	var out bytes.Buffer
	cc.Stdout = Writer(&out)
	var errTail *tailBuffer
	if cc.Stderr.kind == stdioNull {
		errTail = &tailBuffer{max: 32 << 10}
		cc.Stderr = Writer(errTail)
	}
	_, err := cc.Run(ctx)
	var ee *ExitError
	if errTail != nil && errors.As(err, &ee) {
		ee.Stderr = errTail.buf
	}
	return out.Bytes(), err
}

// CombinedOutput runs the program and returns its standard output and
// standard error interleaved through one pipe.
func (c *Cmd) CombinedOutput(ctx context.Context) ([]byte, error) {
	if c.Stdout.kind != stdioNull || c.Stderr.kind != stdioNull {
		return nil, c.startErr("CombinedOutput", errors.New("Stdout or Stderr already set"))
	}
	cc := *c
	var out bytes.Buffer
	cc.Stdout, cc.Stderr = Writer(&out), Writer(&out)
	_, err := cc.Run(ctx)
	return out.Bytes(), err
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	max int
	buf []byte
}

func (t *tailBuffer) Write(b []byte) (int, error) {
	n := len(b)
	if len(b) >= t.max {
		b = b[len(b)-t.max:]
		t.buf = append(t.buf[:0], b...)
		return n, nil
	}
	if over := len(t.buf) + len(b) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	t.buf = append(t.buf, b...)
	return n, nil
}

var _ io.Writer = (*tailBuffer)(nil)
