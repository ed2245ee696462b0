//go:build linux

package tether_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tetherproc/tether"
	"github.com/tetherproc/tether/internal/testproc"
)

func init() {
	testproc.Register("sigign-parent", helperSigIgnParent)
}

// helperSigIgnParent LEVEL starts grep SigIgn /proc/self/status (a C program:
// a Go child would replace inherited SIG_IGNs before main) with os/exec and
// with tether at LEVEL, in three states of its own: as started; after
// signal.Ignore(SIGHUP, SIGUSR1); after signal.Reset(SIGUSR1) and a handler
// for SIGTTOU. It prints "STATE os/exec=MASK tether=MASK" for each.
func helperSigIgnParent(args []string) {
	level := levelNamed(args[0])
	show := func(state string) {
		want, err := exec.Command("grep", "^SigIgn", "/proc/self/status").Output()
		if err != nil {
			fmt.Println("os/exec:", err)
			os.Exit(1)
		}
		c := tether.Command("grep", "^SigIgn", "/proc/self/status")
		c.Containment = level
		got, err := c.Output(context.Background())
		if err != nil {
			fmt.Println("tether:", err)
			os.Exit(1)
		}
		fmt.Printf("%s os/exec=%s tether=%s\n", state, strings.Fields(string(want))[1], strings.Fields(string(got))[1])
	}
	show("started")
	signal.Ignore(syscall.SIGHUP, syscall.SIGUSR1)
	show("ignoring")
	signal.Reset(syscall.SIGUSR1)
	signal.Notify(make(chan os.Signal, 1), syscall.SIGTTOU)
	show("reset")
}

// A child starts with the signals its parent ignores ignored, and no other,
// at every level, as os/exec's children do (exec keeps SIG_IGN): never with
// the keeper's dispositions, nor with what the parent ignored when the
// keeper started. The parent is started by a shell that ignores SIGINT,
// SIGQUIT and SIGTTOU (a background job of a script, or nohup), then changes
// its own as it runs.
func TestChildInheritsParentsIgnoredSignals(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("grep"); err != nil {
		t.Skip("no grep")
	}
	for _, level := range append([]string{"group"}, keptLevels(t)...) {
		t.Run(level, func(t *testing.T) {
			t.Parallel()
			path, argv, env := testproc.Command("sigign-parent", level)
			sh := exec.Command("sh", "-c", `trap '' INT QUIT TTOU; exec "$@"`, "sh", path)
			sh.Args = append(sh.Args, argv[1:]...)
			sh.Env = env
			out, err := sh.CombinedOutput()
			if err != nil {
				t.Fatalf("%v: %s", err, out)
			}
			lines := strings.Split(strings.TrimSpace(string(out)), "\n")
			if len(lines) != 3 {
				t.Fatalf("want three states, got:\n%s", out)
			}
			for _, l := range lines {
				f := strings.Fields(l)
				if len(f) != 3 || strings.TrimPrefix(f[1], "os/exec=") != strings.TrimPrefix(f[2], "tether=") {
					t.Errorf("%s: the child's ignored signals differ from an os/exec child's: %s", level, l)
				}
			}
			// The states differ from each other: the test sees changes.
			if lines[0] == lines[1] || lines[1] == lines[2] {
				t.Errorf("the parent's changes did not show:\n%s", out)
			}
		})
	}
}

// A nil ExtraFiles entry leaves that descriptor closed in the child, as in
// os/exec, at every level: here 3 is nil and 4 a pipe.
func TestExtraFilesNilEntryClosed(t *testing.T) {
	t.Parallel()
	for _, level := range append([]string{"group"}, keptLevels(t)...) {
		t.Run(level, func(t *testing.T) {
			t.Parallel()
			r, w, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			c := tether.Command("sh", "-c", `{ echo x >&3; } 2>/dev/null && echo "3 open"; echo four >&4`)
			c.Containment = levelNamed(level)
			c.ExtraFiles = []*os.File{nil, w}
			out, err := c.Output(context.Background())
			_ = w.Close()
			if err != nil {
				t.Fatalf("%v: %s", err, out)
			}
			if strings.Contains(string(out), "3 open") {
				t.Errorf("descriptor 3 (nil) is open in the child")
			}
			if b, _ := io.ReadAll(r); string(b) != "four\n" {
				t.Errorf("descriptor 4 got %q", b)
			}
		})
	}
}

// jobEventLevels are the levels whose processes' stops and continues are
// reported as events: the keeper's, where the keeper is the parent. (At the
// group and cgroup levels the process is the program's own child.)
func jobEventLevels(t *testing.T) []string {
	var levels []string
	for _, level := range keptLevels(t) {
		if level != "cgroup" {
			levels = append(levels, level)
		}
	}
	return levels
}

// At the keeper and PID-namespace levels the keeper, the process's parent,
// hears of its stops and continues and reports them: EventStopped with the
// signal, then EventContinued (what tether run follows for Ctrl-Z). At the
// group and cgroup levels the process is the program's own child, and only
// the program's SIGCHLD tells (tether run's TestRunJobControl).
func TestEventsStoppedContinued(t *testing.T) {
	t.Parallel()
	for _, level := range jobEventLevels(t) {
		t.Run(level, func(t *testing.T) {
			t.Parallel()
			events := make(chan tether.Event, 16)
			c := helperCmd("sleep")
			c.Containment = levelNamed(level)
			c.Stdout = tether.Pipe()
			c.Observer = func(e tether.Event) {
				if e.Kind == tether.EventStopped || e.Kind == tether.EventContinued {
					events <- e
				}
			}
			p := start(t, c)
			next := func() tether.Event {
				select {
				case e := <-events:
					return e
				case <-time.After(10 * time.Second):
					t.Fatal("no job event after 10s")
					return tether.Event{}
				}
			}
			for _, sig := range []syscall.Signal{syscall.SIGSTOP, syscall.SIGTSTP} {
				if err := p.Signal(sig); err != nil {
					t.Fatal(err)
				}
				if e := next(); e.Kind != tether.EventStopped || e.Signal != sig || e.PID != p.PID() {
					t.Errorf("after %v: %v %v pid %d", sig, e.Kind, e.Signal, e.PID)
				}
				if err := p.Signal(syscall.SIGCONT); err != nil {
					t.Fatal(err)
				}
				if e := next(); e.Kind != tether.EventContinued {
					t.Errorf("after SIGCONT: %v", e.Kind)
				}
			}
		})
	}
}

// Run when ctx ends first: the error says so even if the program then
// exits 0 (a timeout must not look like success), as os/exec's does, and
// an *ExitError is still found when the status is not 0.
func TestRunContextEndedIsAnError(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		script string
		ok     bool
	}{
		{`trap 'exit 0' TERM; echo ready; while :; do sleep 0.05; done`, true},
		{`echo ready; while :; do sleep 0.05; done`, false},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		st, err := tether.Command("sh", "-c", tc.script).Run(ctx)
		cancel()
		var ee *tether.ExitError
		if !errors.Is(err, context.DeadlineExceeded) || st == nil || st.Success() != tc.ok || errors.As(err, &ee) == tc.ok {
			t.Errorf("%q: exit %v, err %v; want the deadline in the error, success %v", tc.script, st, err, tc.ok)
		}
		if err != nil && strings.Contains(err.Error(), "\n") {
			t.Errorf("%q: the error is more than a line, for one-line logs: %q", tc.script, err)
		}
	}
	if _, err := tether.Command("true").Run(context.Background()); err != nil {
		t.Errorf("a run that ends by itself: %v", err)
	}
}

// Run's error for a status other than 0 is an *ExitError even when
// something else went wrong too (here a Writer that fails), and both are
// in it, on one line. Before, the Writer's error alone came back, and a
// failed run could pass for a stream problem.
func TestRunExitErrorWithAStreamError(t *testing.T) {
	t.Parallel()
	c := tether.Command("sh", "-c", "echo hi; exit 3")
	c.Stdout = tether.Writer(failingWriter{})
	st, err := c.Run(context.Background())
	var ee *tether.ExitError
	if st == nil || st.Code != 3 || !errors.As(err, &ee) || !errors.Is(err, errWriterFails) || strings.Contains(err.Error(), "\n") {
		t.Errorf("exit %v, err %q: want the *ExitError and the Writer's error, on one line", st, err)
	}
}

var errWriterFails = errors.New("this writer fails")

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errWriterFails }

func init() { testproc.Register("kill-reports", helperKillReports) }

// TestKillReportsNoStop: the keeper freezes a tree with SIGSTOP a moment
// before it SIGKILLs it — at Kill, and in its teardown at Shutdown once the
// grace is over — and it heard the leader stop: it reported EventStopped, a
// stop nobody asked for, before the exit. The keeper's own freeze is not job
// control. (The report raced the exit: trees of 20 members and three of
// them per level make the freeze long enough to lose that race almost
// always on the old keeper.)
func TestKillReportsNoStop(t *testing.T) {
	t.Parallel()
	for _, level := range jobEventLevels(t) {
		for _, how := range []string{"kill", "shutdown"} {
			t.Run(level+"/"+how, func(t *testing.T) {
				t.Parallel()
				path, argv, env := testproc.Command("kill-reports", level, how)
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				defer cancel()
				c := exec.CommandContext(ctx, path, argv[1:]...)
				c.Args[0], c.Env = argv[0], env
				out, err := c.CombinedOutput()
				if err != nil || string(out) != "ok\n" {
					t.Errorf("%v; output:\n%s", err, out)
				}
			})
		}
	}
}

// helperKillReports starts three trees of 20 members that ignore SIGTERM
// at level args[0], ends them by Kill or by Shutdown (args[1]), and prints
// "ok" if no job event came.
func helperKillReports(args []string) {
	var evs [3]events
	ps := make([]*tether.Process, len(evs))
	for i := range ps {
		c := &tether.Cmd{Path: "/bin/sh", Args: []string{"sh", "-c",
			"trap '' TERM; for i in $(seq 20); do sleep 60 & done; echo ready; wait"},
			Containment: levelNamed(args[0]), Stdout: tether.Pipe(),
			StopTimeout: 100 * time.Millisecond, Observer: evs[i].observe}
		p, err := c.Start(context.Background())
		if err != nil {
			fmt.Println(err)
			os.Exit(1)
		}
		if _, err := bufio.NewReader(p.Stdout()).ReadString('\n'); err != nil {
			fmt.Println("ready:", err)
		}
		ps[i] = p
	}
	if args[1] == "kill" {
		for _, p := range ps {
			_ = p.Kill() // errors surface in Wait
		}
	} else if err := tether.Shutdown(context.Background()); err != nil {
		fmt.Println("Shutdown:", err)
	}
	bad := false
	for i, p := range ps {
		<-p.Done()
		for _, k := range evs[i].kinds() {
			if k == tether.EventStopped || k == tether.EventContinued {
				fmt.Printf("tree %d: events %v: the keeper's freeze reported as job control\n", i, evs[i].kinds())
				bad = true
			}
		}
	}
	if !bad {
		fmt.Println("ok")
	}
}
