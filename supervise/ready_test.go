//go:build linux

package supervise_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tetherproc/tether"
	"github.com/tetherproc/tether/supervise"
)

// Each way of saying "ready": the next process starts only after it, and
// the one that said it is stopped gracefully at the end.
func TestReadiness(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		setup func(t *testing.T) (*tether.Cmd, supervise.Readiness)
	}{
		{"fd", func(*testing.T) (*tether.Cmd, supervise.Readiness) {
			return helperCmd("serve", "fd"), supervise.ReadyFD()
		}},
		{"fd-after-extra-files", func(t *testing.T) (*tether.Cmd, supervise.Readiness) {
			c := helperCmd("serve", "fd")
			f, err := os.Open(os.DevNull)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = f.Close() })
			c.ExtraFiles = []*os.File{f} // NOTIFY_FD is 4 then
			return c, supervise.ReadyFD()
		}},
		{"notify", func(*testing.T) (*tether.Cmd, supervise.Readiness) {
			return helperCmd("serve", "notify"), supervise.ReadyNotify()
		}},
		{"ipc", func(*testing.T) (*tether.Cmd, supervise.Readiness) {
			c := helperCmd("serve", "ipc")
			c.IPC = true
			return c, supervise.ReadyIPC()
		}},
		{"tcp", func(t *testing.T) (*tether.Cmd, supervise.Readiness) {
			sock, addr := boundTCP(t)
			c := helperCmd("serve", "tcp")
			c.ExtraFiles = []*os.File{sock}
			return c, supervise.ReadyTCP(addr)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cmd, rd := tt.setup(t)
			r := start(t,
				supervise.Spec{Name: "a", Cmd: cmd, Ready: rd, ReadyTimeout: 10 * time.Second},
				serving("b"),
			)
			e := r.rec.waitFor(t, "a", ready)
			r.rec.waitFor(t, "b", ready)
			if tt.name == "ipc" {
				// What the child sent before "ready" was consumed; what
				// follows is the caller's.
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				var v any
				if err := e.Process.Channel().RecvContext(ctx, &v); err != nil || v != "after" {
					t.Errorf("Recv after ready = %v, %v; want \"after\"", v, err)
				}
			}
			r.cancel()
			if err := r.wait(t); !errors.Is(err, context.Canceled) {
				t.Fatalf("Run = %v, want context.Canceled", err)
			}
			events := r.rec.all()
			if index(events, "a", ready) > index(events, "b", starting) {
				t.Errorf("b started before a was ready:\n%s", format(events))
			}
			if e := events[index(events, "a", stopped)]; e.Exit == nil || e.Exit.Code != codeTerm {
				t.Errorf("a stopped with %v, want status %d", e.Exit, codeTerm)
			}
		})
	}
}

// A process that fails to become ready is a failed start: it is stopped, and
// the next one never starts.
func TestNotReady(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		cmd     *tether.Cmd
		ready   supervise.Readiness
		timeout time.Duration
		code    int   // how the process ended; -1: SIGTERM, trapped (status 42) or not
		is      error // what the error matches
		not     error // what it must not match
	}{
		// The stop may come before the child has its handler in place.
		{"timeout", helperCmd("serve", "never"), supervise.ReadyFD(), 100 * time.Millisecond,
			-1, supervise.ErrReadyTimeout, nil},
		{"fd-closed", helperCmd("serve", "fd-close"), supervise.ReadyFD(), time.Minute,
			codeTerm, supervise.ErrNotReady, supervise.ErrReadyTimeout},
		{"exited-first", helperCmd("exit", "5"), supervise.ReadyNotify(), time.Minute,
			5, supervise.ErrNotReady, supervise.ErrReadyTimeout},
		{"ipc-exited-first", func() *tether.Cmd { c := helperCmd("exit", "5"); c.IPC = true; return c }(), supervise.ReadyIPC(), time.Minute,
			5, supervise.ErrNotReady, supervise.ErrReadyTimeout},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := start(t,
				supervise.Spec{Name: "a", Cmd: tt.cmd, Ready: tt.ready, ReadyTimeout: tt.timeout},
				serving("b"),
			)
			err := r.wait(t)
			var ee *supervise.ExitError
			if !errors.As(err, &ee) || ee.Name != "a" {
				t.Fatalf("Run = %v, want a's *ExitError", err)
			}
			if !errors.Is(err, tt.is) || tt.not != nil && errors.Is(err, tt.not) {
				t.Errorf("Run = %v: want it to match %v and not %v", err, tt.is, tt.not)
			}
			switch {
			case ee.Exit == nil:
				t.Errorf("no exit, want one")
			case tt.code < 0:
				if ee.Exit.Code != codeTerm && ee.Exit.Signal != syscall.SIGTERM {
					t.Errorf("exit %v, want SIGTERM", ee.Exit)
				}
			case ee.Exit.Code != tt.code:
				t.Errorf("exit %v, want status %d", ee.Exit, tt.code)
			}
			if kinds := r.rec.kinds("b"); len(kinds) != 0 {
				t.Errorf("b has events %v; it should never start", kinds)
			}
			t.Log(err)
		})
	}
}

// Cancelling while a process has not said it is ready stops it.
func TestCancelBeforeReady(t *testing.T) {
	t.Parallel()
	r := start(t, supervise.Spec{Name: "a", Cmd: helperCmd("serve", "never"), Ready: supervise.ReadyNotify(), ReadyTimeout: time.Hour})
	e := r.rec.waitFor(t, "a", runningK)
	sock := envOf(t, e.Process.PID(), supervise.EnvNotifySocket)
	r.cancel()
	if err := r.wait(t); !errors.Is(err, context.Canceled) {
		t.Fatalf("Run = %v, want context.Canceled", err)
	}
	want := []supervise.EventKind{starting, runningK, stopping, stopped}
	if got := r.rec.kinds("a"); !slices.Equal(got, want) {
		t.Errorf("events %v, want %v", got, want)
	}
	// The private socket directory is gone with the attempt.
	if _, err := os.Stat(filepath.Dir(sock)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("notify socket directory %s: %v, want it removed", filepath.Dir(sock), err)
	}
}

// A restart after a failed readiness gets a fresh notification channel.
func TestReadyAfterRestart(t *testing.T) {
	t.Parallel()
	// The first attempt closes its descriptor (a failure); so does every
	// one: the point is that each attempt gets a working descriptor and
	// the failure is reported each time.
	r := start(t, supervise.Spec{
		Name: "a", Cmd: helperCmd("serve", "fd-close"), Ready: supervise.ReadyFD(),
		Restart: supervise.OnFailure, Backoff: fast, Limit: supervise.Limit{Burst: 2},
	})
	err := r.wait(t)
	if !errors.Is(err, supervise.ErrRestartLimit) || !errors.Is(err, supervise.ErrNotReady) {
		t.Fatalf("Run = %v, want ErrRestartLimit after ErrNotReady", err)
	}
	n := 0
	for _, e := range r.rec.all() {
		if e.Kind == exited {
			n++
			if !errors.Is(e.Err, supervise.ErrNotReady) {
				t.Errorf("attempt %d: %v, want ErrNotReady", e.Attempt, e.Err)
			}
		}
	}
	if n != 3 {
		t.Errorf("%d attempts, want 3", n)
	}
}

// envOf reads variable key from the environment of process pid.
func envOf(t *testing.T, pid int, key string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "environ"))
	if err != nil {
		t.Fatal(err)
	}
	for kv := range strings.SplitSeq(string(b), "\x00") {
		if v, ok := strings.CutPrefix(kv, key+"="); ok {
			return v
		}
	}
	t.Fatalf("pid %d has no %s", pid, key)
	return ""
}
