package supervise_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/tetherproc/tether"
	"github.com/tetherproc/tether/internal/testproc"
	"github.com/tetherproc/tether/supervise"
)

// supervise on Windows: readiness by IPC and by TCP, a graceful stop by
// StopMessage (Windows has no signals to stop with), and ReadyFD and
// ReadyNotify refused. The Linux suite (helpers_test.go and the rest) needs
// Unix signals and descriptors; this file is Windows' own.

func TestMain(m *testing.M) {
	testproc.Register("win-serve", helperWinServe)
	testproc.Main(m)
}

// codeShutdown is how win-serve exits when told "shutdown": a graceful stop.
const codeShutdown = 42

// helperWinServe says it is ready the way args[0] names — ipc ("ready" on
// its channel) or tcp (it listens on args[1]) — then serves until its
// channel brings "shutdown" (exit 42) or ends (exit 0).
func helperWinServe(args []string) {
	ch, err := tether.ParentChannel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "serve:", err)
		os.Exit(2)
	}
	switch args[0] {
	case "ipc":
		err = ch.Send("ready")
	case "tcp":
		var ln net.Listener
		ln, err = net.Listen("tcp", args[1])
		if err == nil {
			defer ln.Close()
			// Owner: this program. Accepts until the listener closes at
			// exit.
			go func() {
				for {
					c, err := ln.Accept()
					if err != nil {
						return
					}
					_ = c.Close()
				}
			}()
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "serve:", err)
		os.Exit(2)
	}
	for {
		var m any
		if err := ch.Recv(&m); err != nil {
			if errors.Is(err, io.EOF) {
				os.Exit(0)
			}
			os.Exit(3)
		}
		if m == "shutdown" {
			os.Exit(codeShutdown)
		}
	}
}

// winServe is a Cmd running win-serve with a channel, stopped by the
// message "shutdown".
func winServe(args ...string) *tether.Cmd {
	path, argv, env := testproc.Command("win-serve", args...)
	return &tether.Cmd{Path: path, Args: argv, Env: env, IPC: true, StopMessage: "shutdown", StopTimeout: 10 * time.Second}
}

// freeLoopback is a loopback TCP address nothing listens on now. (On Unix
// the tests pass the child a bound socket; a Go child on Windows has no way
// to take one over, so the port is closed again and reused: a window in
// which another program could take it, on a loopback port the system just
// chose.)
func freeLoopback(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr
}

func TestReadinessWindows(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		cmd  func(t *testing.T) (*tether.Cmd, supervise.Readiness)
	}{
		{"ipc", func(*testing.T) (*tether.Cmd, supervise.Readiness) {
			return winServe("ipc"), supervise.ReadyIPC()
		}},
		{"tcp", func(t *testing.T) (*tether.Cmd, supervise.Readiness) {
			addr := freeLoopback(t)
			return winServe("tcp", addr), supervise.ReadyTCP(addr)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cmd, ready := tc.cmd(t)
			var mu sync.Mutex
			var events []supervise.Event
			readyB := make(chan struct{})
			var s supervise.Supervisor
			s.Observer = func(e supervise.Event) {
				mu.Lock()
				defer mu.Unlock()
				events = append(events, e)
				if e.Name == "b" && e.Kind == supervise.EventReady {
					close(readyB)
				}
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := make(chan error, 1)
			go func() { // ends when Run returns: after cancel, everything stopped
				done <- s.Run(ctx,
					supervise.Spec{Name: "a", Cmd: cmd, Ready: ready, ReadyTimeout: 20 * time.Second},
					supervise.Spec{Name: "b", Cmd: winServe("ipc")},
				)
			}()
			select {
			case <-readyB:
			case err := <-done:
				t.Fatalf("Run ended early: %v", err)
			case <-time.After(30 * time.Second):
				t.Fatal("b not ready after 30s")
			}
			cancel()
			select {
			case err := <-done:
				if !errors.Is(err, context.Canceled) {
					t.Fatalf("Run = %v, want context.Canceled", err)
				}
			case <-time.After(30 * time.Second):
				t.Fatal("Run did not return 30s after cancel")
			}
			mu.Lock()
			defer mu.Unlock()
			at := func(name string, kind supervise.EventKind) int {
				for i, e := range events {
					if e.Name == name && e.Kind == kind {
						return i
					}
				}
				t.Fatalf("no %s event for %s", kind, name)
				return -1
			}
			if at("a", supervise.EventReady) > at("b", supervise.EventStarting) {
				t.Errorf("b started before a was ready")
			}
			for _, name := range []string{"a", "b"} {
				if e := events[at(name, supervise.EventStopped)]; e.Exit == nil || e.Exit.Code != codeShutdown {
					t.Errorf("%s stopped with %v, want status %d (its StopMessage)", name, e.Exit, codeShutdown)
				}
			}
		})
	}
}

// ReadyFD and ReadyNotify need a descriptor or a unixgram socket, which a
// Windows child cannot be given: Run refuses them at once, with an error
// that says so.
func TestReadyUnixOnly(t *testing.T) {
	t.Parallel()
	for _, ready := range []supervise.Readiness{supervise.ReadyFD(), supervise.ReadyNotify()} {
		var s supervise.Supervisor
		err := s.Run(context.Background(), supervise.Spec{Name: "a", Cmd: winServe("ipc"), Ready: ready})
		if !errors.Is(err, errors.ErrUnsupported) {
			t.Errorf("%v: Run = %v, want errors.ErrUnsupported", ready, err)
		}
	}
}
