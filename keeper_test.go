//go:build unix

package tether_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tetherproc/tether"
	"github.com/tetherproc/tether/internal/keeper"
	"github.com/tetherproc/tether/internal/testproc"
)

// Tests of the keeper level run in a program of the test binary, so that
// the keeper (one per parent, for the parent's lifetime) belongs to it and
// not to the test process, whose leak check stays strict.

func init() {
	testproc.Register("kept-op", helperKeptOp)
	testproc.Register("failed-send", helperFailedSend)
	testproc.Register("keeper-ending", helperKeeperEnding)
	testproc.Register("polite-writer", helperPoliteWriter)
	testproc.Register("leader-exits", helperLeaderExits)
}

// helperPoliteWriter starts, at level args[0], a shell whose stdout is a
// Pipe() this program reads, and which on SIGTERM first says goodbye on
// that stdout, then writes args[1]/.cleaned; it says "ready" once the shell
// runs, and waits to be SIGKILLed. With args[2] "pipeline" the tree is a
// pipeline instead: a shell that on SIGTERM writes pipelineLines lines into
// a pipe, and a cat that ignores SIGTERM and copies that pipe to
// args[1]/.piped; "ready" comes on stderr.
func helperPoliteWriter(args []string) {
	script := "trap 'echo bye; echo cleaned > " + filepath.Join(args[1], ".cleaned") + "; exit 0' TERM; echo ready; while :; do sleep 0.2 & wait $!; done"
	c := &tether.Cmd{Path: "/bin/sh", Containment: levelNamed(args[0]), Stdout: tether.Pipe()}
	said := c.Stdout
	if len(args) > 2 && args[2] == "pipeline" {
		script = "( trap 'i=0; while [ $i -lt " + strconv.Itoa(pipelineLines) + " ]; do echo line$i; i=$((i+1)); done; exit 0' TERM; " +
			"echo ready >&2; while :; do sleep 0.2 & wait $!; done ) | ( trap '' TERM; exec cat > " + filepath.Join(args[1], ".piped") + " )"
		c.Stderr = tether.Pipe()
		said = c.Stderr
	}
	c.Args = []string{"sh", "-c", script}
	p, err := c.Start(context.Background())
	if err != nil {
		fmt.Println("start:", err)
		os.Exit(2)
	}
	r := p.Stdout()
	if said == c.Stderr {
		r = p.Stderr()
	}
	if l, _ := bufio.NewReader(r).ReadString('\n'); l != "ready\n" {
		fmt.Println("child said", l)
		os.Exit(2)
	}
	fmt.Println("ready")
	select {}
}

// pipelineLines is what the pipeline of helperPoliteWriter writes at its
// stop.
const pipelineLines = 1000

// startPoliteWriter runs helperPoliteWriter with args, waits for its
// "ready" and SIGKILLs it.
func startPoliteWriter(t *testing.T, args ...string) {
	t.Helper()
	c, out := startHelper(t, "polite-writer", args...)
	if l, _ := bufio.NewReader(out).ReadString('\n'); l != "ready\n" {
		_ = c.Process.Kill()
		_ = c.Wait()
		t.Fatalf("helper said %q", l)
	}
	_ = c.Process.Kill() // ours: our child
	_ = c.Wait()
}

// TestPoliteChildWritesAfterParentDeath: a tree whose stdout the parent
// read outlives the parent's SIGKILL long enough to stop politely, and its
// goodbye on that stdout does not kill it: the keeper holds the pipe's read
// side through the teardown. Before, the write met a pipe without a reader,
// SIGPIPE killed the child, and its clean-up never ran (7 of 25 SIGKILLs of
// tether up, whose children's output goes through such pipes).
func TestPoliteChildWritesAfterParentDeath(t *testing.T) {
	t.Parallel()
	for _, level := range keptLevels(t) {
		t.Run(level, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			startPoliteWriter(t, level, dir)
			deadline := time.Now().Add(10 * time.Second)
			done := func() bool { _, err := os.Stat(filepath.Join(dir, ".cleaned")); return err == nil }
			for !done() && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond) // the keeper's teardown is not ours to wait on
			}
			if !done() {
				t.Errorf("the polite child did not clean up after its parent's SIGKILL at the %s level", level)
			}
		})
	}
}

// helperLeaderExits starts, at level args[0], a shell that leaves a
// background sleep and exits; it waits for the shell's close, says the
// sleep's pid, and waits to be SIGKILLed.
func helperLeaderExits(args []string) {
	c := &tether.Cmd{Path: "/bin/sh", Args: []string{"sh", "-c", "sleep 987.654 >/dev/null & echo $!"}, Containment: levelNamed(args[0]), Stdout: tether.Pipe()}
	p, err := c.Start(context.Background())
	if err != nil {
		fmt.Println("start:", err)
		os.Exit(2)
	}
	line, _ := bufio.NewReader(p.Stdout()).ReadString('\n')
	if _, err := p.Wait(); err != nil {
		fmt.Println("wait:", err)
		os.Exit(2)
	}
	fmt.Print("pid ", line)
	select {}
}

// TestLeftoverOfExitedLeaderStoppedAtParentDeath: a tree whose leader
// exited by itself (and closed) keeps its other members while the parent
// lives, as os/exec's would; at the parent's SIGKILL the keeper stops them
// too (the README says so).
func TestLeftoverOfExitedLeaderStoppedAtParentDeath(t *testing.T) {
	t.Parallel()
	for _, level := range strongLevels(t) { // $! is the namespace's pid at the PID-namespace level
		t.Run(level, func(t *testing.T) {
			t.Parallel()
			c, out := startHelper(t, "leader-exits", level)
			line, _ := bufio.NewReader(out).ReadString('\n')
			pid, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(line, "pid ")))
			if err != nil {
				_ = c.Process.Kill()
				_ = c.Wait()
				t.Fatalf("helper said %q", line)
			}
			pinned := testproc.Pin(pid) // the sleep's, while it surely is
			t.Cleanup(pinned.Kill)
			if !testproc.Alive(pid) {
				t.Errorf("the leftover %d died with its leader, before the parent", pid)
			}
			_ = c.Process.Kill() // ours: our child
			_ = c.Wait()
			if left := testproc.WaitGone(10*time.Second, pid); len(left) > 0 {
				t.Errorf("the leftover %d of an exited leader outlived its parent's SIGKILL by 10 s at the %s level", pid, level)
			}
		})
	}
}

// TestPipelineInTreeAfterParentDeath: the keeper holds a tree's output
// pipes at the parent's death, but not one that a process of the tree
// itself reads. A pipeline inside the tree (a shell whose stop writes
// pipelineLines lines into a pipe that a cat of the tree copies to a file)
// keeps every line: the keeper, reading that pipe too, would take some.
func TestPipelineInTreeAfterParentDeath(t *testing.T) {
	t.Parallel()
	for _, level := range keptLevels(t) {
		t.Run(level, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			startPoliteWriter(t, level, dir, "pipeline")
			file := filepath.Join(dir, ".piped")
			lines := func() int {
				b, _ := os.ReadFile(file)
				return strings.Count(string(b), "\n")
			}
			deadline := time.Now().Add(10 * time.Second)
			for lines() < pipelineLines && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond) // the keeper's teardown is not ours to wait on
			}
			// The cat ends at EOF, once the writer exited: then the file
			// is whole.
			if n := lines(); n != pipelineLines {
				t.Errorf("the tree's pipeline copied %d lines of %d after its parent's SIGKILL at the %s level", n, pipelineLines, level)
			}
		})
	}
}

// helperKeeperEnding starts a tree that ignores SIGTERM at the cgroup
// level, sends its keeper SIGTERM (the keeper stops every tree, and kills
// what is left after the grace), then starts trees until one runs under
// another keeper, and says how each fared.
func helperKeeperEnding([]string) {
	a := &tether.Cmd{Path: "/bin/sh", Args: []string{"sh", "-c", "trap '' TERM; echo ready; while :; do sleep 1; done"},
		Containment: tether.ContainCgroup, StopTimeout: time.Second, Stdout: tether.Pipe()}
	pa, err := a.Start(context.Background())
	if err != nil {
		fmt.Println("start a:", err)
		os.Exit(2)
	}
	_, _ = bufio.NewReader(pa.Stdout()).ReadString('\n')
	cgroupOf := func(pid int) string {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
		_, cg, _ := strings.Cut(strings.TrimSpace(string(b)), "0::")
		return cg
	}
	oldDir := filepath.Dir(cgroupOf(pa.PID()))
	k := testproc.KeeperOf(os.Getpid())
	_ = syscall.Kill(k, syscall.SIGTERM) // ours: our child
	deadline := time.Now().Add(5 * time.Second)
	var pb *tether.Process
	for time.Now().Before(deadline) {
		b := helperCmd("sleep")
		b.Containment = tether.ContainCgroup
		b.Stdout, b.Stdin = tether.Pipe(), tether.Pipe()
		if pb, err = b.Start(context.Background()); err != nil {
			fmt.Println("start b:", err)
			os.Exit(2)
		}
		// A b that the ending keeper stopped at once never says ready,
		// and a gone process has no cgroup to read: only a b running
		// elsewhere is in a new keeper.
		line, _ := bufio.NewReader(pb.Stdout()).ReadString('\n')
		if cg := cgroupOf(pb.PID()); line == "ready\n" && cg != "" && filepath.Dir(cg) != oldDir {
			break
		}
		// Started before tether read the keeper's "ending": it must be
		// stopped gracefully with the rest, not killed at the grace's end.
		st, _ := pb.Wait()
		fmt.Println("b in the ending keeper:", st)
		pb = nil
	}
	if pb == nil {
		fmt.Println("no start reached a new keeper")
		os.Exit(1)
	}
	fmt.Println("b in a new keeper")
	if left := testproc.WaitGone(10*time.Second, k); len(left) > 0 {
		fmt.Println("the old keeper did not end")
		os.Exit(1)
	}
	st, _ := pa.Wait()
	fmt.Println("a:", st)
	fmt.Println("b running after the old keeper's end:", pb.Exit() == nil)
	_ = pb.Stop()
}

// TestKeeperEndingTakesNoNewTrees: a keeper sent SIGTERM (systemctl stop
// with KillMode=control-group signals the parent and the keeper together)
// stops its trees; a tree started after that runs under a new keeper, and
// is not killed at the old one's grace end. Before, the parent cloned new
// trees into the ending keeper's cgroups, and they were SIGKILLed there.
func TestKeeperEndingTakesNoNewTrees(t *testing.T) {
	t.Parallel()
	needCgroupLevel(t)
	path, argv, env := testproc.Command("keeper-ending")
	c := exec.Command(path, argv[1:]...)
	c.Env = env
	out, err := c.CombinedOutput()
	got := string(out)
	if err != nil || !strings.Contains(got, "b in a new keeper") || !strings.Contains(got, "b running after the old keeper's end: true") ||
		strings.Contains(got, "b in the ending keeper: signal: killed") {
		t.Errorf("%v: %s", err, got)
	}
	t.Log(got)
}

// helperFailedSend closes a tree at the keeper level, so its release waits
// to go with the next frame, then fails a start whose frame cannot be sent
// (a closed descriptor in ExtraFiles), and says whether its keeper went
// once idle.
func helperFailedSend([]string) {
	c := &tether.Cmd{Path: "/bin/true", Containment: tether.ContainKeeper}
	if _, err := c.Run(context.Background()); err != nil {
		fmt.Println("run:", err)
		os.Exit(2)
	}
	k := testproc.KeeperOf(os.Getpid())
	closed, _ := os.Open(os.DevNull)
	_ = closed.Close()
	c = &tether.Cmd{Path: "/bin/true", Containment: tether.ContainKeeper, ExtraFiles: []*os.File{closed}}
	_, err := c.Run(context.Background())
	fmt.Println("start with a closed descriptor:", err != nil)
	if left := testproc.WaitGone(15*time.Second, k); len(left) > 0 {
		fmt.Println("keeper still alive")
		os.Exit(1)
	}
	fmt.Println("keeper gone")
}

// TestKeeperExitsAfterAFailedSend: releases that were to ride with a frame
// that could not be sent go with the next one; before, they were lost, and
// the keeper kept the trees and never exited idle.
func TestKeeperExitsAfterAFailedSend(t *testing.T) {
	t.Parallel()
	path, argv, env := testproc.Command("failed-send")
	c := exec.Command(path, argv[1:]...)
	c.Env = env
	out, err := c.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "start with a closed descriptor: true") || !strings.Contains(string(out), "keeper gone") {
		t.Errorf("%v: %s", err, out)
	}
}

// helperKeptOp starts a tree under the keeper, prints its pids and the
// keeper's, does op to it, prints "op done" with the exit, and waits to be
// ended.
func helperKeptOp(args []string) {
	op, level := args[0], levelNamed(args[1])
	var c *tether.Cmd
	size := treeSize
	switch op {
	case "storm":
		// A fork storm: sh starts sleeps as fast as it can.
		c, size = &tether.Cmd{Path: "/bin/sh", Args: []string{"sh", "-c", "echo pid $$; while :; do sleep 987.654 & done"}}, 1
	default:
		path, argv, env := testproc.Command("tree", os.TempDir())
		c = &tether.Cmd{Path: path, Args: argv, Env: env}
	}
	c.Containment, c.StopTimeout, c.Stdout = level, 500*time.Millisecond, tether.Pipe()
	p, br := startRelay(c, size)
	go func() { _, _ = br.WriteTo(discard{}) }() // ends at EOF or the drain bound
	if p.Containment() != level {
		fmt.Println("started at level", p.Containment())
		os.Exit(2)
	}
	fmt.Println("ready")
	var err error
	switch op {
	case "stop":
		err = p.Stop()
	case "kill":
		err = p.Kill()
	case "signal":
		err = p.Signal(syscall.SIGTERM)
	case "storm":
		time.Sleep(200 * time.Millisecond) // let the storm rage: this is the scenario, not a wait for a result
		err = p.Kill()
	case "wait":
		// the test kills the keeper
	}
	st, werr := p.Wait()
	fmt.Printf("op done: %v %v %v\n", err, st, werr)
	select {}
}

type discard struct{}

func (discard) Write(b []byte) (int, error) { return len(b), nil }

// keptOp runs helperKeptOp and returns its tree's pids, its command and a
// function that reads lines up to "op done".
func keptOp(t *testing.T, op, level string) (*exec.Cmd, []int, func() string) {
	t.Helper()
	c, out := startHelper(t, "kept-op", op, level)
	lines := make(chan string, 100)
	go func() { // ends at EOF: when the helper and its tree are gone
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	next := func() string {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatal("helper's output ended")
			}
			return l
		case <-time.After(30 * time.Second):
			t.Fatal("no line from the helper in 30s")
		}
		return ""
	}
	var pids []int
	var pinned []*testproc.Pinned // the pids, held so a kill never reaches a reuser
	for {
		l := next()
		if l == "ready" {
			break
		}
		f := strings.Fields(l)
		pid, err := strconv.Atoi(f[len(f)-1])
		if len(f) == 3 {
			pid, err = strconv.Atoi(f[1])
		}
		if err != nil {
			t.Fatalf("helper said %q", l)
		}
		pids = append(pids, pid)
		pinned = append(pinned, testproc.Pin(pid))
	}
	t.Cleanup(func() {
		_ = c.Process.Kill()
		_ = c.Wait()
		for _, p := range pinned {
			p.Kill() // a failed test leaves nothing behind
		}
		go func() {
			for range lines {
			}
		}()
	})
	return c, pids, next
}

// keeperOf finds the keeper among parent's children.
func keeperOf(t *testing.T, parent int) int {
	t.Helper()
	pid := testproc.KeeperOf(parent)
	if pid == 0 {
		t.Fatalf("no keeper among the children of %d", parent)
	}
	return pid
}

// At the keeper level a tree is what descends from its leader and what stays
// in its process group: Stop, Kill and Signal reach every member but the
// daemon that double-forked into a session of its own; the parent's end
// reaches it. At the cgroup level the tree is its cgroup: the daemon too.
func TestKeeperTreeOps(t *testing.T) {
	t.Parallel()
	for _, level := range strongLevels(t) {
		for _, op := range []string{"stop", "kill", "signal"} {
			t.Run(level+"/"+op, func(t *testing.T) {
				t.Parallel()
				keeperTreeOp(t, level, op)
			})
		}
	}
}

func keeperTreeOp(t *testing.T, level, op string) {
	{
		{
			c, pids, next := keptOp(t, op, level)
			if l := next(); !strings.HasPrefix(l, "op done: <nil>") {
				t.Fatalf("%s: %s", op, l)
			}
			// pids: tree, plain, ignore, setsid, daemon, polite — the daemon
			// line comes from the daemonized member itself, whose place in
			// the order varies: find it by its session.
			daemon := 0
			var others []int
			for _, pid := range pids {
				if level == "keeper" && pid != pids[0] && sessionOf(pid) == pid && pgidOfPid(pid) == pid && parentOf(pid) != pids[0] {
					daemon = pid
					continue
				}
				others = append(others, pid)
			}
			wantSurvive := 1 // the SIGTERM-ignorer, when only SIGTERM was sent
			if op != "signal" {
				wantSurvive = 0
			}
			left := testproc.WaitGone(5*time.Second, others...)
			if len(left) != wantSurvive {
				t.Errorf("%s left %d of %v alive (%v), want %d", op, len(left), others, left, wantSurvive)
			}
			// The parent's end takes everything, the daemon included.
			_ = c.Process.Signal(syscall.SIGTERM)
			if left := testproc.WaitGone(10*time.Second, pids...); len(left) > 0 {
				t.Errorf("after the parent ended, alive: %v (daemon %d)", left, daemon)
			}
		}
	}
}

// A fork storm inside a tree: Kill freezes it before killing, so nothing
// forks its way out.
func TestKeeperForkStorm(t *testing.T) {
	t.Parallel()
	for _, level := range strongLevels(t) {
		t.Run(level, func(t *testing.T) { forkStorm(t, level) })
	}
}

func forkStorm(t *testing.T, level string) {
	_, _, next := keptOp(t, "storm", level)
	if l := next(); !strings.HasPrefix(l, "op done: <nil>") {
		t.Fatal(l)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		n := countCmdline("sleep 987.654")
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d sleeps of the storm alive 5s after Kill", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// The keeper itself SIGKILLed. Keeper level: its direct children die
// (PDEATHSIG from the keeper's spawning thread); their descendants are out of
// reach (measured and logged). Cgroup level: the parent, alive, kills what is
// left in the dead keeper's cgroups; PID-namespace level: the kernel kills
// the namespace. Nothing survives either. The parent's Wait reports it.
func TestKeeperKilled(t *testing.T) {
	t.Parallel()
	for _, level := range keptLevels(t) {
		t.Run(level, func(t *testing.T) {
			t.Parallel()
			c, pids, next := keptOp(t, "wait", level)
			keeper := keeperOf(t, c.Process.Pid)
			if err := syscall.Kill(keeper, syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			if l := next(); !strings.Contains(l, "keeper is gone") {
				t.Errorf("Wait after the keeper died: %s", l)
			}
			if left := testproc.WaitGone(5*time.Second, pids[0]); len(left) > 0 {
				t.Errorf("the tree's leader %d survived its keeper", pids[0])
			}
			if level == "cgroup" || level == "pidns" {
				// The parent kills the dead keeper's cgroups; the kernel
				// kills a PID namespace whose init died.
				if left := testproc.WaitGone(5*time.Second, pids...); len(left) > 0 {
					t.Errorf("%d of %d survived the keeper's SIGKILL at the %s level", len(left), len(pids), level)
				}
			} else {
				survivors := testproc.Survivors(pids[1:]...)
				t.Logf("keeper SIGKILLed: leader gone; %d of %d descendants survive (expected at this level)", len(survivors), len(pids)-1)
			}
			// The parent destroys the dead keeper's cgroup (and so what is
			// left in it); it must have done so before it is stopped.
			deadline := time.Now().Add(10 * time.Second)
			for keeperCgroupExists(keeper) && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond) // the parent's clean-up is not ours to wait on
			}
			if keeperCgroupExists(keeper) {
				t.Errorf("the parent left the SIGKILLed keeper's cgroup behind")
			}
		})
	}
}

// keeperCgroupExists reports whether keeper pid's cgroup is still there.
func keeperCgroupExists(pid int) bool {
	for _, l := range cgroupLeftovers() {
		if strings.Contains(l, "/tether-keeper-"+strconv.Itoa(pid)+"-") {
			return true
		}
	}
	return false
}

func countCmdline(s string) int {
	entries, _ := os.ReadDir("/proc")
	n := 0
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if strings.Contains(cmdline(pid), s) && testproc.Alive(pid) {
			n++
		}
	}
	return n
}

func statField(pid, i int) int {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return -1
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	if len(f) <= i {
		return -1
	}
	n, _ := strconv.Atoi(f[i])
	return n
}

func parentOf(pid int) int  { return statField(pid, 1) }
func pgidOfPid(pid int) int { return statField(pid, 2) }
func sessionOf(pid int) int { return statField(pid, 3) }

// SIGTERM to the keeper itself ends it as the parent's death does: every
// tree stopped gracefully, then the keeper exits; the parent sees the exits.
func TestKeeperTerminated(t *testing.T) {
	t.Parallel()
	c, pids, next := keptOp(t, "wait", "keeper")
	keeper := keeperOf(t, c.Process.Pid)
	if err := syscall.Kill(keeper, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if l := next(); !strings.HasPrefix(l, "op done: <nil> signal: terminated") {
		t.Errorf("Wait after the keeper was terminated: %s", l)
	}
	if left := testproc.WaitGone(5*time.Second, pids...); len(left) > 0 {
		t.Errorf("%d of %d survived the keeper's SIGTERM", len(left), len(pids))
	}
}

// A spawn much larger than one socket buffer (an environment of ~1 MiB)
// reaches the keeper whole: frames are written in parts and reassembled.
func TestKeeperLargeSpawn(t *testing.T) {
	t.Parallel()
	env := []string{"PATH=/usr/bin:/bin"}
	for i := range 8 {
		env = append(env, fmt.Sprintf("BIG%d=%s", i, strings.Repeat(string(rune('a'+i)), 120<<10)))
	}
	c := &tether.Cmd{Path: "/bin/sh", Args: []string{"sh", "-c", `printf '%s %s' "${#BIG0}" "$(printf %s "$BIG7" | tr -d h | wc -c)"`},
		Env: env, Containment: tether.ContainKeeper}
	out, err := c.Output(context.Background())
	if err != nil || string(out) != fmt.Sprintf("%d 0", 120<<10) {
		t.Errorf("child saw %q (%v), want %q", out, err, fmt.Sprintf("%d 0", 120<<10))
	}
}

// ps, top and docker top name the keeper tether-keeper (its comm), not
// "exe", the file it was executed as (/proc/self/exe).
func TestKeeperNamedInPs(t *testing.T) {
	t.Parallel()
	for _, level := range keptLevels(t) {
		t.Run(level, func(t *testing.T) {
			t.Parallel()
			c, _, _ := keptOp(t, "wait", level)
			keeper := keeperOf(t, c.Process.Pid)
			comm, err := os.ReadFile("/proc/" + strconv.Itoa(keeper) + "/comm")
			if err != nil || strings.TrimSpace(string(comm)) != "tether-keeper" {
				t.Errorf("the keeper's comm: %q (%v), want tether-keeper", comm, err)
			}
		})
	}
}

// The keeper's grace for what it was told nothing of is the library's
// default stop timeout.
func TestKeeperDefaultGrace(t *testing.T) {
	if keeper.DefaultGrace != tether.DefaultStopTimeout {
		t.Errorf("keeper.DefaultGrace %v, DefaultStopTimeout %v", keeper.DefaultGrace, tether.DefaultStopTimeout)
	}
}
