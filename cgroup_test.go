//go:build linux

package tether_test

import (
	"bufio"
	"context"
	"errors"
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
	"github.com/tetherproc/tether/internal/cgroupfs"
	"github.com/tetherproc/tether/internal/fork"
	"github.com/tetherproc/tether/internal/testproc"
	"golang.org/x/sys/unix"
)

func init() {
	testproc.Register("cgroup-cpu", helperCgroupCPU)
	testproc.Register("cgroup-leader", helperCgroupLeader)
	testproc.Register("burn", helperBurn)
	testproc.Register("killed-cgroup", helperKilledCgroup)
}

// helperBurn burns args[0] of its own CPU time (not wall time: the machine
// may be busy), then exits.
func helperBurn(args []string) {
	want, _ := time.ParseDuration(args[0])
	for x := 0; ; x++ {
		if x%100000 == 0 {
			var ru syscall.Rusage
			_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
			if time.Duration(ru.Utime.Nano()+ru.Stime.Nano()) >= want {
				return
			}
		}
	}
}

// helperCgroupLeader starts a burner and waits for its exit without
// reaping it (WNOWAIT), then exits: the orphaned zombie goes to the keeper,
// so the burner's CPU is in the tree's cgroup figure and never in the
// leader's rusage.
func helperCgroupLeader([]string) {
	path, argv, env := testproc.Command("burn", "300ms")
	c := exec.Command(path, argv[1:]...)
	c.Args[0], c.Env = argv[0], env
	if err := c.Start(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	var info unix.Siginfo
	for {
		err := unix.Waitid(unix.P_PID, c.Process.Pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
		if err != unix.EINTR {
			break
		}
	}
}

// helperCgroupCPU runs a tree whose CPU is burnt by a grandchild the leader
// never reaps, at the cgroup level, and prints the tree's CPU figures.
func helperCgroupCPU([]string) {
	path, argv, env := testproc.Command("cgroup-leader")
	c := &tether.Cmd{Path: path, Args: argv, Env: env, Containment: tether.ContainCgroup}
	p, err := c.Start(context.Background())
	if err != nil {
		fmt.Println("start:", err)
		os.Exit(2)
	}
	st, _ := p.Wait()
	fmt.Printf("leader %v tree %v\n", st.UserTime+st.SystemTime, st.TreeUserTime+st.TreeSystemTime)
}

func TestCgroupExitFigures(t *testing.T) {
	t.Parallel()
	if ok, why := cgroupLevel(); !ok {
		t.Skip("no cgroup level here:", why)
	}
	out, err := helperCmd("cgroup-cpu").Output(context.Background())
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	f := strings.Fields(string(out))
	if len(f) != 4 {
		t.Fatalf("helper said %q", out)
	}
	leader, err1 := time.ParseDuration(f[1])
	tree, err2 := time.ParseDuration(f[3])
	if err1 != nil || err2 != nil {
		t.Fatalf("helper said %q", out)
	}
	if tree < 300*time.Millisecond || leader > tree/2 {
		t.Errorf("tree CPU %v, leader %v: want the grandchild's 300ms in the tree's figure only", tree, leader)
	}
}

// helperKilledCgroup waits for a line on stdin (the test moves it into a
// cgroup first), then starts a child at the default level and at the cgroup
// level, and says what each gave.
func helperKilledCgroup(args []string) {
	if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
		os.Exit(2)
	}
	// Does this kernel kill a clone into another cgroup from here at all?
	if fd, err := syscall.Open(args[0], syscall.O_RDONLY|syscall.O_DIRECTORY|syscall.O_CLOEXEC, 0); err == nil {
		pid, err := fork.Exec("/bin/true", []string{"true"}, nil, "/", []*os.File{os.Stdin, os.Stdout, os.Stderr},
			&syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: fd})
		_ = syscall.Close(fd)
		var ws syscall.WaitStatus
		if err == nil {
			_, _ = syscall.Wait4(pid, &ws, 0, nil)
		}
		if err == nil && !ws.Signaled() {
			fmt.Println("kernel: clones live")
			return
		}
	}
	c := helperCmd("exit", "0")
	st, err := c.Run(context.Background())
	fmt.Printf("auto: %v %v\n", st, err)
	if p, err := helperCmd("exit", "0").Start(context.Background()); err == nil {
		fmt.Printf("auto level: %v\n", p.Containment())
		_, _ = p.Wait()
	}
	c = helperCmd("exit", "0")
	c.Containment = tether.ContainCgroup
	st, err = c.Run(context.Background())
	fmt.Printf("cgroup: %v %v\n", st, err)
}

// TestCgroupLevelUnderKilledCgroup: on this kernel, a child cloned into a
// cgroup from a process whose cgroup once had cgroup.kill written (before
// the process joined it) is SIGKILLed before it runs. The keeper's probe
// finds it: the default level falls back to the keeper level, whose
// children run, and ContainCgroup refuses, saying why — rather than every
// tree dying at birth.
func TestCgroupLevelUnderKilledCgroup(t *testing.T) {
	t.Parallel()
	mnt := needCgroupLevel(t)
	dir := filepath.Join(mnt, ownCgroupForTest(), fmt.Sprintf("killed-%d", os.Getpid()))
	fresh := filepath.Join(mnt, ownCgroupForTest(), fmt.Sprintf("fresh-%d", os.Getpid()))
	for _, d := range []string{dir, fresh} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
		defer func() {
			// The helper and its keeper are gone (Wait below); the
			// cgroup empties as they are reaped.
			deadline := time.Now().Add(10 * time.Second)
			for syscall.Rmdir(d) != nil && time.Now().Before(deadline) {
				time.Sleep(5 * time.Millisecond)
			}
		}()
	}
	if err := os.WriteFile(filepath.Join(dir, "cgroup.kill"), []byte("1"), 0); err != nil {
		t.Fatal(err)
	}
	path, argv, env := testproc.Command("killed-cgroup", fresh)
	c := exec.Command(path, argv[1:]...)
	c.Env = env
	in, err := c.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	c.Stdout, c.Stderr = &out, &out
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	// Moved, not cloned in: a clone into it would be killed too.
	if err := os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(strconv.Itoa(c.Process.Pid)), 0); err != nil {
		_ = c.Process.Kill()
		_ = c.Wait()
		t.Fatal(err)
	}
	_, _ = in.Write([]byte("go\n"))
	_ = in.Close()
	if err := c.Wait(); err != nil {
		t.Fatalf("helper: %v: %s", err, out.String())
	}
	got := out.String()
	if strings.Contains(got, "kernel: clones live") {
		t.Skip("this kernel does not kill a clone into a cgroup from a cgroup once killed: nothing to probe for")
	}
	if !strings.Contains(got, "auto: exit status 0 <nil>") || !strings.Contains(got, "auto level: keeper") {
		t.Errorf("the default level under a killed cgroup: %q; want a child that runs, at the keeper level", got)
	}
	if !strings.Contains(got, "cgroup: <nil>") || !strings.Contains(got, "cgroup.kill written") {
		t.Errorf("ContainCgroup under a killed cgroup: %q; want a refusal naming cgroup.kill", got)
	}
}

// TestCgroupSlotsReusedAndBounded: trees that ran at once leave at most
// maxFreeSlots (32) empty cgroups behind for reuse, and a tree started after
// them reuses one rather than making a new one.
func TestCgroupSlotsReusedAndBounded(t *testing.T) {
	// Not parallel: other tests' trees would share this process's keeper.
	mnt := needCgroupLevel(t)
	const n = 40
	var procs []*tether.Process
	keeperDir := ""
	for range n {
		c := helperCmd("sleep")
		c.Containment = tether.ContainCgroup
		c.Stdin, c.Stdout = tether.Pipe(), tether.Pipe()
		p := start(t, c)
		if l, err := bufio.NewReader(p.Stdout()).ReadString('\n'); err != nil || l != "ready\n" {
			t.Fatalf("not ready: %q %v", l, err)
		}
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", p.PID()))
		_, cg, _ := strings.Cut(strings.TrimSpace(string(b)), "0::")
		if keeperDir == "" {
			keeperDir = filepath.Join(mnt, filepath.Dir(cg))
		}
		procs = append(procs, p)
	}
	for _, p := range procs {
		_ = p.Stdin().Close() // the helper then waits forever: Stop ends it
		if err := p.Stop(); err != nil {
			t.Fatal(err)
		}
	}
	slots := func() []string {
		var out []string
		entries, _ := os.ReadDir(keeperDir)
		for _, e := range entries {
			if e.IsDir() && strings.HasPrefix(e.Name(), "tree.") {
				out = append(out, e.Name())
			}
		}
		return out
	}
	before := slots()
	if len(before) > 32 {
		t.Errorf("%d tree cgroups left after %d trees closed (%v); want at most 32", len(before), n, before)
	}
	c := helperCmd("exit", "0")
	c.Containment = tether.ContainCgroup
	if _, err := c.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if after := slots(); len(after) != len(before) || len(after) == 0 {
		t.Errorf("a new tree made a cgroup rather than reusing one: %d before, %d after", len(before), len(after))
	}
}

// startLeaderLeavingSleep starts, at level, a shell that starts a `sleep
// 60` in the background (ignoring SIGTERM if deaf), says its pid, and exits;
// it returns the Process once closed, and the sleep's pid.
func startLeaderLeavingSleep(t *testing.T, level tether.Containment, deaf bool, stopTimeout time.Duration) (*tether.Process, int) {
	t.Helper()
	trap := ""
	if deaf {
		trap = `trap "" TERM; `
	}
	c := tether.Command("sh", "-c", "("+trap+"exec sleep 60) </dev/null >/dev/null 2>&1 & echo $!")
	c.Stdout = tether.Pipe()
	c.Containment = level
	c.StopTimeout = stopTimeout
	p := start(t, c)
	line, err := bufio.NewReader(p.Stdout()).ReadString('\n')
	pid, perr := strconv.Atoi(strings.TrimSpace(line))
	if err != nil || perr != nil {
		t.Fatalf("the leader said %q: %v", line, err)
	}
	pinned := testproc.Pin(pid)
	t.Cleanup(pinned.Kill)
	// $! is the subshell's pid: until it has exec'd sleep, it may not
	// ignore SIGTERM yet.
	deadline := time.Now().Add(10 * time.Second)
	for {
		comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
		if string(comm) == "sleep\n" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the leftover %d is %q, not sleep, after 10 s", pid, comm)
		}
		time.Sleep(time.Millisecond)
	}
	waitDone(t, p, 10*time.Second)
	if !testproc.Alive(pid) {
		t.Fatalf("the leftover %d is gone with its leader", pid)
	}
	return p, pid
}

// At the cgroup level, a tree whose leader exited by itself keeps its
// leftovers in its cgroup, and Signal, Kill and Stop after close still
// reach them (README, Process.Signal); once they have all gone, they return
// os.ErrProcessDone again, so a slot taken by another tree is never hit.
func TestLeftoversOfExitedLeaderReachedAfterClose(t *testing.T) {
	t.Parallel()
	needCgroupLevel(t)
	gone := func(t *testing.T, pid int, what string) {
		t.Helper()
		if left := testproc.WaitGone(10*time.Second, pid); len(left) > 0 {
			t.Fatalf("the leftover %d outlived %s after close by 10 s", pid, what)
		}
	}
	t.Run("kill", func(t *testing.T) {
		t.Parallel()
		p, pid := startLeaderLeavingSleep(t, tether.ContainCgroup, false, time.Second)
		if err := p.Kill(); err != nil {
			t.Fatalf("Kill after close with a leftover: %v", err)
		}
		gone(t, pid, "Kill")
		if err := p.Kill(); !errors.Is(err, os.ErrProcessDone) {
			t.Errorf("Kill once nothing is left: %v, want os.ErrProcessDone", err)
		}
	})
	t.Run("signal", func(t *testing.T) {
		t.Parallel()
		p, pid := startLeaderLeavingSleep(t, tether.ContainCgroup, false, time.Second)
		if err := p.Signal(syscall.SIGTERM); err != nil {
			t.Fatalf("Signal after close with a leftover: %v", err)
		}
		gone(t, pid, "SIGTERM")
		if err := p.Signal(syscall.SIGTERM); !errors.Is(err, os.ErrProcessDone) {
			t.Errorf("Signal once nothing is left: %v, want os.ErrProcessDone", err)
		}
	})
	t.Run("stop-deaf", func(t *testing.T) {
		t.Parallel()
		p, pid := startLeaderLeavingSleep(t, tether.ContainCgroup, true, 300*time.Millisecond)
		t0 := time.Now()
		if err := p.Stop(); err != nil {
			t.Fatalf("Stop after close with a deaf leftover: %v", err)
		}
		if d := time.Since(t0); d < 300*time.Millisecond {
			t.Errorf("Stop returned after %v, before StopTimeout (300ms): SIGTERM is ignored", d)
		}
		gone(t, pid, "Stop")
	})
	t.Run("stop-polite", func(t *testing.T) {
		t.Parallel()
		p, pid := startLeaderLeavingSleep(t, tether.ContainCgroup, false, time.Minute)
		t0 := time.Now()
		if err := p.Stop(); err != nil {
			t.Fatalf("Stop after close with a leftover: %v", err)
		}
		// It returns when the leftover has gone, not at StopTimeout.
		if d := time.Since(t0); d > 30*time.Second {
			t.Errorf("Stop returned after %v, for a leftover that exits at SIGTERM", d)
		}
		gone(t, pid, "Stop")
	})
	t.Run("slot-reused", func(t *testing.T) {
		t.Parallel()
		p, pid := startLeaderLeavingSleep(t, tether.ContainCgroup, false, time.Second)
		if !tether.ReuseSlotForTest(p) {
			t.Skip("not at the cgroup level")
		}
		// Its slot is another tree's now, as far as p can tell: nothing
		// of it may be signalled through p.
		if err := p.Kill(); !errors.Is(err, os.ErrProcessDone) {
			t.Errorf("Kill after close, the slot reused: %v, want os.ErrProcessDone", err)
		}
		if err := p.Stop(); err != nil {
			t.Errorf("Stop after close, the slot reused: %v", err)
		}
		if !testproc.Alive(pid) {
			t.Errorf("Kill or Stop after close reached %d in a slot taken since", pid)
		}
		_ = syscall.Kill(pid, syscall.SIGKILL) // ours to end: started by this test
	})
	t.Run("group-level", func(t *testing.T) {
		t.Parallel()
		p, pid := startLeaderLeavingSleep(t, tether.ContainGroup, false, time.Second)
		if err := p.Kill(); !errors.Is(err, os.ErrProcessDone) {
			t.Errorf("Kill after close at the group level: %v, want os.ErrProcessDone", err)
		}
		if !testproc.Alive(pid) {
			t.Errorf("Kill after close at the group level reached the leftover %d", pid)
		}
		_ = syscall.Kill(pid, syscall.SIGKILL) // ours to end: started by this test
	})
}

// cgroupfs.Freeze holds a forking tree still while it is read, so the read
// is the whole of it, and its thaw lets it go on; cgroupfs.WaitEmpty
// returns when the cgroup empties, and not before (the keeper's stop at
// the parent's end, and Stop after close, rest on them).
func TestCgroupFreezeAndWaitEmpty(t *testing.T) {
	t.Parallel()
	mnt := needCgroupLevel(t)
	dir := filepath.Join(mnt, ownCgroupForTest(), fmt.Sprintf("freeze-%d", os.Getpid()))
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = cgroupfs.Kill(dir) // best effort: empty already if the test got that far
		cgroupfs.WaitEmpty(dir, 10*time.Second, func() bool { return true })
		_ = syscall.Rmdir(dir)
	}()
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	// A shell forking a short sleep after another, in the cgroup.
	c := exec.Command("sh", "-c", "while :; do sleep 0.01; done")
	c.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: fd}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	waited := make(chan error, 1)
	go func() { waited <- c.Wait() }() // ends at the cgroup.kill below

	if cgroupfs.WaitEmpty(dir, 100*time.Millisecond, func() bool { return true }) {
		t.Fatal("WaitEmpty: empty, with a shell running in it")
	}
	thaw := cgroupfs.Freeze(dir, 5*time.Second)
	events, _ := os.ReadFile(filepath.Join(dir, "cgroup.events"))
	first := cgroupfs.ProcsTree(dir)
	time.Sleep(50 * time.Millisecond) // five of the shell's sleeps, were it not frozen
	second := cgroupfs.ProcsTree(dir)
	thaw()
	if !strings.Contains(string(events), "frozen 1") {
		t.Errorf("after Freeze, cgroup.events says %q", events)
	}
	if fmt.Sprint(first) != fmt.Sprint(second) {
		t.Errorf("the frozen cgroup's processes changed: %v, then %v", first, second)
	}
	deadline := time.Now().Add(10 * time.Second)
	for fmt.Sprint(cgroupfs.ProcsTree(dir)) == fmt.Sprint(second) && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if fmt.Sprint(cgroupfs.ProcsTree(dir)) == fmt.Sprint(second) {
		t.Errorf("thawed, the shell forks no more: %v", second)
	}

	if err := cgroupfs.Kill(dir); err != nil {
		t.Fatal(err)
	}
	if !cgroupfs.WaitEmpty(dir, 10*time.Second, func() bool { return true }) {
		t.Error("WaitEmpty: still populated 10 s after cgroup.kill")
	}
	<-waited
}
