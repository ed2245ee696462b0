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
	// Spec has that name; and by Stop, Start and Restart when Run does not
	// run, is stopping everything, or has not started that process yet.
	ErrNotRunning = errors.New("tether: not running")

	// ErrNoProcess is returned by Signal, Stop, Start and Restart when no
	// Spec of the running Run has that name. It matches ErrNotRunning too.
	ErrNoProcess = fmt.Errorf("%w: no such process", ErrNotRunning)

	// ErrEnded is returned by Stop when the process has ended for good
	// (EventEnded or EventFatal): its CanDie let the others go on without
	// it. Start and Restart start it again.
	ErrEnded = errors.New("tether: ended for good")
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

	// After, if not nil, names the Specs this process starts after: Run
	// starts it once each of them is ready (or has ended for good, or was
	// stopped by Stop), whatever the Supervisor's StartTogether; docker
	// compose's depends_on with condition service_healthy, where a Spec
	// without Ready is ready once started. An empty, non-nil After starts
	// it at once. If nil, it starts after the Spec before it, or at once
	// with StartTogether. Names must be of other Specs of the Run, without
	// a cycle.
	After []string
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
// Start and Restart return one when the process they started failed
// before it was ready.
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
	order   []*runner      // the runners in Spec order, for Status
	revive  chan reviveReq // to Run's loop: start again a process that ended for good
	runDone chan struct{}  // closed when Run returns

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
// Ready its Cmd or this system cannot use, an After naming no other Spec or
// making a cycle) or when ctx is already done.
func (s *Supervisor) Run(ctx context.Context, specs ...Spec) error {
	if err := validate(specs); err != nil {
		return err
	}
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	quit := make(chan struct{})
	starts := make(chan struct{}, maxConcurrentStarts)
	ended := make(chan *runner, len(specs))   // room for every runner's end: sends never block
	readied := make(chan *runner, len(specs)) // room for every runner's first readiness: sends never block
	runners := make([]*runner, len(specs))
	byName := make(map[string]*runner, len(specs))
	for i := range specs {
		r := &runner{
			s:      s,
			starts: starts,
			spec:   specs[i],
			quit:   quit,
			stop:   make(chan struct{}),
			ready:  readied,
			done:   make(chan struct{}),
			ended:  ended,
			ctl:    make(chan ctlReq),
			state:  StatePending,
		}
		runners[i], byName[r.spec.Name] = r, r
	}
	s.mu.Lock()
	if s.running {
		s.mu.Unlock()
		return errors.New("tether: Supervisor.Run called while it runs")
	}
	revive, runDone := make(chan reviveReq), make(chan struct{})
	s.running, s.byName, s.order = true, byName, slices.Clone(runners)
	s.revive, s.runDone = revive, runDone
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.running, s.byName, s.order, s.revive = false, nil, nil, nil
		s.mu.Unlock()
		close(runDone)
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
	// Each runner waits for these to be ready, or ended for good, before
	// it starts: its Spec's After, else the Spec before it (none with
	// StartTogether).
	deps := make([][]*runner, len(runners))
	for i, r := range runners {
		switch {
		case r.spec.After != nil:
			for _, n := range r.spec.After {
				deps[i] = append(deps[i], byName[n])
			}
		case i > 0 && !s.StartTogether:
			deps[i] = []*runner{runners[i-1]}
		}
	}
	through := make(map[*runner]bool, len(runners)) // ready, or ended for good
	seen := make(map[*runner]bool, len(runners))    // its end was received from ended
	isLaunched := make([]bool, len(runners))
	live := 0 // launched and not yet ended
	for {
		for i, r := range runners {
			if isLaunched[i] || slices.ContainsFunc(deps[i], func(d *runner) bool { return !through[d] }) {
				continue
			}
			// Owner: Run. Ends when its process has ended for good, or when
			// stopAll stops it; Run waits for it there or receives its end
			// on ended.
			r.launch()
			go r.run(ctx)
			launched = append(launched, r)
			isLaunched[i] = true
			live++
		}
		if live == 0 {
			// Every process launched ended for good, and each could; and
			// the ones waiting for them were launched above, as what
			// they wait for is through: none is left.
			return nil
		}
		select {
		case r := <-readied:
			through[r] = true
		case <-ctx.Done():
			stopAll()
			return context.Cause(ctx)
		case e := <-ended:
			live--
			seen[e] = true
			if stop, err := end(e); stop {
				stopAll()
				return err
			}
			through[e] = true // it will never be ready: those after it need not wait
		case rq := <-revive:
			old := byName[rq.name]
			for !seen[old] {
				// Its end is on its way (done is closed before it is
				// sent): take it, so that each Spec has one runner whose
				// end is unread, as ended's room assumes.
				e := <-ended
				live--
				seen[e] = true
				if stop, err := end(e); stop {
					rq.reply <- nil
					stopAll()
					return err
				}
				through[e] = true
			}
			if st := old.status().State; st != StateExited && st != StateFatal {
				rq.reply <- old // revived already, by another call
				continue
			}
			r := old.again(rq.restart)
			i := slices.Index(runners, old)
			runners[i], byName[rq.name] = r, r
			s.mu.Lock()
			s.order[i] = r
			s.mu.Unlock()
			// Owner: Run, as every runner's (above).
			r.launch()
			go r.run(ctx)
			launched = append(launched, r)
			live++
			rq.reply <- r
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
	after := make(map[string][]string, len(specs))
	for _, sp := range specs {
		for _, n := range sp.After {
			if n == sp.Name || !seen[n] {
				return fmt.Errorf("tether: Spec %q: After names %q, which is not another Spec", sp.Name, n)
			}
		}
		after[sp.Name] = sp.After
	}
	// A cycle would leave its Specs waiting for each other for ever.
	const (
		visiting = 1
		done     = 2
	)
	mark := make(map[string]int, len(specs))
	var visit func(name string, path []string) error
	visit = func(name string, path []string) error {
		switch mark[name] {
		case visiting:
			return fmt.Errorf("tether: Spec %q: After makes a cycle: %s", name, strings.Join(append(path, name), " after "))
		case done:
			return nil
		}
		mark[name] = visiting
		for _, n := range after[name] {
			if err := visit(n, append(path, name)); err != nil {
				return err
			}
		}
		mark[name] = done
		return nil
	}
	for _, sp := range specs {
		if err := visit(sp.Name, nil); err != nil {
			return err
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
// does not run now, and os.ErrProcessDone when it has just ended (at the
// cgroup level, once nothing of its tree is left: see
// tether.Process.Signal). A signal
// that ends the process counts as its exit, judged by its policy like any
// other.
func (s *Supervisor) Signal(name string, sig os.Signal) error {
	s.mu.Lock()
	r := s.byName[name]
	s.mu.Unlock()
	if r == nil {
		return fmt.Errorf("tether: signal %v to %s: %w", sig, name, ErrNoProcess)
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
	ready  chan<- *runner  // receives the runner once, at its first readiness
	done   chan struct{}   // closed at the end; err is set before
	ended  chan<- *runner  // receives the runner once, after done

	readyOnce sync.Once
	err       error // why Run should fail when this process ended for good, if it should; set before done
	attempt0  int   // attempts of the runners before this one, for a process started again after its end

	// Owned by run's goroutine: the restarts so far (what Status reports,
	// through the events), whether the current attempt is one, and
	// whether the first attempt of this runner is (a Restart call revived
	// the process).
	nrestarts    int
	restarted    bool
	restartFirst bool

	ctl     chan ctlReq // Stop, Start and Restart calls; received only by run's goroutine
	waiters []ctlReq    // Start and Restart calls answered at the attempt's readiness or failure; run's goroutine's

	mu       sync.Mutex      // guards what follows against Signal, Status and the control calls
	proc     *tether.Process // the running attempt's process, nil between attempts
	launched bool            // Run has started the runner's goroutine
	state    State
	since    time.Time    // when state began
	pid      int          // the running process's, 0 if none
	restarts int          // restarts so far: see Status.Restarts
	attempts int          // the last attempt's number
	exit     *tether.Exit // how the last process ended
}

// outcome is how one attempt ended.
type outcome struct {
	exit      *tether.Exit
	err       error // a start or readiness failure
	streamErr error // what Wait said about the streams: not a failure
	failed    bool
	uptime    time.Duration // zero unless the process became ready
	stopped   bool          // the supervisor stopped it; its final event is sent
	halted    *ctlReq       // a Stop or Restart call stopped it; its events are sent
	pid       int
	proc      *tether.Process
}

func (r *runner) markReady() { r.readyOnce.Do(func() { r.ready <- r }) }

func (r *runner) emit(e Event) {
	e.Name = r.spec.Name
	e.Restarted, e.Restarts = r.restarted, r.nrestarts
	r.record(e)
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
		r.answer(fmt.Errorf("tether: %s: %w", r.spec.Name, ErrNotRunning)) // Run is stopping, or it ended
		close(r.done)
		r.ended <- r
	}()
	t := tracker{backoff: r.spec.Backoff, resetAfter: r.spec.ResetAfter, limit: r.spec.Limit}
	// Whether the next attempt is a restart, which Status counts: one the
	// policy makes after an exit, or one a Restart call makes. A Start
	// after Stop (or after an end for good) starts the process anew, as at
	// Run's start: not a restart (PM2's restart count and systemd's
	// NRestarts do not count a stop and a start either).
	restart := r.restartFirst
	for attempt := r.attempt0 + 1; ; attempt++ {
		if r.quitting() {
			r.emit(Event{Kind: EventStopped, Attempt: attempt - 1})
			return
		}
		if r.restarted = restart; restart {
			r.nrestarts++
		}
		o := r.attempt(ctx, attempt)
		if o.stopped {
			return
		}
		if o.halted != nil {
			// Stop or Restart took it down, the whole tree gone: not an
			// exit by itself, not a failure, nothing for the tracker.
			r.markReady() // the next process in Run's order need not wait for it
			if o.halted.op == opRestart {
				r.waiters = append(r.waiters, *o.halted)
				restart = true
				continue
			}
			o.halted.reply <- nil
			var ok bool
			if restart, ok = r.idle(attempt); !ok {
				return
			}
			continue
		}
		// The Start and Restart calls waiting for this attempt, if it never
		// became ready, are answered once the events that follow are sent,
		// so that Status agrees with the answer.
		var notReady error = &ExitError{Name: r.spec.Name, Exit: o.exit, Err: o.err}
		if o.err == nil {
			notReady = &ExitError{Name: r.spec.Name, Exit: o.exit, Err: fmt.Errorf("%s before it was ready: %w", o.exit, ErrNotReady)}
		}
		r.emit(Event{Kind: EventExited, Attempt: attempt, PID: o.pid, Process: o.proc, Exit: o.exit, Err: errors.Join(o.err, o.streamErr)})
		if r.quitting() {
			r.emit(Event{Kind: EventStopped, Attempt: attempt, PID: o.pid, Process: o.proc, Exit: o.exit})
			r.answer(notReady)
			return
		}
		if !r.spec.Restart.restarts(o.failed) {
			if o.failed {
				r.err = &ExitError{Name: r.spec.Name, Exit: o.exit, Err: o.err}
			}
			r.emit(Event{Kind: EventEnded, Attempt: attempt, PID: o.pid, Process: o.proc, Exit: o.exit, Err: r.err})
			r.answer(notReady)
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
			r.answer(notReady)
			return
		}
		r.emit(Event{Kind: EventBackoff, Attempt: attempt, Delay: delay})
		r.answer(notReady)
		if restart, ok = r.backoff(attempt, delay); !ok {
			return
		}
	}
}

// backoff waits out a restart's delay. A Start or Restart call cuts it
// short (the policy's restart, sooner); a Stop call leaves the process
// stopped (see idle). It returns ok false when Run stopped everything
// meanwhile (the final event is sent), and whether the next attempt is a
// restart.
func (r *runner) backoff(attempt int, delay time.Duration) (restart, ok bool) {
	tm := time.NewTimer(delay)
	defer tm.Stop()
	select {
	case <-tm.C:
		return true, true
	case <-r.quit:
		return true, true // the loop's first check reports it
	case req := <-r.ctl:
		if req.op != opStop {
			r.waiters = append(r.waiters, req)
			return true, true
		}
		r.emit(Event{Kind: EventHalted, Attempt: attempt})
		req.reply <- nil
		return r.idle(attempt)
	}
}

// idle keeps a process that Stop stopped down until a Start or Restart
// call (ok: the caller starts it again; a restart only for Restart) or
// until Run stops everything (not ok, after the final event).
func (r *runner) idle(attempt int) (restart, ok bool) {
	for {
		select {
		case <-r.quit:
			r.emit(Event{Kind: EventStopped, Attempt: attempt})
			return false, false
		case req := <-r.ctl:
			if req.op == opStop {
				req.reply <- nil // stopped already
				continue
			}
			r.waiters = append(r.waiters, req)
			return req.op == opRestart, true
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
	r.answer(nil)
wait:
	for {
		select {
		case <-p.Done():
			break wait
		case <-r.stop:
			return r.stopProcess(attempt, p)
		case req := <-r.ctl:
			if req.op == opStart {
				req.reply <- nil // it runs
				continue
			}
			return r.halt(attempt, p, req)
		}
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
	waiting := true
	for waiting {
		waiting = false
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
		case req := <-r.ctl:
			if req.op == opStart {
				r.waiters = append(r.waiters, req) // answered at readiness
				waiting = true
				continue
			}
			cancel()
			<-res
			pr.close()
			return r.halt(attempt, p, req), false
		}
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

// halt stops p gracefully, its whole tree, for a Stop or Restart call, and
// returns once it is gone.
func (r *runner) halt(attempt int, p *tether.Process, req ctlReq) outcome {
	r.emit(Event{Kind: EventHalting, Attempt: attempt, PID: p.PID(), Process: p})
	if err := p.Stop(); err != nil {
		_ = p.Kill() // errors: the process is already gone
	}
	exit, _ := p.Wait()
	r.emit(Event{Kind: EventHalted, Attempt: attempt, PID: p.PID(), Process: p, Exit: exit})
	return outcome{exit: exit, halted: &req}
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
