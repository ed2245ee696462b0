package tether_test

import (
	"context"
	"runtime"
	"strings"
	"sync/atomic"
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
	// Only the levels whose child is the parent's own have a pidfd to
	// wait on; kept children's exits come from the keeper.
	if l := ps[0].Containment(); l == tether.ContainGroup || l == tether.ContainCgroup {
		deadline := time.Now().Add(10 * time.Second)
		for tether.KernelWaitsForTest() < tether.MaxKernelWaits && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		if k := tether.KernelWaitsForTest(); k != tether.MaxKernelWaits {
			t.Errorf("%d Waits blocked in the kernel, want the bound, %d", k, tether.MaxKernelWaits)
		}
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

// A Wait that comes before the exit closes the Process itself, in its own
// goroutine, as os/exec's Wait reaps in its caller's: the Observer's close
// event runs under Wait.
func TestWaitBeforeTheExitClosesTheProcess(t *testing.T) {
	// Not parallel: it counts the Waits blocked in the kernel.
	for _, level := range []tether.Containment{tether.ContainGroup, tether.ContainAuto} {
		var underWait atomic.Bool
		c := helperCmd("cat")
		c.Stdin = tether.Pipe() // the child exits when we close it
		c.Containment = level
		c.Observer = func(e tether.Event) {
			if e.Kind == tether.EventClose {
				buf := make([]byte, 64<<10)
				underWait.Store(strings.Contains(string(buf[:runtime.Stack(buf, false)]), "tether.(*Process).Wait("))
			}
		}
		p := start(t, c)
		if l := p.Containment(); l != tether.ContainGroup && l != tether.ContainCgroup {
			t.Logf("%v: kept children are waited for by the keeper", l)
			continue
		}
		waited := make(chan error, 1)
		// Owner: this test; it ends at p's close, below.
		go func() {
			_, err := p.Wait()
			waited <- err
		}()
		deadline := time.Now().Add(10 * time.Second)
		for tether.KernelWaitsForTest() == 0 && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		_ = p.Stdin().Close()
		select {
		case err := <-waited:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Wait did not return")
		}
		if !underWait.Load() {
			t.Errorf("%v: the close was not delivered under Wait", p.Containment())
		}
	}
}

// Waits that race the exit watcher for the exit (a child that exits at
// once, waited for at once) each see one exit and one close, whichever
// side claims the Process.
func TestWaitRacesTheExitWatcher(t *testing.T) {
	t.Parallel()
	for i := 0; i < 100; i++ {
		c := tether.Command("true")
		c.Containment = tether.ContainGroup
		var closes atomic.Int32
		c.Observer = func(e tether.Event) {
			if e.Kind == tether.EventClose {
				closes.Add(1)
			}
		}
		p, err := c.Start(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if i%2 == 1 {
			<-p.Exited() // the watcher's claim, mostly
		}
		st, err := p.Wait()
		if err != nil || !st.Success() {
			t.Fatalf("cycle %d: %v, %v", i, st, err)
		}
		if n := closes.Load(); n != 1 {
			t.Fatalf("cycle %d: %d close events", i, n)
		}
	}
}
