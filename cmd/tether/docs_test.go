//go:build linux

package main

import (
	"context"
	"io"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// The README's demo: the command it documents, run as documented, and
// Ctrl-C (SIGINT to its process group, as a terminal sends it) exits 0 once
// everything stopped cleanly, as the docs say. `go run ./cmd/tether up`
// exited 1 (go run's status after a Ctrl-C, whatever tether's).
func TestUpDemoCtrlCExitsZero(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("compiles and runs the demo's web server")
	}
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("the demo's web process is go run: no go here")
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?m)^(\\S*tether) (up -f examples/Procfile[^#\n]*?)\\s*#.*demo").FindSubmatch(readme)
	if m == nil {
		t.Fatal("no demo command (a line '... up -f examples/Procfile ... # ... demo') in README.md's")
	}
	if string(m[1]) != "bin/tether" {
		t.Fatalf("README's demo runs %q, want bin/tether, the built command (go run reports 1 after Ctrl-C)", m[1])
	}
	c := tetherCmd(strings.Fields(string(m[2]))...)
	c.Dir = "../.."
	c.Env = append(c.Env, "PORT="+freePort(t)) // the demo's base port, 5000, may be taken
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out := newUpBuffer()
	c.Stdout, c.Stderr = out, out
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- c.Wait() }() // ends when the demo has exited
	t.Cleanup(func() {
		_ = syscall.Kill(-c.Process.Pid, syscall.SIGKILL) // best effort: it has exited unless the test failed
		<-exited
	})
	// Running: the web server listens (the first go run compiles it) and
	// the worker has done a job.
	deadline := time.NewTimer(3 * time.Minute)
	defer deadline.Stop()
	for {
		out.mu.Lock()
		seen, changed := out.b.String(), out.changed
		out.mu.Unlock()
		if strings.Contains(seen, "| listening on http://") && strings.Contains(seen, "worker.1 | job 1 done") {
			break
		}
		select {
		case <-changed:
		case err := <-exited:
			exited <- err
			t.Fatalf("the demo ended (%v) before it was running:\n%s", err, seen)
		case <-deadline.C:
			t.Fatalf("the demo not running after 3 minutes:\n%s", seen)
		}
	}
	// The README's tether status lines, run where it says (the repository's
	// root, as terminal 1): a new user's status there found no stack, as
	// the demo's socket is in examples/. Each either lists the stack, or
	// ends, as the README shows it, with the command that reaches it.
	statuses := regexp.MustCompile(`(?m)^\$ bin/tether (status[^#\n]*?)\s*#.*\n(.*)`).FindAllSubmatch(readme, -1)
	if len(statuses) < 2 {
		t.Errorf("the README shows %d tether status commands, want one with -f and one without", len(statuses))
	}
	for _, st := range statuses {
		out, code := tetherIn(t, "../..", strings.Fields(string(st[1]))...)
		// The suggestion names the binary as run (bin/tether in the
		// README; the test binary here).
		out = strings.ReplaceAll(out, ": "+selfCommand(false)+" ", ": bin/tether ")
		shown := string(st[2])
		if i := strings.LastIndex(shown, "; a tether up runs in "); strings.HasPrefix(shown, "tether: ") && i >= 0 {
			if code != 1 || !strings.HasSuffix(out, shown[i:]+"\n") {
				t.Errorf("tether %s at the repository's root: exit status %d:\n%s\nthe README shows:\n%s", st[1], code, out, shown)
			}
			continue
		}
		if code != 0 || !strings.HasPrefix(out, "NAME ") || !strings.Contains(out, "web.1 ") {
			t.Errorf("tether %s at the repository's root: exit status %d:\n%s", st[1], code, out)
		}
	}
	if err := syscall.Kill(-c.Process.Pid, syscall.SIGINT); err != nil { // Ctrl-C
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		exited <- err
		if code := exitStatus(err); code != 0 {
			t.Errorf("status %d after Ctrl-C, want 0 as the README says:\n%s", code, out.String())
		}
	case <-time.After(30 * time.Second):
		t.Errorf("the demo still running 30 s after Ctrl-C:\n%s", out.String())
	}
}

var freePorts atomic.Int64 // freePort's calls

func freePort(t *testing.T) string {
	t.Helper()
	// The demo's processes get PORT + 100 per type: pick a base whose three
	// ports are free now, from a range few programs use.
	// Each call starts further on: parallel tests checked the same free
	// base before either bound it.
	for base := 20000 + (os.Getpid()+7*int(freePorts.Add(1)))%5000; base < 30000; base += 7 {
		free := true
		for i := range 3 {
			if l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(base+100*i)); err != nil {
				free = false
			} else {
				_ = l.Close()
			}
		}
		if free {
			return strconv.Itoa(base)
		}
	}
	t.Fatal("no free port")
	return ""
}

// The README's comparison table claimed readiness checks for tether without
// saying where they live. The tether cell must name supervise, say tether
// up has them (its help shows -ready and -after) and tether run has not
// (its help shows no -ready).
func TestUpREADMEReadiness(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	row := regexp.MustCompile(`(?m)^\| readiness \| ([^|]*) \|`).FindSubmatch(readme)
	if row == nil {
		t.Fatal("no readiness row in README.md's comparison table")
	}
	cell := string(row[1])
	if !strings.Contains(cell, "supervise") {
		t.Errorf("the tether cell %q does not say where readiness lives (supervise)", cell)
	}
	for command, says := range map[string]string{"up": "in `tether up` by `tether.toml` (`ready`, `depends_on`) or `-ready`/`-after`", "run": "not in `tether run`"} {
		var help strings.Builder
		if err := run(context.Background(), []string{command, "-h"}, &help, io.Discard); err != nil {
			t.Fatal(err)
		}
		hasFlag := regexp.MustCompile(`(?m)^  -ready`).MatchString(help.String()) &&
			(command == "run" || regexp.MustCompile(`(?m)^  -after`).MatchString(help.String()))
		if hasFlag != (command == "up") || !strings.Contains(cell, says) {
			t.Errorf("tether %s has -ready: %v; the README's cell %q should say %q", command, hasFlag, cell, says)
		}
	}
}
