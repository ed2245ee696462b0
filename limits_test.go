//go:build linux

package tether_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tetherproc/tether"
	"github.com/tetherproc/tether/internal/testproc"
)

func init() {
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
		if !strings.Contains(msg, "the "+ctrl+" controller is not available") || !strings.Contains(msg, "tether doctor") {
			t.Fatalf("Start failed without saying why clearly: %s", msg)
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
