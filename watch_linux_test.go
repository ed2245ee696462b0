package tether_test

import (
	"testing"
	"time"

	"github.com/tetherproc/tether"
)

// The exit watcher (one goroutine and an epoll) ends once it has watched
// nothing for a second, whether the exits it saw were its own or a Wait
// took them back, and comes back at the next Start.
func TestExitWatcherEndsWhenIdle(t *testing.T) {
	// Not parallel: another test's children would keep it busy.
	for _, waits := range []bool{false, true} {
		c := helperCmd("exit", "0")
		c.Containment = tether.ContainGroup
		p := start(t, c)
		if !tether.ExitWatcherRunsForTest() {
			t.Fatalf("no exit watcher while pid %d runs", p.PID())
		}
		if waits {
			if _, err := p.Wait(); err != nil {
				t.Fatal(err)
			}
		} else {
			waitDone(t, p, 10*time.Second)
		}
		deadline := time.Now().Add(5 * time.Second)
		for tether.ExitWatcherRunsForTest() && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if tether.ExitWatcherRunsForTest() {
			t.Errorf("Wait %v: the exit watcher still runs 5 s after its last child closed", waits)
		}
	}
}

// Waiting for many children costs few threads: their exits are watched by
// one epoll, and of the Waits blocked on them at most MaxKernelWaits block
// a thread in the kernel (as os/exec's Wait does); the others wait for the
// watcher, and all of them return.
func TestManyChildrenFewThreads(t *testing.T) {
	// Not parallel: it counts the process's threads.
	const n = 200
	var ps []*tether.Process
	for i := 0; i < n; i++ {
		c := helperCmd("cat")
		c.Stdin = tether.Pipe() // the child exits when we close it
		ps = append(ps, start(t, c))
	}
	threads := countThreads(t)
	t.Logf("%d threads while %d children run", threads, n)
	if threads > 60 {
		t.Errorf("%d threads while %d children run", threads, n)
	}

	waited := make(chan error, n)
	for _, p := range ps {
		// Owner: this test. Each ends when p closes, below.
		go func() {
			_, err := p.Wait()
			waited <- err
		}()
	}
	deadline := time.Now().Add(10 * time.Second)
	for tether.KernelWaitsForTest() < tether.MaxKernelWaits && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if k := tether.KernelWaitsForTest(); k != tether.MaxKernelWaits {
		t.Errorf("%d Waits blocked in the kernel, want the bound, %d", k, tether.MaxKernelWaits)
	}
	threads = countThreads(t)
	t.Logf("%d threads while %d Waits wait", threads, n)
	if threads > 60+tether.MaxKernelWaits {
		t.Errorf("%d threads while %d Waits wait", threads, n)
	}
	for _, p := range ps {
		_ = p.Stdin().Close()
	}
	timeout := time.After(10 * time.Second)
	for i := 0; i < n; i++ {
		select {
		case err := <-waited:
			if err != nil {
				t.Errorf("Wait: %v", err)
			}
		case <-timeout:
			t.Fatalf("%d of %d Waits returned", i, n)
		}
	}
	if k := tether.KernelWaitsForTest(); k != 0 {
		t.Errorf("%d Waits still counted in the kernel", k)
	}
}
