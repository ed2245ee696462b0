package tether_test

import (
	"bufio"
	"context"
	"fmt"
	"log"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tetherproc/tether"
	"github.com/tetherproc/tether/internal/cgroupfs"
	"github.com/tetherproc/tether/internal/testproc"
	"github.com/tetherproc/tether/internal/treescript"
)

// The guarantee matrix: a parent (a program of the test binary) starts a tree
// of every kind of descendant, then ends in each way a process can end; every
// descendant must be gone soon after, and the polite one must have cleaned up.

func init() {
	testproc.Register("parent", helperParent)
	testproc.Register("tree", helperTree)
	testproc.Register("member", helperMember)
	testproc.Register("daemonize", helperDaemonize)
}

// treeSize is how many "pid N" lines a tree prints: itself and five members.
const treeSize = 6

// helperTree starts one member of each kind and prints their pids, and its
// own first: a plain grandchild, one that ignores SIGTERM, one in a session
// of its own (setsid), a double-forked daemon, and a polite one that cleans
// up on SIGTERM. Then it waits for them.
func helperTree(args []string) {
	dir := args[0]
	fmt.Printf("pid %d\n", os.Getpid())
	start := func(setsid bool, prog string, a ...string) {
		path, argv, env := testproc.Command(prog, a...)
		c := exec.Command(path, argv[1:]...)
		c.Args[0], c.Env, c.Stdout, c.Stderr = argv[0], env, os.Stdout, os.Stderr
		c.SysProcAttr = newSessionAttr(setsid)
		if err := c.Start(); err != nil {
			fmt.Fprintln(os.Stderr, "tree:", err)
			os.Exit(2)
		}
	}
	start(false, "member", "plain")
	start(false, "member", "ignore")
	start(true, "member", "plain")
	start(false, "daemonize")
	start(false, "member", "polite", dir)
	reapAndBlock()
}

// helperDaemonize double-forks: it starts a member in a new session and
// exits at once, so the member is orphaned.
func helperDaemonize([]string) {
	path, argv, env := testproc.Command("member", "plain")
	c := exec.Command(path, argv[1:]...)
	c.Args[0], c.Env, c.Stdout = argv[0], env, os.Stdout
	c.SysProcAttr = newSessionAttr(true)
	if err := c.Start(); err != nil {
		os.Exit(2)
	}
	os.Exit(0)
}

// helperMember is one descendant: plain, ignore (SIGTERM, SIGINT, SIGHUP
// ignored) or polite (on SIGTERM, writes DIR/cleaned-PID and exits).
func helperMember(args []string) {
	switch args[0] {
	case "ignore":
		signal.Ignore(syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	case "polite":
		term := make(chan os.Signal, 1)
		signal.Notify(term, syscall.SIGTERM)
		// Marked in its line: the test must not depend on reading
		// /proc/PID/cmdline to know it (once, it found 1 of 2).
		fmt.Printf("pid %d polite\n", os.Getpid())
		<-term
		_ = os.WriteFile(filepath.Join(args[1], "cleaned-"+strconv.Itoa(os.Getpid())), nil, 0o644)
		os.Exit(0)
	}
	fmt.Printf("pid %d\n", os.Getpid())
	blockForever()
}

// shTree is a tree from /bin/sh, lighter than test binaries (a race-enabled
// one holds 20 MB); see package treescript.
const shTree = treescript.Script

const shTreeSize = treescript.Size

// helperParent starts trees (of test-binary programs, or "sh" ones) at the
// given containment level, relays their lines, prints "parent ready" once
// every tree is up, and ends as told.
func helperParent(args []string) {
	ending, level, dir := args[0], args[1], args[2]
	trees, _ := strconv.Atoi(args[3])
	kind := args[4]
	grace, _ := time.ParseDuration(args[5])
	for i := 0; i < trees; i++ {
		path, argv, env := testproc.Command("tree", dir)
		size := treeSize
		if kind == "sh" {
			path, argv, env, size = "/bin/sh", []string{"sh", "-c", shTree, dir}, nil, shTreeSize
		}
		c := &tether.Cmd{Path: path, Args: argv, Env: env, Stdout: tether.Pipe(), StopTimeout: grace}
		c.Containment = levelNamed(level)
		startRelay(c, size)
	}
	fmt.Println("parent ready")
	switch ending {
	case "return":
		return
	case "exit":
		os.Exit(3)
	case "fatal":
		log.Fatal("parent: fatal")
	case "panic":
		panic("parent: panic")
	case "shutdown":
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := tether.Shutdown(ctx); err != nil {
			fmt.Fprintln(os.Stderr, "shutdown:", err)
			os.Exit(2)
		}
		return
	}
	blockForever() // the test sends the signal
}

var endings = []string{"return", "exit", "fatal", "panic", "SIGINT", "SIGTERM", "SIGHUP", "SIGKILL"}

var signalsByName = map[string]syscall.Signal{
	"SIGINT": syscall.SIGINT, "SIGTERM": syscall.SIGTERM, "SIGHUP": syscall.SIGHUP, "SIGKILL": syscall.SIGKILL,
}

// matrixRun is one parent ending: the pids of the tree and whether the polite
// members cleaned up.
type matrixRun struct {
	pids      []int
	pinned    []*testproc.Pinned // the pids, held so a cleanup kill never reaches a reuser
	polite    []int
	survivors []int
	atExit    []int // alive when the parent had just exited
	cleaned   int
}

// runParent starts a parent, reads its trees' pids, ends it, and counts.
func runParent(t *testing.T, ending, level string, trees int, kind string, grace time.Duration) matrixRun {
	t.Helper()
	dir := t.TempDir()
	c, out := startHelper(t, "parent", ending, level, dir, strconv.Itoa(trees), kind, grace.String())
	var run matrixRun
	t.Cleanup(func() {
		for _, p := range run.pinned { // a failed test leaves nothing behind
			p.Kill()
		}
	})
	lines := make(chan string)
	go func() { // ends at EOF: when the parent and everything holding its stdout are gone
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	timeout := time.After(30 * time.Second)
	polite := map[int]bool{}
read:
	for {
		select {
		case line, ok := <-lines:
			if !ok {
				t.Fatal("parent's output ended before it was ready")
			}
			if line == "parent ready" {
				break read
			}
			f := strings.Fields(line)
			pid, err := strconv.Atoi(f[len(f)-1])
			if len(f) == 3 && f[2] == "polite" {
				pid, err = strconv.Atoi(f[1])
				polite[pid] = true
			}
			if err != nil || f[0] != "pid" {
				t.Fatalf("parent said %q", line)
			}
			run.pids = append(run.pids, pid)
			run.pinned = append(run.pinned, testproc.Pin(pid))
		case <-timeout:
			t.Fatal("parent not ready after 30s")
		}
	}
	for _, pid := range run.pids {
		if polite[pid] || strings.Contains(cmdline(pid), "polite") {
			run.polite = append(run.polite, pid)
			polite[pid] = true
		}
	}
	if sig, ok := signalsByName[ending]; ok {
		_ = c.Process.Signal(sig)
	}
	waitErr := make(chan error, 1)
	go func() { waitErr <- c.Wait() }() // ends when the parent is reaped
	select {
	case <-waitErr:
		run.atExit = testproc.Survivors(run.pids...)
	case <-time.After(30 * time.Second):
		t.Fatal("parent did not end")
	}
	go func() { // drain what is left so nothing blocks writing; ends at EOF
		for range lines {
		}
	}()
	// The teardown takes the grace (StopTimeout) for the SIGTERM-ignorers;
	// allow 5s more on a loaded machine.
	run.survivors = testproc.WaitGone(grace+5*time.Second, run.pids...)
	// The files are named by the pid the polite member knows itself by,
	// which in a PID namespace is not ours: count them.
	cleaned, _ := filepath.Glob(filepath.Join(dir, "cleaned-*"))
	run.cleaned = len(cleaned)
	return run
}

func cmdline(pid int) string {
	b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	return strings.ReplaceAll(string(b), "\x00", " ")
}

func levelNamed(name string) tether.Containment {
	for _, l := range []tether.Containment{tether.ContainGroup, tether.ContainKeeper, tether.ContainCgroup, tether.ContainPIDNamespace} {
		if l.String() == name {
			return l
		}
	}
	panic("no level " + name)
}

// cgroupLevel says whether this machine offers the cgroup level, and why
// not: whether a cgroup can be made where the keepers make theirs, under the
// tests' own cgroup. Probed once.
var cgroupLevel = sync.OnceValues(func() (bool, string) {
	mnt, err := cgroup2MountForTest()
	if err != nil {
		return false, err.Error()
	}
	probe := filepath.Join(mnt, ownCgroupForTest(), "tether-probe."+strconv.Itoa(os.Getpid()))
	if err := os.Mkdir(probe, 0o755); err != nil {
		return false, err.Error()
	}
	_ = os.Remove(probe)
	return true, ""
})

func cgroup2MountForTest() (string, error) { return cgroupfs.Mount() }

// needCgroupLevel skips t where the machine offers no cgroup level, and
// returns the cgroup v2 mount.
func needCgroupLevel(t *testing.T) string {
	t.Helper()
	if ok, why := cgroupLevel(); !ok {
		t.Skip("no cgroup level here:", why)
	}
	mnt, err := cgroup2MountForTest()
	if err != nil {
		t.Fatal(err)
	}
	return mnt
}

// ownCgroupForTest is this process's cgroup v2 path ("/" if none is found).
func ownCgroupForTest() string {
	own, err := cgroupfs.Own()
	if err != nil {
		return "/"
	}
	return own
}

// cgroupLeftovers lists the keeper cgroups under the tests' own cgroup
// (testproc puts the run in one of its own): every keeper removes its own
// when it ends. testproc fails the run if any is left at the end.
func cgroupLeftovers() []string {
	mnt, err := cgroup2MountForTest()
	if err != nil {
		return nil
	}
	var out []string
	_ = filepath.WalkDir(filepath.Join(mnt, ownCgroupForTest()), func(path string, d os.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return nil
		}
		if strings.HasPrefix(d.Name(), "tether-keeper-") {
			out = append(out, "cgroup left behind: "+path)
			return filepath.SkipDir
		}
		return nil
	})
	return out
}

// pidnsLevel says whether this machine offers ContainPIDNamespace (root or
// user namespaces), and why not: the sure test is to start a process there.
var pidnsLevel = sync.OnceValues(func() (bool, string) {
	c := &tether.Cmd{Path: "/bin/true", Containment: tether.ContainPIDNamespace}
	if _, err := c.Run(context.Background()); err != nil {
		return false, err.Error()
	}
	return true, ""
})

// levels are the containment levels this machine offers that claim the
// whole matrix.
func strongLevels(t *testing.T) []string {
	skipOnWindows(t, "the keeper and cgroup levels are Linux's and macOS's; there a Job Object holds the tree (TestGuaranteesWindows)")
	levels := []string{"keeper"}
	if ok, why := cgroupLevel(); ok {
		levels = append(levels, "cgroup")
	} else {
		t.Logf("no cgroup level here: %s", why)
	}
	return levels
}

// keptLevels are strongLevels and, where this machine offers it, the opt-in
// PID-namespace level.
func keptLevels(t *testing.T) []string {
	levels := strongLevels(t)
	if ok, why := pidnsLevel(); ok {
		levels = append(levels, "pidns")
	} else {
		t.Logf("no PID-namespace level here: %s", why)
	}
	return levels
}

func TestGuarantees(t *testing.T) {
	t.Parallel()
	// The opt-in PID-namespace level runs the lighter sh tree: the matrix
	// must not cost make test much more.
	for _, level := range keptLevels(t) {
		kind, size, grace := "go", treeSize, time.Second
		if level == "pidns" {
			// The polite shell runs its trap when its foreground sleep 1
			// ends: a sleep forked after the keeper's walk is not
			// signalled, so the trap may need a second of the grace.
			kind, size, grace = "sh", shTreeSize, 3*time.Second
		}
		for _, ending := range endings {
			t.Run(level+"/"+ending, func(t *testing.T) {
				t.Parallel()
				run := runParent(t, ending, level, 1, kind, grace)
				if len(run.pids) != size {
					t.Fatalf("tree printed %d pids, want %d", len(run.pids), size)
				}
				for _, pid := range run.survivors {
					t.Errorf("survivor %d: %s", pid, cmdline(pid))
				}
				// (An sh tree's polite member is found by its line, not by
				// its command line, which its parent shell's contains too.)
				if run.cleaned != 1 || (kind == "go" && len(run.polite) != 1) {
					t.Errorf("polite child cleaned up %d times (%d polite)", run.cleaned, len(run.polite))
				}
			})
		}
	}
}

// A parent with 200 trees (1400 processes) is SIGKILLed: all of them go, at
// the strongest level the machine offers.
func TestGuarantees200Trees(t *testing.T) {
	if testing.Short() {
		t.Skip("1400 processes")
	}
	// Not parallel: it is the heaviest test and wants the machine. 1400
	// processes ending at once on two CPUs: the polite ones need more than
	// a second to run their trap.
	level := strongLevels(t)[len(strongLevels(t))-1]
	run := runParent(t, "SIGKILL", level, 200, "sh", 5*time.Second)
	if len(run.pids) != 200*shTreeSize {
		t.Fatalf("%d pids", len(run.pids))
	}
	if len(run.survivors) > 0 {
		t.Errorf("%d survivors of %d", len(run.survivors), len(run.pids))
	}
	if run.cleaned != 200 {
		t.Errorf("polite children cleaned up %d of 200 times", run.cleaned)
	}
}

// Shutdown stops every tree as the parent's death would, and returns only
// when they are gone: nothing is left when the parent exits right after.
func TestShutdown(t *testing.T) {
	t.Parallel()
	for _, level := range strongLevels(t) {
		t.Run(level, func(t *testing.T) {
			t.Parallel()
			run := runParent(t, "shutdown", level, 2, "tree", time.Second)
			if len(run.atExit) > 0 || len(run.survivors) > 0 {
				t.Errorf("alive after Shutdown returned: %v (of %v)", run.atExit, run.pids)
			}
			if run.cleaned != len(run.polite) || len(run.polite) != 2 {
				t.Errorf("polite members cleaned up: %d of %d", run.cleaned, len(run.polite))
			}
		})
	}
}
