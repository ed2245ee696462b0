// Package testproc runs a test binary as its own child programs, in the
// manner of os/exec's tests, and makes the test run fail when a child, a
// goroutine or a file descriptor is left behind.
//
// A test package registers its programs and hands its TestMain to Main:
//
//	func TestMain(m *testing.M) {
//		testproc.Register("yes", helperYes)
//		testproc.Main(m)
//	}
//
// Command("yes") then names the test binary with an environment that makes
// Main run helperYes instead of the tests. Every program run this way records
// its pid and start time in a registry directory; when the tests finish, Main
// fails the run if any recorded process is still alive (zombies count as
// dead: PID 1 on some machines never reaps orphans), kills it, and reports
// goroutines, descriptors and cgroups that did not return to their baseline.
//
// The tests run in a cgroup of their own (testcgroup), so the keepers they
// start can never touch another program's cgroups.
package testproc

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tetherproc/tether/internal/testcgroup"
)

const (
	envProgram  = "TETHER_TESTPROC"
	envRegistry = "TETHER_TESTPROC_REGISTRY"
)

var (
	mu       sync.Mutex
	programs = map[string]func(args []string){}
	atEnd    []func() []string
)

// AtEnd adds a leak check run after the tests: it returns what it found
// left behind, one line each. Main waits up to 10 s for it to come back empty.
func AtEnd(check func() []string) {
	mu.Lock()
	defer mu.Unlock()
	atEnd = append(atEnd, check)
}

// Register adds a program. fn receives the arguments after the program name
// and may return (the child exits 0) or call os.Exit.
func Register(name string, fn func(args []string)) {
	mu.Lock()
	defer mu.Unlock()
	programs[name] = fn
}

// Command returns the path, argv and environment that run program name with
// args. The environment is the current one plus the program marker.
func Command(name string, args ...string) (path string, argv, env []string) {
	mu.Lock()
	_, ok := programs[name]
	mu.Unlock()
	if !ok {
		panic("testproc: no program " + strconv.Quote(name))
	}
	exe, err := os.Executable()
	if err != nil {
		panic(err)
	}
	return exe, append([]string{name}, args...), Env(name)
}

// Env is the environment that makes the test binary run program name.
func Env(name string) []string {
	env := make([]string, 0, len(os.Environ())+1)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, envProgram+"=") {
			env = append(env, kv)
		}
	}
	// A race-enabled binary sleeps a second at exit by default, waiting
	// for late reports; children exit often, so skip it.
	if os.Getenv("GORACE") == "" {
		env = append(env, "GORACE=atexit_sleep_ms=0")
	}
	return append(env, envProgram+"="+name)
}

// IsChild reports whether this process is running a registered program.
func IsChild() bool { return os.Getenv(envProgram) != "" }

// Main runs the registered program if this process is one, or else the tests
// and the leak checks, and exits.
func Main(m *testing.M) {
	if name := os.Getenv(envProgram); name != "" {
		runProgram(name)
		os.Exit(0)
	}
	dir, err := os.MkdirTemp("", "testproc-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "testproc:", err)
		os.Exit(2)
	}
	_ = os.Setenv(envRegistry, dir)
	// A cgroup of the run's own: the keepers the tests start make their
	// cgroups under it, where they can never reach another program's.
	jail, jailErr := testcgroup.Enter("tether-test")
	if jailErr == nil {
		AtEnd(jail.Leftovers)
	}
	// The runtime opens its netpoller's descriptors on first use: make
	// that happen before the baseline is taken.
	if r, w, err := os.Pipe(); err == nil {
		_ = r.Close()
		_ = w.Close()
	}
	goroutines := userGoroutines()
	fds := countFDs()

	code := m.Run()

	problems := checkLeaks(dir, goroutines, fds)
	if jailErr == nil {
		problems = append(problems, jail.Leave()...)
	}
	if len(problems) > 0 {
		fmt.Fprintln(os.Stderr, "testproc: the tests left things behind:")
		for _, p := range problems {
			fmt.Fprintln(os.Stderr, "  "+p)
		}
		if code == 0 {
			code = 1
		}
	}
	_ = os.RemoveAll(dir) // best effort: a temporary directory
	os.Exit(code)
}

func runProgram(name string) {
	mu.Lock()
	fn := programs[name]
	mu.Unlock()
	if fn == nil {
		fmt.Fprintf(os.Stderr, "testproc: no program %q\n", name)
		os.Exit(2)
	}
	if dir := os.Getenv(envRegistry); dir != "" {
		pid := os.Getpid()
		if st, ok := startTime(pid); ok {
			// The pid is this PID namespace's: the leak check translates it
			// when that is not its own (tether's ContainPIDNamespace).
			rec := st + "\n" + name + "\n" + PIDNamespace(pid)
			_ = os.WriteFile(filepath.Join(dir, strconv.Itoa(pid)), []byte(rec), 0o644) // best effort: only the leak check reads it
		}
	}
	fn(os.Args[1:])
}

// Alive reports whether pid is a running process (not a zombie). It asks
// the system (see alive), so that a survivor check never passes for want of
// a /proc to read.
func Alive(pid int) bool { return alive(pid) }

// Survivors returns the pids among pids that are still alive.
func Survivors(pids ...int) []int {
	var out []int
	for _, pid := range pids {
		if Alive(pid) {
			out = append(out, pid)
		}
	}
	return out
}

// WaitGone waits up to timeout for every pid to be dead (zombies count) and
// returns those still alive. It checks every 5 ms: there is no kernel
// notification for the death of a process we are not the parent of.
func WaitGone(timeout time.Duration, pids ...int) []int {
	deadline := time.Now().Add(timeout)
	for {
		left := Survivors(pids...)
		if len(left) == 0 || time.Now().After(deadline) {
			return left
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func checkLeaks(dir string, goroutines, fds int) []string {
	var problems []string
	entries, _ := os.ReadDir(dir)
	var live []int
	ran := map[string]bool{}
	ours := PIDNamespace(os.Getpid())
	hostPIDs := map[string]map[int]int{} // by namespace, looked up once
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		rec, _ := os.ReadFile(filepath.Join(dir, e.Name()))
		f := strings.SplitN(string(rec), "\n", 3)
		if len(f) < 2 {
			continue
		}
		want, name := f[0], f[1]
		ran[name] = true
		if len(f) == 3 && f[2] != "" && f[2] != ours {
			if hostPIDs[f[2]] == nil {
				hostPIDs[f[2]] = HostPIDs(f[2])
			}
			if pid = hostPIDs[f[2]][pid]; pid == 0 {
				continue // its namespace is gone, or it is
			}
		}
		if st, ok := startTime(pid); ok && st == want && Alive(pid) {
			live = append(live, pid)
		}
	}
	// Like os/exec's tests: a program no test runs is dead code, or a test
	// that silently stopped testing. Checked only when every test ran.
	if f := flag.Lookup("test.run"); f != nil && f.Value.String() == "" && !testing.Short() {
		mu.Lock()
		for name := range programs {
			if !ran[name] {
				problems = append(problems, fmt.Sprintf("program %q is registered but no test ran it", name))
			}
		}
		mu.Unlock()
	}
	// Processes stopped in the last moments of a test may still be exiting.
	live = WaitGone(2*time.Second, live...)
	sort.Ints(live)
	for _, pid := range live {
		problems = append(problems, fmt.Sprintf("process %d is still alive: %s", pid, cmdline(pid)))
		kill(pid) // leave the machine clean
	}

	deadline := time.Now().Add(10 * time.Second)
	for userGoroutines() > goroutines && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := userGoroutines(); n > goroutines {
		problems = append(problems, fmt.Sprintf("%d goroutines, %d before the tests:\n%s", n, goroutines, stacks()))
	}
	for countFDs() > fds && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	mu.Lock()
	checks := append([]func() []string(nil), atEnd...)
	mu.Unlock()
	for _, check := range checks {
		left := check()
		for len(left) > 0 && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
			left = check()
		}
		problems = append(problems, left...)
	}
	if n := countFDs(); n > fds {
		problems = append(problems, fmt.Sprintf("%d open descriptors, %d before the tests: %s", n, fds, listFDs()))
	}
	return problems
}

func stacks() string {
	buf := make([]byte, 1<<20)
	return string(buf[:runtime.Stack(buf, true)])
}

// userGoroutines counts goroutines but the signal loop os/signal starts for
// good on first use (the fuzzing engine uses it too).
func userGoroutines() int {
	n := 0
	for _, g := range strings.Split(stacks(), "\n\n") {
		if !strings.Contains(g, "os/signal.signal_recv") {
			n++
		}
	}
	return n
}

func countFDs() int {
	if !hasProc {
		return 0 // no descriptor table to count (not counted on Windows yet)
	}
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return 0
	}
	return len(entries)
}

func listFDs() string {
	entries, _ := os.ReadDir("/proc/self/fd")
	var b strings.Builder
	for _, e := range entries {
		target, _ := os.Readlink("/proc/self/fd/" + e.Name())
		fmt.Fprintf(&b, "%s->%s ", e.Name(), target)
	}
	return b.String()
}

// procStat returns the fields of /proc/PID/stat after the command name.
func procStat(pid int) ([]string, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return nil, false
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 > len(b) {
		return nil, false
	}
	return strings.Fields(string(b[i+2:])), true
}

func procState(pid int) (byte, bool) {
	f, ok := procStat(pid)
	if !ok || len(f) == 0 {
		return 0, false
	}
	return f[0][0], true
}

// PIDNamespace names pid's PID namespace ("pid:[4026531836]"), "" if it
// cannot be read.
func PIDNamespace(pid int) string {
	if !hasProc {
		return ""
	}
	ns, _ := os.Readlink("/proc/" + strconv.Itoa(pid) + "/ns/pid")
	return ns
}

// HostPIDs maps the pids of the processes in PID namespace ns, as they know
// themselves, to their pids here: a child namespace's processes print the
// former, tests check the latter.
func HostPIDs(ns string) map[int]int {
	out := map[int]int{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || PIDNamespace(pid) != ns {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/status")
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			if rest, ok := strings.CutPrefix(line, "NSpid:"); ok {
				if f := strings.Fields(rest); len(f) > 0 {
					if inner, err := strconv.Atoi(f[len(f)-1]); err == nil {
						out[inner] = pid
					}
				}
			}
		}
	}
	return out
}

// startTime is when pid started, as the system says it (see processStart):
// with the pid it names one process for good.
func startTime(pid int) (string, bool) { return processStart(pid) }

// procStartTime is field 22 of /proc/PID/stat.
func procStartTime(pid int) (string, bool) {
	f, ok := procStat(pid)
	if !ok || len(f) < 20 {
		return "", false
	}
	return f[19], true
}

func cmdline(pid int) string {
	if !hasProc {
		return ""
	}
	b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	return strings.TrimSpace(string(bytes.ReplaceAll(b, []byte{0}, []byte{' '})))
}

// KeeperOf returns the pid of parent's tether keeper (a child whose argv[0]
// is "tether-keeper"), 0 if it has none. Children are listed per thread: the
// keeper is the child of whichever thread ran the first Start.
func KeeperOf(parent int) int {
	tasks, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", parent))
	for _, task := range tasks {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/children", parent, task.Name())) // a thread may have exited
		for _, f := range strings.Fields(string(b)) {
			pid, _ := strconv.Atoi(f)
			if cl, _ := os.ReadFile("/proc/" + f + "/cmdline"); strings.HasPrefix(string(cl), "tether-keeper") {
				return pid
			}
		}
	}
	return 0
}
