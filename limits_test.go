//go:build linux

package tether_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tetherproc/tether"
	"github.com/tetherproc/tether/internal/testproc"
)

func init() {
	testproc.Register("cgroup-where", helperCgroupWhere)
	testproc.Register("limits", helperLimits)
	testproc.Register("forker", helperForker)
	testproc.Register("alloc", helperAlloc)
}

// Limits at a level without cgroups are refused before anything starts.
func TestLimitsNeedCgroupLevel(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		level  tether.Containment
		limits tether.Limits
		want   string
	}{
		{tether.ContainGroup, tether.Limits{PidsMax: 10}, "need the cgroup level"},
		{tether.ContainKeeper, tether.Limits{MemoryMax: 1 << 30}, "need the cgroup level"},
		{tether.ContainPIDNamespace, tether.Limits{PidsMax: 10}, "need the cgroup level"},
		{tether.ContainCgroup, tether.Limits{PidsMax: -1}, "negative limit"},
		{tether.ContainCgroup, tether.Limits{PidsMax: 1 << 30}, "above the kernel's largest"},
	} {
		cmd := &tether.Cmd{Path: "/bin/true", Containment: c.level, Limits: c.limits}
		p, err := cmd.Start(context.Background())
		if err == nil {
			_, _ = p.Wait()
			t.Errorf("%v %+v: started", c.level, c.limits)
			continue
		}
		var se *tether.StartError
		if !errors.As(err, &se) || se.Op != "Limits" || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v %+v: %v; want a StartError (Limits) saying %q", c.level, c.limits, err, c.want)
		}
	}
}

// helperLimits starts args[2:] at the cgroup level with MemoryMax args[0]
// and PidsMax args[1], and prints "start: <error>" or how the tree ended:
// "exit <Exit> oom <TreeOOMKills>" then its output.
func helperLimits(args []string) {
	mem, _ := strconv.ParseInt(args[0], 10, 64)
	pids, _ := strconv.ParseInt(args[1], 10, 64)
	path, argv, env := testproc.Command(args[2], args[3:]...)
	c := &tether.Cmd{Path: path, Args: argv, Env: env, Containment: tether.ContainCgroup,
		Limits: tether.Limits{MemoryMax: mem, PidsMax: pids}, Stdout: tether.Pipe()}
	p, err := c.Start(context.Background())
	if err != nil {
		fmt.Println("start:", err)
		return
	}
	out, _ := io.ReadAll(p.Stdout())
	st, _ := p.Wait()
	fmt.Printf("exit %v oom %d\n%s", st, st.TreeOOMKills, out)
}

// helperForker starts args[0] sleeps and prints how many it could start and
// the first error; then it kills and reaps them.
func helperForker(args []string) {
	n, _ := strconv.Atoi(args[0])
	var started []*exec.Cmd
	var first error
	for range n {
		c := exec.Command("sleep", "30")
		if err := c.Start(); err != nil {
			first = err
			break
		}
		started = append(started, c)
	}
	fmt.Printf("started %d err %v\n", len(started), first)
	for _, c := range started {
		_ = c.Process.Kill()
		_ = c.Wait()
	}
}

// helperAlloc touches args[0] MiB, one at a time, then says it survived.
func helperAlloc(args []string) {
	n, _ := strconv.Atoi(args[0])
	var keep [][]byte
	for range n {
		b := make([]byte, 1<<20)
		for i := 0; i < len(b); i += 4096 {
			b[i] = 1
		}
		keep = append(keep, b)
	}
	fmt.Println("survived", len(keep))
}

// limitsHelper runs helperLimits in a process of its own (the keeper it
// starts is its own) and returns its output, or skips the test when the
// machine cannot set the limit — after checking that Start said so clearly.
//
// baseline is the program run without limits first, to show that what the
// limit stops works without it.
func limitsHelper(t *testing.T, ctrl string, baseline []string, want string, args ...string) string {
	t.Helper()
	if ok, why := cgroupLevel(); !ok {
		t.Skip("no cgroup level here:", why)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := helperCmd("limits", append([]string{"0", "0"}, baseline...)...).Output(ctx)
	if err != nil || !strings.Contains(string(out), want) {
		t.Fatalf("without limits: %v: %q, want %q in it", err, out, want)
	}
	out, err = helperCmd("limits", args...).Output(ctx)
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	s := string(out)
	if msg, ok := strings.CutPrefix(s, "start: "); ok {
		// What this machine offers decides; the error must say which
		// controller is missing and why, and point to tether doctor.
		known := false
		for _, why := range []string{"held by a cgroup v1 hierarchy", "not delegated to", "cgroup.subtree_control: cgroup v2 lets a cgroup hand controllers down only"} {
			known = known || strings.Contains(msg, why)
		}
		if !strings.Contains(msg, "the "+ctrl+" controller is not available") || !strings.Contains(msg, "tether doctor") || !known {
			t.Fatalf("Start failed, and not for a known reason the machine lacks the controller: %s", msg)
		}
		t.Skipf("%s limits cannot be set here (the refusal was checked): %s", ctrl, strings.TrimSpace(msg))
	}
	return s
}

// PidsMax: forks past the limit fail with EAGAIN inside the tree.
func TestLimitsPids(t *testing.T) {
	t.Parallel()
	out := limitsHelper(t, "pids", []string{"forker", "5"}, "started 5 err <nil>", "0", "24", "forker", "40")
	var n int
	var rest string
	if _, err := fmt.Sscanf(out[strings.Index(out, "started"):], "started %d err %s", &n, &rest); err != nil {
		t.Fatalf("helper said %q", out)
	}
	// The forker's own threads count too: fewer than 24 sleeps start.
	if n >= 24 || !strings.Contains(out, syscall.EAGAIN.Error()) {
		t.Errorf("PidsMax 24: %s; want fewer than 24 sleeps started and EAGAIN", out)
	}
}

// MemoryMax: a tree that touches more is OOM-killed, and Exit counts it.
func TestLimitsMemory(t *testing.T) {
	t.Parallel()
	if b, _ := os.ReadFile("/proc/swaps"); len(strings.Split(strings.TrimSpace(string(b)), "\n")) > 1 {
		t.Skip("swap is on: memory.max pushes the tree to swap rather than to the OOM killer")
	}
	out := limitsHelper(t, "memory", []string{"alloc", "16"}, "survived 16", strconv.Itoa(64<<20), "0", "alloc", "256")
	if !strings.HasPrefix(out, "exit signal: killed oom ") || strings.HasPrefix(out, "exit signal: killed oom 0") || strings.Contains(out, "survived") {
		t.Errorf("MemoryMax 64 MiB, 256 MiB touched: %q; want SIGKILL by the OOM killer, counted", out)
	}
}

// helperCgroupWhere starts a tree at the cgroup level and prints the
// cgroup its child runs in, from the child's /proc/PID/cgroup.
func helperCgroupWhere([]string) {
	c := &tether.Cmd{Path: "/bin/sleep", Args: []string{"sleep", "30"}, Containment: tether.ContainCgroup}
	p, err := c.Start(context.Background())
	if err != nil {
		fmt.Println("start:", err)
		return
	}
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", p.PID()))
	_ = p.Kill()
	_, _ = p.Wait()
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "0::"); ok {
			fmt.Println(v)
		}
	}
}

// TETHER_CGROUP_PARENT puts keepers' cgroups under the cgroup it names, not
// under the keeper's own, and nothing is left there afterwards.
func TestCgroupParentEnv(t *testing.T) {
	t.Parallel()
	mnt := needCgroupLevel(t)
	// Under the cgroup testproc made for the run, so that nothing of it
	// can reach other programs' cgroups.
	base := filepath.Join(mnt, ownCgroupForTest(), "tether-test-parent."+strconv.Itoa(os.Getpid()))
	if err := os.Mkdir(base, 0o755); err != nil {
		t.Skip("cannot make a cgroup under the tests' own:", err)
	}
	defer os.Remove(base)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, v := range []string{base, strings.TrimPrefix(base, mnt)} { // a path, and one relative to the mount
		c := helperCmd("cgroup-where")
		c.Env = append(c.Env, "TETHER_CGROUP_PARENT="+v)
		out, err := c.Output(ctx)
		got := strings.TrimSpace(string(out))
		want := strings.TrimPrefix(base, mnt) + "/tether-keeper-"
		if err != nil || !strings.HasPrefix(got, want) {
			t.Errorf("TETHER_CGROUP_PARENT=%s: the child ran in %q (%v), want under %s", v, got, err, want)
		}
		// The helper's keeper removes its directory when it ends, after
		// the helper: wait for that, bounded.
		deadline := time.Now().Add(5 * time.Second)
		for {
			left, _ := os.ReadDir(base)
			var dirs []string
			for _, e := range left {
				if e.IsDir() {
					dirs = append(dirs, e.Name())
				}
			}
			if len(dirs) == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("left under %s: %v", base, dirs)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	c := helperCmd("cgroup-where")
	c.Env = append(c.Env, "TETHER_CGROUP_PARENT=/no/such/cgroup")
	out, _ := c.Output(ctx)
	if !strings.Contains(string(out), "not a cgroup v2 directory") {
		t.Errorf("a TETHER_CGROUP_PARENT that is no cgroup: %q", out)
	}
}
