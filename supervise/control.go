package supervise

import (
	"context"
	"fmt"
	"time"

	"github.com/tetherproc/tether"
)

// State is where a supervised process is in its life, as Status reports it.
type State uint8

const (
	// StatePending, the zero value: Run has not started it yet (it waits
	// for the process before it to be ready).
	StatePending State = iota
	// StateStarting: its process started and has not said it is ready.
	StateStarting
	// StateRunning: its process is ready (see Spec.Ready) and runs.
	StateRunning
	// StateBackoff: it ended and waits for its restart.
	StateBackoff
	// StateStopping: it is being stopped, by Stop, Restart or Run's end.
	StateStopping
	// StateStopped: Stop stopped it, or Run did at its end; Start or
	// Restart starts it again.
	StateStopped
	// StateExited: it ended, or is ending, by itself and its policy does
	// not restart it (EventExited, EventEnded).
	StateExited
	// StateFatal: it needed more restarts than Spec.Limit allows and was
	// given up on (EventFatal).
	StateFatal
)

var stateNames = [...]string{"pending", "starting", "running", "backoff", "stopping", "stopped", "exited", "fatal"}

// String is the state's name: "pending", "starting", "running", "backoff",
// "stopping", "stopped", "exited" or "fatal".
func (s State) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return fmt.Sprintf("State(%d)", uint8(s))
}

// MarshalText returns the state's name, as String, for JSON.
func (s State) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Status is one supervised process at the moment Supervisor.Status looked.
type Status struct {
	Name  string
	State State
	// PID is the running process's id; 0 when none runs (pending, backoff,
	// stopped, exited, fatal).
	PID int
	// Restarts counts the process's restarts: those its restart policy
	// made after an exit (a Start or Restart call during the backoff makes
	// it sooner), and those Restart calls made. A Start after Stop, or
	// after the process ended for good, starts it anew and is not one:
	// PM2's restart count and systemd's NRestarts do not count a stop and
	// a start either.
	Restarts int
	// Since is when the process entered State; zero while pending. For a
	// running process, time.Since(Since) is how long it has been ready.
	Since time.Time
	// Exit is how its last process ended; nil if none has.
	Exit *tether.Exit
}

// ctlOp is what a control call asks of a runner.
type ctlOp uint8

const (
	opStop ctlOp = iota + 1
	opStart
	opRestart
)

var opNames = [...]string{"", "stop", "start", "restart"}

// ctlReq is one Stop, Start or Restart call, for one runner. The runner
// sends exactly one answer on reply (buffered: the send never blocks): when
// the process is down (stop), or ready or failed (start, restart), or when
// the runner ends first.
type ctlReq struct {
	op    ctlOp
	reply chan error
}

// Stop stops the named process — its whole tree, gracefully, as its Cmd
// says (StopSignal, StopTimeout, SIGKILL) — and returns once the tree is
// gone. The process stays stopped, without counting as an end (the others
// go on, whatever its CanDie), until Start or Restart. Stopping a stopped
// process does nothing. A process waiting for a restart is not restarted.
//
// Errors: ErrNoProcess for an unknown name; ErrNotRunning when Run does not
// run, is stopping everything, or has not started that process yet;
// ErrEnded when it ended for good (Stop only); ctx's error if ctx ends
// first (the operation goes on).
func (s *Supervisor) Stop(ctx context.Context, name string) error {
	return s.control(ctx, name, opStop)
}

// Start starts the named process if Stop stopped it, or at once if it waits
// for a restart, and returns once it is ready (see Spec.Ready). Starting a
// process that runs does nothing; for one that is starting, Start waits for
// its readiness.
//
// A process that ended for good (its CanDie let the others go on) is
// started again, as at Run's start: its policy and limit apply afresh.
//
// Errors: as Stop's, and the start's failure, an *ExitError (errors.As)
// whose Err is a *tether.StartError, or matches ErrNotReady
// (ErrReadyTimeout) when the process exited or took too long before it was
// ready; its Spec's restart policy then applies as to any failed start.
func (s *Supervisor) Start(ctx context.Context, name string) error {
	return s.control(ctx, name, opStart)
}

// Restart stops the named process as Stop does — the whole old tree is
// gone first, so nothing of it still holds a port, a lock or a file the new
// one needs — then starts it again, and returns once the new process is
// ready or has failed, as Start. A stopped process, or one that ended for
// good, is started.
//
// Errors: as Start's.
func (s *Supervisor) Restart(ctx context.Context, name string) error {
	return s.control(ctx, name, opRestart)
}

func (s *Supervisor) control(ctx context.Context, name string, op ctlOp) error {
	return s.controlOnce(ctx, name, op, true)
}

// controlOnce sends op to name's runner; mayRevive lets it have Run start a
// process that ended for good, once.
func (s *Supervisor) controlOnce(ctx context.Context, name string, op ctlOp, mayRevive bool) error {
	s.mu.Lock()
	running, r := s.running, s.byName[name]
	s.mu.Unlock()
	switch {
	case !running:
		return fmt.Errorf("tether: %s %s: %w", opNames[op], name, ErrNotRunning)
	case r == nil:
		return fmt.Errorf("tether: %s %s: %w", opNames[op], name, ErrNoProcess)
	}
	r.mu.Lock()
	launched := r.launched
	r.mu.Unlock()
	if !launched {
		return fmt.Errorf("tether: %s %s: not started yet (it waits for the one before it to be ready): %w", opNames[op], name, ErrNotRunning)
	}
	req := ctlReq{op: op, reply: make(chan error, 1)}
	select {
	case r.ctl <- req:
	case <-r.done:
		st := r.status().State
		if st != StateExited && st != StateFatal {
			return fmt.Errorf("tether: %s %s: %w", opNames[op], name, ErrNotRunning) // Run is stopping
		}
		if op == opStop || !mayRevive {
			return fmt.Errorf("tether: %s %s: %w", opNames[op], name, ErrEnded)
		}
		// Start or Restart of a process that ended for good: Run gives it
		// a new runner, which starts it; the call waits for that start
		// (a restart of what just started would start it twice).
		if _, err := s.reviveRunner(ctx, name, op == opRestart); err != nil {
			return fmt.Errorf("tether: %s %s: %w", opNames[op], name, err)
		}
		return s.controlOnce(ctx, name, opStart, false)
	case <-ctx.Done():
		return context.Cause(ctx)
	}
	select {
	case err := <-req.reply:
		return err
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// reviveReq asks Run's loop for a new runner of a process that ended for
// good; Run answers on reply (buffered) with it, or nil when it stops.
// restart: a Restart call asks, so its first attempt counts as a restart.
type reviveReq struct {
	name    string
	restart bool
	reply   chan *runner
}

// reviveRunner has Run start the named process again, with a new runner.
func (s *Supervisor) reviveRunner(ctx context.Context, name string, restart bool) (*runner, error) {
	s.mu.Lock()
	revive, runDone := s.revive, s.runDone
	s.mu.Unlock()
	if revive == nil {
		return nil, ErrNotRunning
	}
	rq := reviveReq{name: name, restart: restart, reply: make(chan *runner, 1)}
	select {
	case revive <- rq:
	case <-runDone:
		return nil, ErrNotRunning
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	}
	if r := <-rq.reply; r != nil { // bounded: Run answers each request it takes
		return r, nil
	}
	return nil, ErrNotRunning
}

// again is a new runner for the same Spec, for a Start or Restart after
// its end for good: it continues the attempts' and the restarts' counts,
// and its first attempt is a restart for a Restart call.
func (r *runner) again(restart bool) *runner {
	r.mu.Lock()
	attempts := r.attempts
	r.mu.Unlock()
	st := r.status()
	return &runner{
		s: r.s, starts: r.starts, spec: r.spec, quit: r.quit,
		stop:         make(chan struct{}),
		ready:        make(chan *runner, 1), // its readiness orders no start: those after it started at its end
		done:         make(chan struct{}),
		ended:        r.ended,
		ctl:          make(chan ctlReq),
		state:        st.State,
		since:        st.Since,
		restarts:     st.Restarts,
		nrestarts:    st.Restarts,
		restartFirst: restart,
		exit:         st.Exit,
		attempt0:     attempts,
	}
}

// Status reports every process of the running Run, in the order of its
// Specs; nil when Run does not run.
func (s *Supervisor) Status() []Status {
	s.mu.Lock()
	order := s.order
	s.mu.Unlock()
	if order == nil {
		return nil
	}
	out := make([]Status, len(order))
	for i, r := range order {
		out[i] = r.status()
	}
	return out
}

func (r *runner) status() Status {
	r.mu.Lock()
	defer r.mu.Unlock()
	return Status{Name: r.spec.Name, State: r.state, PID: r.pid, Restarts: r.restarts, Since: r.since, Exit: r.exit}
}

// launch marks the runner as started by Run, before its goroutine runs.
func (r *runner) launch() {
	r.mu.Lock()
	r.launched = true
	r.mu.Unlock()
}

// record keeps what Status reports, from each event as it is sent.
func (r *runner) record(e Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	state := r.state
	switch e.Kind {
	case EventStarting:
		state, r.attempts = StateStarting, e.Attempt
	case EventRunning:
		r.pid = e.PID
	case EventReady:
		state = StateRunning
	case EventExited, EventEnded:
		state, r.pid = StateExited, 0
	case EventBackoff:
		state = StateBackoff
	case EventFatal:
		state, r.pid = StateFatal, 0
	case EventStopping, EventHalting:
		state = StateStopping
	case EventStopped, EventHalted:
		state, r.pid = StateStopped, 0
	}
	r.restarts = e.Restarts
	if e.Exit != nil {
		r.exit = e.Exit
	}
	if state != r.state || r.since.IsZero() {
		r.state, r.since = state, time.Now()
	}
}

// answer replies to the Start and Restart calls waiting for this attempt:
// nil when it is ready, else why it is not. Called by run's goroutine.
func (r *runner) answer(err error) {
	for _, w := range r.waiters {
		w.reply <- err
	}
	r.waiters = nil
}
