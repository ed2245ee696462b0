//go:build linux

package supervise_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/tetherproc/tether"
	"github.com/tetherproc/tether/supervise"
)

// statusOf is name's entry in s.Status(), failing the test if it has none.
func statusOf(t *testing.T, s *supervise.Supervisor, name string) supervise.Status {
	t.Helper()
	all := s.Status()
	i := slices.IndexFunc(all, func(st supervise.Status) bool { return st.Name == name })
	if i < 0 {
		t.Fatalf("no %s in Status %+v", name, all)
	}
	return all[i]
}

// gone reports whether pid no longer exists (or is a zombie nobody reaped,
// which the supervisor's children never stay).
func gone(pid int) bool { return syscall.Kill(pid, 0) != nil }

func TestControl(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	r := start(t, serving("a"), serving("b"))
	first := r.rec.waitFor(t, "a", supervise.EventReady)
	r.rec.waitFor(t, "b", supervise.EventReady)
	if st := statusOf(t, r.s, "a"); st.State != supervise.StateRunning || st.PID != first.PID || st.Restarts != 0 {
		t.Errorf("a before anything: %+v, want running with pid %d", st, first.PID)
	}

	t.Run("stop", func(t *testing.T) {
		if err := r.s.Stop(ctx, "a"); err != nil {
			t.Fatal(err)
		}
		// Stop returns once the process is gone; the others go on.
		if !gone(first.PID) {
			t.Errorf("pid %d still there after Stop returned", first.PID)
		}
		st := statusOf(t, r.s, "a")
		if st.State != supervise.StateStopped || st.PID != 0 || st.Exit == nil || st.Exit.Code != codeTerm {
			t.Errorf("a after Stop: %+v, want stopped, no pid, exit %d", st, codeTerm)
		}
		if st := statusOf(t, r.s, "b"); st.State != supervise.StateRunning {
			t.Errorf("b after a's Stop: %v, want running", st.State)
		}
		if err := r.s.Stop(ctx, "a"); err != nil {
			t.Errorf("Stop of a stopped process = %v, want nil", err)
		}
	})
	t.Run("start", func(t *testing.T) {
		if err := r.s.Start(ctx, "a"); err != nil {
			t.Fatal(err)
		}
		st := statusOf(t, r.s, "a")
		if st.State != supervise.StateRunning || st.PID == 0 || st.PID == first.PID || st.Restarts != 0 {
			t.Errorf("a after Start: %+v, want running, a new pid, no restart (a stop and a start)", st)
		}
		if err := r.s.Start(ctx, "a"); err != nil {
			t.Errorf("Start of a running process = %v, want nil", err)
		}
	})
	t.Run("restart", func(t *testing.T) {
		old := statusOf(t, r.s, "a").PID
		if err := r.s.Restart(ctx, "a"); err != nil {
			t.Fatal(err)
		}
		st := statusOf(t, r.s, "a")
		if st.State != supervise.StateRunning || st.PID == old || st.Restarts != 1 || !gone(old) {
			t.Errorf("a after Restart: %+v (old pid %d gone: %v), want running, a new pid, 1 restart", st, old, gone(old))
		}
		// The old process was gone before the new one started.
		events := r.rec.all()
		halted := slices.IndexFunc(events, func(e supervise.Event) bool {
			return e.Name == "a" && e.Kind == supervise.EventHalted && e.PID == old
		})
		starting := slices.IndexFunc(events, func(e supervise.Event) bool {
			return e.Name == "a" && e.Kind == supervise.EventStarting && e.Attempt == 3
		})
		if halted < 0 || starting < halted {
			t.Errorf("events: halted at %d, the restart's start at %d:\n%s", halted, starting, format(events))
		}
	})
	t.Run("errors", func(t *testing.T) {
		if err := r.s.Restart(ctx, "nobody"); !errors.Is(err, supervise.ErrNoProcess) || !errors.Is(err, supervise.ErrNotRunning) {
			t.Errorf("Restart of an unknown name = %v, want ErrNoProcess", err)
		}
		if err := r.s.Signal("nobody", syscall.SIGUSR1); !errors.Is(err, supervise.ErrNoProcess) {
			t.Errorf("Signal to an unknown name = %v, want ErrNoProcess", err)
		}
	})
	r.cancel()
	if err := r.wait(t); !errors.Is(err, context.Canceled) {
		t.Fatalf("Run = %v, want context.Canceled", err)
	}
	if err := r.s.Restart(ctx, "a"); !errors.Is(err, supervise.ErrNotRunning) {
		t.Errorf("Restart after Run = %v, want ErrNotRunning", err)
	}
	if st := r.s.Status(); st != nil {
		t.Errorf("Status after Run = %+v, want nil", st)
	}
}

// Status's restart count counts restarts — the policy's after an exit, and
// Restart's — and not a Stop followed by a Start, which starts the process
// anew (PM2's restart count, systemd's NRestarts). Each attempt's events
// say whether it is a restart.
func TestStopThenStartIsNotARestart(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	a := serving("a")
	a.Restart, a.Backoff = supervise.Always, fast
	r := start(t, a)
	r.rec.waitFor(t, "a", supervise.EventReady)
	restarts := func(what string, want int) {
		t.Helper()
		if st := statusOf(t, r.s, "a"); st.State != supervise.StateRunning || st.Restarts != want {
			t.Errorf("a after %s: %+v, want running, %d restarts", what, st, want)
		}
	}
	starting := func(attempt int) supervise.Event {
		t.Helper()
		return r.rec.waitMatch(t, fmt.Sprintf("a's attempt %d", attempt), func(e supervise.Event) bool {
			return e.Name == "a" && e.Kind == supervise.EventStarting && e.Attempt == attempt
		})
	}
	for i := 1; i <= 2; i++ {
		if err := r.s.Stop(ctx, "a"); err != nil {
			t.Fatal(err)
		}
		if err := r.s.Start(ctx, "a"); err != nil {
			t.Fatal(err)
		}
		restarts(fmt.Sprintf("Stop and Start %d", i), 0)
		if e := starting(1 + i); e.Restarted || e.Restarts != 0 {
			t.Errorf("Stop and Start %d: the attempt's events say restarted %v, %d restarts", i, e.Restarted, e.Restarts)
		}
	}
	if err := r.s.Restart(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	restarts("Restart", 1)
	if e := starting(4); !e.Restarted || e.Restarts != 1 {
		t.Errorf("Restart: the attempt's events say restarted %v, %d restarts", e.Restarted, e.Restarts)
	}
	// Stop, then Restart: what was asked for is a restart.
	if err := r.s.Stop(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if err := r.s.Restart(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	restarts("Stop and Restart", 2)
	// The policy's restart after an exit.
	if err := r.s.Signal("a", syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	r.rec.waitMatch(t, "a's attempt 6 ready", func(e supervise.Event) bool {
		return e.Name == "a" && e.Kind == supervise.EventReady && e.Attempt == 6
	})
	restarts("its exit", 3)
	if e := starting(6); !e.Restarted || e.Restarts != 3 {
		t.Errorf("the policy's restart: the attempt's events say restarted %v, %d restarts", e.Restarted, e.Restarts)
	}
}

// A stopped process does not count as an end: Run goes on, and its end
// still stops it once.
func TestControlStoppedUntilEnd(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	r := start(t, serving("a"))
	r.rec.waitFor(t, "a", supervise.EventReady)
	if err := r.s.Stop(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-r.result:
		t.Fatalf("Run returned %v after Stop", err)
	default:
	}
	r.cancel()
	if err := r.wait(t); !errors.Is(err, context.Canceled) {
		t.Fatalf("Run = %v", err)
	}
	if k := r.rec.kinds("a"); !slices.Equal(k, []supervise.EventKind{supervise.EventStarting, supervise.EventRunning,
		supervise.EventReady, supervise.EventHalting, supervise.EventHalted, supervise.EventStopped}) {
		t.Errorf("events of a: %v", k)
	}
}

// A process that ended for good (it can die) cannot be stopped; Start and
// Restart start it again, its attempts counted on.
func TestControlEnded(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	never := supervise.Spec{Name: "never", Cmd: helperCmd("serve", "never"), Ready: supervise.ReadyFD(),
		ReadyTimeout: 200 * time.Millisecond, CanDie: true}
	once := supervise.Spec{Name: "once", Cmd: helperCmd("exit", "0"), CanDie: true}
	r := start(t, serving("a"), never, once)
	r.rec.waitFor(t, "never", supervise.EventEnded)
	r.rec.waitFor(t, "once", supervise.EventEnded)
	if err := r.s.Stop(ctx, "once"); !errors.Is(err, supervise.ErrEnded) {
		t.Errorf("Stop of an ended process = %v, want ErrEnded", err)
	}
	// Started again: it fails its readiness again, and says so.
	err := r.s.Restart(ctx, "never")
	var ee *supervise.ExitError
	if !errors.Is(err, supervise.ErrReadyTimeout) || !errors.As(err, &ee) || ee.Name != "never" {
		t.Errorf("Restart of an ended process that never gets ready = %v, want an *ExitError matching ErrReadyTimeout", err)
	}
	if st := statusOf(t, r.s, "never"); st.State != supervise.StateExited || st.Restarts != 1 {
		t.Errorf("never: %+v, want exited again after 1 restart", st)
	}
	// Started again, it runs (and exits at once: ready once started); a
	// start, not a restart.
	for i := 2; i <= 3; i++ {
		if err := r.s.Start(ctx, "once"); err != nil {
			t.Fatalf("Start of an ended process = %v", err)
		}
		r.rec.waitMatch(t, "once ended again", func(e supervise.Event) bool {
			return e.Name == "once" && e.Kind == supervise.EventEnded && e.Attempt == i
		})
	}
	if st := statusOf(t, r.s, "once"); st.Restarts != 0 {
		t.Errorf("once after two Starts: %+v, want no restart", st)
	}
	if st := statusOf(t, r.s, "a"); st.State != supervise.StateRunning {
		t.Errorf("a: %v, want running all along", st.State)
	}
	r.cancel()
	if err := r.wait(t); !errors.Is(err, context.Canceled) {
		t.Fatalf("Run = %v", err)
	}
}

// Start and Restart answer with the start's failure.
func TestControlRestartNotReady(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	// Ready once, never again: a restart that fails its readiness.
	mark := filepath.Join(t.TempDir(), "once")
	cmd := tether.Command("/bin/sh", "-c", `[ -e "$0" ] || { touch "$0"; echo >&$NOTIFY_FD; }; exec sleep 1000`, mark)
	flaky := supervise.Spec{Name: "flaky", Cmd: cmd, Ready: supervise.ReadyFD(),
		ReadyTimeout: 300 * time.Millisecond, Restart: supervise.OnFailure, Backoff: supervise.Backoff{Initial: time.Hour}}
	r := start(t, flaky)
	r.rec.waitFor(t, "flaky", supervise.EventReady)
	err := r.s.Restart(ctx, "flaky")
	if !errors.Is(err, supervise.ErrReadyTimeout) {
		t.Fatalf("Restart of a process that does not get ready = %v, want ErrReadyTimeout", err)
	}
	if st := statusOf(t, r.s, "flaky"); st.State != supervise.StateBackoff {
		t.Errorf("flaky after the failed restart: %v, want backoff (its policy)", st.State)
	}
	// Start cuts the hour's backoff short.
	done := make(chan error, 1)
	go func() { done <- r.s.Start(ctx, "flaky") }() // ends at the attempt's failure, within ReadyTimeout
	select {
	case err := <-done:
		if !errors.Is(err, supervise.ErrReadyTimeout) {
			t.Errorf("Start = %v, want ErrReadyTimeout", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Start did not cut the backoff short")
	}
}

// After: web starts once db is ready, worker once web is; other, with an
// empty After, at once, even though the Supervisor starts in order.
func TestAfter(t *testing.T) {
	t.Parallel()
	gate := filepath.Join(t.TempDir(), "go")
	// db is ready once the test creates gate: it waits for it with a
	// bounded loop of 10 ms naps (a shell has no inotify).
	db := supervise.Spec{Name: "db", Ready: supervise.ReadyFD(), Cmd: tether.Command("/bin/sh", "-c",
		`i=0; while [ ! -e "$0" ] && [ $i -lt 2000 ]; do sleep 0.01; i=$((i+1)); done; echo >&$NOTIFY_FD; exec sleep 1000`, gate)}
	web := serving("web")
	web.After = []string{"db"}
	worker := serving("worker")
	worker.After = []string{"web"}
	other := serving("other")
	other.After = []string{}
	r := start(t, db, web, worker, other)
	r.rec.waitFor(t, "other", supervise.EventReady)
	for _, n := range []string{"web", "worker"} {
		if st := statusOf(t, r.s, n); st.State != supervise.StatePending {
			t.Errorf("%s before db is ready: %v, want pending", n, st.State)
		}
	}
	if err := r.s.Restart(context.Background(), "web"); !errors.Is(err, supervise.ErrNotRunning) {
		t.Errorf("Restart of a pending process = %v, want ErrNotRunning", err)
	}
	if err := os.WriteFile(gate, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	r.rec.waitFor(t, "worker", supervise.EventReady)
	events := r.rec.all()
	if !(index(events, "db", ready) < index(events, "web", starting) &&
		index(events, "web", ready) < index(events, "worker", starting) &&
		index(events, "other", ready) < index(events, "db", ready)) {
		t.Errorf("events out of order:\n%s", format(events))
	}
}
