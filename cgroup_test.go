//go:build linux

package tether_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tetherproc/tether"
	"github.com/tetherproc/tether/internal/testproc"
	"golang.org/x/sys/unix"
)

func init() {
	testproc.Register("cgroup-cpu", helperCgroupCPU)
	testproc.Register("cgroup-leader", helperCgroupLeader)
	testproc.Register("burn", helperBurn)
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
