//go:build linux

package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/tetherproc/tether/internal/testproc"
)

var upSizes = flag.String("up", "1000,5000", "idle children for the tether up benchmark")

// The marker argument of the idle children, so they can be counted.
const idleArg = "31536001"

// benchUp measures tether up supervising N idle children: tether's memory per
// child, its CPU while nothing happens, and Ctrl-C to the last child gone;
// then the memory of tether run, tini and dumb-init around one child.
func benchUp() {
	bin := buildTether()
	proc := filepath.Join(workDir, "Procfile")
	if err := os.WriteFile(proc, []byte("idle: exec sleep "+idleArg+"\n"), 0o644); err != nil {
		fatal(err)
	}
	fmt.Printf("\ntether up supervising idle children (`idle: exec sleep`), -m idle=N\n\n")
	fmt.Println("| N | start → all running | tether RSS | keeper RSS | tether CPU idle (5 s) | keeper CPU idle | Ctrl-C → last child gone |")
	fmt.Println("|---:|---:|---:|---:|---:|---:|---:|")
	type point struct{ n, rss, krss int }
	var pts []point
	for _, f := range strings.Split(*upSizes, ",") {
		n, err := strconv.Atoi(f)
		if err != nil {
			fatal(err)
		}
		r, err := upRun(bin, proc, n)
		if err != nil {
			fmt.Printf("| %d | error: %v | | | | | |\n", n, err)
			continue
		}
		pts = append(pts, point{n, r.rss, r.keeperRSS})
		fmt.Printf("| %d | %v | %d MiB | %d MiB | %.2f%% | %.2f%% | %v |\n", n, r.started.Round(time.Millisecond),
			r.rss>>10, r.keeperRSS>>10, r.cpu, r.keeperCPU, r.teardown.Round(time.Millisecond))
	}
	if len(pts) >= 2 {
		a, b := pts[0], pts[len(pts)-1]
		fmt.Printf("\nper child (slope between N=%d and N=%d): tether %.1f KiB, keeper %.1f KiB\n",
			a.n, b.n, float64(b.rss-a.rss)/float64(b.n-a.n), float64(b.krss-a.krss)/float64(b.n-a.n))
	}

	fmt.Printf("\nMemory of the wrapper around one `sleep` (VmRSS)\n\n| wrapper | RSS | note |\n|---|---:|---|\n")
	for _, w := range []struct {
		name string
		argv []string
		note string
	}{
		{"tether run", []string{bin, "run", "--"}, "plus its keeper (below)"},
		{"tini", []string{"tini", "-s", "--"}, ""},
		{"dumb-init", []string{"dumb-init"}, ""},
	} {
		if _, err := exec.LookPath(w.argv[0]); err != nil {
			fmt.Printf("| %s | – | not installed |\n", w.name)
			continue
		}
		rss, krss, err := wrapperRSS(w.argv)
		if err != nil {
			fmt.Printf("| %s | – | %v |\n", w.name, err)
			continue
		}
		note := w.note
		if krss > 0 {
			note = fmt.Sprintf("plus its keeper: %d KiB", krss)
		}
		fmt.Printf("| %s | %d KiB | %s |\n", w.name, rss, note)
	}
}

func buildTether() string {
	bin := filepath.Join(workDir, "tether")
	if _, err := os.Stat(bin); err == nil {
		return bin
	}
	build := exec.Command("go", "build", "-o", bin, "./cmd/tether")
	build.Dir, build.Stderr = filepath.Dir(srcDir), os.Stderr
	if err := build.Run(); err != nil {
		fatal(fmt.Errorf("build tether: %w", err))
	}
	return bin
}

type upResult struct {
	started, teardown time.Duration
	rss, keeperRSS    int // KiB
	cpu, keeperCPU    float64
}

func upRun(bin, procfile string, n int) (upResult, error) {
	var r upResult
	c := exec.Command(bin, "up", "-f", procfile, "-m", "idle="+strconv.Itoa(n), "-color", "never", "-grace", "5s")
	out, err := c.StdoutPipe()
	if err != nil {
		return r, err
	}
	c.Stderr = c.Stdout
	t0 := time.Now()
	if err := c.Start(); err != nil {
		return r, err
	}
	go func() { _, _ = io.Copy(io.Discard, out) }() // ends at EOF, when tether exits
	defer func() {
		_ = c.Process.Kill()
		_ = c.Wait()
	}()
	deadline := time.Now().Add(5 * time.Minute)
	for countIdle() < n {
		if time.Now().After(deadline) {
			return r, fmt.Errorf("%d of %d running after 5 min", countIdle(), n)
		}
		time.Sleep(50 * time.Millisecond) // counting other processes: no event to wait on
	}
	r.started = time.Since(t0)
	time.Sleep(2 * time.Second) // let start-up settle before measuring idle
	keeper := testproc.KeeperOf(c.Process.Pid)
	cpu0, k0 := cpuTicks(c.Process.Pid), cpuTicks(keeper)
	time.Sleep(5 * time.Second)
	cpu1, k1 := cpuTicks(c.Process.Pid), cpuTicks(keeper)
	const hz = 100 // USER_HZ
	r.cpu = float64(cpu1-cpu0) / hz / 5 * 100
	r.keeperCPU = float64(k1-k0) / hz / 5 * 100
	r.rss, r.keeperRSS = rssOf(c.Process.Pid), rssOf(keeper)
	t1 := time.Now()
	_ = c.Process.Signal(syscall.SIGINT)
	for countIdle() > 0 {
		if time.Since(t1) > 2*time.Minute {
			return r, fmt.Errorf("%d children left 2 min after Ctrl-C", countIdle())
		}
		time.Sleep(5 * time.Millisecond)
	}
	r.teardown = time.Since(t1)
	return r, nil
}

// wrapperRSS starts argv + a sleep, and reads the wrapper's RSS (and its
// keeper's, for tether) once the sleep runs.
func wrapperRSS(argv []string) (int, int, error) {
	c := exec.Command(argv[0], append(argv[1:], "sleep", idleArg)...)
	if err := c.Start(); err != nil {
		return 0, 0, err
	}
	defer func() {
		_ = c.Process.Signal(syscall.SIGTERM)
		_ = c.Wait()
	}()
	deadline := time.Now().Add(10 * time.Second)
	for countIdle() < 1 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond)
	return rssOf(c.Process.Pid), rssOf(testproc.KeeperOf(c.Process.Pid)), nil
}

func countIdle() int {
	n := 0
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		b, _ := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if strings.HasSuffix(string(b), "sleep\x00"+idleArg+"\x00") && testproc.Alive(atoi(e.Name())) {
			n++
		}
	}
	return n
}

func atoi(s string) int { n, _ := strconv.Atoi(s); return n }

func rssOf(pid int) int {
	if pid == 0 {
		return 0
	}
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			return atoi(strings.Fields(v)[0])
		}
	}
	return 0
}

// cpuTicks is utime+stime of pid, in clock ticks.
func cpuTicks(pid int) int {
	if pid == 0 {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	return atoi(f[11]) + atoi(f[12])
}
