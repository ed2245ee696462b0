package tether

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Process is one run of a Cmd. Its life has two ends: exit (Exited: the
// kernel reports the process gone) and close (Done: exit, and every output
// pipe reached EOF, was closed by its reader, or was abandoned at the drain
// timeout). Close always follows exit, within Cmd.DrainTimeout.
//
// Signal, Stop and Kill act on the process and its tree: at the group level
// its process group (descendants that left it with setsid are not reached);
// at the keeper level its live subtree and process group; at the cgroup level
// its cgroup. A Process's methods may be called from several goroutines.
//
// A Process that Cmd.Start did not return — the zero value, say a struct
// field never filled in, or a nil *Process — is not running and never will:
// Wait, Signal, Stop and Kill return ErrNotStarted, Exited and Done are
// closed, PID is 0, Containment ContainAuto, and Exit, the streams and
// Channel are nil.
type Process struct {
	path         string
	pid          int
	h            handle
	level        Containment
	started      time.Time
	stopSignal   os.Signal
	stopTimeout  time.Duration
	drainTimeout time.Duration
	observer     func(Event)

	stdin   *stdinPipe
	stdout  *pipeReader
	stderr  *pipeReader
	channel *Channel

	channelTaken atomic.Bool // Channel was called: the caller closes it

	stopMessage any

	exited chan struct{} // closed at exit; exit is set before
	done   chan struct{} // closed at close; err is set before
	exit   *Exit
	err    error

	mu       sync.Mutex // guards released, and orders signals against release
	released bool       // the process is reaped: its pid may be anyone's now

	ctxErr    atomic.Pointer[error] // why Start's ctx ended, once it has stopped the process
	stopping  atomic.Bool           // Stop or Kill was called: sweep the group at close
	escalated atomic.Bool
	stopOnce  sync.Once
	stopCtx   func() bool

	// Event delivery (see deliver): one Observer call at a time, in order.
	emitMu     sync.Mutex
	emitTurn   sync.Cond      // L is emitMu: a waiting event's turn came
	delivering bool           // someone delivers; queued events wait for it
	emitQueue  []*queuedEvent // events behind the one being delivered
	emitClosed bool           // EventClose came: later posts are dropped

	streams []stream // the monitor's
	// claimed is set by whoever waits for the exit and closes the
	// Process: the exit watcher (then a goroutine of the Process's own),
	// the first Wait before it, or Run.
	claimed  atomic.Bool
	watchKey uint64 // the exit watcher's key for the pidfd; 0 if not watched

	jobMu    sync.Mutex // orders job events (EventStopped, EventContinued) after EventSpawn
	spawned  bool       // EventSpawn was emitted
	jobQueue []Event    // job events reported before it
}

// notStarted reports whether p is a zero or nil Process (see Process).
func (p *Process) notStarted() bool { return p == nil || p.done == nil }

// closedChan is Exited and Done of a Process that was never started.
var closedChan = func() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}()

// PID is the process id; 0 if the process was never started.
func (p *Process) PID() int {
	if p == nil {
		return 0
	}
	return p.pid
}

// Containment is the level the process was started at: never ContainAuto,
// but for a Process that was never started.
func (p *Process) Containment() Containment {
	if p == nil {
		return ContainAuto
	}
	return p.level
}

// Stdout is the read end of the child's standard output when Cmd.Stdout was
// Pipe(), nil otherwise. Reading it to EOF loses no byte; Close discards the
// rest. It is safe to read after the process closed.
func (p *Process) Stdout() io.ReadCloser {
	if p == nil || p.stdout == nil {
		return nil
	}
	return p.stdout
}

// Stderr is like Stdout, for standard error.
func (p *Process) Stderr() io.ReadCloser {
	if p == nil || p.stderr == nil {
		return nil
	}
	return p.stderr
}

// Stdin is the write end of the child's standard input when Cmd.Stdin was
// Pipe(), nil otherwise. Close it to send EOF. Writing after the child closed
// its stdin or exited returns an error wrapping syscall.EPIPE, before and
// after the process's close alike (unless a descendant still holds the
// child's stdin: the bytes go to it until close); it does not kill the
// parent. It is closed at close if still open; writing after Close returns
// an error wrapping os.ErrClosed.
func (p *Process) Stdin() io.WriteCloser {
	if p == nil || p.stdin == nil {
		return nil
	}
	return p.stdin
}

// Exited is closed when the process has exited (at once if it was never
// started).
func (p *Process) Exited() <-chan struct{} {
	if p.notStarted() {
		return closedChan
	}
	return p.exited
}

// Done is closed when the process has closed: it exited and every output pipe
// reached EOF, was closed by its reader, or was abandoned at the drain
// timeout. Done is always closed, at most DrainTimeout after Exited (at
// once if the process was never started).
func (p *Process) Done() <-chan struct{} {
	if p.notStarted() {
		return closedChan
	}
	return p.done
}

// Exit returns how the process exited, or nil while it runs (or if it was
// never started).
func (p *Process) Exit() *Exit {
	if p.notStarted() {
		return nil
	}
	select {
	case <-p.exited:
		return p.exit
	default:
		return nil
	}
}

// Wait blocks until Done and returns how the process exited. A non-zero exit
// is not an error here (see Exit.Success; Run turns it into *ExitError); the
// error reports the streams: a Writer() that failed, or ErrDrainTimeout
// (errors.Is) when a pipe had to be abandoned. Wait may be called any number
// of times, from any goroutine.
//
// Wait does not read Stdout and Stderr for you while the process runs: a
// child that writes more to a Pipe() than the pipe holds (64 KiB on Linux)
// blocks until it is read, never exits, and Wait never returns. So, as with
// os/exec's StdoutPipe, read the pipes (to EOF, or Close them) before Wait
// or from other goroutines while it waits; or use Writer, Output or
// CombinedOutput, which copy as the child writes. Once the process has
// exited, what is left in its pipes is drained on the reader's behalf, so
// reading after Wait loses nothing (ErrDrainTimeout says when a descendant
// held a pipe past the drain bound).
//
// At the group and cgroup levels on Linux (5.3 or later), the first Wait
// that comes before the exit watcher has seen the exit waits as os/exec's
// does, its thread blocked in the kernel, and closes the Process itself
// (the drain and the Observer's exit and close events included); up to 32
// Waits at once, beyond which a Wait costs a goroutine, not a thread.
// Elsewhere Wait waits for the Process's own goroutine.
func (p *Process) Wait() (*Exit, error) {
	if p.notStarted() {
		return nil, ErrNotStarted
	}
	select {
	case <-p.done:
		return p.exit, p.err
	default:
	}
	if p.unwatch() {
		// This goroutine waits in the kernel and closes the Process, as
		// Run's does.
		runMonitor(p, func() {
			w, werr := func() (waitResult, error) {
				defer doneKernelWait() // a thread in the kernel no more
				return p.h.wait()
			}()
			p.closeAfterExit(w, werr)
		})
	}
	<-p.done
	return p.exit, p.err
}

// Signal sends sig to the process and its tree (see Process), and nothing
// else: unlike Stop, it does not follow sig with SIGCONT. After close it
// returns an error matching errors.Is(err, os.ErrProcessDone): the pid may
// belong to another process by then. But at the cgroup level, what is left
// of a tree whose leader exited by itself (a shell's `sleep 30 &`) stays in
// the tree's cgroup, and Signal, Kill and Stop after close still reach it,
// until it has all exited (no events are emitted then). With an Observer,
// Signal emits EventSignal before the signal goes; if another event of the
// process is being delivered then, Signal may return before the Observer
// has seen it (see Cmd.Observer).
func (p *Process) Signal(sig os.Signal) error {
	if p.notStarted() {
		return ErrNotStarted
	}
	return p.signalTree(sig, false)
}

// Kill sends SIGKILL to the process and its tree and returns without
// waiting; use Done or Wait for the end. Members of the tree still alive
// when the process closes are killed then. After close Kill returns an
// error matching os.ErrProcessDone, but at the cgroup level, while members
// of a tree whose leader exited by itself remain in its cgroup, it kills
// them (cgroup.kill) and returns nil (see Signal).
func (p *Process) Kill() error {
	if p.notStarted() {
		return ErrNotStarted
	}
	p.stopping.Store(true)
	return p.signalTree(sigKill, false)
}

// Stop stops the tree gracefully: StopSignal to the process and its tree,
// then SIGCONT, so that members stopped by SIGSTOP or a terminal's Ctrl-Z
// act on it (as systemd and Docker do), then SIGKILL if the process has not
// closed within StopTimeout, and returns once it has closed. A stopped tree
// that handles StopSignal therefore cleans up and Stop takes only as long as
// the tree takes to exit. Members of the tree still alive at close (they
// neither exited nor held a pipe) are sent SIGKILL then. Calls after the
// first wait for the same stop. After close Stop returns nil at once, but
// at the cgroup level, where it stops what is left of the tree in its
// cgroup the same way (StopSignal and SIGCONT, up to StopTimeout for it to
// exit, then SIGKILL) and returns then, its thread blocked in poll(2)
// meanwhile (see Signal).
func (p *Process) Stop() error {
	if p.notStarted() {
		return ErrNotStarted
	}
	var err error
	p.stopOnce.Do(func() {
		p.stopping.Store(true)
		// By released, under p.mu, not by Done: close releases the tree
		// before it closes Done. Either the monitor saw stopping before
		// its release and swept what was left (SIGKILL), or the tree is
		// released here and what is left of it is stopped as after close.
		p.mu.Lock()
		released := p.released
		p.mu.Unlock()
		if released {
			p.stopLeftovers()
			return
		}
		if p.stopByMessage() {
			return
		}
		if err = p.signalTree(p.stopSignal, true); err != nil {
			if errors.Is(err, os.ErrProcessDone) {
				err = nil
			}
			return
		}
		p.continueTree(p.stopSignal)
		t := time.NewTimer(p.stopTimeout)
		defer t.Stop()
		select {
		case <-p.done:
			return
		case <-t.C:
		}
		p.escalated.Store(true)
		p.post(Event{Kind: EventEscalate, Signal: sigKill})
		if err = p.signalTree(sigKill, false); errors.Is(err, os.ErrProcessDone) {
			err = nil
		}
		<-p.done // bounded: SIGKILL ends the process, then at most DrainTimeout
	})
	if err != nil {
		return err
	}
	<-p.done
	return nil
}

// stopByMessage sends Cmd.StopMessage, if there is one, and waits up to
// StopTimeout for close. It reports whether the process closed.
func (p *Process) stopByMessage() bool {
	if p.stopMessage == nil || p.channel == nil {
		return false
	}
	sent := make(chan error, 1)
	// Emitted before the message goes, as EventSignal is, so that what it
	// causes (the exit) reaches the observer after it; a send that fails
	// is an EventError after it.
	p.post(Event{Kind: EventStopMessage})
	// Owner: Stop. Ends when Send returns: at once unless the child stopped
	// reading with the socket full; then at close at the latest, when the
	// channel is shut down.
	go func() { sent <- p.channel.Send(p.stopMessage) }()
	t := time.NewTimer(p.stopTimeout)
	defer t.Stop()
	select {
	case err := <-sent:
		if err != nil {
			p.post(Event{Kind: EventError, Err: fmt.Errorf("tether: stop message: %w", err)})
			return false
		}
		p.continueTree(nil) // a stopped child cannot read the message
	case <-p.done:
		return true
	case <-t.C:
		return false // still not sent: on to the signal
	}
	select {
	case <-p.done:
		return true
	case <-t.C:
		return false
	}
}

// leftoverHandle is a handle that still reaches what is left of its tree
// after release: the cgroup level, while members of a tree whose leader
// exited by itself remain in its cgroup (cgroupTree.signalLeftovers).
type leftoverHandle interface {
	signalLeftovers(sig syscall.Signal) bool
	waitLeftovers(d time.Duration) bool
}

// signalLeftovers sends sig, after close, to what is left of the tree where
// the level can still name it, and reports whether anything was.
func (p *Process) signalLeftovers(sig syscall.Signal) bool {
	l, ok := p.h.(leftoverHandle)
	return ok && l.signalLeftovers(sig)
}

// stopLeftovers is Stop after close: StopSignal and SIGCONT to what is left
// of the tree where the level can reach it, then SIGKILL if it is still
// there after StopTimeout. No events: the Process has closed.
func (p *Process) stopLeftovers() {
	l, ok := p.h.(leftoverHandle)
	s, err := toSyscallSignal(p.stopSignal)
	if !ok || err != nil || !l.signalLeftovers(s) {
		return
	}
	if continuesAfter(p.stopSignal) {
		if c, err := toSyscallSignal(sigCont); err == nil {
			l.signalLeftovers(c)
		}
	}
	if !l.waitLeftovers(p.stopTimeout) {
		if k, err := toSyscallSignal(sigKill); err == nil {
			l.signalLeftovers(k)
		}
	}
}

// continueTree sends SIGCONT to the tree after a stop has asked it to stop
// (with stop, the signal, or nil for StopMessage): a stopped member cannot
// act on a signal — a SIGTERM stays pending — nor read a message, so without
// it a stopped tree waits out StopTimeout and dies by SIGKILL without
// cleaning up. systemd and Docker do the same; tether's keeper does it at the
// parent's death. Not for a SIGKILL (it ends stopped processes) or a SIGCONT
// stop signal, and not on Windows, which has no stopped processes (sigCont
// is nil). It is part of the stop, not an EventSignal; a failure is an
// EventError, and the stop goes on (StopTimeout, SIGKILL).
func (p *Process) continueTree(stop os.Signal) {
	if !continuesAfter(stop) {
		return
	}
	s, err := toSyscallSignal(sigCont)
	if err != nil {
		return
	}
	p.mu.Lock()
	if p.released {
		p.mu.Unlock()
		return // closed meanwhile: nothing is left to continue
	}
	err = p.h.signal(s)
	p.mu.Unlock()
	if err != nil {
		p.post(Event{Kind: EventError, Signal: sigCont, Err: fmt.Errorf("tether: signal %v to pid %d: %w", sigCont, p.pid, err)})
	}
}

// continuesAfter reports whether a stop by signal stop is followed by
// SIGCONT (see continueTree).
func continuesAfter(stop os.Signal) bool {
	return sigCont != nil && stop != sigKill && stop != sigCont
}

// stopSignaler is a handle that can send Stop's signal to every member of
// the tree at once, none forking past it unsignalled: the cgroup level
// freezes the tree while it reads and signals it (at 0.6 ms a signal
// against 10 µs, so for Stop's signal alone, where the grace that follows
// is the promise). At the other levels, a signal to the leader's process
// group is one already, and the keeper signals its trees as it always did.
type stopSignaler interface {
	signalAll(sig syscall.Signal) error
}

// signalTree sends sig to the process's tree; stop says it is Stop's.
func (p *Process) signalTree(sig os.Signal, stop bool) error {
	s, err := toSyscallSignal(sig)
	if err != nil {
		return err
	}
	done := func() error { return fmt.Errorf("tether: signal %v to pid %d: %w", sig, p.pid, os.ErrProcessDone) }
	p.mu.Lock()
	released := p.released
	p.mu.Unlock()
	if released {
		if p.signalLeftovers(s) {
			return nil
		}
		return done()
	}
	// Posted before the signal goes, so that what it causes (the exit)
	// reaches the observer after it: the order is spawn, signal, exit.
	// Posted, not emitted: an Observer may signal its own process, whose
	// events wait for it. (Not under p.mu: an Observer may signal or stop
	// other processes, whose events would wait for it.)
	p.post(Event{Kind: EventSignal, Signal: sig})
	p.mu.Lock()
	if p.released {
		p.mu.Unlock()
		if p.signalLeftovers(s) { // closed meanwhile
			return nil
		}
		return done()
	}
	if ss, ok := p.h.(stopSignaler); ok && stop {
		err = ss.signalAll(s)
	} else {
		err = p.h.signal(s)
	}
	p.mu.Unlock()
	if err != nil {
		err = fmt.Errorf("tether: signal %v to pid %d: %w", sig, p.pid, err)
		p.post(Event{Kind: EventError, Signal: sig, Err: err})
		return err
	}
	return nil
}

// monitor owns the process from its exit to close: it waits for the exit,
// then for the streams (draining Pipe()s nobody reads, abandoning all of
// them at the drain timeout), reaps, and closes. It ends at close. It runs
// in Run's goroutine, a Wait's, a goroutine of the Process's own (started
// by the exit watcher at the exit, or by Start where nothing watches).
func (p *Process) monitor() {
	w, werr := p.h.wait()
	p.closeAfterExit(w, werr)
}

// closeAfterExit closes the process once it exited: exit events, the
// streams, the reap.
func (p *Process) closeAfterExit(w waitResult, werr error) {
	streams := p.streams
	p.streams = nil // what the copiers hold (the caller's Writers) is not kept past close
	exit := &Exit{PID: p.pid, Started: p.started, Ended: time.Now()}
	w.fill(exit)
	exit.Escalated = p.escalated.Load()
	p.exit = exit
	close(p.exited)
	p.emit(Event{Kind: EventExit, Exit: exit})

	var errs []error
	if werr != nil {
		errs = append(errs, werr)
		p.emit(Event{Kind: EventError, Err: werr})
	}
	// At the drain bound, give up on every stream still open. The timer's
	// goroutine exists only if it fires; finish is idempotent. Streams that
	// all ended already need no bound: arming a timer wakes the scheduler's
	// poller, a cost every Process would pay.
	ended := true
	for _, s := range streams {
		if s.cp == nil {
			ended = s.pr.drainNow() && ended
			continue
		}
		select {
		case <-s.done:
		default:
			ended = false
		}
	}
	var bound *time.Timer
	if !ended {
		bound = time.AfterFunc(p.drainTimeout, func() {
			for _, s := range streams {
				s.pr.finish(pipeAbandoned)
			}
		})
	}
	// Drain the Pipe()s nobody may be reading: all but one from goroutines
	// (owner: the monitor, through the pipe's state; each ends at EOF, at
	// the reader's Close, or at the bound), the last one right here.
	var inline *pipeReader
	for _, s := range streams {
		if s.cp == nil {
			if inline != nil {
				go inline.drain()
			}
			inline = s.pr
		}
	}
	if inline != nil {
		inline.drain()
	}
	for _, s := range streams {
		// Bounded: the timer finishes every pipe. (A copier stuck in its
		// Writer is waited for all the same: its writes must not race Wait.)
		<-s.done
	}
	if bound != nil {
		bound.Stop()
	}
	for _, s := range streams {
		if s.pr.state.Load() == pipeAbandoned {
			errs = append(errs, fmt.Errorf("%w (pid %d)", ErrDrainTimeout, p.pid))
			break
		}
	}
	for _, s := range streams {
		if s.pr.state.Load() == pipeFailed {
			errs = append(errs, s.pr.endErr(pipeFailed))
		}
	}
	for _, s := range streams {
		if s.cp != nil {
			if s.cp.err != nil && !errors.Is(s.cp.err, ErrDrainTimeout) {
				errs = append(errs, s.cp.err)
			}
		}
	}
	if p.stdin != nil {
		p.stdin.closeAtClose()
	}

	p.mu.Lock()
	if p.stopping.Load() {
		// Stop or Kill: whatever of the tree outlived the process and its
		// pipes gets SIGKILL, while the tree can still be named safely.
		p.h.sweep()
	}
	p.h.release()
	p.released = true
	p.mu.Unlock()

	if p.channel != nil {
		// The process is over: whoever still holds the child's end (a
		// descendant that inherited it) no longer counts. Messages already
		// sent stay readable; then Recv returns io.EOF.
		p.channel.shutdown()
		if !p.channelTaken.Load() {
			// Nobody asked for it yet, and may not: read it to its end
			// now, releasing the descriptor, so that a Channel asked for
			// after close still has what the child sent (a child that
			// sent and exited at once used to lose it: its channel was
			// closed before Start's caller could ask). Bounded by the
			// drain's own deadline: on Linux the shutdown ends the socket
			// where it is; elsewhere the child's end closes with the
			// child unless a descendant holds it.
			ctx, cancel := context.WithDeadline(context.Background(), exit.Ended.Add(p.drainTimeout))
			p.channel.readToEnd(ctx)
			cancel()
		}
	}
	p.stopCtx()
	removeLive(p)
	p.err = joinLine(errs...)
	p.emit(Event{Kind: EventClose, Exit: exit, Err: p.err})
	close(p.done)
}

// jobEvent reports the process stopped by sig, or continued (the keeper
// levels: the keeper is its parent). It may run before Start has returned
// (a child stopped at once): emit needs only what Start set before the
// spawn.
func (p *Process) jobEvent(stopped bool, sig syscall.Signal) {
	e := Event{Kind: EventContinued}
	if stopped {
		e = Event{Kind: EventStopped, Signal: sig}
	}
	p.jobMu.Lock()
	defer p.jobMu.Unlock()
	if !p.spawned {
		// Before EventSpawn (and before p.pid is set): kept until Start
		// emits it.
		p.jobQueue = append(p.jobQueue, e)
		return
	}
	p.emit(e)
}

// emitSpawn emits EventSpawn, then the job events that came before it, in
// order.
func (p *Process) emitSpawn() {
	p.jobMu.Lock()
	defer p.jobMu.Unlock()
	p.emit(Event{Kind: EventSpawn})
	p.spawned = true
	for _, e := range p.jobQueue {
		p.emit(e)
	}
	p.jobQueue = nil
}

// emit delivers e to the Observer and returns once it has been delivered,
// by this goroutine (spawn, exit, close and job events: Wait's promise that
// the Observer has seen everything rests on it).
func (p *Process) emit(e Event) { p.deliver(e, true) }

// post delivers e to the Observer now, or, if another event is being
// delivered, queues it behind and returns: the events of Signal, Kill and
// Stop. An Observer may call Signal or Kill for its own process: their
// event then waits for it to return, and is delivered by whoever delivers
// next. A post after EventClose (of a Signal, Kill or Stop racing the
// close: a signal, escalate, stop-message or error event) is dropped:
// close is the last event. A post does not wait: a slow Observer and a
// burst of Signals grow the queue.
func (p *Process) post(e Event) { p.deliver(e, false) }

// queuedEvent is an event behind the one being delivered; one whose
// emitter waits (emit) is delivered by that emitter, when turn is set.
type queuedEvent struct {
	e     Event
	waits bool
	turn  bool
}

// deliver calls the Observer with e, one event at a time, in the order
// deliver was called. A panic or runtime.Goexit in the Observer ends the
// program (observe): unwinding whatever emitted the event would leave it
// half done — Start a child nobody waits for, the monitor a Process half
// closed, Stop a Process never stopped (stopOnce spent) — and whoever waits
// for it hanging.
func (p *Process) deliver(e Event, wait bool) {
	if p.observer == nil {
		return
	}
	p.emitMu.Lock()
	defer p.emitMu.Unlock()
	if p.emitClosed && !wait {
		return
	}
	p.emitClosed = p.emitClosed || e.Kind == EventClose
	e.Time, e.Path, e.PID = time.Now(), p.path, p.pid // under emitMu: Time follows the order
	if p.delivering {
		q := &queuedEvent{e: e, waits: wait}
		p.emitQueue = append(p.emitQueue, q)
		if !wait {
			return
		}
		if p.emitTurn.L == nil {
			p.emitTurn.L = &p.emitMu
		}
		for !q.turn {
			p.emitTurn.Wait()
		}
	}
	p.delivering = true
	for {
		p.emitMu.Unlock()
		observe(p.observer, e)
		p.emitMu.Lock()
		if len(p.emitQueue) == 0 {
			p.delivering = false
			p.emitQueue = nil
			return
		}
		next := p.emitQueue[0]
		p.emitQueue = p.emitQueue[1:]
		if next.waits { // its emitter delivers it: delivering passes on
			next.turn = true
			p.emitTurn.Broadcast()
			return
		}
		e = next.e
	}
}

// observe calls the Observer o with e, ending the program if it panics or
// calls runtime.Goexit (see deliver). (mustFinish's closures would put an
// allocation on every event.)
func observe(o func(Event), e Event) {
	finished := false
	defer func() {
		if r := recover(); r != nil || !finished {
			endProgram(func() string { return "an Observer, at the " + e.Kind.String() + " event of " + e.Path }, r)
		}
	}()
	o(e)
	finished = true
}

// handle is a started child as one containment level sees it.
type handle interface {
	// wait blocks until the process exits and says how.
	wait() (waitResult, error)
	// signal sends sig to the process and its tree.
	signal(sig syscall.Signal) error
	// sweep sends SIGKILL to whatever is left of the tree; best effort.
	sweep()
	// release frees what pins the process's identity (a zombie, a pidfd);
	// signals are refused after it. Called once, by the monitor.
	release()
}
