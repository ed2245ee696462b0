//go:build linux

// Command stage is the program the container tests and benchmarks run under
// an init (tether run, tini, dumb-init) as PID 1 of a container. It is built
// with CGO_ENABLED=0, so it runs in a root filesystem without libc, and it
// does one thing per invocation, as tini's test stages do:
//
//	stage exit N           exit with status N
//	stage kill             SIGKILL itself (an init reports 128+9)
//	stage term N           print "ready", then exit N on SIGTERM
//	stage wait             print "ready", then wait; SIGTERM ends it (Go's default)
//	stage orphans K BOUND  leave K orphans that exit at once, wait up to BOUND
//	                       for them to be reaped by whoever inherits them,
//	                       print "orphans K reaped R", then behave as "term 0"
//
// "ready" is printed once the SIGTERM disposition is in place, so a signal
// sent after it is never lost.
package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		fail("usage: stage exit N | kill | term N | wait | orphans K BOUND")
	}
	switch os.Args[1] {
	case "exit":
		os.Exit(atoi(arg(2)))
	case "kill":
		// Cannot fail on oneself, and SIGKILL ends it before the sleep does.
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		time.Sleep(time.Hour)
	case "term":
		term(atoi(arg(2)))
	case "wait":
		fmt.Println("ready")
		for {
			time.Sleep(time.Hour) // SIGTERM kills it: the runtime's default for an unhandled SIGTERM
		}
	case "orphans":
		bound, err := time.ParseDuration(arg(3))
		if err != nil {
			fail(err.Error())
		}
		orphans(atoi(arg(2)), bound)
		term(0)
	case "orphan-parent":
		orphanParent(atoi(arg(2)))
	case "nap":
		time.Sleep(20 * time.Millisecond) // long enough for its parent to be gone first
	default:
		fail("unknown stage " + os.Args[1])
	}
}

func term(code int) {
	c := make(chan os.Signal, 1)
	signal.Notify(c, syscall.SIGTERM)
	fmt.Println("ready")
	<-c
	os.Exit(code)
}

// orphans starts a parent that starts k naps and exits without waiting for
// them: they are reparented to the nearest subreaper or to PID 1, and once
// they have exited only that process can reap them. It waits up to bound for
// /proc/PID of every nap to go (reaped), and prints how many went.
func orphans(k int, bound time.Duration) {
	c := exec.Command("/proc/self/exe", "orphan-parent", strconv.Itoa(k))
	c.Stderr = os.Stderr
	out, err := c.Output()
	if err != nil {
		fail("orphan-parent: " + err.Error())
	}
	var pids []int
	for _, f := range strings.Fields(string(out)) {
		pids = append(pids, atoi(f))
	}
	if len(pids) != k {
		fail(fmt.Sprintf("orphan-parent started %d, not %d", len(pids), k))
	}
	deadline := time.Now().Add(bound)
	for {
		left := 0
		for _, pid := range pids {
			if _, err := os.Stat("/proc/" + strconv.Itoa(pid)); err == nil {
				left++ // running, or a zombie nobody reaped
			}
		}
		if left == 0 || time.Now().After(deadline) {
			fmt.Printf("orphans %d reaped %d\n", k, k-left)
			return
		}
		time.Sleep(5 * time.Millisecond) // another process's reaping: no event to wait on
	}
}

func orphanParent(k int) {
	w := bufio.NewWriter(os.Stdout)
	for range k {
		c := exec.Command("/proc/self/exe", "nap")
		if err := c.Start(); err != nil {
			fail(err.Error())
		}
		fmt.Fprintln(w, c.Process.Pid)
	}
	_ = w.Flush() // best effort: the caller counts what arrives
	os.Exit(0)    // without waiting: the naps are orphans now
}

func arg(i int) string {
	if i >= len(os.Args) {
		fail("missing argument " + strconv.Itoa(i))
	}
	return os.Args[i]
}

func atoi(s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		fail(err.Error())
	}
	return n
}

func fail(msg string) {
	fmt.Fprintln(os.Stderr, "stage:", msg)
	os.Exit(125)
}
