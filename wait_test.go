package tether_test

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/tetherproc/tether"
)

// Wait before reading, as Process.Wait documents it: tether drains a pipe on
// the reader's behalf only after the exit. Output that fits in the pipe is
// kept for a read after Wait; more blocks the child in write until it is
// read, so a Wait with no reader beside it never returns — until a reader
// comes, and then nothing is lost.
func TestWaitBeforeRead(t *testing.T) {
	t.Parallel()
	t.Run("fits-in-pipe", func(t *testing.T) {
		t.Parallel()
		const size = pipeCapacity / 2
		c := helperCmd("bytes", itoa(size))
		c.Stdout = tether.Pipe()
		c.DrainTimeout = time.Minute // close must come from the drain, not the bound
		p := start(t, c)
		waitDone(t, p, 10*time.Second)
		if st, err := p.Wait(); !st.Success() || err != nil {
			t.Fatalf("exit %v, %v", st, err)
		}
		checkPattern(t, p.Stdout(), size)
	})
	t.Run("more-than-pipe", func(t *testing.T) {
		t.Parallel()
		skipOnWindows(t, "where a thread sleeps is read from /proc (wchan)")
		const size = 1 << 20
		c := helperCmd("bytes", itoa(size))
		c.Stdout = tether.Pipe()
		p := start(t, c)
		waited := make(chan struct{})
		go func() { // ends at close: once the test reads, or its cleanup kills
			_, _ = p.Wait()
			close(waited)
		}()
		if w := wchans(p.PID()); !strings.Contains(w, "_") {
			// Kernels that hide wchan (kptr_restrict, no KALLSYMS) say "0".
			t.Skipf("this kernel does not say where a thread sleeps (wchan %q)", w)
		}
		deadline := time.Now().Add(10 * time.Second)
		for !blockedWriting(p.PID()) { // polled: no event says a thread sleeps
			if time.Now().After(deadline) {
				t.Fatalf("pid %d not blocked writing its pipe after 10s (wchan: %s)", p.PID(), wchans(p.PID()))
			}
			time.Sleep(2 * time.Millisecond)
		}
		// Blocked, and it stays so: nothing reads ahead for it. (A
		// window: it cannot make the test pass, only bound how slow a
		// read-ahead it would catch; one of 1 MiB takes milliseconds.)
		select {
		case <-waited:
			t.Fatal("Wait returned before anything was read")
		case <-p.Exited():
			t.Fatal("exited before anything was read: something read ahead")
		case <-time.After(300 * time.Millisecond):
		}
		checkPattern(t, p.Stdout(), size) // the reader comes: the child goes on
		select {
		case <-waited:
		case <-time.After(10 * time.Second):
			t.Fatal("Wait did not return after the pipe was read")
		}
		if st, err := p.Wait(); !st.Success() || err != nil {
			t.Fatalf("exit %v, %v", st, err)
		}
	})
}

// checkPattern reads r to EOF within 10 s and checks it is the first n bytes
// of the bytes helper's sequence.
func checkPattern(t *testing.T, r io.Reader, n int) {
	t.Helper()
	type res struct {
		b   []byte
		err error
	}
	ch := make(chan res, 1)
	go func() { b, err := io.ReadAll(r); ch <- res{b, err} }() // ends at EOF or a read error
	select {
	case got := <-ch:
		want := make([]byte, n)
		pattern(want, 0)
		if got.err != nil || !bytes.Equal(got.b, want) {
			t.Fatalf("read %d bytes (%v), not the %d written", len(got.b), got.err, n)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no EOF after 10s")
	}
}

// blockedWriting reports whether a thread of pid sleeps in a pipe write
// (wchan pipe_write, anon_pipe_write on recent kernels).
func blockedWriting(pid int) bool {
	return strings.Contains(wchans(pid), "pipe_write")
}

// wchans lists where each thread of pid sleeps.
func wchans(pid int) string {
	tasks, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid)) // gone: none
	var out []string
	for _, task := range tasks {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/wchan", pid, task.Name())) // exited: skipped
		out = append(out, string(b))
	}
	return strings.Join(out, " ")
}

// Many goroutines waiting for one process at its exit, in every way a
// Process offers (Wait, which may close the Process itself, Done, Exited),
// all see the one exit and the one close.
func TestWaitersAtTheExitAgree(t *testing.T) {
	t.Parallel()
	c := helperCmd("cat")
	c.Stdin = tether.Pipe() // the child exits when we close it
	p := start(t, c)
	const waiters = 8
	type result struct {
		st  *tether.Exit
		err error
	}
	results := make(chan result, waiters+2)
	for i := 0; i < waiters; i++ {
		// Owner: this test; each ends at p's close.
		go func() {
			st, err := p.Wait()
			results <- result{st, err}
		}()
	}
	// Owner: this test; they end at p's exit and close.
	go func() { <-p.Done(); results <- result{p.Exit(), nil} }()
	go func() { <-p.Exited(); results <- result{p.Exit(), nil} }()
	_ = p.Stdin().Close()
	timeout := time.After(10 * time.Second)
	var first *tether.Exit
	for i := 0; i < waiters+2; i++ {
		select {
		case r := <-results:
			if r.err != nil || r.st == nil || !r.st.Success() {
				t.Errorf("waiter %d: %v, %v", i, r.st, r.err)
				continue
			}
			if first == nil {
				first = r.st
			} else if r.st != first {
				t.Errorf("waiter %d saw another Exit: %+v, %+v", i, r.st, first)
			}
		case <-timeout:
			t.Fatalf("%d of %d waiters returned", i, waiters+2)
		}
	}
}
