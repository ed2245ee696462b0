//go:build linux

package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/tetherproc/tether/internal/testcgroup"
	"github.com/tetherproc/tether/internal/testproc"
	"github.com/tetherproc/tether/internal/treescript"
)

// The test binary is also the tether command: with TETHER_TEST_CLI set it
// runs main, so the tests run `tether run` as users do, in a process of its
// own (it becomes a subreaper and takes signals: not something to do to the
// test process).
func TestMain(m *testing.M) {
	if os.Getenv(ttySessionEnv) != "" {
		ttySession(os.Args[1:]) // tether up's terminal session starter, as main runs it
	}
	if os.Getenv("TETHER_TEST_BIND") != "" {
		bindServer()
		return
	}
	if os.Getenv("TETHER_TEST_READY") != "" {
		readyHelper()
		return
	}
	if os.Getenv("TETHER_TEST_RAWCTL") != "" {
		rawControl()
		return
	}
	if os.Getenv("TETHER_TEST_LISTEN") != "" && os.Getenv(execListenEnv) == "" {
		listenServer()
		return
	}
	if os.Getenv("TETHER_TEST_CLI") != "" {
		main()
		os.Exit(0)
	}
	// A cgroup of the run's own: the tether processes these tests start
	// (some in new PID namespaces) make their keepers' cgroups under it,
	// where they can never reach another program's.
	jail, err := testcgroup.Enter("tether-cli-test")
	code := m.Run()
	if err == nil {
		deadline := time.Now().Add(10 * time.Second)
		left := jail.Leftovers()
		for len(left) > 0 && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond) // keepers remove theirs as they end
			left = jail.Leftovers()
		}
		for _, p := range append(left, jail.Leave()...) {
			fmt.Fprintln(os.Stderr, "tests left behind:", p)
			code = max(code, 1)
		}
	}
	os.Exit(code)
}

func tetherCmd(args ...string) *exec.Cmd {
	exe, err := os.Executable()
	if err != nil {
		panic(err)
	}
	c := exec.Command(exe, args...)
	// A race-enabled binary sleeps a second at exit by default.
	c.Env = append(os.Environ(), "TETHER_TEST_CLI=1", "GORACE=atexit_sleep_ms=0")
	return c
}

// waitBounded waits for c, killing it after d, which fails the test.
func waitBounded(t *testing.T, c *exec.Cmd, d time.Duration) error {
	t.Helper()
	err := waitOrKill(c, d)
	if errors.Is(err, errStillRunning) {
		t.Fatal(err)
	}
	return err
}

func exitStatus(err error) int {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}

// tini's scenario: every exit code 0-255 passes through.
func TestRunExitCodes(t *testing.T) {
	t.Parallel()
	var wg sync.WaitGroup
	codes := make(chan int)
	for range 8 {
		wg.Add(1)
		go func() { // ends when codes is closed
			defer wg.Done()
			for code := range codes {
				c := tetherCmd("run", "--", "sh", "-c", "exit "+strconv.Itoa(code))
				if got := exitStatus(c.Run()); got != code {
					t.Errorf("exit %d came back as %d", code, got)
				}
			}
		}()
	}
	for code := range 256 {
		codes <- code
	}
	close(codes)
	wg.Wait()
}

// 128+N for a child killed by signal N; 127 and 126 for a program not found
// or not executable, with a line naming the cause.
func TestRunStatusCodes(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		argv []string
		code int
		msg  string
	}{
		{"SIGKILL", []string{"sh", "-c", "kill -KILL $$"}, 137, ""},
		{"SIGUSR1", []string{"sh", "-c", "kill -USR1 $$"}, 138, ""},
		{"SIGTERM", []string{"sh", "-c", "kill -TERM $$"}, 143, ""},
		{"not-found", []string{"tether-no-such-program"}, 127, "tether: tether-no-such-program: not found in $PATH\n"},
		{"not-executable", []string{"NOEXEC"}, 126, "tether: NOEXEC: cannot execute: it has no execute permission (chmod +x NOEXEC)\n"},
	}
	noexec := filepath.Join(t.TempDir(), "data")
	if err := os.WriteFile(noexec, []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range cases {
		for i, a := range tc.argv {
			if a == "NOEXEC" {
				tc.argv[i] = noexec
				tc.msg = strings.ReplaceAll(tc.msg, "NOEXEC", noexec)
			}
		}
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := tetherCmd(append([]string{"run", "--"}, tc.argv...)...)
			var stderr strings.Builder
			c.Stderr = &stderr
			if got := exitStatus(c.Run()); got != tc.code || stderr.String() != tc.msg {
				t.Errorf("status %d, stderr %q; want %d, %q", got, stderr.String(), tc.code, tc.msg)
			}
		})
	}
}

// startRun starts `tether run ARGS` with its stdout in a reader, and kills it
// (and with it, through its keeper, its tree) at the end of the test.
func startRun(t *testing.T, args ...string) (*exec.Cmd, *bufio.Reader) {
	t.Helper()
	c := tetherCmd(append([]string{"run"}, args...)...)
	out, err := c.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	c.Stderr = os.Stderr
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = c.Process.Kill() // best effort: it has exited in most tests
		_ = c.Wait()
	})
	return c, bufio.NewReader(out)
}

func readLine(t *testing.T, r *bufio.Reader) string {
	t.Helper()
	type res struct {
		s   string
		err error
	}
	ch := make(chan res, 1)
	go func() { s, err := r.ReadString('\n'); ch <- res{s, err} }() // ends at a line or EOF
	select {
	case r := <-ch:
		if r.err != nil {
			t.Fatalf("read: %v (%q)", r.err, r.s)
		}
		return strings.TrimSuffix(r.s, "\n")
	case <-time.After(10 * time.Second):
		t.Fatal("no line after 10s")
	}
	return ""
}

// tini's scenario: TERM, USR1 and USR2 reach the child.
func TestRunForwardsSignals(t *testing.T) {
	t.Parallel()
	script := `trap 'echo got USR1' USR1; trap 'echo got USR2' USR2; trap 'echo got TERM; exit 7' TERM
echo ready; while :; do sleep 0.05; done`
	c, out := startRun(t, "--", "sh", "-c", script)
	if l := readLine(t, out); l != "ready" {
		t.Fatalf("got %q", l)
	}
	for _, s := range []syscall.Signal{syscall.SIGUSR1, syscall.SIGUSR2} {
		_ = c.Process.Signal(s)
		if l, want := readLine(t, out), "got "+strings.TrimPrefix(unixName(s), "SIG"); l != want {
			t.Fatalf("after %v: %q, want %q", s, l, want)
		}
	}
	_ = c.Process.Signal(syscall.SIGTERM)
	if l := readLine(t, out); l != "got TERM" {
		t.Fatalf("after SIGTERM: %q", l)
	}
	if got := exitStatus(waitBounded(t, c, 10*time.Second)); got != 7 {
		t.Fatalf("status %d, want the child's 7", got)
	}
}

// A program stopped by Ctrl-Z or SIGSTOP still cleans up when tether is
// asked to end: tether continues the tree after passing SIGTERM on, so the
// program does not wait out the grace (20 s here) and die by SIGKILL.
func TestRunStoppedProgram(t *testing.T) {
	t.Parallel()
	c, out := startRun(t, "-grace", "20s", "--", "sh", "-c", `trap 'echo got TERM; exit 7' TERM; echo ready $$; while :; do sleep 0.05; done`)
	f := strings.Fields(readLine(t, out))
	pid, err := strconv.Atoi(f[len(f)-1])
	if err != nil || f[0] != "ready" {
		t.Fatalf("got %q", f)
	}
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	// Polled: only its parent hears of the stop. It takes effect when the
	// shell next runs, and SIGTERM must come after it.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(2 * time.Millisecond) {
		b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if i := strings.LastIndexByte(string(b), ')'); i >= 0 && i+2 < len(b) && b[i+2] == 'T' {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("pid %d not stopped after 10s: %q", pid, b)
		}
	}
	start := time.Now()
	_ = c.Process.Signal(syscall.SIGTERM)
	if l := readLine(t, out); l != "got TERM" {
		t.Fatalf("after SIGTERM: %q", l)
	}
	if got := exitStatus(waitBounded(t, c, 30*time.Second)); got != 7 {
		t.Fatalf("status %d, want the program's 7", got)
	}
	if d := time.Since(start); d >= 10*time.Second {
		t.Fatalf("tether ended %v after SIGTERM; a stopped program must not wait out the grace", d)
	}
}

func unixName(s syscall.Signal) string {
	return map[syscall.Signal]string{syscall.SIGUSR1: "SIGUSR1", syscall.SIGUSR2: "SIGUSR2"}[s]
}

// docker stop: SIGTERM reaches PROGRAM, which takes its time (it drains,
// say). tether gives it no deadline of its own — that is the orchestrator's
// (docker stop -t, terminationGracePeriodSeconds), as with tini and
// dumb-init: -grace is for what PROGRAM leaves behind. When the orchestrator
// gives up and SIGKILLs tether, the keeper stops PROGRAM (TERM again, then
// SIGKILL after the grace): nothing survives.
func TestRunLeavesProgramsDeadlineToOrchestrator(t *testing.T) {
	t.Parallel()
	c, out := startRun(t, "-grace", "300ms", "--", "sh", "-c", `trap 'echo draining' TERM; echo "ready $$"; while :; do sleep 0.05; done`)
	f := strings.Fields(readLine(t, out))
	if len(f) != 2 || f[0] != "ready" {
		t.Fatalf("got %q", f)
	}
	prog, _ := strconv.Atoi(f[1])
	_ = c.Process.Signal(syscall.SIGTERM)
	if l := readLine(t, out); l != "draining" {
		t.Fatalf("after SIGTERM: %q", l)
	}
	// Five graces later PROGRAM still runs, and so does tether.
	exited := make(chan error, 1)
	go func() { exited <- c.Wait() }() // ends when tether does: at the latest at its SIGKILL below
	select {
	case err := <-exited:
		t.Fatalf("tether ended %v after SIGTERM, with PROGRAM still draining: %v", 1500*time.Millisecond, err)
	case <-time.After(1500 * time.Millisecond):
	}
	if !testproc.Alive(prog) {
		t.Fatalf("PROGRAM was killed before the orchestrator's deadline")
	}
	_ = c.Process.Kill() // the orchestrator's SIGKILL, to tether alone
	<-exited
	if left := testproc.WaitGone(10*time.Second, prog); len(left) > 0 {
		t.Errorf("PROGRAM survived tether's SIGKILL")
	}
}

// SIGHUP is how nginx, haproxy and prometheus are told to reload: tether
// passes it on and never starts a stop for it, however often it comes.
func TestRunSIGHUPReloads(t *testing.T) {
	t.Parallel()
	c, out := startRun(t, "-grace", "200ms", "--", "sh", "-c", `trap 'echo reloaded' HUP; trap 'echo bye; exit 0' TERM; echo ready; while :; do sleep 0.05; done`)
	if l := readLine(t, out); l != "ready" {
		t.Fatalf("got %q", l)
	}
	for range 3 {
		_ = c.Process.Signal(syscall.SIGHUP)
		if l := readLine(t, out); l != "reloaded" {
			t.Fatalf("after SIGHUP: %q", l)
		}
	}
	// Still there after several graces: HUP started no stop.
	_ = c.Process.Signal(syscall.SIGHUP)
	if l := readLine(t, out); l != "reloaded" {
		t.Fatalf("after SIGHUP: %q", l)
	}
	_ = c.Process.Signal(syscall.SIGTERM)
	if l := readLine(t, out); l != "bye" {
		t.Fatalf("after SIGTERM: %q", l)
	}
	if got := exitStatus(waitBounded(t, c, 10*time.Second)); got != 0 {
		t.Errorf("status %d, want 0", got)
	}
}

// Where a signal that does not end tether goes: to PROGRAM alone by default
// (tini), to its process group with -g (tini -g, dumb-init), to every
// process of the tree with -forward tree. The helpers have no handler:
// SIGUSR1 ends whichever it reaches.
func TestRunSignalRouting(t *testing.T) {
	t.Parallel()
	// The setsid helper says its pid once it is in its own session.
	script := `sleep 100 & echo "group $!"; setsid sh -c 'echo "setsid $$"; exec sleep 100' & trap 'echo usr1' USR1; echo ready; while :; do sleep 0.05; done`
	for _, tc := range []struct {
		args                  []string
		groupDies, setsidDies bool
	}{
		{nil, false, false},
		{[]string{"-g"}, true, false},
		{[]string{"-forward", "group"}, true, false},
		{[]string{"-forward", "tree"}, true, true},
	} {
		t.Run(strings.Join(append([]string{"default"}, tc.args...), " "), func(t *testing.T) {
			t.Parallel()
			c, out := startRun(t, append(tc.args, "--", "sh", "-c", script)...)
			// Three lines in any order: group PID, setsid PID, ready.
			said := map[string]int{}
			for len(said) < 3 {
				f := strings.Fields(readLine(t, out))
				n, _ := strconv.Atoi(f[len(f)-1])
				said[f[0]] = n
			}
			group, setsid := said["group"], said["setsid"]
			if group == 0 || setsid == 0 {
				t.Fatalf("the script said %v", said)
			}
			_ = c.Process.Signal(syscall.SIGUSR1)
			if l := readLine(t, out); l != "usr1" {
				t.Fatalf("PROGRAM after SIGUSR1: %q", l)
			}
			for _, h := range []struct {
				name string
				pid  int
				dies bool
			}{{"its process group's", group, tc.groupDies}, {"a setsid", setsid, tc.setsidDies}} {
				if h.dies {
					if left := testproc.WaitGone(5*time.Second, h.pid); len(left) > 0 {
						t.Errorf("%s helper did not get SIGUSR1", h.name)
					}
				} else if !testproc.Alive(h.pid) {
					t.Errorf("%s helper got SIGUSR1", h.name)
				}
			}
			_ = c.Process.Signal(syscall.SIGTERM)
			_ = waitBounded(t, c, 15*time.Second) // sh exits 143; what it left is stopped
		})
	}
}

// dumb-init's --rewrite and tini's -e: a program that stops on SIGUSR1 gets
// it for docker stop's SIGTERM (-stop-signal), a dropped signal never
// reaches it, and a JVM's 143 can count as success.
func TestRunStopSignalRewriteAndSuccessCodes(t *testing.T) {
	t.Parallel()
	c, out := startRun(t, "-stop-signal", "USR1", "-rewrite", "USR2:0", "-rewrite", "WINCH:URG", "--", "sh", "-c",
		`trap 'echo usr1; exit 3' USR1; trap 'echo term' TERM; trap 'echo usr2' USR2; trap 'echo urg' URG; trap 'echo winch' WINCH; echo ready; while :; do sleep 0.05; done`)
	if l := readLine(t, out); l != "ready" {
		t.Fatalf("got %q", l)
	}
	_ = c.Process.Signal(syscall.SIGUSR2)  // dropped
	_ = c.Process.Signal(syscall.SIGWINCH) // as SIGURG
	if l := readLine(t, out); l != "urg" {
		t.Fatalf("after SIGUSR2 (dropped) and SIGWINCH (as SIGURG): %q", l)
	}
	_ = c.Process.Signal(syscall.SIGTERM) // as SIGUSR1
	if l := readLine(t, out); l != "usr1" {
		t.Fatalf("after SIGTERM with -stop-signal USR1: %q", l)
	}
	if got := exitStatus(waitBounded(t, c, 10*time.Second)); got != 3 {
		t.Errorf("status %d, want 3", got)
	}

	for _, tc := range []struct {
		args []string
		want int
	}{
		{[]string{"-e", "143"}, 0},
		{[]string{"-e", "1", "-e", "143"}, 0},
		{[]string{"-e", "1"}, 143},
	} {
		c := tetherCmd(append(append([]string{"run"}, tc.args...), "--", "sh", "-c", "exit 143")...)
		if got := exitStatus(c.Run()); got != tc.want {
			t.Errorf("%v, PROGRAM exits 143: status %d, want %d", tc.args, got, tc.want)
		}
	}
}

// A program that leaves a TERM-ignoring process behind: tether keeps the
// graceful stop, and says on stderr what it waits for (pid, command, how
// long) and when it SIGKILLs.
func TestRunSaysWhatItWaitsFor(t *testing.T) {
	t.Parallel()
	// PROGRAM exits once what it leaves ignores SIGTERM.
	c := tetherCmd("run", "-grace", "500ms", "--", "sh", "-c",
		`sh -c 'trap "" TERM; : > "$0/ready"; exec sleep 100' "$0" & while [ ! -e "$0/ready" ]; do sleep 0.01; done; echo "left $!"`, t.TempDir())
	var stderr strings.Builder
	c.Stderr = &stderr
	out, err := c.Output()
	if err != nil {
		t.Fatalf("%v: %s", err, stderr.String())
	}
	f := strings.Fields(string(out))
	if len(f) != 2 || f[0] != "left" {
		t.Fatalf("stdout %q", out)
	}
	for _, want := range []string{
		// (Its command is "sh -c ..." or "sleep 100" at first: the exec may be under way.)
		"tether: sh exited; stopping 1 process it left (SIGTERM, SIGKILL after 500ms): " + f[1] + " (",
		"tether: 1 process still running after 400ms, SIGKILL at 500ms: " + f[1] + " (sleep 100)",
	} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr.String())
		}
	}
}

// needUnsharePID skips the test where unshare(1) cannot make a PID
// namespace with its own /proc.
func needUnsharePID(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Skip("no unshare")
	}
	if err := exec.Command("unshare", "--pid", "--fork", "--mount-proc", "true").Run(); err != nil {
		t.Skipf("no PID namespaces here: %v", err)
	}
}

// tini's scenario: as PID 1 of a PID namespace, tether reaps orphans that
// are re-parented to it (at the group level; with a keeper, the keeper reaps
// them first).
func TestRunReapsAsPID1(t *testing.T) {
	t.Parallel()
	needUnsharePID(t)
	exe, _ := os.Executable()
	// Ten orphans that exit at once; then count zombies in the namespace.
	script := `for i in 1 2 3 4 5 6 7 8 9 10; do (sleep 0.01 &); done; sleep 0.5
n=0; for s in /proc/[0-9]*/stat; do case "$(cut -d' ' -f3 "$s" 2>/dev/null)" in Z) n=$((n+1));; esac; done; echo "zombies $n"; echo "pid1 $(cat /proc/1/comm)"`
	c := exec.Command("unshare", "--pid", "--fork", "--mount-proc", exe, "run", "-containment", "group", "--", "sh", "-c", script)
	c.Env = append(os.Environ(), "TETHER_TEST_CLI=1", "GORACE=atexit_sleep_ms=0")
	out, err := c.CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if !strings.Contains(string(out), "zombies 0\n") {
		t.Fatalf("zombies left: %s", out)
	}
}

// The wrapper matrix: tether run around a tree of every kind of descendant,
// ended by each signal: nothing survives, and the polite child cleans up.
func TestRunMatrix(t *testing.T) {
	t.Parallel()
	for _, ending := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGKILL} {
		t.Run(ending.String(), func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			// The polite shell runs its trap only between its 1 s sleeps:
			// a grace of 3 s lets it, even on a loaded machine.
			c, out := startRun(t, "-grace", "3s", "--", "sh", "-c", treescript.Script, dir)
			var pids []int
			polite := 0
			for range treescript.Size {
				f := strings.Fields(readLine(t, out))
				pid, err := strconv.Atoi(f[1])
				if err != nil || f[0] != "pid" {
					t.Fatalf("tree said %q", f)
				}
				if len(f) == 3 {
					polite = pid
				}
				pids = append(pids, pid)
			}
			_ = c.Process.Signal(ending)
			go func() { _, _ = io.Copy(io.Discard, out) }() // ends at EOF, when the tree is gone
			_ = waitBounded(t, c, 15*time.Second)
			if left := testproc.WaitGone(10*time.Second, pids...); len(left) > 0 {
				for _, pid := range left {
					_ = syscall.Kill(pid, syscall.SIGKILL)
				}
				t.Errorf("%d of %d survived: %v", len(left), len(pids), left)
			}
			if _, err := os.Stat(filepath.Join(dir, fmt.Sprintf("cleaned-%d", polite))); err != nil {
				t.Errorf("the polite child did not clean up: %v", err)
			}
		})
	}
}

// An interactive session: Ctrl-C at a `tether run` prompt reaches the child
// (the terminal's foreground is its group), and the shell gets its prompt
// back with the child's status.
func TestRunInteractiveCtrlC(t *testing.T) {
	t.Parallel()
	// The quotes keep the typed command line from matching the output.
	screen := interactive(t, `run -- sh -c 'echo wait"ing for" input; read x; echo never'`)
	screen.waitFor("waiting for input")
	screen.keys("C-c")
	screen.waitFor("status 130")
}

// Job control as without tether, in an interactive bash: Ctrl-Z stops the
// job (bash prints Stopped and its prompt), jobs lists it, fg resumes it in
// the foreground, Ctrl-Z and bg run it in the background, fg brings it back,
// and Ctrl-C ends it with status 130.
func TestRunInteractiveJobControl(t *testing.T) {
	t.Parallel()
	// The default level hears of the stop from the keeper; the group level
	// from tether's own SIGCHLD.
	for _, level := range []string{"auto", "group"} {
		t.Run(level, func(t *testing.T) {
			t.Parallel()
			interactiveJobControl(t, level)
		})
	}
}

func interactiveJobControl(t *testing.T, level string) {
	screen := interactive(t, "") // a shell, nothing typed yet
	exe, _ := os.Executable()
	tether := fmt.Sprintf(`TETHER_TEST_CLI=1 GORACE=atexit_sleep_ms=0 %q run -containment %s`, exe, level)
	screen.keys(tether + ` -- sh -c 'i=0; while :; do i=$((i+1)); echo "ti""ck $i"; sleep 0.1; done'`)
	// (C-z waits for the ticks: by then the program has the terminal.)
	screen.keys("Enter")
	ticks := func() int { // the highest tick on the screen
		n := 0
		for _, l := range strings.Split(screen.text(), "\n") {
			if v, ok := strings.CutPrefix(l, "tick "); ok {
				if m, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && m > n {
					n = m
				}
			}
		}
		return n
	}
	screen.waitFor("tick 3")
	screen.keys("C-z")
	screen.waitFor("Stopped")
	screen.keys("jobs")
	screen.keys("Enter")
	screen.waitForCount("Stopped", 2)
	before := ticks()
	screen.keys("fg")
	screen.keys("Enter")
	screen.waitFor(fmt.Sprintf("tick %d", before+2)) // it runs again, in the foreground
	screen.keys("C-z")
	screen.waitForCount("Stopped", 3)
	screen.keys("bg")
	screen.keys("Enter")
	before = ticks()
	screen.waitFor(fmt.Sprintf("tick %d", before+2)) // it runs in the background
	screen.keys("fg")
	screen.keys("Enter")
	before = ticks()
	screen.waitFor(fmt.Sprintf("tick %d", before+2))
	screen.keys("C-c")
	screen.keys(`echo "after $?"`)
	screen.keys("Enter")
	screen.waitFor("after 130")

	// A job sent to the background that ends there leaves the terminal to
	// the shell: tether must not take it back from under bash. The program
	// says its pid first: the test types only once it runs in the
	// foreground (keys typed before the shell has read the line, or before
	// the program has the terminal, are flushed or reach the wrong reader).
	screen.keys(tether + ` -- sh -c 'echo "rea""der $$"; read x; echo "bg-do""ne"'`)
	screen.keys("Enter")
	var reader int
	for deadline := time.Now().Add(15 * time.Second); reader == 0; time.Sleep(10 * time.Millisecond) {
		for _, l := range strings.Split(screen.text(), "\n") {
			if v, ok := strings.CutPrefix(l, "reader "); ok {
				reader, _ = strconv.Atoi(strings.TrimSpace(v))
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the reader never said its pid:\n%s", screen.text())
		}
	}
	waitForeground(t, reader)
	screen.keys("C-z")
	screen.waitForCount("Stopped", 4)
	stops := strings.Count(screen.text(), "Stopped")
	screen.keys("bg")
	screen.keys("Enter")
	// In the background its read stops it (SIGTTIN), as without tether;
	// bash says so when asked (jobs), and its own prompt keeps working.
	screen.keys(`echo "shell al""ive"`)
	screen.keys("Enter")
	screen.waitFor("shell alive")
	for i := 0; strings.Count(screen.text(), "Stopped") <= stops; i++ {
		if i == 100 {
			t.Fatalf("the background job never stopped on its read:\n%s", screen.text())
		}
		screen.keys("jobs")
		screen.keys("Enter")
		time.Sleep(100 * time.Millisecond) // a terminal has no event to wait on
	}
	screen.keys("fg")
	screen.keys("Enter")
	waitForeground(t, reader)
	screen.keys("x")
	screen.keys("Enter")
	screen.waitFor("bg-done")
	screen.keys(`echo "still al""ive $?"`)
	screen.keys("Enter")
	screen.waitFor("still alive 0")
}

// In a terminal, PROGRAM starts with the signal mask and ignored signals a
// shell's job gets, at every level: tether's own terminal handling (SIGTTOU
// blocked while it takes the foreground back, the keeper's dispositions)
// leaks nothing into it.
func TestRunInteractiveSignalState(t *testing.T) {
	t.Parallel()
	screen := interactive(t, "")
	exe, _ := os.Executable()
	dir := t.TempDir()
	screen.keys(fmt.Sprintf(`grep -E 'SigBlk|SigIgn' /proc/self/status > %s/bare`, dir))
	screen.keys("Enter")
	for _, level := range []string{"auto", "keeper", "group"} {
		screen.keys(fmt.Sprintf(`TETHER_TEST_CLI=1 GORACE=atexit_sleep_ms=0 %q run -containment %s -- grep -E 'SigBlk|SigIgn' /proc/self/status > %s/%s; cmp %[3]s/bare %[3]s/%[4]s && echo "same as ba""re: %[4]s"`, exe, level, dir, level))
		screen.keys("Enter")
		screen.waitFor("same as bare: " + level)
	}
}

// The same for tether up: Ctrl-C stops every process gracefully, tether up
// exits 0, and nothing is left.
func TestUpInteractiveCtrlC(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	marker := fmt.Sprintf("tether-up-tmux-%d", os.Getpid())
	procfile := fmt.Sprintf("a: trap 'echo a says bye; exit 0' TERM; echo a ready; while :; do sleep 0.05; done; : %[1]s\n"+
		"b: trap 'echo b says bye; exit 0' TERM; echo b ready; while :; do sleep 0.05; done; : %[1]s\n", marker)
	if err := os.WriteFile(filepath.Join(dir, "Procfile"), []byte(procfile), 0o644); err != nil {
		t.Fatal(err)
	}
	screen := interactive(t, "up -color never -f "+filepath.Join(dir, "Procfile"))
	screen.waitFor("b ready")
	screen.keys("C-c")
	screen.waitFor("status 0")
	for _, want := range []string{"a says bye", "b says bye"} {
		screen.waitFor(want)
	}
	if out, err := exec.Command("pgrep", "-f", marker).Output(); err == nil {
		t.Fatalf("left behind: %s", out)
	}
}

var tmuxServers atomic.Int64 // a number for each tmux server the tests start

// tmuxScreen is a terminal in a private tmux server, running one tether
// command and then printing "status N" (or, for "", an interactive bash
// waiting for what the test types).
type tmuxScreen struct {
	t    *testing.T
	tmux func(args ...string) (string, error)
}

func interactive(t *testing.T, tetherArgs string) *tmuxScreen {
	t.Helper()
	if _, err := exec.LookPath("tmux"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("tmux is not installed; .ci/run installs it")
		}
		t.Skip("no tmux")
	}
	exe, _ := os.Executable()
	// Its own server each time (-count: a dying server of the same name
	// would take the new session with it).
	sock := fmt.Sprintf("tether-test-%d-%s-%d", os.Getpid(), strings.ReplaceAll(t.Name(), "/", "-"), tmuxServers.Add(1))
	s := &tmuxScreen{t: t, tmux: func(args ...string) (string, error) {
		out, err := exec.Command("tmux", append([]string{"-L", sock}, args...)...).CombinedOutput()
		return string(out), err
	}}
	// An interactive shell with job control, as a user has: the command is
	// a foreground job in a process group of its own.
	if out, err := s.tmux("new-session", "-d", "-s", "t", "-x", "150", "-y", "40", "bash", "--norc", "--noprofile", "-i"); err != nil {
		t.Fatalf("tmux: %v: %s", err, out)
	}
	t.Cleanup(func() {
		_, _ = s.tmux("kill-server")
		// tmux leaves its socket file behind: /tmp/tmux-UID/NAME by default.
		dir := os.Getenv("TMUX_TMPDIR")
		if dir == "" {
			dir = "/tmp"
		}
		_ = os.Remove(filepath.Join(dir, fmt.Sprintf("tmux-%d", os.Getuid()), sock)) // best effort: a socket file
	})
	if tetherArgs != "" {
		s.keys(fmt.Sprintf(`TETHER_TEST_CLI=1 GORACE=atexit_sleep_ms=0 %q %s; echo "status $?"`, exe, tetherArgs))
		s.keys("Enter")
	}
	return s
}

func (s *tmuxScreen) waitFor(want string) { s.t.Helper(); s.waitForCount(want, 1) }

// text is what the screen shows, with its scrollback.
func (s *tmuxScreen) text() string {
	screen, _ := s.tmux("capture-pane", "-p", "-S", "-200", "-t", "t")
	return screen
}

// waitForCount waits until want shows at least n times (scrollback included).
func (s *tmuxScreen) waitForCount(want string, n int) {
	s.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		screen := s.text()
		if strings.Count(screen, want) >= n {
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("screen never showed %q:\n%s\nthe pane's session:\n%s", want, screen, s.processes())
		}
		time.Sleep(20 * time.Millisecond) // a terminal has no event to wait on
	}
}

// processes lists the pane's session (the shell and its jobs, with their
// states and terminal's foreground group), for a failure's diagnosis: a
// rare failure of TestRunInteractiveJobControl/group showed the program
// stopped and tether not following, and nothing more.
func (s *tmuxScreen) processes() string {
	pid, err := s.tmux("display-message", "-p", "-t", "t", "#{pane_pid}")
	if err != nil {
		return "(no pane: " + err.Error() + ")"
	}
	out, err := exec.Command("ps", "-o", "pid,ppid,pgid,tpgid,stat,wchan:24,args", "-s", strings.TrimSpace(pid)).CombinedOutput()
	if err != nil {
		return fmt.Sprintf("(ps: %v) %s", err, out)
	}
	return string(out)
}

func (s *tmuxScreen) keys(k string) {
	s.t.Helper()
	args := []string{"send-keys", "-t", "t", "-l", k} // literally
	if k == "Enter" || k == "C-c" || k == "C-z" {
		args = []string{"send-keys", "-t", "t", k} // a key
	}
	if out, err := s.tmux(args...); err != nil {
		s.t.Fatalf("send-keys: %v: %s", err, out)
	}
}

// Help goes to stdout with status 0; a usage error is one line on stderr
// with status 2, for every command.
func TestHelpAndUsageErrors(t *testing.T) {
	t.Parallel()
	cases := []struct {
		args   []string
		code   int
		stderr string
	}{
		{[]string{"run", "-h"}, 0, ""},
		{[]string{"up", "-h"}, 0, ""},
		{[]string{"doctor", "-h"}, 0, ""},
		{[]string{"run"}, 2, "tether run: no program given (tether run -h for help)\n"},
		{[]string{"run", "-bogus", "--", "true"}, 2, "tether run: flag provided but not defined: -bogus (tether run -h for help)\n"},
		{[]string{"run", "-stop-signal", "SIGNOPE", "--", "true"}, 2, "tether run: -stop-signal: \"SIGNOPE\" is not a signal (want a name such as SIGTERM, TERM or term, or a number) (tether run -h for help)\n"},
		{[]string{"doctor", "extra"}, 2, "tether doctor: unexpected argument \"extra\" (tether doctor -h for help)\n"},
		{[]string{"up", "-containment", "bogus"}, 2, "tether up: -containment: \"bogus\" is not auto, group, keeper, cgroup or pidns (tether up -h for help)\n"},
		{[]string{"version", "-h"}, 0, ""},
		{[]string{"up", "-memory-max", "lots"}, 2, "tether up: -memory-max: \"lots\" is not a size such as 512M or 2G (tether up -h for help)\n"},
		{[]string{"up", "-pids-max", "0"}, 2, "tether up: -pids-max: \"0\" is not a count of processes (tether up -h for help)\n"},
	}
	for _, tc := range cases {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			t.Parallel()
			c := tetherCmd(tc.args...)
			var stdout, stderr strings.Builder
			c.Stdout, c.Stderr = &stdout, &stderr
			code := exitStatus(c.Run())
			if code != tc.code || stderr.String() != tc.stderr {
				t.Fatalf("status %d, stderr %q; want %d, %q", code, stderr.String(), tc.code, tc.stderr)
			}
			if tc.code == 0 && !strings.Contains(stdout.String(), "Example") {
				t.Fatalf("help without examples:\n%s", stdout.String())
			}
		})
	}
}

// The control commands too: their -h printed the flag package's own
// "Usage of tether status:" on stderr besides the help on stdout, and a bad
// flag printed it before the one line.
func TestControlHelpAndUsageErrors(t *testing.T) {
	t.Parallel()
	for _, op := range []string{"restart", "stop", "start", "status"} {
		t.Run(op, func(t *testing.T) {
			t.Parallel()
			c := tetherCmd(op, "-h")
			var stdout, stderr strings.Builder
			c.Stdout, c.Stderr = &stdout, &stderr
			if code := exitStatus(c.Run()); code != 0 || stderr.String() != "" || !strings.HasPrefix(stdout.String(), "usage: tether "+op+" ") {
				t.Errorf("%s -h: status %d, stderr %q, stdout:\n%s", op, code, stderr.String(), stdout.String())
			}
			c = tetherCmd(op, "-bogus")
			stdout.Reset()
			stderr.Reset()
			c.Stdout, c.Stderr = &stdout, &stderr
			want := "tether " + op + ": flag provided but not defined: -bogus (tether " + op + " -h for help)\n"
			if code := exitStatus(c.Run()); code != 2 || stderr.String() != want {
				t.Errorf("%s -bogus: status %d, stderr %q; want 2, %q", op, code, stderr.String(), want)
			}
		})
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{
		"1": 1, "1048576": 1 << 20, "512M": 512 << 20, "512m": 512 << 20, "512MB": 512 << 20,
		"512MiB": 512 << 20, "1.5G": 3 << 29, "2T": 2 << 40, "100K": 100 << 10, "64 M": 64 << 20,
	} {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "M", "-1", "0", "1e9", "0x10", "1.5.2G", "12Q", "1iB", "9999999T", "0.5"} {
		if got, err := parseSize(in); err == nil {
			t.Errorf("parseSize(%q) = %d, want an error", in, got)
		}
	}
}

// Limits that cannot be set are refused with status 1 and one line saying
// why; a bad size is a usage error.
func TestRunLimitsRefused(t *testing.T) {
	t.Parallel()
	c := tetherCmd("run", "-containment", "keeper", "-memory-max", "64M", "--", "true")
	var stderr strings.Builder
	c.Stderr = &stderr
	if got := exitStatus(c.Run()); got != 1 || !strings.Contains(stderr.String(), "limits need the cgroup level") ||
		strings.Count(stderr.String(), "\n") != 1 || strings.Contains(stderr.String(), "tether: tether:") {
		t.Errorf("-memory-max at the keeper level: status %d, %q", got, stderr.String())
	}
	c = tetherCmd("run", "-pids-max", "-3", "--", "true")
	if got := exitStatus(c.Run()); got != 2 {
		t.Errorf("-pids-max -3: status %d, want 2", got)
	}
	c = tetherCmd("run", "-memory-max", "lots", "--", "true")
	if got := exitStatus(c.Run()); got != 2 {
		t.Errorf("-memory-max lots: status %d, want 2", got)
	}
	c = tetherCmd("run", "--", "true")
	c.Env = append(c.Env, "TETHER_PIDS_MAX=200x")
	if got := exitStatus(c.Run()); got != 2 {
		t.Errorf("TETHER_PIDS_MAX=200x: status %d, want 2", got)
	}
}

// The isolation issue's scenario, as a user met it: `tether run` with a
// polite program on the host, then `tether run -- true` in a new PID
// namespace (a sandbox, unshare, a container sharing the host's cgroups), and
// the reverse. The first program must still run, its cleanup unrun, until it
// is asked to stop; then it cleans up and exits 0.
func TestRunIsolatedFromRunInPIDNamespace(t *testing.T) {
	t.Parallel()
	needUnsharePID(t)
	exe, _ := os.Executable()
	inNS := func(args ...string) []string {
		return append([]string{"unshare", "--pid", "--fork", "--mount-proc", "--kill-child", exe}, args...)
	}
	onHost := func(args ...string) []string { return append([]string{exe}, args...) }
	polite := []string{"run", "--", "sh", "-c", `trap 'echo cleaned; exit 0' TERM; echo ready; sleep 100 & wait`}
	for _, tc := range []struct {
		name          string
		victim, other []string
	}{
		{"victim on the host", onHost(polite...), inNS("run", "--", "true")},
		{"victim in a PID namespace", inNS(polite...), onHost("run", "--", "true")},
		{"both in PID namespaces", inNS(polite...), inNS("run", "--", "true")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			env := append(os.Environ(), "TETHER_TEST_CLI=1", "GORACE=atexit_sleep_ms=0")
			victim := exec.Command(tc.victim[0], tc.victim[1:]...)
			victim.Env = env
			stdout, err := victim.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := victim.Start(); err != nil {
				t.Fatal(err)
			}
			lines := make(chan string, 8)
			// Owner: the test. Ends at the victim's EOF: at the latest
			// when the test kills it below.
			go func() {
				defer close(lines)
				sc := bufio.NewScanner(stdout)
				for sc.Scan() {
					lines <- sc.Text()
				}
			}()
			t.Cleanup(func() {
				_ = victim.Process.Kill() // ours; best effort: it may be gone
				for range lines {
				}
				_ = victim.Wait()
			})
			next := func() (string, bool) {
				select {
				case l, ok := <-lines:
					return l, ok
				case <-time.After(30 * time.Second):
					t.Fatal("no line from the first tether run after 30 s")
					return "", false
				}
			}
			if l, _ := next(); l != "ready" {
				t.Fatalf("victim: %q", l)
			}
			// Twice, so that the second run's keeper finds the first's
			// cgroups too.
			for range 2 {
				other := exec.Command(tc.other[0], tc.other[1:]...)
				other.Env = env
				if b, err := other.CombinedOutput(); err != nil {
					t.Fatalf("the other tether run: %v: %s", err, b)
				}
			}
			select {
			case l, ok := <-lines:
				t.Fatalf("the first tether run said %q (open %v) when another ran in another PID namespace", l, ok)
			default:
			}
			// SIGTERM to tether itself: unshare does not pass signals on.
			tetherPID := victim.Process.Pid
			if tc.victim[0] == "unshare" {
				tetherPID = childOf(victim.Process.Pid)
			}
			_ = syscall.Kill(tetherPID, syscall.SIGTERM) // ours: tether, started by this test
			if l, _ := next(); l != "cleaned" {
				t.Errorf("after SIGTERM the program said %q, want cleaned", l)
			}
			if err := waitBounded(t, victim, 30*time.Second); err != nil {
				t.Errorf("the first tether run: %v", err)
			}
		})
	}
}

// childOf returns pid's first child, 0 if it has none.
func childOf(pid int) int {
	tasks, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	for _, task := range tasks {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/children", pid, task.Name())) // a thread may have exited
		if f := strings.Fields(string(b)); len(f) > 0 {
			n, _ := strconv.Atoi(f[0])
			return n
		}
	}
	return 0
}

// listenServer is a socket-activated server, as sd_listen_fds(3) wants it:
// the socket at fd 3 is its only if LISTEN_PID is its pid and LISTEN_FDS 1.
// It answers one connection with its pid and exits 0.
func listenServer() {
	if os.Getenv("LISTEN_PID") != strconv.Itoa(os.Getpid()) || os.Getenv("LISTEN_FDS") != "1" {
		fmt.Fprintf(os.Stderr, "not for me: LISTEN_PID=%s LISTEN_FDS=%s, my pid %d\n", os.Getenv("LISTEN_PID"), os.Getenv("LISTEN_FDS"), os.Getpid())
		os.Exit(3)
	}
	ln, err := net.FileListener(os.NewFile(3, "listen"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(4)
	}
	c, err := ln.Accept()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(5)
	}
	fmt.Fprintf(c, "hello from %d\n", os.Getpid())
	_ = c.Close()
	os.Exit(0)
}

// systemd socket activation through tether run, with Debian's
// systemd-socket-activate: the listening socket reaches PROGRAM at fd 3,
// and LISTEN_PID names PROGRAM, so a server that checks it (as
// sd_listen_fds does) takes the socket and serves.
func TestRunSocketActivation(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("systemd-socket-activate"); err != nil {
		t.Skip("no systemd-socket-activate (Debian's systemd package)")
	}
	// A free port on loopback: bound, read, closed (another program could
	// take it in between; then the test fails, it does not hang).
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	exe, _ := os.Executable()
	// systemd-socket-activate gives the command a clean environment but
	// for LISTEN_* and what -E names; only PROGRAM is the server.
	c := exec.Command("systemd-socket-activate", "-l", addr, "-E", "PATH", "-E", "TETHER_TEST_CLI=1",
		"-E", "GORACE=atexit_sleep_ms=0", exe, "run", "--", "env", "TETHER_TEST_LISTEN=1", exe)
	stderr := &lockedBuffer{}
	c.Stderr = stderr
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = c.Process.Kill() // best effort: it has exited when the test passes
		_ = c.Wait()
	})
	var conn net.Conn
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if conn, err = net.Dial("tcp", addr); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("nothing listens at %s after 10s: %v; %s", addr, err, stderr.String())
		}
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(20 * time.Second))
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "hello from ") {
		t.Fatalf("the server said %q (%v); stderr: %s", line, err, stderr.String())
	}
	if err := waitBounded(t, c, 20*time.Second); err != nil {
		t.Errorf("tether run under socket activation: %v; stderr: %s", err, stderr.String())
	}
}

// Descriptors inherited by tether run reach PROGRAM at the same numbers, as
// with tini: here 3 and 5, and nothing at 4.
func TestRunPassesInheritedDescriptors(t *testing.T) {
	t.Parallel()
	r3, w3, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r3.Close()
	r5, w5, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r5.Close()
	c := tetherCmd("run", "--", "sh", "-c", `echo three >&3; echo five >&5; { echo four >&4; } 2>/dev/null && echo "4 is open"; exit 0`)
	c.ExtraFiles = []*os.File{w3, nil, w5}
	out, err := c.CombinedOutput()
	_ = w3.Close()
	_ = w5.Close()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	for _, p := range []struct {
		r    *os.File
		want string
	}{{r3, "three\n"}, {r5, "five\n"}} {
		b, _ := io.ReadAll(p.r)
		if string(b) != p.want {
			t.Errorf("read %q, want %q", b, p.want)
		}
	}
	if strings.Contains(string(out), "4 is open") {
		t.Errorf("fd 4, not inherited, is open in PROGRAM: %s", out)
	}
}

// lockedBuffer is a strings.Builder that a process's copier goroutine may
// write while the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// -die-with-parent: when tether's parent is SIGKILLed, PROGRAM gets the stop
// signal and, since nobody else will enforce a deadline then, SIGKILL with
// its tree after -grace. Here PROGRAM ignores SIGTERM.
func TestRunDieWithParent(t *testing.T) {
	t.Parallel()
	exe, _ := os.Executable()
	parent := exec.Command("sh", "-c", `"$0" run -die-with-parent -grace 300ms -- sh -c 'trap "" TERM; echo "program $$"; while :; do sleep 0.05; done' & wait`, exe)
	parent.Env = append(os.Environ(), "TETHER_TEST_CLI=1", "GORACE=atexit_sleep_ms=0")
	var stderr lockedBuffer
	parent.Stderr = &stderr
	out, err := parent.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := parent.Start(); err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(readLine(t, bufio.NewReader(out)))
	prog, _ := strconv.Atoi(f[len(f)-1])
	if f[0] != "program" || prog == 0 {
		t.Fatalf("got %q", f)
	}
	tetherPID := childOf(parent.Process.Pid)
	_ = parent.Process.Kill() // the parent SIGKILLed
	_ = parent.Wait()
	if left := testproc.WaitGone(10*time.Second, prog, tetherPID); len(left) > 0 {
		t.Fatalf("still alive after the parent's SIGKILL: %v; stderr: %s", left, stderr.String())
	}
	if !strings.Contains(stderr.String(), "tether: parent gone: stopping pid") {
		t.Errorf("stderr: %s", stderr.String())
	}
}

// PROGRAM starts with the signals ignored that tether was started with
// ignored, as through exec or tini: `nohup`, or a script's background job.
// (A Go program knows of SIGHUP and SIGINT only: the runtime replaces other
// inherited SIG_IGNs before main; docs/design.md.)
func TestRunKeepsIgnoredSignals(t *testing.T) {
	t.Parallel()
	exe, _ := os.Executable()
	for _, level := range []string{"group", "keeper", "auto"} {
		c := exec.Command("sh", "-c", `trap '' INT HUP; exec "$0" run -containment "$1" -- grep ^SigIgn /proc/self/status`, exe, level)
		c.Env = append(os.Environ(), "TETHER_TEST_CLI=1", "GORACE=atexit_sleep_ms=0")
		out, err := c.CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v: %s", level, err, out)
		}
		f := strings.Fields(string(out))
		mask, perr := strconv.ParseUint(f[len(f)-1], 16, 64)
		if perr != nil || mask&3 != 3 {
			t.Errorf("-containment %s: PROGRAM's %s: want SIGHUP and SIGINT (mask 3) ignored", level, strings.TrimSpace(string(out)))
		}
	}
}

// As PID 1 of a PID namespace (a container's init) tether runs alone: no
// keeper (the kernel kills the namespace when its init dies). When PROGRAM
// exits it stops every other process of the namespace itself: the stop
// signal and SIGCONT, the grace, SIGKILL; and passes PROGRAM's status on.
func TestRunAsPID1RunsAlone(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Skip("no unshare")
	}
	if err := exec.Command("unshare", "--pid", "--fork", "--mount-proc", "true").Run(); err != nil {
		t.Skipf("no PID namespaces here: %v", err)
	}
	exe, _ := os.Executable()
	dir := t.TempDir()
	// Two leftovers, each ready once its trap is set: a polite one and one
	// that ignores SIGTERM. Then PROGRAM counts keepers and exits 7.
	script := `D=$0
sh -c 'trap "echo cleaned > $0/polite; exit 0" TERM; : > $0/ready1; while :; do sleep 0.05; done' "$D" &
sh -c 'trap "" TERM; : > $0/ready2; while :; do sleep 0.05; done' "$D" &
while [ ! -e "$D/ready1" ] || [ ! -e "$D/ready2" ]; do sleep 0.01; done
n=0; for c in /proc/[0-9]*/comm; do [ "$(cat "$c" 2>/dev/null)" = tether-keeper ] && n=$((n+1)); done
echo "keepers $n"; echo "pid1 $(cat /proc/1/comm)"
exit 7`
	c := exec.Command("unshare", "--pid", "--fork", "--mount-proc", exe, "run", "-grace", "300ms", "--", "sh", "-c", script, dir)
	c.Env = append(os.Environ(), "TETHER_TEST_CLI=1", "GORACE=atexit_sleep_ms=0")
	var stderr lockedBuffer
	c.Stderr = &stderr
	start := time.Now()
	out, err := c.Output()
	took := time.Since(start)
	if got := exitStatus(err); got != 7 {
		t.Fatalf("status %d, want PROGRAM's 7; stdout %q; stderr %s", got, out, stderr.String())
	}
	if !strings.Contains(string(out), "keepers 0\n") || !strings.Contains(string(out), "pid1 tether.test\n") && !strings.Contains(string(out), "pid1 tether\n") {
		t.Errorf("want tether alone as PID 1: %s", out)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "polite")); err != nil || string(b) != "cleaned\n" {
		t.Errorf("the polite leftover did not clean up (%v)", err)
	}
	if !regexp.MustCompile(`tether: SIGKILL to \d+ process(es)? still running after 300ms: .*ready2`).MatchString(stderr.String()) {
		t.Errorf("stderr does not name the SIGKILLed leftover:\n%s", stderr.String())
	}
	if took > 10*time.Second {
		t.Errorf("took %v", took)
	}
}

// In a PID namespace that kept the host's /proc (unshare --pid without
// --mount-proc), /proc/PID names another process than the pid tether would
// signal: the keeper levels refuse, naming the fix, and -containment auto
// falls back to the group level, which reads no /proc.
func TestRunForeignProc(t *testing.T) {
	t.Parallel()
	if err := exec.Command("unshare", "--pid", "--fork", "true").Run(); err != nil {
		t.Skipf("no PID namespaces here: %v", err)
	}
	exe, _ := os.Executable()
	run := func(args ...string) (string, error) {
		c := exec.Command("unshare", append([]string{"--pid", "--fork", exe, "run"}, args...)...)
		c.Env = append(os.Environ(), "TETHER_TEST_CLI=1", "GORACE=atexit_sleep_ms=0")
		out, err := c.CombinedOutput()
		return string(out), err
	}
	// PID 1 of the namespace runs alone; as its child (sh first) tether
	// would use a keeper.
	if out, err := run("-containment", "keeper", "--", "true"); err == nil || !strings.Contains(out, "belongs to another PID namespace") {
		t.Errorf("-containment keeper with the host's /proc: %v: %s", err, out)
	}
	c := exec.Command("unshare", "--pid", "--fork", "sh", "-c", `"$0" run -- sh -c 'echo ran'; echo "status $?"`, exe)
	c.Env = append(os.Environ(), "TETHER_TEST_CLI=1", "GORACE=atexit_sleep_ms=0")
	out, err := c.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "ran\nstatus 0") {
		t.Errorf("-containment auto with the host's /proc: %v: %s", err, out)
	}
}

// A SIGTERM (or Ctrl-C) while what PROGRAM left has its grace ends the wait:
// tether SIGKILLs the leftovers, says so, and exits, long before the grace.
func TestRunSignalCutsTheGrace(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	c := tetherCmd("run", "-grace", "30s", "--", "sh", "-c",
		`sh -c 'trap "" TERM; : > "$0/ready"; exec sleep 100' "$0" & while [ ! -e "$0/ready" ]; do sleep 0.01; done; echo "left $!"`, dir)
	var stderr lockedBuffer
	c.Stderr = &stderr
	out, err := c.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Process.Kill(); _ = c.Wait() })
	f := strings.Fields(readLine(t, bufio.NewReader(out)))
	left, _ := strconv.Atoi(f[len(f)-1])
	pinned := testproc.Pin(left)
	defer pinned.Kill()
	// PROGRAM has exited; tether is giving the leftover its 30 s.
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(stderr.String(), "stopping 1 process it left"); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no leftover note: %s", stderr.String())
		}
	}
	start := time.Now()
	_ = c.Process.Signal(syscall.SIGTERM)
	if err := waitBounded(t, c, 10*time.Second); err != nil {
		t.Errorf("tether after the second SIGTERM: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %v after the second SIGTERM", d)
	}
	if left := testproc.WaitGone(5*time.Second, left); len(left) > 0 {
		t.Errorf("the leftover survived")
	}
	if !strings.Contains(stderr.String(), "tether: SIGTERM while they had their grace: SIGKILL to 1 process") {
		t.Errorf("stderr: %s", stderr.String())
	}
}

// waitForeground waits until pid runs (not stopped) in its terminal's
// foreground process group: what a user sees before typing to it.
func waitForeground(t *testing.T, pid int) {
	t.Helper()
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if i := strings.LastIndexByte(string(b), ')'); i > 0 {
			f := strings.Fields(string(b[i+2:])) // state ppid pgrp session tty_nr tpgid ...
			if len(f) > 5 && f[0] != "T" && f[2] == f[5] {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("pid %d not running in the foreground after 15s: %q", pid, b)
		}
	}
}
