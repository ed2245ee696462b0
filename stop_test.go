//go:build unix

package tether_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tetherproc/tether"
	"github.com/tetherproc/tether/internal/testproc"
)

// A stop reaches a stopped tree (DESIGN.md, promise 4): a tree whose members
// were all sent SIGSTOP cannot act on the stop signal, which stays pending,
// unless the stop continues them. Every stop here has a StopTimeout of 20 s
// and must be over in less than half of it, with the tree cleaned up by its
// own SIGTERM handlers: without the SIGCONT the stop would take the 20 s and
// end in SIGKILL.

func init() {
	testproc.Register("polite-tree", helperPoliteTree)
	testproc.Register("stopped-parent", helperStoppedParent)
}

// stoppedGrace is the StopTimeout of the stopped trees; stoppedBound is the
// most a stop of one may take.
const (
	stoppedGrace = 20 * time.Second
	stoppedBound = 10 * time.Second
)

// helperPoliteTree prints "pid N" and starts a polite member (which prints
// "pid M polite" once its SIGTERM handler is in place); on SIGTERM it waits
// for the member, which cleans up in DIR, and exits 0.
func helperPoliteTree(args []string) {
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM)
	fmt.Printf("pid %d\n", os.Getpid()) // before the member's line: the handler is in place
	path, argv, env := testproc.Command("member", "polite", args[0])
	c := exec.Command(path, argv[1:]...)
	c.Args[0], c.Env, c.Stdout, c.Stderr = argv[0], env, os.Stdout, os.Stderr
	if err := c.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "polite-tree:", err)
		os.Exit(2)
	}
	<-term
	if err := c.Wait(); err != nil { // the member got SIGTERM too, and exits 0
		fmt.Fprintln(os.Stderr, "polite-tree: member:", err)
		os.Exit(3)
	}
	os.Exit(0)
}

// stoppedLevels are the levels the stopped-tree tests run at: the one
// TETHER_TEST_LEVEL names, or else the group level and the strong levels
// this machine offers. (TETHER_TEST_LEVEL=pidns runs them in a PID
// namespace.)
func stoppedLevels(t *testing.T) []string {
	if l := os.Getenv("TETHER_TEST_LEVEL"); l != "" {
		return []string{l}
	}
	return append([]string{"group"}, strongLevels(t)...)
}

// politeTree is a polite-tree Cmd at level that cleans up in dir.
func politeTree(level, dir string) *tether.Cmd {
	path, argv, env := testproc.Command("polite-tree", dir)
	return &tether.Cmd{
		Path: path, Args: argv, Env: env,
		Stdout: tether.Pipe(), StopTimeout: stoppedGrace, Containment: levelNamed(level),
	}
}

// readTree reads the polite tree's two lines and returns the leader's and
// the member's pids as this process sees them.
func readTree(t *testing.T, p *tether.Process, br *bufio.Reader) (leader, member int) {
	t.Helper()
	var pids []int
	for _, want := range []string{"", " polite"} {
		line := readLine(t, br, 10*time.Second)
		pid, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(line, "pid "), want))
		if err != nil {
			t.Fatalf("tree said %q", line)
		}
		pids = append(pids, pid)
	}
	if p.Containment() == tether.ContainPIDNamespace {
		host := testproc.HostPIDs(testproc.PIDNamespace(p.PID()))
		pids[0], pids[1] = host[pids[0]], host[pids[1]]
	}
	if pids[0] != p.PID() || pids[1] == 0 {
		t.Fatalf("tree pids %v, leader %d", pids, p.PID())
	}
	return pids[0], pids[1]
}

// procState is the state letter of /proc/PID/stat ('T': stopped), 0 if the
// process is gone.
func procState(pid int) byte {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 >= len(s) {
		return 0
	}
	return s[i+2]
}

// waitStopped waits up to 10 s for every pid to be stopped: a SIGSTOP takes
// effect when the process next runs, and the test must not go on before.
// Polled: only a process's parent hears of its stop (waitid WSTOPPED).
func waitStopped(t *testing.T, pids ...int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for _, pid := range pids {
		for procState(pid) != 'T' {
			if time.Now().After(deadline) {
				t.Fatalf("pid %d not stopped after 10s (state %q)", pid, procState(pid))
			}
			time.Sleep(2 * time.Millisecond)
		}
	}
}

// stopTree starts a polite tree at level, stops it (SIGSTOP to the tree, as
// a user would with Signal), and returns it once leader and member are
// stopped.
func stopTree(t *testing.T, ctx context.Context, c *tether.Cmd) (p *tether.Process, member int) {
	t.Helper()
	p, err := c.Start(ctx)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		_ = p.Kill() // best effort: closed already unless the test failed
		waitDone(t, p, 10*time.Second)
	})
	leader, member := readTree(t, p, bufio.NewReader(p.Stdout()))
	t.Cleanup(testproc.Pin(member).Kill) // gone already unless the test failed: never another's pid
	if err := p.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	waitStopped(t, leader, member)
	return p, member
}

// checkCleanedUp checks that a stop of a stopped tree took less than
// stoppedBound, that the leader exited 0 from its SIGTERM handler, and that
// the member cleaned up and is gone.
func checkCleanedUp(t *testing.T, p *tether.Process, member int, dir string, took time.Duration) {
	t.Helper()
	t.Logf("%v: stop of a stopped tree took %v (StopTimeout %v)", p.Containment(), took.Round(time.Millisecond), stoppedGrace)
	if took >= stoppedBound {
		t.Errorf("the stop took %v; a stopped tree must not wait out StopTimeout (%v)", took, stoppedGrace)
	}
	st, _ := p.Wait()
	if !st.Success() || st.Escalated {
		t.Errorf("exit %v, escalated=%v; want status 0 from the leader's SIGTERM handler", st, st.Escalated)
	}
	if cleaned, _ := filepath.Glob(filepath.Join(dir, "cleaned-*")); len(cleaned) != 1 {
		t.Errorf("the member cleaned up %d times, want 1", len(cleaned))
	}
	if left := testproc.WaitGone(5*time.Second, member); len(left) > 0 {
		t.Errorf("member %d survived", member)
	}
}

func TestStopStoppedTree(t *testing.T) {
	t.Parallel()
	for _, level := range stoppedLevels(t) {
		t.Run(level, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			var ev events
			c := politeTree(level, dir)
			c.Observer = ev.observe
			p, member := stopTree(t, context.Background(), c)
			began := time.Now()
			if err := p.Stop(); err != nil {
				t.Fatal(err)
			}
			checkCleanedUp(t, p, member, dir, time.Since(began))
			// The SIGCONT is part of the stop, not an event of its own.
			var signals []os.Signal
			ev.mu.Lock()
			for _, e := range ev.list {
				switch e.Kind {
				case tether.EventSignal:
					signals = append(signals, e.Signal)
				case tether.EventError, tether.EventEscalate:
					t.Errorf("event %v: %v", e.Kind, e.Err)
				}
			}
			ev.mu.Unlock()
			if fmt.Sprint(signals) != fmt.Sprint([]os.Signal{syscall.SIGSTOP, syscall.SIGTERM}) {
				t.Errorf("signal events %v, want the SIGSTOP and the stop's SIGTERM", signals)
			}
		})
	}
}

func TestContextEndStoppedTree(t *testing.T) {
	t.Parallel()
	for _, level := range stoppedLevels(t) {
		t.Run(level, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			p, member := stopTree(t, ctx, politeTree(level, dir))
			began := time.Now()
			cancel()
			waitDone(t, p, stoppedGrace+10*time.Second)
			checkCleanedUp(t, p, member, dir, time.Since(began))
		})
	}
}

// A stopped child cannot read its StopMessage either, nor act on the
// StopSignal that follows. One that obeys the message exits by it at once:
// the message is followed by SIGCONT. One that ignores it and is stopped
// again while Stop waits gets StopSignal after StopTimeout, and dies of it,
// not of SIGKILL: the signal is followed by SIGCONT too.
func TestStopMessageStoppedChild(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		deaf  bool
		grace time.Duration
	}{
		{"obeys", false, stoppedGrace},
		{"deaf-stopped-again", true, 2 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var args []string
			if tc.deaf {
				args = []string{"deaf"}
			}
			c := ipcCmd("ipc-stop", args...)
			c.StopMessage = "shutdown"
			c.StopTimeout = tc.grace
			p, ch := startIPC(t, c)
			if err := recvBounded(t, ch, nil, 10*time.Second); err != nil { // "ready": it reads now
				t.Fatal(err)
			}
			if err := p.Signal(syscall.SIGSTOP); err != nil {
				t.Fatal(err)
			}
			waitStopped(t, p.PID())
			began := time.Now()
			stopped := make(chan error, 1)
			go func() { stopped <- p.Stop() }() // ends at close: bounded by StopTimeout and SIGKILL
			if tc.deaf {
				// It read the message, so the SIGCONT that follows the
				// message came before: a SIGSTOP now is not undone by it.
				// (EventStopMessage comes before the send, and so
				// before that SIGCONT.)
				var m string
				if err := recvBounded(t, ch, &m, 10*time.Second); err != nil || m != "ignored" {
					t.Fatalf("after the stop message: %q, %v; want \"ignored\"", m, err)
				}
				if err := p.Signal(syscall.SIGSTOP); err != nil {
					t.Fatal(err)
				}
				waitStopped(t, p.PID())
			}
			var err error
			select {
			case err = <-stopped:
			case <-time.After(2*tc.grace + 10*time.Second):
				t.Fatal("Stop did not return")
			}
			if err != nil {
				t.Fatal(err)
			}
			took := time.Since(began)
			t.Logf("%v: took %v (StopTimeout %v)", p.Containment(), took.Round(time.Millisecond), tc.grace)
			st, _ := p.Wait()
			switch {
			case st.Escalated:
				t.Errorf("escalated to SIGKILL: %v", st)
			case !tc.deaf && (!st.Success() || took >= stoppedBound):
				t.Errorf("exit %v after %v; want status 0 from the message, well within StopTimeout", st, took)
			case tc.deaf && st.Signal != syscall.SIGTERM:
				t.Errorf("exit %v; want SIGTERM after the ignored message", st)
			}
		})
	}
}

// Shutdown stops a stopped tree as a parent's death would: each level's
// teardown continues it (the keeper's, or Stop at the group level).
func TestShutdownStoppedTree(t *testing.T) {
	t.Parallel()
	for _, level := range stoppedLevels(t) {
		t.Run(level, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			path, argv, env := testproc.Command("stopped-parent", level, dir)
			c := exec.Command(path, argv[1:]...)
			c.Args[0], c.Env, c.Stderr = argv[0], env, os.Stderr
			in, err := c.StdinPipe()
			if err != nil {
				t.Fatal(err)
			}
			out, err := c.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := c.Start(); err != nil {
				t.Fatal(err)
			}
			var pids []int
			var pinned []*testproc.Pinned // the pids, held so a kill never reaches a reuser
			t.Cleanup(func() {
				for _, p := range pinned { // a failed test leaves nothing behind
					p.Kill()
				}
				_ = c.Process.Kill()
				_ = c.Wait()
			})
			br := bufio.NewReader(out)
			for range 2 {
				f := strings.Fields(readLine(t, br, 10*time.Second)) // "pid N", "pid M polite"
				if len(f) < 2 || f[0] != "pid" {
					t.Fatalf("parent said %q", f)
				}
				pid, err := strconv.Atoi(f[1])
				if err != nil {
					t.Fatalf("parent said %q", f)
				}
				pids = append(pids, pid)
				pinned = append(pinned, testproc.Pin(pid))
			}
			if l := readLine(t, br, 10*time.Second); l != "parent ready" {
				t.Fatalf("parent said %q", l)
			}
			waitStopped(t, pids...)
			if _, err := io.WriteString(in, "go\n"); err != nil {
				t.Fatal(err)
			}
			took, err := time.ParseDuration(strings.TrimPrefix(readLine(t, br, stoppedGrace+10*time.Second), "shutdown took "))
			if err != nil {
				t.Fatal(err)
			}
			status := readLine(t, br, time.Second)
			t.Logf("%s: Shutdown of a stopped tree took %v (StopTimeout %v)", level, took.Round(time.Millisecond), stoppedGrace)
			if took >= stoppedBound {
				t.Errorf("Shutdown took %v; a stopped tree must not wait out StopTimeout (%v)", took, stoppedGrace)
			}
			if status != "exit status 0 escalated=false" {
				t.Errorf("leader: %s; want status 0 from its SIGTERM handler", status)
			}
			if left := testproc.WaitGone(5*time.Second, pids...); len(left) > 0 {
				t.Errorf("alive after Shutdown returned: %v", left)
			}
			if cleaned, _ := filepath.Glob(filepath.Join(dir, "cleaned-*")); len(cleaned) != 1 {
				t.Errorf("the member cleaned up %d times, want 1", len(cleaned))
			}
		})
	}
}

// helperStoppedParent starts a polite tree at level args[0] (cleaning up in
// args[1]), relays its pids, stops it with SIGSTOP, says "parent ready",
// and at a line on stdin calls Shutdown and says how long it took and how
// the leader exited.
func helperStoppedParent(args []string) {
	p, _ := startRelay(politeTree(args[0], args[1]), 2)
	if err := p.Signal(syscall.SIGSTOP); err != nil {
		fmt.Println("stop:", err)
		os.Exit(2)
	}
	fmt.Println("parent ready")
	if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
		os.Exit(2)
	}
	ctx, cancel := context.WithTimeout(context.Background(), stoppedGrace+10*time.Second)
	defer cancel()
	began := time.Now()
	if err := tether.Shutdown(ctx); err != nil {
		fmt.Println("shutdown:", err)
		os.Exit(2)
	}
	fmt.Printf("shutdown took %v\n", time.Since(began))
	st := p.Exit()
	fmt.Printf("%v escalated=%v\n", st, st != nil && st.Escalated)
}
