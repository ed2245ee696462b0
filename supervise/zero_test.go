package supervise_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tetherproc/tether/supervise"
)

// Every exported method on every zero value of the package returns at once,
// without a panic, with its documented zero result or a clear error.
func TestZeroValues(t *testing.T) {
	t.Parallel()
	want := func(ok bool, format string, args ...any) error {
		if ok {
			return nil
		}
		return fmt.Errorf(format, args...)
	}
	var s supervise.Supervisor
	var r supervise.Restarts
	var nilRestarts *supervise.Restarts
	var policy supervise.Policy
	var ee supervise.ExitError
	var kind supervise.EventKind
	var state supervise.State
	calls := []struct {
		name string
		call func() error
	}{
		{"Supervisor.Run", func() error {
			err := s.Run(context.Background())
			return want(err == nil, "Run of nothing: %v", err)
		}},
		{"Supervisor.Signal", func() error {
			err := s.Signal("x", syscall.SIGTERM)
			return want(errors.Is(err, supervise.ErrNotRunning), "Signal: %v, want ErrNotRunning", err)
		}},
		{"Supervisor.Stop", func() error {
			err := s.Stop(context.Background(), "x")
			return want(errors.Is(err, supervise.ErrNotRunning), "Stop: %v, want ErrNotRunning", err)
		}},
		{"Supervisor.Start", func() error {
			err := s.Start(context.Background(), "x")
			return want(errors.Is(err, supervise.ErrNotRunning), "Start: %v, want ErrNotRunning", err)
		}},
		{"Supervisor.Restart", func() error {
			err := s.Restart(context.Background(), "x")
			return want(errors.Is(err, supervise.ErrNotRunning), "Restart: %v, want ErrNotRunning", err)
		}},
		{"Supervisor.Status", func() error { return want(s.Status() == nil, "Status: %v, want nil", s.Status()) }},
		{"State.String", func() error { return want(state.String() == "pending", "%q", state.String()) }},
		{"State.MarshalText", func() error {
			b, err := state.MarshalText()
			return want(string(b) == "pending" && err == nil, "%q %v", b, err)
		}},
		{"Restarts.Next", func() error {
			d, again, err := r.Next(nil, 0)
			return want(d == 0 && !again && err == nil, "Next: %v %v %v; the zero value never restarts", d, again, err)
		}},
		{"Restarts.Next/nil", func() error {
			d, again, err := nilRestarts.Next(nil, 0)
			return want(d == 0 && !again && err == nil, "Next: %v %v %v", d, again, err)
		}},
		{"Policy.String", func() error { return want(policy.String() == "never", "%q", policy.String()) }},
		{"Policy.MarshalText", func() error {
			b, err := policy.MarshalText()
			return want(string(b) == "never" && err == nil, "%q %v", b, err)
		}},
		{"Policy.UnmarshalText", func() error {
			var p supervise.Policy
			err := p.UnmarshalText(nil)
			return want(err != nil && strings.HasPrefix(err.Error(), "tether: "), "UnmarshalText of nothing: %v", err)
		}},
		{"ExitError.Error", func() error {
			return want(strings.HasPrefix(ee.Error(), "tether: "), "%q", ee.Error())
		}},
		{"ExitError.Unwrap", func() error { return want(ee.Unwrap() == nil, "%v", ee.Unwrap()) }},
		{"EventKind.String", func() error { return want(kind.String() == "unknown", "%q", kind.String()) }},
	}
	names := map[string]bool{}
	for _, c := range calls {
		names[c.name] = true
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			res := make(chan error, 1)
			// Owner: this subtest. Ends when the call returns; one that
			// hangs fails the test after 5 s.
			go func() {
				defer func() {
					if r := recover(); r != nil {
						res <- fmt.Errorf("panic: %v", r)
					}
				}()
				res <- c.call()
			}()
			select {
			case err := <-res:
				if err != nil {
					t.Error(err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("no return after 5s")
			}
		})
	}
	// The table covers every exported method: a new one must be added.
	for _, v := range []any{
		new(supervise.Supervisor), new(supervise.Restarts), new(supervise.Policy),
		new(supervise.ExitError), new(supervise.EventKind), new(supervise.Event), new(supervise.State), new(supervise.Status),
		new(supervise.Spec), new(supervise.Backoff), new(supervise.Limit),
	} {
		typ := reflect.TypeOf(v)
		for i := range typ.NumMethod() {
			if name := typ.Elem().Name() + "." + typ.Method(i).Name; !names[name] {
				t.Errorf("%s is not called on a zero value here", name)
			}
		}
	}
}
