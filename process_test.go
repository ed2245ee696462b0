package tether_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/tetherproc/tether"
	"github.com/tetherproc/tether/internal/testproc"
)

// events records what an observer saw.
type events struct {
	mu   sync.Mutex
	list []tether.Event
}

func (e *events) observe(ev tether.Event) {
	e.mu.Lock()
	e.list = append(e.list, ev)
	e.mu.Unlock()
}

// errs lists the events' errors.
func (e *events) errs() []error {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []error
	for _, ev := range e.list {
		if ev.Err != nil {
			out = append(out, ev.Err)
		}
	}
	return out
}

func (e *events) kinds() []tether.EventKind {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]tether.EventKind, len(e.list))
	for i, ev := range e.list {
		out[i] = ev.Kind
	}
	return out
}

func TestEchoExitClose(t *testing.T) {
	t.Parallel()
	var ev events
	c := helperCmd("echo", "hello", "world")
	c.Stdout = tether.Pipe()
	c.Observer = ev.observe
	p := start(t, c)
	out, err := io.ReadAll(p.Stdout())
	if err != nil {
		t.Fatal(err)
	}
	st, err := p.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != "hello world\n" {
		t.Errorf("stdout = %q", out)
	}
	if !st.Success() || st.Code != 0 || st.Signal != nil || st.PID != p.PID() {
		t.Errorf("exit = %+v", st)
	}
	if st.Ended.Before(st.Started) || (exitFiguresKnown && (st.UserTime+st.SystemTime <= 0 || st.MaxRSS <= 0)) {
		t.Errorf("exit figures: %+v (started %v, ended %v, user %v, system %v, max RSS %d)", st, st.Started, st.Ended, st.UserTime, st.SystemTime, st.MaxRSS)
	}
	want := []tether.EventKind{tether.EventSpawn, tether.EventExit, tether.EventClose}
	if got := ev.kinds(); !equalKinds(got, want) {
		t.Errorf("events = %v, want %v", got, want)
	}
}

func equalKinds(a, b []tether.EventKind) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestExitCodes(t *testing.T) {
	t.Parallel()
	for _, code := range []int{0, 1, 2, 42, 126, 127, 255} {
		st, err := helperCmd("exit", itoa(code)).Run(context.Background())
		if st == nil || st.Code != code {
			t.Errorf("exit %d: got %+v", code, st)
		}
		var ee *tether.ExitError
		if code == 0 && err != nil || code != 0 && !errors.As(err, &ee) {
			t.Errorf("exit %d: err = %v", code, err)
		}
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

// The seed: Node's ChildProcess never emitted 'close' when stdout had been
// read once before the kill (nodejs/node#4049). Start yes, read once, kill:
// Done must come, every time.
func TestIssue4049ReadOnceKillClose(t *testing.T) {
	t.Parallel()
	n := 1000
	if testing.Short() {
		n = 100
	}
	for i := 0; i < n; i++ {
		c := helperCmd("yes")
		c.Stdout = tether.Pipe()
		p, err := c.Start(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 16)
		if _, err := p.Stdout().Read(buf); err != nil {
			t.Fatalf("cycle %d: read: %v", i, err)
		}
		if err := p.Kill(); err != nil {
			t.Fatalf("cycle %d: kill: %v", i, err)
		}
		select {
		case <-p.Done():
		case <-time.After(5 * time.Second):
			t.Fatalf("cycle %d: no close 5s after kill", i)
		}
		if st, _ := p.Wait(); st.Signal != syscall.SIGKILL {
			t.Fatalf("cycle %d: exit %v", i, st)
		}
	}
}

// A reader that stops reading, or never starts, does not hold close back, and
// loses nothing if it comes back and reads to EOF.
func TestCloseUnreadAndHalfRead(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name       string
		size, read int
	}{
		// The child can exit only once what it wrote fits in the pipe
		// (64 KiB on Unix): so it writes half that, or we read all but
		// three quarters of it.
		{"unread", pipeCapacity / 2, 0},
		{"half-read", 300 << 10, 300<<10 - pipeCapacity*3/4},
		{"all-read", 300 << 10, 300 << 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := helperCmd("bytes", itoa(tc.size))
			c.Stdout = tether.Pipe()
			c.DrainTimeout = time.Minute // close must come from EOF, not the bound
			p := start(t, c)
			got := make([]byte, tc.read, tc.size)
			if _, err := io.ReadFull(p.Stdout(), got); err != nil {
				t.Fatal(err)
			}
			waitDone(t, p, 10*time.Second)
			if _, err := p.Wait(); err != nil {
				t.Fatalf("Wait: %v", err)
			}
			rest, err := io.ReadAll(p.Stdout())
			if err != nil {
				t.Fatalf("read after close: %v", err)
			}
			got = append(got, rest...)
			want := make([]byte, tc.size)
			pattern(want, 0)
			if !bytes.Equal(got, want) {
				t.Fatalf("got %d bytes, not the %d written", len(got), tc.size)
			}
		})
	}
}

// Arguments, environment and directory are bytes on Unix, not UTF-8: they
// reach the child unchanged at every level (the keeper's JSON protocol once
// replaced such bytes with U+FFFD).
func TestArgsNotUTF8(t *testing.T) {
	t.Parallel()
	skipOnWindows(t, "arguments and environment are UTF-16 there: bytes that are not UTF-8 cannot be passed")
	c := helperCmd("args", "\xff\xfe", "ok", "caf\xe9")
	c.Env = append(c.Env, "TETHER_TEST_BYTES=\x80x")
	out, err := c.Output(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if want := `["\xff\xfe" "ok" "caf\xe9"] "\x80x"` + "\n"; string(out) != want {
		t.Fatalf("got %s, want %s", out, want)
	}
}

// With Dir unset the child runs in the parent's current directory at every
// level (the keeper itself runs in "/").
func TestDirDefault(t *testing.T) {
	t.Parallel()
	skipOnWindows(t, "runs /bin/pwd")
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	c := tether.Command("/bin/pwd")
	c.Containment = helperCmd("echo").Containment
	out, err := c.Output(context.Background())
	if err != nil || string(out) != wd+"\n" {
		t.Fatalf("got %q, %v; want %q", out, err, wd)
	}
}

// A child's signal dispositions are the parent's at every level: the keeper
// once ignored SIGPIPE, and every child it started inherited that through
// exec (a `yes | head` in it would get EPIPE instead of dying).
func TestSignalDispositionsInherited(t *testing.T) {
	t.Parallel()
	sigIgn := func(status string) string {
		for _, l := range strings.Split(status, "\n") {
			if v, ok := strings.CutPrefix(l, "SigIgn:"); ok {
				return strings.TrimSpace(v)
			}
		}
		return "?"
	}
	skipOnWindows(t, "no signal dispositions (and under Wine /proc is the host's)")
	own, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skip("no /proc")
	}
	c := tether.Command("/bin/cat", "/proc/self/status")
	c.Containment = helperCmd("echo").Containment
	out, err := c.Output(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got, want := sigIgn(string(out)), sigIgn(string(own)); got != want {
		t.Fatalf("child ignores %s, parent %s", got, want)
	}
}

// helperObserverPanicRun runs a program whose Observer panics at its exit,
// under Run, and tries to recover the panic.
func helperObserverPanicRun([]string) {
	defer func() {
		if r := recover(); r != nil {
			fmt.Println("recovered:", r)
		}
	}()
	c := helperCmd("exit", "0")
	c.Containment = tether.ContainGroup
	c.Observer = func(e tether.Event) {
		if e.Kind == tether.EventExit {
			panic("observer boom")
		}
	}
	_, _ = c.Run(context.Background())
	fmt.Println("Run returned")
}

// helperObserverPanicSpawn starts a program whose Observer panics at its
// spawn, and tries to recover the panic from Start.
func helperObserverPanicSpawn([]string) {
	defer func() {
		if r := recover(); r != nil {
			fmt.Println("recovered:", r)
		}
	}()
	c := helperCmd("exit", "0")
	c.Observer = func(e tether.Event) {
		if e.Kind == tether.EventSpawn {
			panic("spawn boom")
		}
	}
	_, _ = c.Start(context.Background())
	fmt.Println("Start returned")
}

// helperObserverGoexitAtExit starts a program whose Observer calls
// runtime.Goexit (a test's t.Fatal) at its exit, delivered from the
// Process's own goroutine, and waits for Done.
func helperObserverGoexitAtExit([]string) {
	c := helperCmd("exit", "0")
	c.Observer = func(e tether.Event) {
		if e.Kind == tether.EventExit {
			runtime.Goexit()
		}
	}
	p, err := c.Start(context.Background())
	if err != nil {
		fmt.Println("start:", err)
		os.Exit(3)
	}
	select {
	case <-p.Done():
		fmt.Println("done")
	case <-time.After(20 * time.Second):
		fmt.Println("not done after 20 s")
	}
	os.Exit(3)
}

// TestObserverPanicsEndTheProgram: a panic or runtime.Goexit (a test's
// t.Fatal) in an Observer ends the program at every event, from whichever
// goroutine delivers it: recovered or unwound by whoever emitted the
// event, it would leave a Process half started, half stopped or half
// closed, and whoever waits for it hanging. Each case runs a helper program
// that recovers what it can and prints on stdout if it goes on.
func TestObserverPanicsEndTheProgram(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ name, helper, value, where string }{
		// At EventSpawn, in Start's caller's goroutine: recovered there,
		// the child would run with nobody to wait for it.
		{"panic-at-spawn", "observer-panic-spawn", "spawn boom", "the spawn event"},
		// At the exit under Run, in its caller's goroutine: recovered
		// there, the Process would be half closed (pipes, pidfd, cgroup
		// slot, Done).
		{"panic-under-run", "observer-panic-run", "observer boom", "the exit event"},
		// At the exit, in the goroutine that closes a Process nobody
		// waits for: Done would never close.
		{"goexit-in-the-monitor", "observer-goexit-exit", "runtime.Goexit", "the exit event"},
		// At the signal Stop posts: it used to unwind Stop with its once
		// spent, so that the Process could never be stopped and every
		// later Stop returned at once while it ran on.
		{"panic-at-stop", "observer-panic-stop", "stop boom", "the signal event"},
		// The same as t.Fatal, in a goroutine of the caller's: it used to
		// end only that goroutine.
		{"goexit-at-stop", "observer-goexit-stop", "runtime.Goexit", "the signal event"},
		// A value whose printing calls runtime.Goexit would end only the
		// goroutine printing it, and leave the Process's blocked for good.
		{"unprintable-panic", "observer-panic-unprintable", "(its value could not be printed)", "the spawn event"},
		// The EventError of a failed Start comes from Cmd, not a Process.
		{"panic-at-start-error", "observer-panic-start-error", "start boom", "the error event"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			wantHelperPanic(t, c.helper, c.value, "tether: panic in an Observer, at "+c.where+" of")
		})
	}
}

// goexitStringer is a panic value whose printing calls runtime.Goexit.
type goexitStringer struct{}

func (goexitStringer) String() string {
	runtime.Goexit()
	return ""
}

func helperObserverPanicUnprintable([]string) {
	c := helperCmd("exit", "0")
	c.Observer = func(e tether.Event) {
		if e.Kind == tether.EventSpawn {
			panic(goexitStringer{})
		}
	}
	_, _ = c.Start(context.Background())
	fmt.Println("Start returned")
}

// helperObserverPanicStop stops a running child whose Observer panics at
// the signal, recovering what Stop returns to it. (The child, cat, ends at
// this program's end with its stdin, at any level.)
func helperObserverPanicStop([]string) {
	c := helperCmd("cat")
	c.Stdin = tether.Pipe()
	c.Observer = func(e tether.Event) {
		if e.Kind == tether.EventSignal {
			panic("stop boom")
		}
	}
	p, err := c.Start(context.Background())
	if err != nil {
		fmt.Println(err)
		return
	}
	func() {
		defer func() {
			if r := recover(); r != nil {
				fmt.Println("recovered:", r)
			}
		}()
		_ = p.Stop()
	}()
	fmt.Println("Stop returned")
	_ = p.Kill()
}

// helperObserverGoexitStop stops a running child, from a goroutine of its
// own, with an Observer that calls runtime.Goexit at the signal.
func helperObserverGoexitStop([]string) {
	c := helperCmd("cat")
	c.Stdin = tether.Pipe()
	c.Observer = func(e tether.Event) {
		if e.Kind == tether.EventSignal {
			runtime.Goexit()
		}
	}
	p, err := c.Start(context.Background())
	if err != nil {
		fmt.Println(err)
		return
	}
	ended := make(chan struct{})
	go func() { // ends with Stop, or with runtime.Goexit in it
		defer close(ended)
		_ = p.Stop()
	}()
	<-ended
	fmt.Println("the goroutine of Stop ended")
	_ = p.Kill()
}

// helperObserverPanicStartError starts a program that does not exist with
// an Observer that panics at the error.
func helperObserverPanicStartError([]string) {
	defer func() {
		if r := recover(); r != nil {
			fmt.Println("recovered:", r)
		}
	}()
	c := &tether.Cmd{Path: "/nonexistent/tether-test", Observer: func(e tether.Event) {
		if e.Kind == tether.EventError {
			panic("start boom")
		}
	}}
	_, _ = c.Start(context.Background())
	fmt.Println("Start returned")
}

// TestObserverSignalsItsOwnProcess: an Observer may signal its own
// process. In a helper program, at each level, the Observer kills, at
// Stop's SIGTERM, a child that ignores SIGTERM: Stop returns without the
// grace's hour, and the events stay in order. Before, the Observer's Kill
// waited for its own event to be delivered after the Observer returned: the
// program deadlocked (the helper is killed after a minute).
func TestObserverSignalsItsOwnProcess(t *testing.T) {
	t.Parallel()
	skipUnderWine(t, ctrlBreakRefused)
	for _, level := range append([]string{"group"}, keptLevels(t)...) {
		t.Run(level, func(t *testing.T) {
			t.Parallel()
			path, argv, env := testproc.Command("observer-kills-itself", level)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			c := exec.CommandContext(ctx, path, argv[1:]...)
			c.Args[0], c.Env = argv[0], env
			out, err := c.CombinedOutput()
			want := "spawn, signal terminated, signal killed, exit, close\n"
			if err != nil || string(out) != want {
				t.Errorf("%v; output %q, want %q", err, out, want)
			}
		})
	}
}

func helperObserverKillsItself(args []string) {
	var self atomic.Pointer[tether.Process]
	var mu sync.Mutex
	var seen []string
	c := helperCmd("ignore-term")
	c.Containment = levelNamed(args[0])
	c.Stdout = tether.Pipe()
	c.StopTimeout = time.Hour
	c.Observer = func(e tether.Event) {
		s := e.Kind.String()
		if e.Kind == tether.EventSignal {
			s += " " + e.Signal.String()
		}
		mu.Lock()
		seen = append(seen, s)
		mu.Unlock()
		if e.Kind == tether.EventSignal && e.Signal == syscall.SIGTERM {
			if err := self.Load().Kill(); err != nil {
				fmt.Println("Kill from the Observer:", err)
			}
		}
	}
	p, err := c.Start(context.Background())
	if err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
	self.Store(p)
	if _, err := bufio.NewReader(p.Stdout()).ReadString('\n'); err != nil {
		fmt.Println("ready:", err)
	}
	if err := p.Stop(); err != nil {
		fmt.Println("Stop:", err)
	}
	mu.Lock()
	fmt.Println(strings.Join(seen, ", "))
	mu.Unlock()
}
