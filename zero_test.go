package tether_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tetherproc/tether"
)

// zeroCall is one exported method called on a zero value: it returns nil when
// the result is the documented one, or what was wrong.
type zeroCall struct {
	name string // Type.Method, or Type.Method/nil for a nil pointer
	call func() error
}

// isClosed reports whether c is closed (a nil channel is not).
func isClosed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

func want(ok bool, format string, args ...any) error {
	if ok {
		return nil
	}
	return fmt.Errorf(format, args...)
}

// wantErr checks that err is an error starting with "tether: " that matches
// every target.
func wantErr(err error, targets ...error) error {
	if err == nil || !strings.HasPrefix(err.Error(), "tether: ") {
		return fmt.Errorf("error %v, want one starting with \"tether: \"", err)
	}
	for _, target := range targets {
		if !errors.Is(err, target) {
			return fmt.Errorf("error %q does not match %v", err, target)
		}
	}
	return nil
}

// wantText checks an Error or String result: not empty, and starting with
// prefix.
func wantText(s, prefix string) error {
	return want(s != "" && strings.HasPrefix(s, prefix), "text %q, want it to start with %q", s, prefix)
}

// processCalls are the calls on a Process Cmd.Start did not return.
func processCalls(kind string, p *tether.Process) []zeroCall {
	n := func(m string) string { return "Process." + m + kind }
	return []zeroCall{
		{n("PID"), func() error { return want(p.PID() == 0, "PID %d", p.PID()) }},
		{n("Containment"), func() error { return want(p.Containment() == tether.ContainAuto, "%v", p.Containment()) }},
		{n("Stdout"), func() error { return want(p.Stdout() == nil, "Stdout not nil") }},
		{n("Stderr"), func() error { return want(p.Stderr() == nil, "Stderr not nil") }},
		{n("Stdin"), func() error { return want(p.Stdin() == nil, "Stdin not nil") }},
		{n("Channel"), func() error { return want(p.Channel() == nil, "Channel not nil") }},
		{n("Exit"), func() error { return want(p.Exit() == nil, "Exit %v", p.Exit()) }},
		{n("Exited"), func() error { return want(isClosed(p.Exited()), "Exited not closed") }},
		{n("Done"), func() error { return want(isClosed(p.Done()), "Done not closed") }},
		{n("Wait"), func() error {
			st, err := p.Wait()
			return errors.Join(want(st == nil, "Exit %v", st), wantErr(err, tether.ErrNotStarted))
		}},
		{n("Signal"), func() error { return wantErr(p.Signal(syscall.SIGTERM), tether.ErrNotStarted) }},
		{n("Stop"), func() error { return wantErr(p.Stop(), tether.ErrNotStarted) }},
		{n("Kill"), func() error { return wantErr(p.Kill(), tether.ErrNotStarted) }},
	}
}

// channelCalls are the calls on no channel: a zero one, or the nil one
// Process.Channel returns without Cmd.IPC.
func channelCalls(kind string, ch *tether.Channel) []zeroCall {
	n := func(m string) string { return "Channel." + m + kind }
	none := func(err error) error { return wantErr(err, tether.ErrNoChannel, tether.ErrChannelClosed) }
	return []zeroCall{
		{n("Send"), func() error { return none(ch.Send("x")) }},
		{n("SendRaw"), func() error { return none(ch.SendRaw(json.RawMessage(`"x"`))) }},
		{n("Flush"), func() error { return none(ch.Flush()) }},
		{n("Recv"), func() error { return none(ch.Recv(nil)) }},
		{n("RecvContext"), func() error { return none(ch.RecvContext(context.Background(), nil)) }},
		{n("RecvRaw"), func() error {
			m, err := ch.RecvRaw()
			return errors.Join(want(m == nil, "message %s", m), none(err))
		}},
		{n("Close"), func() error { return want(ch.Close() == nil, "Close failed") }},
		{n("Done"), func() error { return want(isClosed(ch.Done()), "Done not closed") }},
		{n("Context"), func() error {
			ctx, cancel := ch.Context(context.Background())
			defer cancel()
			return errors.Join(want(isClosed(ctx.Done()), "context not cancelled"), none(context.Cause(ctx)))
		}},
		{n("SetMaxMessageSize"), func() error { ch.SetMaxMessageSize(10); return nil }},
	}
}

// zeroCalls are every exported method of every type of the package, called
// on the type's zero value (and on nil where the API hands out nil).
func zeroCalls() []zeroCall {
	var calls []zeroCall
	calls = append(calls, processCalls("", new(tether.Process))...)
	calls = append(calls, processCalls("/nil", nil)...)
	calls = append(calls, channelCalls("", new(tether.Channel))...)
	calls = append(calls, channelCalls("/nil", nil)...)

	var cmd tether.Cmd
	startErr := func(err error) error {
		var se *tether.StartError
		return errors.Join(want(errors.As(err, &se), "error %v, want a *StartError", err), wantErr(err))
	}
	var exit tether.Exit
	var nilExit *tether.Exit
	var exitErr tether.ExitError
	var se tether.StartError
	var me tether.MessageError
	var stdio tether.Stdio
	var level tether.Containment
	var kind tether.EventKind
	calls = append(calls,
		zeroCall{"Cmd.Start", func() error {
			p, err := cmd.Start(context.Background())
			return errors.Join(want(p == nil, "a Process"), startErr(err))
		}},
		zeroCall{"Cmd.Run", func() error {
			st, err := cmd.Run(context.Background())
			return errors.Join(want(st == nil, "an Exit"), startErr(err))
		}},
		zeroCall{"Cmd.Output", func() error { _, err := cmd.Output(context.Background()); return startErr(err) }},
		zeroCall{"Cmd.CombinedOutput", func() error { _, err := cmd.CombinedOutput(context.Background()); return startErr(err) }},
		zeroCall{"Cmd.String", func() error { return want(cmd.String() == "", "%q", cmd.String()) }},
		zeroCall{"Exit.Success", func() error { return want(exit.Success(), "a zero Exit is status 0") }},
		zeroCall{"Exit.Duration", func() error { return want(exit.Duration() == 0, "%v", exit.Duration()) }},
		zeroCall{"Exit.String", func() error { return want(exit.String() == "exit status 0", "%q", exit.String()) }},
		zeroCall{"Exit.Success/nil", func() error { return want(!nilExit.Success(), "a nil Exit succeeded") }},
		zeroCall{"Exit.Duration/nil", func() error { return want(nilExit.Duration() == 0, "%v", nilExit.Duration()) }},
		zeroCall{"Exit.String/nil", func() error { return want(nilExit.String() == "<nil>", "%q", nilExit.String()) }},
		zeroCall{"ExitError.Error", func() error { return wantText(exitErr.Error(), "tether: ") }},
		zeroCall{"ExitError.Success", func() error { return want(!exitErr.Success(), "no Exit, yet success") }},
		zeroCall{"ExitError.Duration", func() error { return want(exitErr.Duration() == 0, "%v", exitErr.Duration()) }},
		zeroCall{"ExitError.String", func() error { return wantText(exitErr.String(), "<nil>") }},
		zeroCall{"StartError.Error", func() error { return wantText(se.Error(), "tether: ") }},
		zeroCall{"StartError.Unwrap", func() error { return want(se.Unwrap() == nil, "%v", se.Unwrap()) }},
		zeroCall{"MessageError.Error", func() error { return wantText(me.Error(), "tether: ") }},
		zeroCall{"MessageError.Unwrap", func() error { return want(me.Unwrap() == nil, "%v", me.Unwrap()) }},
		zeroCall{"Stdio.String", func() error { return want(stdio.String() == "Null()", "%q", stdio.String()) }},
		zeroCall{"Containment.String", func() error { return want(level.String() == "auto", "%q", level.String()) }},
		zeroCall{"EventKind.String", func() error { return want(kind.String() == "unknown", "%q", kind.String()) }},
		// Lines of Process.Stdout when the stream is not a Pipe(): a nil
		// reader, whose first read would panic.
		zeroCall{"Lines/nil", func() error {
			var items []error
			for line, err := range tether.Lines(new(tether.Process).Stdout(), 0) {
				items = append(items, errors.Join(want(line == "", "line %q", line), wantErr(err)))
			}
			return errors.Join(want(len(items) == 1, "%d items, want one error", len(items)), errors.Join(items...))
		}},
	)
	return calls
}

// Every exported method on every zero value returns at once, without a
// panic, with its documented zero result or a "tether: " error that says
// which condition it is (errors.Is). A Process that was never started used
// to block Wait forever and panic in Kill and Signal; a nil Channel (IPC not
// set) panicked in Send and blocked Recv forever.
func TestZeroValues(t *testing.T) {
	t.Parallel()
	calls := zeroCalls()
	names := map[string]bool{}
	for _, c := range calls {
		names[c.name] = true
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			res := make(chan error, 1)
			// Owner: this subtest. Ends when the call returns; a call that
			// hangs fails the test after 5 s and leaves it (the leak check
			// then reports it too).
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
		new(tether.Process), new(tether.Channel), new(tether.Cmd), new(tether.Exit),
		new(tether.ExitError), new(tether.StartError), new(tether.MessageError),
		new(tether.Stdio), new(tether.Containment), new(tether.EventKind),
		new(tether.Event), new(tether.Limits), new(tether.Report), new(tether.LevelReport),
	} {
		typ := reflect.TypeOf(v)
		for i := range typ.NumMethod() {
			name := typ.Elem().Name() + "." + typ.Method(i).Name
			if !names[name] {
				t.Errorf("%s is not called on a zero value here", name)
			}
		}
	}
}
