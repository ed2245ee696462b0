// Command bench measures tether beside os/exec, Node's child_process and a C
// posix_spawn loop, in one run, and prints ratios (the machines are shared and
// noisy: compare within a run, not across runs).
//
//	go run ./bench [-spawn 2000] [-cycles 100000] [-bytes 4294967296] [-rounds 3]
//	go run ./bench -only matrix   # the guarantee matrix against tini, dumb-init, bwrap
//
// Node and gcc are optional: a missing one is reported and skipped.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/tetherproc/tether"
	"github.com/tetherproc/tether/internal/testcgroup"
)

var (
	spawnN  = flag.Int("spawn", 2000, "spawns of /bin/true per contender per round")
	cycles  = flag.Int("cycles", 100000, "start-yes/read-once/kill/close cycles per contender")
	nbytes  = flag.Int64("bytes", 4<<30, "bytes through stdout per contender per round")
	rounds  = flag.Int("rounds", 3, "rounds for spawn and throughput (median kept)")
	only    = flag.String("only", "spawn,cycle,throughput,teardown,ipc,up", "sections to run")
	srcDir  string
	workDir string
)

func main() {
	if spec := os.Getenv(envMatrixParent); spec != "" {
		matrixParent(spec)
		return
	}
	if spec := os.Getenv(envIPCChild); spec != "" {
		ipcChild(spec)
		return
	}
	if n, err := strconv.Atoi(os.Getenv(envTeardownParent)); err == nil {
		teardownParent(n)
		return
	}
	flag.Parse()
	_, file, _, _ := runtime.Caller(0)
	srcDir = filepath.Dir(file)
	var err error
	workDir, err = os.MkdirTemp("", "tether-bench-")
	if err != nil {
		fatal(err)
	}
	defer os.RemoveAll(workDir)
	// A cgroup of the run's own: the keepers it starts make their cgroups
	// under it, where they can never reach another program's.
	if j, err := testcgroup.Enter("tether-bench"); err == nil {
		jail = j
		defer leaveJail()
	}

	machine()
	for _, s := range strings.Split(*only, ",") {
		switch s {
		case "spawn":
			benchSpawn()
		case "cycle":
			benchCycle()
		case "throughput":
			benchThroughput()
		case "teardown":
			benchTeardown()
		case "ipc":
			benchIPC()
		case "up":
			benchUp()
		case "matrix":
			benchMatrix()
		case "pid1":
			benchPID1()
		default:
			fatal(fmt.Errorf("unknown section %q", s))
		}
	}
}

// jail is the run's own cgroup; nil where none could be made.
var jail *testcgroup.Jail

// leaveJail removes the run's cgroup and what is left in it.
func leaveJail() {
	if jail != nil {
		for _, p := range jail.Leave() {
			fmt.Fprintln(os.Stderr, "bench:", p)
		}
		jail = nil
	}
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "bench:", err)
	leaveJail()
	os.Exit(1)
}

func machine() {
	model := "?"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "model name"); ok {
				model = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	kernel, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	node := "not found"
	if out, err := exec.Command("node", "--version").Output(); err == nil {
		node = strings.TrimSpace(string(out))
	}
	fmt.Printf("machine: %s, %d CPUs, Linux %s, %s, node %s\n",
		model, runtime.NumCPU(), strings.TrimSpace(string(kernel)), runtime.Version(), node)
}

// contender is one way of doing the work; run returns the seconds it took
// and an optional note.
type contender struct {
	name string
	run  func() (float64, string, error)
}

type row struct {
	name string
	secs []float64
	note string
	err  error
}

func median(v []float64) float64 {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	return s[len(s)/2]
}

// compare runs every contender rounds times, interleaved so that noise hits
// them alike, and prints rate = work/seconds with the ratio to os/exec.
func compare(title, unit string, work float64, rounds int, cs []contender) {
	compareTo("os/exec", title, unit, work, rounds, cs)
}

// compareTo is compare with the ratios to the contender named base.
func compareTo(baseName, title, unit string, work float64, rounds int, cs []contender) {
	rows := make([]row, len(cs))
	for r := 0; r < rounds; r++ {
		for i, c := range cs {
			rows[i].name = c.name
			if rows[i].err != nil {
				continue
			}
			s, note, err := c.run()
			if err != nil {
				rows[i].err = err
				continue
			}
			rows[i].secs = append(rows[i].secs, s)
			rows[i].note = note
		}
	}
	var base float64
	for _, r := range rows {
		if r.name == baseName && r.err == nil {
			base = work / median(r.secs)
		}
	}
	fmt.Printf("\n%s (median of %d)\n\n| contender | %s | × %s | note |\n|---|---:|---:|---|\n", title, rounds, unit, baseName)
	for _, r := range rows {
		if r.err != nil {
			fmt.Printf("| %s | – | – | skipped: %v |\n", r.name, r.err)
			continue
		}
		rate := work / median(r.secs)
		ratio := "–"
		if base > 0 {
			ratio = fmt.Sprintf("%.2f", rate/base)
		}
		fmt.Printf("| %s | %s | %s | %s |\n", r.name, human(rate), ratio, r.note)
	}
}

func human(v float64) string {
	switch {
	case v >= 1e9:
		return fmt.Sprintf("%.2f G", v/1e9)
	case v >= 1e6:
		return fmt.Sprintf("%.2f M", v/1e6)
	}
	return fmt.Sprintf("%.0f", v)
}

func timed(f func() error) (float64, string, error) {
	t := time.Now()
	err := f()
	return time.Since(t).Seconds(), "", err
}

// external runs a program that prints its own elapsed seconds first.
func external(name string, args ...string) (float64, []string, error) {
	out, err := exec.Command(name, args...).Output()
	if err != nil {
		return 0, nil, fmt.Errorf("%s: %w", name, err)
	}
	f := strings.Fields(string(out))
	if len(f) == 0 {
		return 0, nil, fmt.Errorf("%s printed nothing", name)
	}
	s, err := strconv.ParseFloat(f[0], 64)
	return s, f[1:], err
}

func nodeScript(name string, n string) (float64, []string, error) {
	if _, err := exec.LookPath("node"); err != nil {
		return 0, nil, err
	}
	return external("node", filepath.Join(srcDir, "node", name), n)
}

func benchSpawn() {
	n := *spawnN
	ctx := context.Background()
	tcmd := &tether.Cmd{Path: "/bin/true", Containment: tether.ContainGroup}
	kcmd := &tether.Cmd{Path: "/bin/true", Containment: tether.ContainKeeper}
	acmd := &tether.Cmd{Path: "/bin/true"} // ContainAuto: the default
	cBin := filepath.Join(workDir, "spawn")
	cErr := exec.Command("gcc", "-O2", "-o", cBin, filepath.Join(srcDir, "c", "spawn.c")).Run()
	// spawnN runs one spawn-and-wait n times, timed.
	spawnN := func(once func() error) func() (float64, string, error) {
		return func() (float64, string, error) {
			return timed(func() error {
				for i := 0; i < n; i++ {
					if err := once(); err != nil {
						return err
					}
				}
				return nil
			})
		}
	}
	run := func(c *tether.Cmd) func() error {
		return func() error { _, err := c.Run(ctx); return err }
	}
	compare(fmt.Sprintf("Spawn and wait for /bin/true, %d times", n), "spawns/s", float64(n), *rounds, []contender{
		{"tether, group level", spawnN(run(tcmd))},
		{"tether, keeper level", spawnN(run(kcmd))},
		{"tether, default (auto: " + autoName() + ")", spawnN(run(acmd))},
		{"os/exec", spawnN(func() error { return exec.Command("/bin/true").Run() })},
		{"node child_process.spawn", func() (float64, string, error) {
			s, _, err := nodeScript("spawn.js", strconv.Itoa(n))
			return s, "", err
		}},
		{"C posix_spawn + waitpid", func() (float64, string, error) {
			if cErr != nil {
				return 0, "", fmt.Errorf("gcc: %v", cErr)
			}
			s, _, err := external(cBin, strconv.Itoa(n))
			return s, "", err
		}},
	})
}

// benchCycle runs -cycles cycles per contender, split into -rounds
// interleaved rounds (the machines are noisy: a contender run alone for
// minutes meets a different machine than the next one).
func benchCycle() {
	n := *cycles
	r := max(1, min(*rounds, n/1000))
	per := n / r
	ctx := context.Background()
	yes, err := exec.LookPath("yes")
	if err != nil {
		fatal(err)
	}
	group, auto := &cycleRun{n: per * r}, &cycleRun{n: per * r}
	compare(fmt.Sprintf("The nodejs/node#4049 cycle (start yes, read once, kill, wait for close), %d times in %d rounds", per*r, r),
		"cycles/s", float64(per), r, []contender{
			{"tether, group level", func() (float64, string, error) { return group.run(ctx, yes, per, tether.ContainGroup) }},
			{"tether, default (auto: " + autoName() + ")", func() (float64, string, error) { return auto.run(ctx, yes, per, tether.ContainAuto) }},
			{"os/exec", func() (float64, string, error) {
				return timed(func() error {
					buf := make([]byte, 16)
					for i := 0; i < per; i++ {
						c := exec.Command(yes)
						out, err := c.StdoutPipe()
						if err != nil {
							return err
						}
						if err := c.Start(); err != nil {
							return err
						}
						if _, err := out.Read(buf); err != nil {
							return err
						}
						_ = c.Process.Kill()
						_ = c.Wait() // "signal: killed"
					}
					return nil
				})
			}},
			{"node child_process.spawn", func() (float64, string, error) {
				s, rest, err := nodeScript("cycle.js", strconv.Itoa(per))
				note := ""
				if len(rest) > 0 {
					note = "closes received: " + rest[0]
				}
				return s, note, err
			}},
		})
}

// cycleRun is one tether contender's rounds of the cycle, and what it checks
// over all of them: every close received, goroutines and fds back at their
// baseline, no zombie, RSS flat after the first round's warm-up.
type cycleRun struct {
	n             int // cycles over all rounds
	closes        int
	warm          bool
	g0, fd0, rss0 int
}

// run runs one round of n cycles at level.
func (cr *cycleRun) run(ctx context.Context, yes string, n int, level tether.Containment) (float64, string, error) {
	cmd := &tether.Cmd{Path: yes, Stdout: tether.Pipe(), Containment: level}
	buf := make([]byte, 16)
	cycle := func() error {
		p, err := cmd.Start(ctx)
		if err != nil {
			return err
		}
		if _, err := p.Stdout().Read(buf); err != nil {
			return err
		}
		_ = p.Kill()
		// As os/exec's contender waits: a timer per cycle (time.After)
		// would cost tether's contender alone a wake of the scheduler.
		_, _ = p.Wait() // "signal: killed"
		cr.closes++
		return nil
	}
	warm := 0
	if !cr.warm {
		cr.warm, warm = true, min(1000, n/10)
		for i := 0; i < warm; i++ {
			if err := cycle(); err != nil {
				return 0, "", err
			}
		}
		settle()
		cr.g0, cr.fd0, cr.rss0 = runtime.NumGoroutine(), countFDs(), rssKiB()
	}
	t := time.Now()
	for i := warm; i < n; i++ {
		if err := cycle(); err != nil {
			return 0, "", err
		}
	}
	secs := time.Since(t).Seconds() * float64(n) / float64(n-warm)
	settle()
	g1, fd1, rss1 := runtime.NumGoroutine(), countFDs(), rssKiB()
	note := fmt.Sprintf("closes %d/%d; goroutines %d→%d; fds %d→%d; zombies %d; RSS after warm-up %+d KiB",
		cr.closes, cr.n, cr.g0, g1, cr.fd0, fd1, zombies(), rss1-cr.rss0)
	return secs, note, nil
}

func settle() {
	runtime.GC()
	debug.FreeOSMemory()
	time.Sleep(50 * time.Millisecond) // let exited monitors finish; the counts are then read once
}

func countFDs() int {
	e, _ := os.ReadDir("/proc/self/fd")
	return len(e)
}

func rssKiB() int {
	b, _ := os.ReadFile("/proc/self/status")
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			return n
		}
	}
	return 0
}

// zombies counts our children that exited and were never reaped.
func zombies() int {
	me := strconv.Itoa(os.Getpid())
	entries, _ := os.ReadDir("/proc")
	n := 0
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		s := string(b)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
		if len(f) > 1 && f[0] == "Z" && f[1] == me {
			n++
		}
	}
	return n
}

func benchThroughput() {
	n := *nbytes
	ctx := context.Background()
	ns := strconv.FormatInt(n, 10)
	readAll := func(r io.Reader) (int64, error) {
		buf := make([]byte, 256<<10)
		var total int64
		for {
			k, err := r.Read(buf)
			total += int64(k)
			if err == io.EOF {
				return total, nil
			}
			if err != nil {
				return total, err
			}
		}
	}
	check := func(got int64) error {
		if got != n {
			return fmt.Errorf("read %d bytes, want %d", got, n)
		}
		return nil
	}
	compare(fmt.Sprintf("stdout throughput, %d MiB of head -c /dev/zero read in 256 KiB reads", n>>20), "bytes/s", float64(n), *rounds, []contender{
		{"tether", func() (float64, string, error) {
			return timed(func() error {
				c := tether.Command("head", "-c", ns, "/dev/zero") // the default level
				c.Stdout = tether.Pipe()
				p, err := c.Start(ctx)
				if err != nil {
					return err
				}
				got, err := readAll(p.Stdout())
				if _, werr := p.Wait(); err == nil {
					err = werr
				}
				if err != nil {
					return err
				}
				return check(got)
			})
		}},
		{"os/exec", func() (float64, string, error) {
			return timed(func() error {
				c := exec.Command("head", "-c", ns, "/dev/zero")
				out, err := c.StdoutPipe()
				if err != nil {
					return err
				}
				if err := c.Start(); err != nil {
					return err
				}
				got, err := readAll(out)
				if werr := c.Wait(); err == nil {
					err = werr
				}
				if err != nil {
					return err
				}
				return check(got)
			})
		}},
		{"node child_process.spawn", func() (float64, string, error) {
			s, rest, err := nodeScript("throughput.js", ns)
			if err == nil && (len(rest) == 0 || rest[0] != ns) {
				err = fmt.Errorf("node read %v bytes", rest)
			}
			return s, "", err
		}},
		{"head | dd bs=256k", func() (float64, string, error) {
			return timed(func() error {
				return exec.Command("sh", "-c", "head -c "+ns+" /dev/zero | dd of=/dev/null bs=256k status=none").Run()
			})
		}},
	})
}

func autoName() string { return tether.Probe().Auto.String() }
