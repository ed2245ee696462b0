//go:build linux

package supervise_test

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/tetherproc/tether"
	"github.com/tetherproc/tether/supervise"
)

// Shorthands for event kinds in expected sequences.
const (
	starting = supervise.EventStarting
	runningK = supervise.EventRunning
	ready    = supervise.EventReady
	exited   = supervise.EventExited
	backoff  = supervise.EventBackoff
	fatal    = supervise.EventFatal
	ended    = supervise.EventEnded
	stopping = supervise.EventStopping
	stopped  = supervise.EventStopped
)

// attempt is the events of one attempt that ends by itself and is restarted.
var attempt = []supervise.EventKind{starting, runningK, ready, exited, backoff}

func seq(parts ...[]supervise.EventKind) []supervise.EventKind { return slices.Concat(parts...) }

func TestPolicies(t *testing.T) {
	t.Parallel()
	once := []supervise.EventKind{starting, runningK, ready, exited}
	tests := []struct {
		name     string
		spec     supervise.Spec
		kinds    []supervise.EventKind
		code     int   // the ExitError's exit status; -1: no exit (start failure)
		errIs    error // what the ExitError's Err matches, if anything
		runIsNil bool  // Run returns nil
	}{
		{"never-success", supervise.Spec{Cmd: helperCmd("exit", "0")},
			seq(once, []supervise.EventKind{ended}), 0, nil, true},
		{"never-failure", supervise.Spec{Cmd: helperCmd("exit", "3")},
			seq(once, []supervise.EventKind{ended}), 3, nil, false},
		{"on-failure-success", supervise.Spec{Cmd: helperCmd("exit", "0"), Restart: supervise.OnFailure},
			seq(once, []supervise.EventKind{ended}), 0, nil, true},
		{"on-failure-failure", supervise.Spec{Cmd: helperCmd("exit", "1"), Restart: supervise.OnFailure, Limit: supervise.Limit{Burst: 2}},
			seq(attempt, attempt, once, []supervise.EventKind{fatal}), 1, supervise.ErrRestartLimit, false},
		{"always-success", supervise.Spec{Cmd: helperCmd("exit", "0"), Restart: supervise.Always, Limit: supervise.Limit{Burst: 2}},
			seq(attempt, attempt, once, []supervise.EventKind{fatal}), 0, supervise.ErrRestartLimit, false},
		{"success-code", supervise.Spec{Cmd: helperCmd("exit", "3"), Restart: supervise.OnFailure, SuccessCodes: []int{3}},
			seq(once, []supervise.EventKind{ended}), 0, nil, true},
		{"other-code", supervise.Spec{Cmd: helperCmd("exit", "4"), Restart: supervise.OnFailure, SuccessCodes: []int{3}, Limit: supervise.Limit{Burst: 1}},
			seq(attempt, once, []supervise.EventKind{fatal}), 4, supervise.ErrRestartLimit, false},
		{"start-failure-never", supervise.Spec{Cmd: tether.Command("/nonexistent/program")},
			[]supervise.EventKind{starting, exited, ended}, -1, fs.ErrNotExist, false},
		{"start-failure-restarts", supervise.Spec{Cmd: tether.Command("/nonexistent/program"), Restart: supervise.Always, Limit: supervise.Limit{Burst: 1}},
			[]supervise.EventKind{starting, exited, backoff, starting, exited, fatal}, -1, fs.ErrNotExist, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.spec.Name = "p"
			tt.spec.Backoff = fast
			r := start(t, tt.spec)
			err := r.wait(t)
			if got := r.rec.kinds("p"); !slices.Equal(got, tt.kinds) {
				t.Errorf("events %v, want %v:\n%s", got, tt.kinds, format(r.rec.all()))
			}
			if tt.runIsNil {
				if err != nil {
					t.Fatalf("Run = %v, want nil", err)
				}
				return
			}
			var ee *supervise.ExitError
			if !errors.As(err, &ee) {
				t.Fatalf("Run = %v, want an *ExitError", err)
			}
			if ee.Name != "p" {
				t.Errorf("ExitError.Name = %q", ee.Name)
			}
			switch {
			case tt.code < 0 && ee.Exit != nil:
				t.Errorf("ExitError.Exit = %v, want nil", ee.Exit)
			case tt.code >= 0 && (ee.Exit == nil || ee.Exit.Code != tt.code):
				t.Errorf("ExitError.Exit = %v, want status %d", ee.Exit, tt.code)
			}
			if tt.errIs != nil && !errors.Is(err, tt.errIs) {
				t.Errorf("Run = %v, want it to match %v", err, tt.errIs)
			}
			if tt.errIs == nil && ee.Err != nil {
				t.Errorf("ExitError.Err = %v, want nil", ee.Err)
			}
		})
	}
}

// Delays double from Initial and stop at Max; each is in its event.
func TestBackoffGrowsToMax(t *testing.T) {
	t.Parallel()
	r := start(t, supervise.Spec{
		Name: "p", Cmd: helperCmd("exit", "1"), Restart: supervise.OnFailure,
		Backoff: supervise.Backoff{Initial: time.Millisecond, Max: 4 * time.Millisecond, Jitter: -1},
		Limit:   supervise.Limit{Burst: 4, Interval: time.Minute},
	})
	if err := r.wait(t); !errors.Is(err, supervise.ErrRestartLimit) {
		t.Fatalf("Run = %v, want ErrRestartLimit", err)
	}
	want := []time.Duration{1, 2, 4, 4}
	var got []time.Duration
	attempts := 0
	for _, e := range r.rec.all() {
		switch e.Kind {
		case backoff:
			got = append(got, e.Delay/time.Millisecond)
		case starting:
			attempts++
			if e.Attempt != attempts {
				t.Errorf("starting event with attempt %d, want %d", e.Attempt, attempts)
			}
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("delays (ms) %v, want %v", got, want)
	}
}

// A run longer than ResetAfter brings the delay back to Initial.
func TestBackoffResetsAfterUptime(t *testing.T) {
	t.Parallel()
	r := start(t, supervise.Spec{
		Name: "p", Cmd: helperCmd("exit", "1", "60ms"), Restart: supervise.OnFailure,
		Backoff:    supervise.Backoff{Initial: time.Millisecond, Jitter: -1},
		ResetAfter: 50 * time.Millisecond, // each run lasts at least 60 ms
		Limit:      supervise.Limit{Burst: 3, Interval: time.Minute},
	})
	if err := r.wait(t); !errors.Is(err, supervise.ErrRestartLimit) {
		t.Fatalf("Run = %v, want ErrRestartLimit", err)
	}
	for _, e := range r.rec.all() {
		if e.Kind == backoff && e.Delay != time.Millisecond {
			t.Errorf("attempt %d: delay %v, want 1ms every time:\n%s", e.Attempt, e.Delay, format(r.rec.all()))
		}
	}
}

// Each process starts once the one before is ready; at the end they stop
// last first, each gracefully (the helpers report SIGTERM with status 42).
func TestOrderAndReverseStop(t *testing.T) {
	t.Parallel()
	r := start(t,
		serving("a"),
		serving("b"),
		serving("c"),
	)
	r.rec.waitFor(t, "c", ready)
	r.cancel()
	if err := r.wait(t); !errors.Is(err, context.Canceled) {
		t.Fatalf("Run = %v, want context.Canceled", err)
	}
	events := r.rec.all()
	order := []struct {
		name string
		kind supervise.EventKind
	}{
		{"a", ready}, {"b", starting}, {"b", ready}, {"c", starting}, {"c", ready},
		{"c", stopping}, {"c", stopped}, {"b", stopping}, {"b", stopped}, {"a", stopping}, {"a", stopped},
	}
	last := -1
	for _, o := range order {
		i := index(events, o.name, o.kind)
		if i <= last {
			t.Fatalf("%s %s out of order:\n%s", o.name, o.kind, format(events))
		}
		last = i
	}
	for _, name := range []string{"a", "b", "c"} {
		if got, want := r.rec.kinds(name), []supervise.EventKind{starting, runningK, ready, stopping, stopped}; !slices.Equal(got, want) {
			t.Errorf("%s: events %v, want %v", name, got, want)
		}
		e := events[index(events, name, stopped)]
		if e.Exit == nil || e.Exit.Code != codeTerm {
			t.Errorf("%s stopped with %v, want status %d (it got SIGTERM)", name, e.Exit, codeTerm)
		}
	}
}

// A process that may die ends for good and the others go on; the run ends
// when one that may not die ends.
func TestCanDie(t *testing.T) {
	t.Parallel()
	r := start(t,
		supervise.Spec{Name: "oneshot", Cmd: helperCmd("exit", "1"), CanDie: true},
		serving("server"),
	)
	r.rec.waitFor(t, "oneshot", ended)
	r.rec.waitFor(t, "server", ready)
	if err := r.s.Signal("server", syscall.SIGUSR1); err != nil { // it exits 7
		t.Fatal(err)
	}
	err := r.wait(t)
	var ee *supervise.ExitError
	if !errors.As(err, &ee) || ee.Name != "server" || ee.Exit == nil || ee.Exit.Code != codeUsr1 {
		t.Fatalf("Run = %v, want server's exit status %d:\n%s", err, codeUsr1, format(r.rec.all()))
	}
}

// Every process may die and all end by themselves: Run returns nil.
func TestAllMayDie(t *testing.T) {
	t.Parallel()
	r := start(t,
		supervise.Spec{Name: "a", Cmd: helperCmd("exit", "1"), CanDie: true},
		supervise.Spec{Name: "b", Cmd: helperCmd("exit", "0"), CanDie: true},
	)
	if err := r.wait(t); err != nil {
		t.Fatalf("Run = %v, want nil", err)
	}
	for _, name := range []string{"a", "b"} {
		if got := r.rec.kinds(name); got[len(got)-1] != ended {
			t.Errorf("%s: events %v, want it ended", name, got)
		}
	}
}

// When a process that may not die ends, the others are stopped gracefully
// and Run says which one and how.
func TestMustNotDieStopsOthers(t *testing.T) {
	t.Parallel()
	t.Run("exit", func(t *testing.T) {
		t.Parallel()
		r := start(t,
			serving("a"),
			serving("b"),
		)
		r.rec.waitFor(t, "b", ready)
		if err := r.s.Signal("a", syscall.SIGUSR1); err != nil {
			t.Fatal(err)
		}
		err := r.wait(t)
		var ee *supervise.ExitError
		if !errors.As(err, &ee) || ee.Name != "a" || ee.Exit == nil || ee.Exit.Code != codeUsr1 {
			t.Fatalf("Run = %v, want a's exit status %d", err, codeUsr1)
		}
		events := r.rec.all()
		if i, j := index(events, "a", ended), index(events, "b", stopping); i < 0 || j < i {
			t.Errorf("b not stopped after a ended:\n%s", format(events))
		}
		if e := events[index(events, "b", stopped)]; e.Exit == nil || e.Exit.Code != codeTerm {
			t.Errorf("b stopped with %v, want status %d", e.Exit, codeTerm)
		}
	})
	t.Run("fatal", func(t *testing.T) {
		t.Parallel()
		r := start(t,
			serving("a"),
			supervise.Spec{Name: "b", Cmd: helperCmd("exit", "1"), Restart: supervise.OnFailure,
				Backoff: fast, Limit: supervise.Limit{Burst: 1}},
		)
		err := r.wait(t)
		var ee *supervise.ExitError
		if !errors.As(err, &ee) || ee.Name != "b" || !errors.Is(err, supervise.ErrRestartLimit) {
			t.Fatalf("Run = %v, want b's ErrRestartLimit", err)
		}
		if got, want := r.rec.kinds("a"), []supervise.EventKind{starting, runningK, ready, stopping, stopped}; !slices.Equal(got, want) {
			t.Errorf("a: events %v, want %v", got, want)
		}
	})
}

// Cancelling while a process waits for its restart ends the wait at once.
func TestCancelDuringBackoff(t *testing.T) {
	t.Parallel()
	r := start(t, supervise.Spec{
		Name: "p", Cmd: helperCmd("exit", "1"), Restart: supervise.OnFailure,
		Backoff: supervise.Backoff{Initial: time.Hour},
	})
	r.rec.waitFor(t, "p", backoff)
	if err := r.s.Signal("p", syscall.SIGTERM); !errors.Is(err, supervise.ErrNotRunning) {
		t.Errorf("Signal while backing off = %v, want ErrNotRunning", err)
	}
	r.cancel()
	if err := r.wait(t); !errors.Is(err, context.Canceled) {
		t.Fatalf("Run = %v, want context.Canceled", err)
	}
	want := seq(attempt, []supervise.EventKind{stopped})
	if got := r.rec.kinds("p"); !slices.Equal(got, want) {
		t.Errorf("events %v, want %v", got, want)
	}
}

// Run's result is context.Cause: a cause given to the cancellation shows.
func TestCancelCause(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancelCause(context.Background())
	var s supervise.Supervisor
	rec := newRecorder()
	s.Observer = rec.observe
	res := make(chan error, 1)
	// Owner: the test. Ends when Run returns, after cancel below.
	go func() { res <- s.Run(ctx, serving("p")) }()
	rec.waitFor(t, "p", ready)
	cause := errors.New("interrupt signal received")
	cancel(cause)
	select {
	case err := <-res:
		if err != cause {
			t.Errorf("Run = %v, want the cause", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not return")
	}
}

// Signal reaches the current process; names that do not run are refused.
func TestSignal(t *testing.T) {
	t.Parallel()
	p := serving("p")
	p.Restart, p.Backoff = supervise.Always, fast
	r := start(t, p)
	first := r.rec.waitFor(t, "p", ready)
	if err := r.s.Signal("nobody", syscall.SIGUSR1); !errors.Is(err, supervise.ErrNotRunning) {
		t.Errorf("Signal to an unknown name = %v, want ErrNotRunning", err)
	}
	if err := r.s.Signal("p", syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	r.rec.waitFor(t, "p", backoff)
	// The restart is a new process, and Signal follows it.
	second := r.rec.waitMatch(t, "second ready", func(e supervise.Event) bool { return e.Kind == ready && e.Attempt == 2 })
	if second.PID == first.PID || second.Process == first.Process {
		t.Errorf("the restart has the same process (pid %d)", first.PID)
	}
	if err := r.s.Signal("p", syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	r.rec.waitMatch(t, "second exit", func(e supervise.Event) bool {
		return e.Kind == exited && e.Attempt == 2 && e.Exit.Code == codeUsr1
	})
	r.cancel()
	if err := r.wait(t); !errors.Is(err, context.Canceled) {
		t.Fatalf("Run = %v", err)
	}
	if err := r.s.Signal("p", syscall.SIGUSR1); !errors.Is(err, supervise.ErrNotRunning) {
		t.Errorf("Signal after Run = %v, want ErrNotRunning", err)
	}
}

func TestInvalidSpecs(t *testing.T) {
	t.Parallel()
	cmd := helperCmd("serve", "never")
	tests := []struct {
		name  string
		specs []supervise.Spec
	}{
		{"no-name", []supervise.Spec{{Cmd: cmd}}},
		{"name-twice", []supervise.Spec{{Name: "a", Cmd: cmd}, {Name: "a", Cmd: cmd}}},
		{"no-cmd", []supervise.Spec{{Name: "a"}}},
		{"ipc-without-IPC", []supervise.Spec{{Name: "a", Cmd: cmd, Ready: supervise.ReadyIPC()}}},
		{"tcp-not-loopback", []supervise.Spec{{Name: "a", Cmd: cmd, Ready: supervise.ReadyTCP("192.0.2.1:80")}}},
		{"tcp-no-port", []supervise.Spec{{Name: "a", Cmd: cmd, Ready: supervise.ReadyTCP("127.0.0.1")}}},
		{"after-unknown", []supervise.Spec{{Name: "a", Cmd: cmd, After: []string{"b"}}}},
		{"after-itself", []supervise.Spec{{Name: "a", Cmd: cmd, After: []string{"a"}}}},
		{"after-cycle", []supervise.Spec{{Name: "a", Cmd: cmd, After: []string{"c"}}, {Name: "b", Cmd: cmd, After: []string{"a"}},
			{Name: "c", Cmd: cmd, After: []string{"b"}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var s supervise.Supervisor
			rec := newRecorder()
			s.Observer = rec.observe
			err := s.Run(context.Background(), tt.specs...)
			if err == nil {
				t.Fatal("Run accepted it")
			}
			if n := len(rec.all()); n != 0 {
				t.Errorf("%d events: something was started", n)
			}
			t.Log(err)
		})
	}
	t.Run("cancelled", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		var s supervise.Supervisor
		if err := s.Run(ctx, supervise.Spec{Name: "a", Cmd: cmd}); !errors.Is(err, context.Canceled) {
			t.Errorf("Run = %v, want context.Canceled", err)
		}
	})
	t.Run("while-running", func(t *testing.T) {
		t.Parallel()
		r := start(t, supervise.Spec{Name: "a", Cmd: cmd})
		r.rec.waitFor(t, "a", ready)
		if err := r.s.Run(context.Background(), supervise.Spec{Name: "b", Cmd: cmd}); err == nil {
			t.Error("a second Run was accepted")
		}
	})
}

// The ExitError reads as "tether: NAME: what happened".
func TestExitErrorMessage(t *testing.T) {
	t.Parallel()
	exit := &tether.Exit{Code: 3}
	for _, tt := range []struct {
		e    *supervise.ExitError
		want string
	}{
		{&supervise.ExitError{Name: "web", Exit: exit}, "tether: web: exit status 3"},
		{&supervise.ExitError{Name: "web", Exit: exit, Err: supervise.ErrReadyTimeout}, "tether: web: not ready in time"},
		{&supervise.ExitError{Name: "web", Err: &tether.StartError{Path: "/x", Op: "exec", Err: os.ErrNotExist}}, "tether: web: start /x: exec: file does not exist"},
	} {
		if got := tt.e.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
	}
}

// StopTogether stops every process at once: the first started is asked to
// stop before the last started has stopped.
func TestStopTogether(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rec := newRecorder()
	s := &supervise.Supervisor{Observer: rec.observe, StopTogether: true}
	result := make(chan error, 1)
	// Owner: the test. Ends when Run returns, after cancel below.
	go func() { result <- s.Run(ctx, serving("a"), serving("b"), serving("c")) }()
	rec.waitFor(t, "c", ready)
	cancel()
	select {
	case err := <-result:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Run = %v, want context.Canceled", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not return within 20s")
	}
	events := rec.all()
	if index(events, "a", stopping) > index(events, "c", stopped) {
		t.Fatalf("stopped one after the other:\n%s", format(events))
	}
	for _, name := range []string{"a", "b", "c"} {
		if e := events[index(events, name, stopped)]; e.Exit == nil || e.Exit.Code != codeTerm {
			t.Errorf("%s stopped with %v, want status %d (it got SIGTERM)", name, e.Exit, codeTerm)
		}
	}
}

// StartTogether starts every process at once: the second runs while the
// first has not said it is ready (and never will).
func TestStartTogether(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rec := newRecorder()
	s := &supervise.Supervisor{Observer: rec.observe, StartTogether: true, StopTogether: true}
	result := make(chan error, 1)
	never := supervise.Spec{Name: "never", Cmd: helperCmd("serve", "never"), Ready: supervise.ReadyFD(), ReadyTimeout: time.Minute}
	// Owner: the test. Ends when Run returns, after cancel below.
	go func() { result <- s.Run(ctx, never, serving("b")) }()
	rec.waitFor(t, "b", ready)
	if i := index(rec.all(), "never", ready); i >= 0 {
		t.Fatalf("never became ready:\n%s", format(rec.all()))
	}
	cancel()
	select {
	case err := <-result:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Run = %v, want context.Canceled", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not return within 20s")
	}
}
