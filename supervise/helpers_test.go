//go:build linux

package supervise_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tetherproc/tether"
	"github.com/tetherproc/tether/internal/testproc"
	"github.com/tetherproc/tether/supervise"
)

// The test binary is also every child program the tests need.
func TestMain(m *testing.M) {
	testproc.Register("exit", helperExit)
	testproc.Register("serve", helperServe)
	testproc.Main(m)
}

// helperExit exits with status args[0], after args[1] (a duration) if given.
func helperExit(args []string) {
	code, _ := strconv.Atoi(args[0])
	if len(args) > 1 {
		d, _ := time.ParseDuration(args[1])
		time.Sleep(d) // the run time under test, not a wait for something
	}
	os.Exit(code)
}

// Exit statuses of helperServe.
const (
	codeTerm = 42 // it got SIGTERM: a graceful stop
	codeUsr1 = 7  // it got SIGUSR1: the test asks it to end by itself
)

// helperServe says it is ready the way args[0] names, then runs until SIGTERM
// (exit 42) or SIGUSR1 (exit 7). Ways: never (it does not say), fd
// (a newline to NOTIFY_FD), fd-close (closes NOTIFY_FD without one), notify
// (READY=1 on NOTIFY_SOCKET, after another datagram), ipc ("hello", then
// "ready", then "after" on the channel), tcp (listen(2) on descriptor 3, a
// bound TCP socket).
func helperServe(args []string) {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGUSR1) // before saying ready: the test may signal at once
	fail := func(err error) {
		fmt.Fprintln(os.Stderr, "serve:", err)
		os.Exit(2)
	}
	notifyFD := func() *os.File {
		fd, err := strconv.Atoi(os.Getenv(supervise.EnvNotifyFD))
		if err != nil {
			fail(err)
		}
		return os.NewFile(uintptr(fd), "notify")
	}
	switch args[0] {
	case "never":
	case "fd":
		f := notifyFD()
		if _, err := f.WriteString("\n"); err != nil {
			fail(err)
		}
		_ = f.Close()
	case "fd-close":
		_ = notifyFD().Close()
	case "notify":
		addr := &net.UnixAddr{Name: os.Getenv(supervise.EnvNotifySocket), Net: "unixgram"}
		c, err := net.DialUnix("unixgram", nil, addr)
		if err != nil {
			fail(err)
		}
		for _, m := range []string{"STATUS=starting up", "MAINPID=1\nREADY=1\n"} {
			if _, err := c.Write([]byte(m)); err != nil {
				fail(err)
			}
		}
		_ = c.Close()
	case "ipc":
		ch, err := tether.ParentChannel()
		if err != nil {
			fail(err)
		}
		for _, m := range []string{"hello", "ready", "after"} {
			if err := ch.Send(m); err != nil {
				fail(err)
			}
		}
		if err := ch.Flush(); err != nil {
			fail(err)
		}
	case "tcp":
		if err := syscall.Listen(3, 8); err != nil {
			fail(err)
		}
	default:
		fail(fmt.Errorf("no way %q", args[0]))
	}
	if <-sigs == syscall.SIGTERM {
		os.Exit(codeTerm)
	}
	os.Exit(codeUsr1)
}

// helperCmd is a Cmd that runs program name from the test binary, at the
// level TETHER_TEST_LEVEL names (group, keeper, cgroup), ContainAuto if
// unset. Stops are bounded: the helpers end at once on SIGTERM.
func helperCmd(name string, args ...string) *tether.Cmd {
	path, argv, env := testproc.Command(name, args...)
	c := &tether.Cmd{Path: path, Args: argv, Env: env, StopTimeout: 5 * time.Second}
	switch os.Getenv("TETHER_TEST_LEVEL") {
	case "group":
		c.Containment = tether.ContainGroup
	case "keeper":
		c.Containment = tether.ContainKeeper
	case "cgroup":
		c.Containment = tether.ContainCgroup
	}
	return c
}

// serving is a Spec for a helper that runs until signalled. It says when
// it is ready (ReadyFD), which it does once its signal handlers are in
// place: a signal sent after EventReady reaches them.
func serving(name string) supervise.Spec {
	return supervise.Spec{Name: name, Cmd: helperCmd("serve", "fd"), Ready: supervise.ReadyFD()}
}

// fast is a backoff for tests: 1 ms, doubling, no jitter.
var fast = supervise.Backoff{Initial: time.Millisecond, Jitter: -1}

// recorder is an Observer that keeps every event and lets a test wait for
// one.
type recorder struct {
	mu      sync.Mutex
	events  []supervise.Event
	changed chan struct{} // closed and replaced at each event
}

func newRecorder() *recorder { return &recorder{changed: make(chan struct{})} }

func (r *recorder) observe(e supervise.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
	close(r.changed)
	r.changed = make(chan struct{})
}

func (r *recorder) all() []supervise.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events)
}

// waitFor waits up to 10 s for the first event of name and kind.
func (r *recorder) waitFor(t testing.TB, name string, kind supervise.EventKind) supervise.Event {
	t.Helper()
	return r.waitMatch(t, fmt.Sprintf("%s %s", name, kind), func(e supervise.Event) bool {
		return e.Name == name && e.Kind == kind
	})
}

// waitMatch waits up to 10 s for the first event that match accepts.
func (r *recorder) waitMatch(t testing.TB, what string, match func(supervise.Event) bool) supervise.Event {
	t.Helper()
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	for {
		r.mu.Lock()
		if i := slices.IndexFunc(r.events, match); i >= 0 {
			e := r.events[i]
			r.mu.Unlock()
			return e
		}
		changed := r.changed
		r.mu.Unlock()
		select {
		case <-changed:
		case <-deadline.C:
			t.Fatalf("no %s event after 10s; events:\n%s", what, format(r.all()))
		}
	}
}

// kinds lists the kinds of name's events, in order.
func (r *recorder) kinds(name string) []supervise.EventKind {
	var out []supervise.EventKind
	for _, e := range r.all() {
		if e.Name == name {
			out = append(out, e.Kind)
		}
	}
	return out
}

// index is the position of the first event of name and kind among all, or -1.
func index(events []supervise.Event, name string, kind supervise.EventKind) int {
	return slices.IndexFunc(events, func(e supervise.Event) bool { return e.Name == name && e.Kind == kind })
}

func format(events []supervise.Event) string {
	var b strings.Builder
	for _, e := range events {
		fmt.Fprintf(&b, "  %s %s attempt=%d pid=%d", e.Name, e.Kind, e.Attempt, e.PID)
		if e.Exit != nil {
			fmt.Fprintf(&b, " exit=%q", e.Exit)
		}
		if e.Delay != 0 {
			fmt.Fprintf(&b, " delay=%v", e.Delay)
		}
		if e.Err != nil {
			fmt.Fprintf(&b, " err=%q", e.Err)
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// running is one Run in a goroutine.
type running struct {
	s      *supervise.Supervisor
	rec    *recorder
	cancel context.CancelFunc
	result chan error
}

// start runs specs in a goroutine with a recorder as the Observer. When the
// test ends, Run is cancelled and must return within 20 s.
func start(t *testing.T, specs ...supervise.Spec) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{s: &supervise.Supervisor{}, rec: newRecorder(), cancel: cancel, result: make(chan error, 1)}
	r.s.Observer = r.rec.observe
	// Owner: the test. Ends when Run returns: by itself, or when the
	// cleanup below cancels it.
	go func() { r.result <- r.s.Run(ctx, specs...) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-r.result:
			r.result <- err // for a wait after this one
		case <-time.After(20 * time.Second):
			t.Errorf("Run did not return within 20s of the end of the test")
		}
	})
	return r
}

// wait waits up to 20 s for Run to return.
func (r *running) wait(t *testing.T) error {
	t.Helper()
	select {
	case err := <-r.result:
		r.result <- err
		return err
	case <-time.After(20 * time.Second):
		t.Fatalf("Run did not return within 20s; events:\n%s", format(r.rec.all()))
		return nil
	}
}

// boundTCP returns a TCP socket bound to a free loopback port, not yet
// listening, and its address: a child that gets it can listen(2) on it, and
// nobody else can take the port meanwhile.
func boundTCP(t *testing.T) (*os.File, string) {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	f := os.NewFile(uintptr(fd), "tcp")
	t.Cleanup(func() { _ = f.Close() })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	return f, fmt.Sprintf("127.0.0.1:%d", sa.(*syscall.SockaddrInet4).Port)
}
