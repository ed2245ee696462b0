package tether_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tetherproc/tether"
	"github.com/tetherproc/tether/internal/testproc"
)

func init() {
	testproc.Register("stop-fork-race", helperStopForkRace)
}

// helperStopForkRace starts, at the cgroup level, a tree whose member M,
// in a session of its own (outside the leader's process group), forks a
// polite child C (it records a SIGTERM in args[0]/c.term) for each line it
// reads from a fifo; it then Stops the tree, with a hook that writes M a
// line between the read of the tree's members and their signals (the
// SIGTERM's), and waits up to 500 ms for C to appear. It prints what
// happened.
func helperStopForkRace(args []string) {
	dir := args[0]
	fail := func(f string, a ...any) {
		fmt.Printf(f+"\n", a...)
		os.Exit(2)
	}
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		fail("mkfifo: %v", err)
	}
	for name, script := range map[string]string{
		"c.sh": `trap 'touch "$1/c.term"; exit 0' TERM; touch "$1/c.started"; while :; do sleep 0.05; done`,
		// The fifo open read-write: it never waits for a writer, and a
		// read, unlike an open, resumes where it was after a signal.
		"m.sh": `trap 'exit 0' TERM; exec 3<> "$1/fifo"; touch "$1/m.ready"; while read x <&3; do sh "$1/c.sh" "$1" & done`,
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(script), 0o600); err != nil {
			fail("%v", err)
		}
	}
	forkSeen, hooked := false, false
	var inHook time.Duration
	tether.SetCgroupSignalHookForTest(func(cg string) {
		if hooked {
			return // Stop's SIGCONT, after its SIGTERM
		}
		hooked = true
		h0 := time.Now()
		defer func() { inHook += time.Since(h0) }()
		before := procsOf(cg)
		var w *os.File
		for deadline := time.Now().Add(time.Second); w == nil && time.Now().Before(deadline); {
			// Non-blocking: M has the fifo open for reading (ENXIO if not).
			f, err := os.OpenFile(fifo, os.O_WRONLY|syscall.O_NONBLOCK, 0)
			if err == nil {
				w = f
			} else {
				time.Sleep(5 * time.Millisecond)
			}
		}
		if w == nil {
			return // M never opened it: frozen before its open
		}
		_, _ = w.WriteString("fork\n")
		_ = w.Close()
		// Bounded: under the freeze, nothing forks, and the whole bound
		// passes.
		for deadline := time.Now().Add(500 * time.Millisecond); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
			if slices.ContainsFunc(procsOf(cg), func(pid int) bool { return !slices.Contains(before, pid) }) {
				forkSeen = true // not under a freeze: M read the line and forked
				return
			}
		}
	})
	c := &tether.Cmd{Path: "/bin/sh", Args: []string{"sh", "-c", `setsid sh "$1/m.sh" "$1" & wait`, "sh", dir},
		Containment: tether.ContainCgroup, StopTimeout: 2 * time.Second}
	p, err := c.Start(context.Background())
	if err != nil {
		fail("start: %v", err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if _, err := os.Stat(filepath.Join(dir, "m.ready")); err == nil {
			break
		}
		if time.Now().After(deadline) {
			fail("m.sh not ready after 10 s")
		}
	}
	t0 := time.Now()
	if err := p.Stop(); err != nil {
		fail("stop: %v", err)
	}
	took := time.Since(t0)
	exists := func(name string) bool {
		_, err := os.Stat(filepath.Join(dir, name))
		return !errors.Is(err, os.ErrNotExist)
	}
	fmt.Printf("forkSeen=%v started=%v term=%v (Stop took %v, %v of it in the hook: %v)\n", forkSeen, exists("c.started"), exists("c.term"), took.Round(time.Millisecond), inHook.Round(time.Millisecond), p.Exit())
}

// procsOf lists the processes of the cgroup at dir and its descendants.
func procsOf(dir string) []int {
	var pids []int
	_ = filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.Name() != "cgroup.procs" {
			return nil
		}
		b, _ := os.ReadFile(path)
		for _, f := range strings.Fields(string(b)) {
			if pid, err := strconv.Atoi(f); err == nil {
				pids = append(pids, pid)
			}
		}
		return nil
	})
	return pids
}

// Stop at the cgroup level reaches a member forked in the instant its tree
// is read: the tree is frozen while it is read and signalled. A member
// outside the leader's process group (a setsid shell) forks a polite child
// right then (a test hook between the read and the signals); before the
// freeze the child missed the SIGTERM and met SIGKILL at the grace's end,
// its clean-up never run. Now the member, frozen, cannot fork until the
// signal is delivered, and exits at it.
func TestStopReachesAMemberForkedAsTheTreeIsRead(t *testing.T) {
	t.Parallel()
	needCgroupLevel(t)
	c, out := startHelper(t, "stop-fork-race", t.TempDir())
	line, _ := bufio.NewReader(out).ReadString('\n')
	if err := c.Wait(); err != nil {
		t.Fatalf("helper: %v (said %q)", err, line)
	}
	t.Logf("helper: %s", strings.TrimSpace(line))
	if strings.Contains(line, "started=true term=false") {
		t.Errorf("a child forked as the tree was read missed the stop signal: %s", line)
	} else if !strings.HasPrefix(line, "forkSeen=") {
		t.Errorf("helper said %q", line)
	}
}
