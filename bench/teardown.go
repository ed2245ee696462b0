//go:build linux

package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/tetherproc/tether"
	"github.com/tetherproc/tether/internal/treescript"
	"golang.org/x/sys/unix"
)

const envTeardownParent = "TETHER_BENCH_TEARDOWN_PARENT"

// envTeardownLevel is the containment level of the parent's tree: "keeper",
// or "cgroup" (the watchdog).
const envTeardownLevel = "TETHER_BENCH_TEARDOWN_LEVEL"

// teardownParent is the bench binary re-executed as a parent: it starts a
// tree of n processes at the level $TETHER_BENCH_TEARDOWN_LEVEL names,
// relays their pids, says "ready" and waits to be SIGKILLed.
func teardownParent(n int) {
	script := fmt.Sprintf("i=1; while [ $i -lt %d ]; do sleep 600 & echo pid $!; i=$((i+1)); done; echo pid $$; exec sleep 600", n)
	level := tether.ContainKeeper
	if os.Getenv(envTeardownLevel) == "cgroup" {
		level = tether.ContainCgroup
	}
	c := &tether.Cmd{Path: "/bin/sh", Args: []string{"sh", "-c", script},
		Stdout: tether.Pipe(), Containment: level, StopTimeout: 5 * time.Second}
	p, err := c.Start(context.Background())
	if err != nil {
		fmt.Println("start:", err)
		os.Exit(2)
	}
	if err := treescript.Relay(bufio.NewReader(p.Stdout()), n, os.Stdout); err != nil {
		os.Exit(2)
	}
	fmt.Println("ready")
	select {}
}

func benchTeardown() {
	const trials = 100
	fmt.Printf("\nTeardown latency: parent SIGKILLed → last descendant gone (%d trials each)\n\n", trials)
	fmt.Println("| level | tree size | p50 | p99 | max |\n|---|---:|---:|---:|---:|")
	exe, err := os.Executable()
	if err != nil {
		fatal(err)
	}
	levels := []string{"keeper"}
	if autoName() == "cgroup" {
		levels = append(levels, "cgroup")
	}
	for _, n := range []int{1, 10, 100} {
		for _, level := range levels {
			var lat []time.Duration
			for i := 0; i < trials; i++ {
				d, err := teardownTrial(exe, n, level)
				if err != nil {
					fatal(err)
				}
				lat = append(lat, d)
			}
			sort.Slice(lat, func(a, b int) bool { return lat[a] < lat[b] })
			q := func(p float64) time.Duration { return lat[int(p*float64(len(lat)-1))] }
			fmt.Printf("| %s | %d | %v | %v | %v |\n", level, n, q(0.5).Round(10*time.Microsecond), q(0.99).Round(10*time.Microsecond), lat[len(lat)-1].Round(10*time.Microsecond))
		}
	}
}

// teardownTrial starts a parent with a tree of n, SIGKILLs it and measures
// until every process of the tree has exited, watched through pidfds (a
// pidfd of any process becomes readable when it exits).
func teardownTrial(exe string, n int, level string) (time.Duration, error) {
	c := exec.Command(exe)
	c.Env = append(os.Environ(), envTeardownParent+"="+strconv.Itoa(n), envTeardownLevel+"="+level)
	out, err := c.StdoutPipe()
	if err != nil {
		return 0, err
	}
	if err := c.Start(); err != nil {
		return 0, err
	}
	defer func() { _ = c.Wait() }()
	sc := bufio.NewScanner(out)
	var fds []unix.PollFd
	defer func() {
		for _, f := range fds {
			_ = unix.Close(int(f.Fd))
		}
	}()
	for sc.Scan() {
		line := sc.Text()
		if line == "ready" {
			break
		}
		pid, err := strconv.Atoi(strings.TrimPrefix(line, "pid "))
		if err != nil {
			_ = c.Process.Kill()
			return 0, fmt.Errorf("parent said %q", line)
		}
		fd, err := unix.PidfdOpen(pid, 0)
		if err != nil {
			_ = c.Process.Kill()
			return 0, err
		}
		fds = append(fds, unix.PollFd{Fd: int32(fd), Events: unix.POLLIN})
	}
	if len(fds) != n {
		_ = c.Process.Kill()
		return 0, fmt.Errorf("tree of %d reported %d pids", n, len(fds))
	}
	start := time.Now()
	if err := c.Process.Signal(syscall.SIGKILL); err != nil {
		return 0, err
	}
	left := len(fds)
	deadline := start.Add(30 * time.Second)
	for left > 0 {
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("%d of %d processes alive 30s after the parent's SIGKILL", left, n)
		}
		k, err := unix.Poll(fds, 1000)
		if err != nil && err != unix.EINTR {
			return 0, err
		}
		if k <= 0 {
			continue
		}
		for i := range fds {
			if fds[i].Revents != 0 && fds[i].Events != 0 {
				fds[i].Events = 0 // done with this one
				fds[i].Fd = -fds[i].Fd - 1
				left--
			}
		}
	}
	d := time.Since(start)
	for i := range fds {
		if fds[i].Fd < 0 {
			fds[i].Fd = -fds[i].Fd - 1
		}
	}
	return d, nil
}
