//go:build unix

package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tetherproc/tether"
)

// The tests run `tether up` in-process, as main does, with Procfiles of
// /bin/sh commands in a temporary directory, which is also every process's
// working directory: that is how upNoLeftovers finds any process a test left
// behind, grandchildren included.

// upBuffer is stdout for an in-process tether up: safe for the copiers'
// writes and the test's reads, and able to wait for a text to appear.
type upBuffer struct {
	mu      sync.Mutex
	b       bytes.Buffer
	changed chan struct{} // closed, and replaced, at every write
}

func newUpBuffer() *upBuffer { return &upBuffer{changed: make(chan struct{})} }

func (u *upBuffer) Write(p []byte) (int, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	close(u.changed)
	u.changed = make(chan struct{})
	return u.b.Write(p)
}

func (u *upBuffer) String() string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.b.String()
}

// waitFor waits until the output has s, at most 10 s.
func (u *upBuffer) waitFor(t *testing.T, s string) {
	t.Helper()
	u.waitForCount(t, s, 1)
}

// waitForCount waits until the output has s n times, at most 10 s.
func (u *upBuffer) waitForCount(t *testing.T, s string, n int) {
	t.Helper()
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	for {
		u.mu.Lock()
		has, changed := strings.Count(u.b.String(), s) >= n, u.changed
		u.mu.Unlock()
		if has {
			return
		}
		select {
		case <-changed:
		case <-deadline.C:
			t.Fatalf("not %d of %q in the output after 10 s:\n%s", n, s, u.String())
		}
	}
}

// upHarness is one tether up running in-process.
type upHarness struct {
	t      *testing.T
	out    *upBuffer
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
	err    error
}

// upStart runs tether up on dir's Procfile, colorless, with args. Cleanup
// cancels it (Ctrl-C), waits for it and checks nothing is left behind.
func upStart(t *testing.T, dir string, args ...string) *upHarness {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	h := &upHarness{t: t, out: newUpBuffer(), cancel: cancel, done: make(chan error, 1)}
	// The defaults the expectations rely on, whatever $TETHER_GRACE and
	// $TETHER_STOP_SIGNAL say; args may override them.
	argv := append([]string{"up", "-f", filepath.Join(dir, "Procfile"), "-color", "never", "-grace", "5s", "-stop-signal", "SIGTERM"}, args...)
	// Owner: the test; ends when tether up returns, which cleanup brings
	// about by cancelling ctx.
	go func() {
		var errb bytes.Buffer
		h.done <- run(ctx, argv, h.out, &errb)
	}()
	t.Cleanup(func() {
		cancel()
		h.wait()
		upNoLeftovers(t, dir)
	})
	return h
}

// wait returns tether up's error once it has returned, at most 15 s.
func (h *upHarness) wait() error {
	h.t.Helper()
	h.once.Do(func() {
		select {
		case h.err = <-h.done:
		case <-time.After(15 * time.Second):
			h.cancel()
			h.err = <-h.done // bounded: the stop takes -grace per process at most
			h.t.Errorf("tether up still running after 15 s:\n%s", h.out.String())
		}
	})
	return h.err
}

// upRun runs tether up to its end.
func upRun(t *testing.T, dir string, args ...string) (string, error) {
	t.Helper()
	h := upStart(t, dir, args...)
	err := h.wait()
	return h.out.String(), err
}

// upDir writes files (Procfile, .env, ...) to a new directory.
func upDir(t *testing.T, files map[string]string) string {
	t.Helper()
	dir, err := filepath.EvalSymlinks(t.TempDir()) // as /proc/PID/cwd shows it
	if err != nil {
		t.Fatal(err)
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// upNoLeftovers fails the test if a process still runs in dir (Linux: it
// reads /proc; elsewhere it finds nothing). Processes killed in the last
// moment of the stop may take a moment to be gone, and the kernel tells no
// one but their parent: it looks every 10 ms, 2 s at most.
func upNoLeftovers(t *testing.T, dir string) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for {
		var left []string
		entries, _ := os.ReadDir("/proc")
		for _, e := range entries {
			pid, err := strconv.Atoi(e.Name())
			if err != nil {
				continue
			}
			if cwd, err := os.Readlink(filepath.Join("/proc", e.Name(), "cwd")); err == nil && cwd == dir {
				cmdline, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
				left = append(left, fmt.Sprintf("%d %s", pid, bytes.ReplaceAll(cmdline, []byte{0}, []byte{' '})))
				if time.Now().After(deadline) {
					_ = syscall.Kill(pid, syscall.SIGKILL) // best effort: leave the machine clean
				}
			}
		}
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("processes left behind in %s:\n%s", dir, strings.Join(left, "\n"))
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func upExitCode(err error) int {
	var c exitCode
	if errors.As(err, &c) {
		return int(c)
	}
	if err != nil {
		return -1
	}
	return 0
}

// upIndex is the position of s in out, failing the test if it is missing.
func upIndex(t *testing.T, out, s string) int {
	t.Helper()
	i := strings.Index(out, s)
	if i < 0 {
		t.Fatalf("no %q in the output:\n%s", s, out)
	}
	return i
}

// upInOrder checks that each of lines appears after the one before.
func upInOrder(t *testing.T, out string, lines ...string) {
	t.Helper()
	at := 0
	for _, l := range lines {
		i := strings.Index(out[at:], l)
		if i < 0 {
			t.Fatalf("no %q after offset %d in the output:\n%s", l, at, out)
		}
		at += i + len(l)
	}
}

// A trap that says bye on SIGTERM, then a line saying it is in place.
const upPolite = `trap 'echo bye; exit 0' TERM; echo ready; while :; do sleep 0.05; done`

func TestUpOutput(t *testing.T) {
	t.Parallel()
	dir := upDir(t, map[string]string{"Procfile": `
web: echo "hello from $PS"
longworker: echo "to stderr" >&2; echo "$PS on stdout"
`})
	out, err := upRun(t, dir, "-can-die", "all")
	if err != nil {
		t.Fatalf("%v:\n%s", err, out)
	}
	// Every line: a name padded to the longest one, " | ", the text.
	line := regexp.MustCompile(`^(tether      |web\.1       |longworker\.1) \| .*$`)
	for _, l := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		if !line.MatchString(l) {
			t.Errorf("line %q is not NAME | TEXT, aligned", l)
		}
	}
	if !regexp.MustCompile(`(?m)^tether       \| web\.1 started with pid \d+$`).MatchString(out) {
		t.Errorf("no start line for web.1:\n%s", out)
	}
	// A process's lines come between its start and its end.
	upInOrder(t, out, "| web.1 started with pid", "web.1        | hello from web.1\n",
		"tether       | web.1 exited with code 0\n", "tether       | web.1 has ended; the others go on (-can-die)\n")
	upInOrder(t, out, "| longworker.1 started with pid", "longworker.1 | to stderr\n",
		"tether       | longworker.1 exited with code 0\n")
	upIndex(t, out, "longworker.1 | longworker.1 on stdout\n")

	t.Run("timestamps", func(t *testing.T) {
		t.Parallel()
		out, err := upRun(t, dir, "-can-die", "all", "-timestamp", "web")
		if err != nil {
			t.Fatalf("%v:\n%s", err, out)
		}
		stamped := regexp.MustCompile(`^\d\d:\d\d:\d\d (tether|web\.1 ) \| `)
		for _, l := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
			if !stamped.MatchString(l) {
				t.Errorf("line %q has no timestamp", l)
			}
		}
	})
	t.Run("color", func(t *testing.T) {
		t.Parallel()
		out, err := upRun(t, dir, "-can-die", "all", "-color", "always")
		if err != nil {
			t.Fatalf("%v:\n%s", err, out)
		}
		// foreman's palette in Procfile order; tether's own in bold; the
		// text itself uncolored.
		upIndex(t, out, "\x1b[36mweb.1        |\x1b[0m hello from web.1\n")
		upIndex(t, out, "\x1b[33mlongworker.1 |\x1b[0m to stderr\n")
		upIndex(t, out, "\x1b[1mtether       |\x1b[0m web.1 exited with code 0\n")
	})
}

func TestUpColorChoice(t *testing.T) {
	t.Parallel()
	env := func(kv ...string) func(string) string {
		return func(k string) string {
			for i := 0; i+1 < len(kv); i += 2 {
				if kv[i] == k {
					return kv[i+1]
				}
			}
			return ""
		}
	}
	var buf bytes.Buffer
	for _, tc := range []struct {
		name, mode string
		getenv     func(string) string
		want       bool
	}{
		{"not-a-terminal", "auto", env(), false},
		{"FORCE_COLOR", "auto", env("FORCE_COLOR", "1"), true},
		{"FORCE_COLOR=0", "auto", env("FORCE_COLOR", "0"), false},
		{"NO_COLOR-wins", "auto", env("NO_COLOR", "1", "FORCE_COLOR", "1"), false},
		{"always", "always", env("NO_COLOR", "1"), true},
		{"never", "never", env("FORCE_COLOR", "1"), false},
	} {
		if got := upUseColor(tc.mode, &buf, tc.getenv); got != tc.want {
			t.Errorf("%s: color %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestUpPorts(t *testing.T) {
	t.Parallel()
	const procfile = `
web: echo "$PS PORT=$PORT"
worker: echo "$PS PORT=$PORT"
`
	for _, tc := range []struct {
		name string
		args []string
		env  string // the .env file, if not empty
		base int
	}{
		{"default", nil, "", 5000},
		{"flag", []string{"-p", "6000"}, "PORT=7000\n", 6000},
		{"dotenv", nil, "PORT=7000\n", 7000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if tc.name == "default" && os.Getenv("PORT") != "" {
				t.Skip("$PORT is set: the base port is not 5000")
			}
			files := map[string]string{"Procfile": procfile}
			if tc.env != "" {
				files[".env"] = tc.env
			}
			dir := upDir(t, files)
			out, err := upRun(t, dir, append([]string{"-m", "web=2,worker=1", "-can-die", "all"}, tc.args...)...)
			if err != nil {
				t.Fatalf("%v:\n%s", err, out)
			}
			for _, want := range []string{
				fmt.Sprintf("web.1    | web.1 PORT=%d\n", tc.base),
				fmt.Sprintf("web.2    | web.2 PORT=%d\n", tc.base+1),
				fmt.Sprintf("worker.1 | worker.1 PORT=%d\n", tc.base+100),
			} {
				upIndex(t, out, want)
			}
		})
	}
}

func TestUpEnv(t *testing.T) {
	t.Parallel()
	home := os.Getenv("HOME")
	dir := upDir(t, map[string]string{
		"Procfile": `show: echo "G=$GREETING E=$EXPANDED H=$H LOGNAME=$LOGNAME"` + "\n",
		".env":     "GREETING=\"hi there\"\nEXPANDED=\"${GREETING}!\"\nH=$HOME/x\nLOGNAME=from-dotenv\n",
		"a.env":    "GREETING=from-a\nEXPANDED=a\n",
		"b.env":    "EXPANDED=\"$GREETING and b\"\n",
		"bad.env":  "OK=1\nBAD-KEY=x\n",
	})
	t.Run("default", func(t *testing.T) {
		t.Parallel()
		// .env next to the Procfile; its values win over the environment.
		out, err := upRun(t, dir)
		if err != nil {
			t.Fatalf("%v:\n%s", err, out)
		}
		upIndex(t, out, fmt.Sprintf("show.1 | G=hi there E=hi there! H=%s/x LOGNAME=from-dotenv\n", home))
	})
	for _, tc := range []struct{ name, want string }{
		{"-e a.env,b.env", "G=from-a E=from-a and b H= LOGNAME=" + os.Getenv("LOGNAME")},
		{"-e a.env -e b.env", "G=from-a E=from-a and b H= LOGNAME=" + os.Getenv("LOGNAME")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var args []string
			for _, f := range strings.Fields(tc.name) {
				if f != "-e" {
					var paths []string
					for p := range strings.SplitSeq(f, ",") {
						paths = append(paths, filepath.Join(dir, p))
					}
					f = strings.Join(paths, ",")
				}
				args = append(args, f)
			}
			out, err := upRun(t, dir, args...)
			if err != nil {
				t.Fatalf("%v:\n%s", err, out)
			}
			upIndex(t, out, "show.1 | "+tc.want+"\n")
		})
	}
	t.Run("missing", func(t *testing.T) {
		t.Parallel()
		_, err := upRun(t, dir, "-e", filepath.Join(dir, "nope.env"))
		if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "nope.env") {
			t.Errorf("a missing -e file: %v", err)
		}
	})
	t.Run("malformed", func(t *testing.T) {
		t.Parallel()
		_, err := upRun(t, dir, "-e", filepath.Join(dir, "bad.env"))
		if err == nil || !strings.Contains(err.Error(), "bad.env:2:") {
			t.Errorf("a malformed -e file: %v", err)
		}
	})
}

func TestUpFormation(t *testing.T) {
	t.Parallel()
	dir := upDir(t, map[string]string{"Procfile": `
web: echo "I am $PS"
worker: echo "I am $PS"
clock: echo "I am $PS"
`})
	for _, tc := range []struct {
		name string
		args []string
		want []string
	}{
		{"all", nil, []string{"web.1", "worker.1", "clock.1"}},
		{"-m web=2", []string{"-m", "web=2"}, []string{"web.1", "web.2"}},
		{"-m all=2,web=0", []string{"-m", "all=2,web=0"}, []string{"worker.1", "worker.2", "clock.1", "clock.2"}},
		{"names", []string{"-m", "web=3", "web.2", "worker"}, nil},
		{"names-then-flags", []string{"web.3", "-m", "web=3"}, []string{"web.3"}},
		{"comma-names", []string{"clock,worker"}, []string{"worker.1", "clock.1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			out, err := upRun(t, dir, append([]string{"-can-die", "all"}, tc.args...)...)
			if tc.want == nil {
				// web.2 and worker: worker is not in the formation.
				if !errors.Is(err, errUsage) || !strings.Contains(err.Error(), "worker: the formation (-m) runs no instance of it") {
					t.Fatalf("names outside the formation: %v:\n%s", err, out)
				}
				return
			}
			if err != nil {
				t.Fatalf("%v:\n%s", err, out)
			}
			started := regexp.MustCompile(`\| I am (\S+)\n`).FindAllStringSubmatch(out, -1)
			var got []string
			for _, m := range started {
				got = append(got, m[1])
			}
			if fmt.Sprint(sortedCopy(got)) != fmt.Sprint(sortedCopy(tc.want)) {
				t.Errorf("ran %v, want %v:\n%s", got, tc.want, out)
			}
		})
	}
}

func sortedCopy(s []string) []string {
	c := append([]string(nil), s...)
	for i := range c {
		for j := i + 1; j < len(c); j++ {
			if c[j] < c[i] {
				c[i], c[j] = c[j], c[i]
			}
		}
	}
	return c
}

// upFIFO makes dir/name a FIFO: a process that opens it to write waits for
// one that opens it to read, so one process can wait for another's trap.
func upFIFO(t *testing.T, dir, name string) {
	t.Helper()
	if err := syscall.Mkfifo(filepath.Join(dir, name), 0o600); err != nil {
		t.Fatal(err)
	}
}

// foreman's rule: one process ends, all end; tether up exits with the
// first failure's status.
func TestUpMustNotDie(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, fail string
		code       int
		why        string
	}{
		{"fails", `read x < ready; echo failing >&2; exit 3`, 3, "exited with code 3"},
		{"succeeds", `read x < ready; exit 0`, 0, "exited with code 0"},
		{"killed", `read x < ready; kill -USR1 $$`, 128 + int(syscall.SIGUSR1), "terminated by SIGUSR1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := upDir(t, map[string]string{"Procfile": `
web: trap 'echo bye; exit 0' TERM; echo > ready; while :; do sleep 0.05; done
fail: ` + tc.fail + "\n"})
			upFIFO(t, dir, "ready")
			out, err := upRun(t, dir)
			if got := upExitCode(err); got != tc.code {
				t.Errorf("exit status %d (%v), want %d:\n%s", got, err, tc.code, out)
			}
			upInOrder(t, out,
				"tether | fail.1 "+tc.why+"\n",
				"tether | fail.1 has ended: sending SIGTERM to all processes (SIGKILL after 5s)\n",
				"web.1  | bye\n",
				"tether | web.1 exited with code 0\n")
		})
	}
}

func TestUpCanDie(t *testing.T) {
	t.Parallel()
	dir := upDir(t, map[string]string{"Procfile": `
web: ` + upPolite + `
worker: exit 2
`})
	h := upStart(t, dir, "-can-die", "worker")
	h.out.waitFor(t, "worker.1 has ended; the others go on (-can-die)\n")
	h.out.waitFor(t, "web.1    | ready\n")
	h.cancel() // Ctrl-C
	err := h.wait()
	out := h.out.String()
	if err != nil {
		t.Errorf("a -can-die failure and Ctrl-C: %v, want exit status 0:\n%s", err, out)
	}
	upInOrder(t, out, "tether   | worker.1 exited with code 2\n",
		"tether   | interrupted: sending SIGTERM to all processes (SIGKILL after 5s)\n",
		"web.1    | bye\n", "tether   | web.1 exited with code 0\n")
}

func TestUpAutoRestart(t *testing.T) {
	t.Parallel()
	t.Run("gives-up", func(t *testing.T) {
		t.Parallel()
		dir := upDir(t, map[string]string{"Procfile": `
web: ` + upPolite + `
crash: echo "crash run"; exit 1
`})
		h := upStart(t, dir, "-auto-restart", "crash", "-backoff", "10ms", "-restart-limit", "2/1m")
		err := h.wait()
		out := h.out.String()
		if got := upExitCode(err); got != 1 {
			t.Errorf("exit status %d (%v), want 1: the crasher's, given up on:\n%s", got, err, out)
		}
		if n := strings.Count(out, "crash.1 | crash run\n"); n != 3 {
			t.Errorf("crash ran %d times, want 3 (2 restarts):\n%s", n, out)
		}
		upInOrder(t, out,
			"tether  | crash.1 exited with code 1\n", "tether  | crash.1 restarting in ",
			"tether  | crash.1 started with pid", "(restart 1)\n",
			"tether  | crash.1 restarting in ", "(restart 2)\n",
			"tether  | crash.1: too many restarts (more than 2 in 1m0s); last: exit status 1: giving up\n",
			"tether  | crash.1 failed too often: sending SIGTERM to all processes (SIGKILL after 5s)\n")
	})
	t.Run("restart-alone-is-for-all", func(t *testing.T) {
		t.Parallel()
		// -restart without -auto-restart: every process, by that policy.
		// It fails once, then succeeds: on-failure does not restart it, and
		// its end ends everything, cleanly.
		dir := upDir(t, map[string]string{"Procfile": `
web: ` + upPolite + `
once: test -e done || { touch done; echo "first run fails"; exit 1; }; echo "second run ok"
`})
		out, err := upRun(t, dir, "-restart", "on-failure", "-backoff", "10ms")
		if err != nil {
			t.Errorf("%v, want exit status 0:\n%s", err, out)
		}
		upInOrder(t, out, "once.1 | first run fails\n", "tether | once.1 restarting in ",
			"once.1 | second run ok\n", "tether | once.1 has ended: sending SIGTERM to all processes (SIGKILL after 5s)\n")
	})
	t.Run("auto-restart-can-die", func(t *testing.T) {
		t.Parallel()
		dir := upDir(t, map[string]string{"Procfile": `
web: ` + upPolite + `
crash: exit 4
`})
		h := upStart(t, dir, "-auto-restart", "crash", "-can-die", "crash", "-backoff", "1ms", "-restart-limit", "1/1m")
		h.out.waitFor(t, "the others go on (-can-die)\n")
		h.out.waitFor(t, "web.1   | ready\n")
		h.cancel()
		if err := h.wait(); err != nil {
			t.Errorf("%v, want 0: the crasher can die:\n%s", err, h.out.String())
		}
	})
}

// Ctrl-C: everything is stopped, each process by its trap.
func TestUpInterrupt(t *testing.T) {
	t.Parallel()
	const procfile = `
web: ` + upPolite + `
worker: trap 'echo worker bye; exit 0' TERM; echo ready; while :; do sleep 0.05; done
`
	for _, tc := range []struct {
		name  string
		args  []string
		order []string // in this order
		each  [][]string
	}{
		{"together", nil, []string{"tether   | interrupted: sending SIGTERM to all processes (SIGKILL after 5s)\n"}, [][]string{
			{"worker.1 | worker bye\n", "tether   | worker.1 exited with code 0\n"},
			{"web.1    | bye\n", "tether   | web.1 exited with code 0\n"},
		}},
		{"reverse", []string{"-stop-order", "reverse"}, []string{
			"tether   | interrupted: stopping all processes, the last started first (SIGKILL after 5s each)\n",
			"tether   | sending SIGTERM to worker.1\n", "worker.1 | worker bye\n", "tether   | worker.1 exited with code 0\n",
			"tether   | sending SIGTERM to web.1\n", "web.1    | bye\n", "tether   | web.1 exited with code 0\n",
		}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := upStart(t, upDir(t, map[string]string{"Procfile": procfile}), tc.args...)
			h.out.waitFor(t, "web.1    | ready\n")
			h.out.waitFor(t, "worker.1 | ready\n")
			h.cancel()
			err := h.wait()
			out := h.out.String()
			if err != nil {
				t.Errorf("%v, want exit status 0:\n%s", err, out)
			}
			upInOrder(t, out, tc.order...)
			for _, lines := range tc.each {
				upInOrder(t, out, append(tc.order, lines...)...)
			}
		})
	}
	t.Run("unclean-exit", func(t *testing.T) {
		t.Parallel()
		dir := upDir(t, map[string]string{"Procfile": `
web: trap 'echo cleanup failed; exit 5' TERM; echo ready; while :; do sleep 0.05; done
`})
		h := upStart(t, dir)
		h.out.waitFor(t, "web.1  | ready\n")
		h.cancel()
		if got := upExitCode(h.wait()); got != 5 {
			t.Errorf("exit status %d, want 5: the stop's first failure:\n%s", got, h.out.String())
		}
	})
	t.Run("SIGTERM-ignored", func(t *testing.T) {
		t.Parallel()
		dir := upDir(t, map[string]string{"Procfile": `
stubborn: trap '' TERM; echo ready; while :; do sleep 0.05; done
`})
		h := upStart(t, dir, "-grace", "200ms")
		h.out.waitFor(t, "stubborn.1 | ready\n")
		h.cancel()
		err := h.wait()
		out := h.out.String()
		if got := upExitCode(err); got != 128+int(syscall.SIGKILL) {
			t.Errorf("exit status %d (%v), want %d:\n%s", got, err, 128+int(syscall.SIGKILL), out)
		}
		upIndex(t, out, "tether     | stubborn.1 did not stop within the grace (-grace): killed by SIGKILL\n")
	})
	t.Run("stop-signal", func(t *testing.T) {
		t.Parallel()
		dir := upDir(t, map[string]string{"Procfile": `
web: trap 'echo got INT; exit 0' INT; echo ready; while :; do sleep 0.05; done
`})
		h := upStart(t, dir, "-stop-signal", "INT")
		h.out.waitFor(t, "web.1  | ready\n")
		h.cancel()
		if err := h.wait(); err != nil {
			t.Errorf("%v:\n%s", err, h.out.String())
		}
		upInOrder(t, h.out.String(), "tether | interrupted: sending SIGINT to all processes (SIGKILL after 5s)\n", "web.1  | got INT\n")
	})
}

// A line longer than the limit comes out in pieces: memory stays bounded.
func TestUpLongLine(t *testing.T) {
	t.Parallel()
	const n = 3*upMaxLine + 100
	dir := upDir(t, map[string]string{"Procfile": fmt.Sprintf("big: head -c %d /dev/zero | tr '\\0' a; echo; echo after\n", n)})
	out, err := upRun(t, dir)
	if err != nil {
		t.Fatalf("%v", err)
	}
	var pieces []int
	for _, l := range strings.Split(out, "\n") {
		if text, ok := strings.CutPrefix(l, "big.1  | "); ok && strings.Trim(text, "a") == "" {
			pieces = append(pieces, len(text))
		}
	}
	if fmt.Sprint(pieces) != fmt.Sprint([]int{upMaxLine, upMaxLine, upMaxLine, 100}) {
		t.Errorf("a %d-byte line came out as pieces of %v", n, pieces)
	}
	upIndex(t, out, "big.1  | after\n")
}

func TestUpErrors(t *testing.T) {
	t.Parallel()
	dir := upDir(t, map[string]string{
		"Procfile": "web: echo hi\nworker: echo hi\n",
		"Bad":      "web: echo hi\n\nworker echo hi\n",
	})
	for _, tc := range []struct {
		name  string
		args  []string
		usage bool   // a usage error: exit status 2
		want  string // in the message
	}{
		{"missing-Procfile", []string{"-f", filepath.Join(dir, "Nope")}, false, "Nope: no such file or directory"},
		{"malformed-Procfile", []string{"-f", filepath.Join(dir, "Bad")}, false, filepath.Join(dir, "Bad") + ":3:7: invalid character ' ' in process name"},
		{"unknown-m", []string{"-m", "web=1,db=2"}, true, `no process named "db"`},
		{"bad-m", []string{"-m", "web=x"}, true, `count for web: "x" is not a number`},
		{"unknown-name", []string{"web", "db.1"}, true, `no process named "db.1"`},
		{"unknown-auto-restart", []string{"-auto-restart", "wbe"}, true, `-auto-restart: no process named "wbe"`},
		{"unknown-can-die", []string{"-can-die", "web.2"}, true, `-can-die: no process named "web.2"`},
		{"bad-flag", []string{"-bogus"}, true, "flag provided but not defined: -bogus"},
		{"bad-port", []string{"-p", "70000"}, true, "-p 70000: not a port number"},
		{"bad-signal", []string{"-stop-signal", "SIGNOPE"}, true, `"SIGNOPE" is not a signal`},
		{"bad-restart", []string{"-restart", "sometimes"}, true, `-restart: "sometimes" is not never, on-failure or always`},
		{"bad-grace", []string{"-grace", "0s"}, true, `-grace: "0s": the grace must be more than 0`},
		{"bad-stop-order", []string{"-stop-order", "random"}, true, `-stop-order "random": want together or reverse`},
		{"nothing-to-run", []string{"-m", "all=0"}, true, "the formation runs no process"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			args := append([]string{"up", "-f", filepath.Join(dir, "Procfile")}, tc.args...)
			var out, errb bytes.Buffer
			err := run(context.Background(), args, &out, &errb)
			if err == nil {
				t.Fatalf("no error, want one with %q:\n%s", tc.want, out.String())
			}
			if errors.Is(err, errUsage) != tc.usage || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v (usage %v), want one with %q (usage %v)", err, errors.Is(err, errUsage), tc.want, tc.usage)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("the error is not one line: %q", err)
			}
			if out.Len() > 0 {
				t.Errorf("output on an error:\n%s", out.String())
			}
		})
	}
}

func TestUpHelp(t *testing.T) {
	t.Parallel()
	var out, errb bytes.Buffer
	if err := run(context.Background(), []string{"up", "-h"}, &out, &errb); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"usage: tether up", "-auto-restart", "-can-die", "-grace", "Exit status", "Examples:"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("help lacks %q:\n%s", want, out.String())
		}
	}
}

func TestUpSimple(t *testing.T) {
	t.Parallel()
	for line, want := range map[string]bool{
		"bundle exec puma":       true,
		"./bin/worker -v":        true,
		"sh upapp/worker.sh":     true,
		"puma -p $PORT":          false,
		"a && b":                 false,
		"echo 'hi'":              false,
		"FOO=bar worker":         false,
		"worker --opt=x":         true,
		"exec worker":            false,
		"trap x TERM":            false,
		"while true":             false,
		"go run ./upapp/web":     true,
		"echo hi # comment":      false,
		"cat <file":              false,
		"ls ~":                   false,
		"node server.js --x=1 2": true,
	} {
		if got := upSimple(line); got != want {
			t.Errorf("upSimple(%q) = %v, want %v", line, got, want)
		}
	}
}

// -containment and the limits reach every process: its cgroup shows the
// level, and limits at a level without cgroups are refused for each.
func TestUpTreeFlags(t *testing.T) {
	t.Parallel()
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc/self/cgroup")
	}
	dir := upDir(t, map[string]string{"Procfile": "web: grep ^0:: /proc/self/cgroup\n"})
	up := func(args ...string) (string, error) {
		var out, errb bytes.Buffer
		err := run(context.Background(), append([]string{"up", "-color", "never", "-f", filepath.Join(dir, "Procfile")}, args...), &out, &errb)
		return out.String() + errb.String(), err
	}
	out, err := up("-containment", "group")
	if err != nil || !strings.Contains(out, "0::") || strings.Contains(out, "tether-keeper-") {
		t.Errorf("-containment group: %v\n%s", err, out)
	}
	if tether.Probe().Auto == tether.ContainCgroup {
		out, err = up()
		if err != nil || !strings.Contains(out, "tether-keeper-") {
			t.Errorf("the default, the cgroup level here: %v\n%s", err, out)
		}
	}
	out, err = up("-containment", "keeper", "-pids-max", "5")
	if err == nil || !strings.Contains(out, "limits need the cgroup level") {
		t.Errorf("-pids-max at the keeper level: %v\n%s", err, out)
	}
}
