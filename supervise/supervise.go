package supervise

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/tetherproc/tether"
)

// Errors; test with errors.Is.
var (
	// ErrNotReady: the process exited, or closed what it would have said it
	// on, before it said it was ready.
	ErrNotReady = errors.New("tether: not ready")

	// ErrReadyTimeout: Spec.ReadyTimeout passed before the process said it
	// was ready; the supervisor stopped it. It matches ErrNotReady too.
	ErrReadyTimeout = fmt.Errorf("%w in time", ErrNotReady)

	// ErrRestartLimit: the process ended once more than Spec.Limit allows
	// restarts for, and the supervisor gave up on it.
	ErrRestartLimit = errors.New("tether: too many restarts")

	// ErrNotRunning is returned by Signal when the named process does not
	// run now: it waits for a restart, has ended, Run has returned, or no
	// Spec has that name.
	ErrNotRunning = errors.New("tether: not running")
)

// Spec is one process to supervise. Only Name and Cmd are required; the zero
// value of every other field is a sensible default.
type Spec struct {
	// Name identifies the process in events, errors and Signal. It must be
	// unique within a Run and not empty.
	Name string

	// Cmd is what to run. Each attempt starts a copy of it (with what Ready
	// adds), so the Cmd is never changed; do not change it while Run runs.
	// Its StopSignal and StopTimeout are how the supervisor stops it.
	// Run's context does not reach the processes directly: Run stops them
	// itself, in reverse order.
	Cmd *tether.Cmd

	// Restart says whether the process is started again when it ends; the
	// zero value is Never. A process the supervisor stops is not restarted
	// and did not fail.
	Restart Policy

	// Backoff is the delay before each restart.
	Backoff Backoff

	// ResetAfter is the run time (from start to exit) after which a failure
	// no longer adds to the backoff: the next delay is Backoff.Initial
	// again. If zero, it is 10 s; if negative, the backoff never resets. A
	// process that failed to start or to become ready ran for no time.
	ResetAfter time.Duration

	// Limit bounds the restarts; past it the process is given up on.
	Limit Limit

	// SuccessCodes are exit statuses that count as success besides 0. A
	// process killed by a signal has failed, whatever the signal.
	SuccessCodes []int

	// CanDie, if true, lets the process end for good (by its policy, or
	// given up on) while the others go on. If false, the zero value, its end
	// makes Run stop everything and return (foreman's rule: one process
	// ends, all end).
	CanDie bool

	// Ready, if not nil, is how the process says it is ready; the next Spec
	// is started only then. If nil, a process is ready once started.
	Ready Readiness

	// ReadyTimeout bounds the wait for Ready. If zero, it is 30 s.
	ReadyTimeout time.Duration
}

// success reports whether exit counts as a success.
func (s *Spec) success(exit *tether.Exit) bool {
	if exit == nil || exit.Signal != nil {
		return false
	}
	return exit.Code == 0 || slices.Contains(s.SuccessCodes, exit.Code)
}

// ExitError is what Run returns when a process that may not die (CanDie
// false) ended for good having failed; Run stopped everything else first.
// Exit is how its last attempt ended (nil if it never started); Err says why
// the attempt failed when the exit status is not the whole story: a
// *tether.StartError, ErrNotReady or ErrReadyTimeout, and ErrRestartLimit
// when it was given up on. Use errors.As to get it.
type ExitError struct {
	Name string
	Exit *tether.Exit
	Err  error
}

func (e *ExitError) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("tether: %s: %v", e.Name, e.Exit)
	}
	return fmt.Sprintf("tether: %s: %s", e.Name, strings.TrimPrefix(e.Err.Error(), "tether: "))
}

func (e *ExitError) Unwrap() error { return e.Err }

// Supervisor starts processes in order, restarts them by their policies and
// stops them in reverse order. The zero value is ready to use. Run may be
// called again once it has returned, not while it runs.
type Supervisor struct {
	// Observer, if not nil, receives every event of every process, one at
	// a time, in order for each process. It must return quickly and must
	// not call Run; it may call Signal, and read or signal Event.Process.
	Observer func(Event)

	// StartTogether, if true, makes Run start every process at once, as
	// foreman does, rather than each once the one before is ready (Spec.Ready
	// still decides when each counts as ready).
	StartTogether bool

	// StopTogether, if true, makes Run stop every process at once (each
	// still by its Cmd: StopSignal, StopTimeout, SIGKILL), as foreman does,
	// rather than the last started first. A thousand processes then stop in
	// about one StopTimeout at worst rather than in a thousand turns.
	StopTogether bool

	mu      sync.Mutex
	running bool
	byName  map[string]*runner

	emitMu sync.Mutex // Observer calls one at a time
}

// Run starts the processes one after the other, each once the one before
// it is ready (see Spec.Ready) or has ended for good, and supervises them
// until one of these happens:
//
//   - ctx is done: Run stops every process, the last started first, each
//     as its Cmd says (StopSignal, then SIGKILL after StopTimeout), and
//     returns context.Cause(ctx) — an error matching context.Canceled or
//     context.DeadlineExceeded (a signal.NotifyContext's cause names the
//     signal);
//   - a process whose Spec has CanDie false ends for good: Run stops the
//     others the same way and returns an *ExitError if it failed, nil if
//     it succeeded;
//   - every process has ended for good by itself: Run returns nil.
//
// Nothing started by Run outlives it. Run returns an error without starting
// anything when a Spec is invalid (no Name, a Name used twice, no Cmd, a
// Ready its Cmd or this system cannot use) or when ctx is already done.
func (s *Supervisor) Run(ctx context.Context, specs ...Spec) error {
	if err := validate(specs); err != nil {
		return err
	}
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	quit := make(chan struct{})
	starts := make(chan struct{}, maxConcurrentStarts)
	ended := make(chan *runner, len(specs)) // room for every runner's end: sends never block
	runners := make([]*runner, len(specs))
	byName := make(map[string]*runner, len(specs))
	for i := range specs {
		r := &runner{
			s:      s,
			starts: starts,
			spec:   specs[i],
			quit:   quit,
			stop:   make(chan struct{}),
			ready:  make(chan struct{}),
			done:   make(chan struct{}),
			ended:  ended,
		}
		runners[i], byName[r.spec.Name] = r, r
	}
	s.mu.Lock()
	if s.running {
		s.mu.Unlock()
		return errors.New("tether: Supervisor.Run called while it runs")
	}
	s.running, s.byName = true, byName
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.running, s.byName = false, nil
		s.mu.Unlock()
	}()

	var launched []*runner
	stopAll := func() {
		close(quit)
		if s.StopTogether {
			for _, r := range launched {
				close(r.stop)
			}
		}
		for _, r := range slices.Backward(launched) {
			if !s.StopTogether {
				close(r.stop)
			}
			<-r.done // bounded: the runner stops its process (StopTimeout, then SIGKILL)
		}
	}
	// end reports whether r's end for good ends the Run, and with what.
	end := func(r *runner) (bool, error) {
		if r.spec.CanDie {
			return false, nil
		}
		return true, r.err
	}
	live := 0           // launched and not yet ended
	var pending *runner // launched and not yet ready: the next one waits for it
	for {
		for (pending == nil || s.StartTogether) && len(launched) < len(runners) {
			r := runners[len(launched)]
			// Owner: Run. Ends when its process has ended for good, or when
			// stopAll stops it; Run waits for it there or receives its end
			// on ended.
			go r.run(ctx)
			launched = append(launched, r)
			live++
			pending = r
		}
		if live == 0 {
			return nil // every process ended for good, and each could
		}
		var ready <-chan struct{} // nil, never ready, once all are launched
		if pending != nil {
			ready = pending.ready
		}
		select {
		case <-ready:
			pending = nil
		case <-ctx.Done():
			stopAll()
			return context.Cause(ctx)
		case e := <-ended:
			live--
			if stop, err := end(e); stop {
				stopAll()
				return err
			}
			if e == pending {
				pending = nil // it will never be ready: the next need not wait
			}
		}
	}
}

func validate(specs []Spec) error {
	seen := make(map[string]bool, len(specs))
	for i, sp := range specs {
		switch {
		case sp.Name == "":
			return fmt.Errorf("tether: Spec %d has no Name", i)
		case seen[sp.Name]:
			return fmt.Errorf("tether: Spec name %q used twice", sp.Name)
		case sp.Cmd == nil:
			return fmt.Errorf("tether: Spec %q has no Cmd", sp.Name)
		}
		seen[sp.Name] = true
		if sp.Ready != nil {
			if err := sp.Ready.check(sp.Cmd); err != nil {
				return specError{fmt.Sprintf("tether: Spec %q: %s", sp.Name, strings.TrimPrefix(err.Error(), "tether: ")), err}
			}
		}
	}
	return nil
}

// specError names the Spec a check failed for and wraps the check's error,
// so errors.Is still finds what ReadyFD documents (errors.ErrUnsupported).
type specError struct {
	msg string
	err error
}

func (e specError) Error() string { return e.msg }
func (e specError) Unwrap() error { return e.err }

// Signal sends sig to the tree of the named process's current run (see
// tether.Process.Signal): this is how `tether run` forwards the signals it
// receives. It returns an error matching ErrNotRunning when that process
// does not run now, and os.ErrProcessDone when it has just ended. A signal
// that ends the process counts as its exit, judged by its policy like any
// other.
func (s *Supervisor) Signal(name string, sig os.Signal) error {
	s.mu.Lock()
	r := s.byName[name]
	s.mu.Unlock()
	if r == nil {
		return fmt.Errorf("tether: signal %v to %s: no such process: %w", sig, name, ErrNotRunning)
	}
	r.mu.Lock()
	p := r.proc
	r.mu.Unlock()
	if p == nil {
		return fmt.Errorf("tether: signal %v to %s: %w", sig, name, ErrNotRunning)
	}
	return p.Signal(sig)
}

func (s *Supervisor) emit(e Event) {
	if s.Observer == nil {
		return
	}
	e.Time = time.Now()
	s.emitMu.Lock()
	defer s.emitMu.Unlock()
	s.Observer(e)
}

// runner supervises one Spec for one Run: every attempt, the restart
// decisions, and the stop. Its goroutine (run) owns everything below but mu
// and proc.
// maxConcurrentStarts bounds the Starts in flight with StartTogether.
const maxConcurrentStarts = 32

type runner struct {
	starts chan struct{} // a slot per Start in flight (maxConcurrentStarts)
	s      *Supervisor
	spec   Spec
	quit   <-chan struct{} // closed when Run begins to stop everything: no more starts
	stop   chan struct{}   // closed when it is this process's turn to be stopped
	ready  chan struct{}   // closed at the first readiness
	done   chan struct{}   // closed at the end; err is set before
	ended  chan<- *runner  // receives the runner once, after done

	readyOnce sync.Once
	err       error // why Run should fail when this process ended for good, if it should; set before done

	mu   sync.Mutex      // guards proc against Signal
	proc *tether.Process // the running attempt's process, nil between attempts
}

// outcome is how one attempt ended.
type outcome struct {
	exit      *tether.Exit
	err       error // a start or readiness failure
	streamErr error // what Wait said about the streams: not a failure
	failed    bool
	uptime    time.Duration // zero unless the process became ready
	stopped   bool          // the supervisor stopped it; its final event is sent
	pid       int
	proc      *tether.Process
}

func (r *runner) markReady() { r.readyOnce.Do(func() { close(r.ready) }) }

func (r *runner) emit(e Event) {
	e.Name = r.spec.Name
	r.s.emit(e)
}

func (r *runner) quitting() bool {
	select {
	case <-r.quit:
		return true
	default:
		return false
	}
}

func (r *runner) run(ctx context.Context) {
	defer func() {
		close(r.done)
		r.ended <- r
	}()
	t := tracker{backoff: r.spec.Backoff, resetAfter: r.spec.ResetAfter, limit: r.spec.Limit}
	for attempt := 1; ; attempt++ {
		if r.quitting() {
			r.emit(Event{Kind: EventStopped, Attempt: attempt - 1})
			return
		}
		o := r.attempt(ctx, attempt)
		if o.stopped {
			return
		}
		r.emit(Event{Kind: EventExited, Attempt: attempt, PID: o.pid, Process: o.proc, Exit: o.exit, Err: errors.Join(o.err, o.streamErr)})
		if r.quitting() {
			r.emit(Event{Kind: EventStopped, Attempt: attempt, PID: o.pid, Process: o.proc, Exit: o.exit})
			return
		}
		if !r.spec.Restart.restarts(o.failed) {
			if o.failed {
				r.err = &ExitError{Name: r.spec.Name, Exit: o.exit, Err: o.err}
			}
			r.emit(Event{Kind: EventEnded, Attempt: attempt, PID: o.pid, Process: o.proc, Exit: o.exit, Err: r.err})
			return
		}
		delay, ok := t.next(o.uptime, time.Now(), rand.Float64())
		if !ok {
			burst, interval := r.spec.Limit.values()
			last := o.err
			if last == nil {
				last = errors.New(o.exit.String())
			}
			err := fmt.Errorf("%w (more than %d in %v); last: %w", ErrRestartLimit, burst, interval, last)
			r.err = &ExitError{Name: r.spec.Name, Exit: o.exit, Err: err}
			r.emit(Event{Kind: EventFatal, Attempt: attempt, PID: o.pid, Process: o.proc, Exit: o.exit, Err: err})
			return
		}
		r.emit(Event{Kind: EventBackoff, Attempt: attempt, Delay: delay})
		tm := time.NewTimer(delay)
		select {
		case <-tm.C:
		case <-r.quit:
			tm.Stop()
			// The loop's first check reports it.
		}
	}
}

// attempt starts the process once and returns when it has closed: by itself,
// failed, or stopped by the supervisor.
func (r *runner) attempt(ctx context.Context, attempt int) outcome {
	r.emit(Event{Kind: EventStarting, Attempt: attempt})
	cmd := *r.spec.Cmd
	var pr probe
	if r.spec.Ready != nil {
		var err error
		if pr, err = r.spec.Ready.prepare(&cmd); err != nil {
			return outcome{err: err, failed: true}
		}
	}
	// Not ctx itself: on cancellation Run stops the processes in reverse
	// order, which tether's own stop-on-cancel would race. A bounded number
	// of starts at a time: a start holds both ends of its pipes until the
	// child has its copies, so thousands at once would run out of
	// descriptors (EMFILE) where one after the other does not.
	r.starts <- struct{}{}
	p, err := cmd.Start(context.WithoutCancel(ctx))
	<-r.starts
	if pr != nil {
		pr.started()
	}
	if err != nil {
		if pr != nil {
			pr.close()
		}
		return outcome{err: err, failed: true}
	}
	if _, ok := r.spec.Ready.(ipcReady); ok {
		// The probe took the channel, so tether leaves it open at close.
		// Every return below comes after close.
		defer func() { _ = p.Channel().Close() }() // best effort: the process has closed
	}
	r.mu.Lock()
	r.proc = p
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		r.proc = nil
		r.mu.Unlock()
	}()
	r.emit(Event{Kind: EventRunning, Attempt: attempt, PID: p.PID(), Process: p})
	if pr != nil {
		if o, ok := r.awaitReady(attempt, p, pr); !ok {
			return o
		}
	}
	r.emit(Event{Kind: EventReady, Attempt: attempt, PID: p.PID(), Process: p})
	r.markReady() // after the event: the next process's events follow it
	select {
	case <-p.Done():
	case <-r.stop:
		return r.stopProcess(attempt, p)
	}
	exit, werr := p.Wait()
	return outcome{
		exit: exit, streamErr: werr, failed: !r.spec.success(exit), uptime: exit.Duration(),
		pid: p.PID(), proc: p,
	}
}

// awaitReady waits for pr to say p is ready. When it is not (a failure,
// the timeout, or the supervisor's stop), the process is stopped, and the
// outcome says how it went.
func (r *runner) awaitReady(attempt int, p *tether.Process, pr probe) (outcome, bool) {
	timeout := r.spec.ReadyTimeout
	if timeout <= 0 {
		timeout = defaultReadyTimeout
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	res := make(chan error, 1)
	// Owner: awaitReady. Ends when wait returns: on readiness, on a
	// failure, or when cancel ends ctx; every path below waits for it.
	go func() { res <- pr.wait(ctx, p) }()
	tm := time.NewTimer(timeout)
	defer tm.Stop()
	var err error
	select {
	case err = <-res:
	case <-p.Exited():
		cancel()
		if err = <-res; err == nil {
			break // it said so just before exiting: ready, and its exit follows
		}
		err = fmt.Errorf("%w: exited first", ErrNotReady)
	case <-tm.C:
		cancel()
		<-res
		err = fmt.Errorf("%w (%v)", ErrReadyTimeout, timeout)
	case <-r.stop:
		cancel()
		<-res
		pr.close()
		return r.stopProcess(attempt, p), false
	}
	pr.close()
	if err == nil {
		return outcome{}, true
	}
	if !errors.Is(err, ErrNotReady) {
		err = fmt.Errorf("%w: %s: %w", ErrNotReady, r.spec.Ready, err)
	}
	_ = p.Stop() // a failed start: nothing of it may stay; errors show in the exit
	exit, _ := p.Wait()
	return outcome{exit: exit, err: err, failed: true, pid: p.PID(), proc: p}, false
}

// stopProcess stops p gracefully on Run's behalf and reports it.
func (r *runner) stopProcess(attempt int, p *tether.Process) outcome {
	r.emit(Event{Kind: EventStopping, Attempt: attempt, PID: p.PID(), Process: p})
	err := p.Stop()
	if err != nil {
		// The stop signal could not be sent: nothing gentler is left.
		_ = p.Kill() // errors: the process is already gone
	}
	exit, _ := p.Wait()
	r.emit(Event{Kind: EventStopped, Attempt: attempt, PID: p.PID(), Process: p, Exit: exit, Err: err})
	return outcome{exit: exit, stopped: true}
}
