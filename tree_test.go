package tether_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tetherproc/tether"
	"github.com/tetherproc/tether/internal/testproc"
)

// spawnTree starts the "spawn" program with opts and child, reads the
// grandchild's pid and waits until both are ready.
func spawnTree(t *testing.T, c *tether.Cmd) (*tether.Process, int, *bufio.Reader) {
	t.Helper()
	c.Stdout = tether.Pipe()
	p := start(t, c)
	br := bufio.NewReader(p.Stdout())
	line := readLine(t, br, 10*time.Second)
	gc, err := strconv.Atoi(strings.TrimPrefix(line, "pid "))
	if err != nil {
		t.Fatalf("spawn said %q", line)
	}
	pinned := testproc.Pin(gc) // now, while gc is surely the grandchild
	t.Cleanup(pinned.Kill)     // normally gone already: then a no-op, whoever has the pid since
	return p, gc, br
}

// closesAtDrainBound checks that p, whose DrainTimeout is 300 ms and a
// descendant of which holds its pipe, exits and then closes at the bound,
// saying why.
func closesAtDrainBound(t *testing.T, p *tether.Process) {
	t.Helper()
	waitExited(t, p, 10*time.Second)
	exitAt := time.Now()
	waitDone(t, p, 5*time.Second)
	if d := time.Since(exitAt); d > 2*time.Second {
		t.Errorf("close came %v after exit; bound is 300ms", d)
	}
	if _, err := p.Wait(); !errors.Is(err, tether.ErrDrainTimeout) {
		t.Errorf("Wait error = %v, want ErrDrainTimeout", err)
	}
}

// A grandchild holding the pipe after the child exited: exit comes at once,
// close at the drain bound, and the reader learns why.
func TestCloseWithGrandchildHoldingPipe(t *testing.T) {
	t.Parallel()
	var ev events
	c := helperCmd("spawn", "-exit", "sleep")
	c.DrainTimeout = 300 * time.Millisecond
	c.Observer = ev.observe
	p, gc, br := spawnTree(t, c)
	closesAtDrainBound(t, p)
	// What was written before the bound is still there, then the error.
	if line := readLine(t, br, time.Second); line != "ready" {
		t.Errorf("line = %q", line)
	}
	if _, err := br.ReadByte(); !errors.Is(err, tether.ErrDrainTimeout) {
		t.Errorf("read after abandon: %v", err)
	}
	got := ev.kinds()
	if got[len(got)-1] != tether.EventClose || got[len(got)-2] != tether.EventExit {
		t.Errorf("events %v: exit then close expected last", got)
	}
	if treeDiesAtClose {
		if left := testproc.WaitGone(5*time.Second, gc); len(left) > 0 {
			t.Errorf("grandchild %d outlived close; the Job Object's close should have ended it", gc)
		}
	} else if !testproc.Alive(gc) {
		t.Errorf("grandchild %d died; only the pipe should have been given up", gc)
	}
}

func TestExitBeforeClose(t *testing.T) {
	t.Parallel()
	for i := 0; i < 50; i++ {
		var ev events
		c := helperCmd("echo", "x")
		c.Stdout, c.Stderr = tether.Pipe(), tether.Pipe()
		c.Observer = ev.observe
		p := start(t, c)
		go func() { _, _ = io.Copy(io.Discard, p.Stderr()) }() // ends at EOF
		<-p.Done()
		select {
		case <-p.Exited():
		default:
			t.Fatal("Done closed before Exited")
		}
		// The stdout pipe was never read: close came from the drain.
		want := []tether.EventKind{tether.EventSpawn, tether.EventExit, tether.EventClose}
		if got := ev.kinds(); !equalKinds(got, want) {
			t.Fatalf("events = %v (%v)", got, ev.errs())
		}
	}
}

// 100 MB through stdout, both through Pipe() and through Writer(), checked.
func TestThroughput100MB(t *testing.T) {
	t.Parallel()
	const size = 100 << 20
	want := sha256.New()
	buf := make([]byte, 1<<20)
	for off := int64(0); off < size; off += int64(len(buf)) {
		pattern(buf, off)
		want.Write(buf)
	}
	sum := want.Sum(nil)

	t.Run("Pipe", func(t *testing.T) {
		t.Parallel()
		c := helperCmd("bytes", itoa(size))
		c.Stdout = tether.Pipe()
		p := start(t, c)
		h := sha256.New()
		n, err := io.Copy(h, p.Stdout())
		if err != nil || n != size {
			t.Fatalf("copied %d, %v", n, err)
		}
		if _, err := p.Wait(); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(h.Sum(nil), sum) {
			t.Fatal("checksum differs")
		}
	})
	t.Run("Writer", func(t *testing.T) {
		t.Parallel()
		h := sha256.New()
		c := helperCmd("bytes", itoa(size))
		c.Stdout = tether.Writer(h)
		if _, err := c.Run(context.Background()); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(h.Sum(nil), sum) {
			t.Fatal("checksum differs")
		}
	})
}

// Wait from many goroutines, before and during the reads, never deadlocks.
func TestWaitConcurrent(t *testing.T) {
	t.Parallel()
	c := helperCmd("bytes", itoa(1<<20))
	c.Stdout = tether.Pipe()
	p := start(t, c)
	var wg sync.WaitGroup
	results := make(chan *tether.Exit, 8)
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st, _ := p.Wait()
			results <- st
		}()
	}
	n, err := io.Copy(io.Discard, p.Stdout())
	if err != nil || n != 1<<20 {
		t.Fatalf("read %d, %v", n, err)
	}
	wg.Wait()
	close(results)
	for st := range results {
		if !st.Success() {
			t.Errorf("exit %v", st)
		}
	}
}

func TestStopGraceful(t *testing.T) {
	t.Parallel()
	skipUnderWine(t, ctrlBreakRefused)
	var ev events
	c := helperCmd("sleep")
	c.Stdout = tether.Pipe()
	c.Observer = ev.observe
	p := start(t, c)
	readLine(t, bufio.NewReader(p.Stdout()), 10*time.Second)
	if err := p.Stop(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.Done():
	default:
		t.Fatal("Stop returned before close")
	}
	st, _ := p.Wait()
	if st.Signal != syscall.SIGTERM || st.Escalated {
		t.Errorf("exit = %v escalated=%v", st, st.Escalated)
	}
	for _, k := range ev.kinds() {
		if k == tether.EventEscalate {
			t.Error("escalated")
		}
	}
	if err := p.Stop(); err != nil {
		t.Errorf("second Stop: %v", err)
	}
}

func TestStopEscalates(t *testing.T) {
	t.Parallel()
	skipUnderWine(t, ctrlBreakRefused)
	var ev events
	c := helperCmd("ignore-term")
	c.Stdout = tether.Pipe()
	c.StopTimeout = 200 * time.Millisecond
	c.Observer = ev.observe
	p := start(t, c)
	readLine(t, bufio.NewReader(p.Stdout()), 10*time.Second)
	began := time.Now()
	if err := p.Stop(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(began); d < 200*time.Millisecond {
		t.Errorf("Stop took %v, less than the grace", d)
	}
	st, _ := p.Wait()
	if st.Signal != syscall.SIGKILL || !st.Escalated {
		t.Errorf("exit = %v escalated=%v", st, st.Escalated)
	}
	seen := false
	for _, k := range ev.kinds() {
		seen = seen || k == tether.EventEscalate
	}
	if !seen {
		t.Error("no escalate event")
	}
}

// Stop, Kill and Signal reach the descendants in the process group,
// including one that ignores SIGTERM and one that outlives its parent
// without holding a pipe.
func TestTreeSignals(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		args []string
		end  func(p *tether.Process) error
	}{
		{"Stop/grandchild", []string{"sleep"}, (*tether.Process).Stop},
		{"Stop/SIGTERM-ignored", []string{"ignore-term"}, (*tether.Process).Stop},
		{"Stop/no-pipe", []string{"-null", "sleep"}, (*tether.Process).Stop},
		{"Stop/no-pipe-SIGTERM-ignored", []string{"-null", "ignore-term"}, (*tether.Process).Stop},
		{"Kill/SIGTERM-ignored", []string{"ignore-term"}, (*tether.Process).Kill},
		{"Kill/no-pipe", []string{"-null", "ignore-term"}, (*tether.Process).Kill},
		{"Signal/grandchild", []string{"sleep"}, func(p *tether.Process) error { return p.Signal(syscall.SIGTERM) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := helperCmd("spawn", tc.args...)
			c.StopTimeout = 300 * time.Millisecond
			p, gc, br := spawnTree(t, c)
			if line := readLine(t, br, 10*time.Second); line != "ready" {
				t.Fatalf("line = %q", line)
			}
			if err := tc.end(p); err != nil {
				t.Fatal(err)
			}
			waitDone(t, p, 10*time.Second)
			if left := testproc.WaitGone(5*time.Second, gc); len(left) > 0 {
				t.Fatalf("grandchild %d survived", gc)
			}
		})
	}
}

func TestContextEndStopsTree(t *testing.T) {
	t.Parallel()
	skipUnderWine(t, ctrlBreakRefused)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := helperCmd("spawn", "ignore-term")
	c.StopTimeout = 200 * time.Millisecond
	c.Stdout = tether.Pipe()
	p, err := c.Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Kill(); <-p.Done() })
	br := bufio.NewReader(p.Stdout())
	gc, _ := strconv.Atoi(strings.TrimPrefix(readLine(t, br, 10*time.Second), "pid "))
	readLine(t, br, 10*time.Second)
	cancel()
	waitDone(t, p, 10*time.Second)
	if st, _ := p.Wait(); st.Signal != syscall.SIGTERM {
		t.Errorf("exit = %v", st)
	}
	if left := testproc.WaitGone(5*time.Second, gc); len(left) > 0 {
		testproc.Pin(gc).Kill()
		t.Fatalf("grandchild %d survived", gc)
	}
}

func TestSignalAfterClose(t *testing.T) {
	t.Parallel()
	p := start(t, helperCmd("exit", "0"))
	waitDone(t, p, 10*time.Second)
	for name, f := range map[string]func() error{
		"Signal": func() error { return p.Signal(syscall.SIGTERM) },
		"Kill":   p.Kill,
	} {
		if err := f(); !errors.Is(err, os.ErrProcessDone) {
			t.Errorf("%s after close: %v", name, err)
		}
	}
	if err := p.Stop(); err != nil {
		t.Errorf("Stop after close: %v", err)
	}
}

func TestStartErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	noexec := filepath.Join(dir, "noexec")
	if err := os.WriteFile(noexec, []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// execve says ENOENT for it, though it is there: the error names the
	// interpreter, as tether run's line does.
	nointerp := filepath.Join(dir, "nointerp")
	if err := os.WriteFile(nointerp, []byte("#!/nonexistent/interp\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	for _, tc := range []struct {
		name    string
		cmd     *tether.Cmd
		ctx     context.Context
		is      error
		mention string
	}{
		{"not-in-PATH", tether.Command("tether-no-such-program"), nil, fs.ErrNotExist, "tether-no-such-program"},
		{"missing-path", tether.Command("/nonexistent/prog"), nil, fs.ErrNotExist, "/nonexistent/prog"},
		{"no-permission", tether.Command(noexec), nil, fs.ErrPermission, noexec + ": exec: permission denied: it has no execute permission (chmod +x " + noexec + ")"},
		{"missing-interpreter", tether.Command(nointerp), nil, fs.ErrNotExist, "its interpreter /nonexistent/interp (named by its #! line) is not installed"},
		{"missing-dir", &tether.Cmd{Path: "/bin/true", Dir: "/nonexistent/dir"}, nil, fs.ErrNotExist, "/nonexistent/dir"},
		{"dir-is-file", &tether.Cmd{Path: "/bin/true", Dir: noexec}, nil, nil, "not a directory"},
		{"canceled-context", tether.Command("/bin/true"), canceled, context.Canceled, "context"},
		{"stdin-writer", &tether.Cmd{Path: "/bin/true", Stdin: tether.Writer(io.Discard)}, nil, nil, "stdin"},
		{"stdout-reader", &tether.Cmd{Path: "/bin/true", Stdout: tether.Reader(strings.NewReader(""))}, nil, nil, "stdout"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.name == "no-permission" || tc.name == "missing-interpreter" {
				skipOnWindows(t, "no execute permission bit nor #! line: a file that is not a program is ERROR_BAD_EXE_FORMAT")
			}
			ctx := tc.ctx
			if ctx == nil {
				ctx = context.Background()
			}
			var ev events
			tc.cmd.Stdout = orPipe(tc.cmd.Stdout)
			tc.cmd.Observer = ev.observe
			p, err := tc.cmd.Start(ctx)
			if err == nil {
				_ = p.Kill()
				<-p.Done()
				t.Fatal("started")
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("error %v is not %v", err, tc.is)
			}
			var se *tether.StartError
			if !errors.As(err, &se) || !strings.HasPrefix(err.Error(), "tether: ") || !strings.Contains(err.Error(), tc.mention) {
				t.Errorf("error %q: want a *StartError naming %q", err, tc.mention)
			}
			if k := ev.kinds(); len(k) != 1 || k[0] != tether.EventError {
				t.Errorf("events = %v", k)
			}
		})
	}
}

func orPipe(s tether.Stdio) tether.Stdio {
	if s == (tether.Stdio{}) {
		return tether.Pipe()
	}
	return s
}

// Out of descriptors: a clear error wrapping EMFILE, in a child whose limit
// is lowered so the test process is not starved.
func TestEMFILE(t *testing.T) {
	t.Parallel()
	skipOnWindows(t, "no descriptor limit to run out of")
	out, err := helperCmd("emfile").CombinedOutput(context.Background())
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if !strings.Contains(string(out), "too many open files") || !strings.Contains(string(out), "tether: start /bin/true: stdout pipe") {
		t.Errorf("error = %s", out)
	}
}

// The child closes its stdout and stderr long before it exits: close waits
// for the exit, exit comes when we close its stdin.
func TestChildClosesPipesEarly(t *testing.T) {
	t.Parallel()
	c := helperCmd("close-stdout")
	c.Stdin, c.Stdout, c.Stderr = tether.Pipe(), tether.Pipe(), tether.Pipe()
	p := start(t, c)
	if n, err := io.Copy(io.Discard, p.Stdout()); n != 0 || err != nil {
		t.Fatalf("stdout: %d, %v", n, err)
	}
	select {
	case <-p.Done():
		t.Fatal("closed before exit")
	case <-time.After(50 * time.Millisecond):
	}
	if err := p.Stdin().Close(); err != nil {
		t.Fatal(err)
	}
	waitDone(t, p, 10*time.Second)
	if st, err := p.Wait(); !st.Success() || err != nil {
		t.Errorf("exit %v, %v", st, err)
	}
}

// The parent's reader gives up: the child gets EPIPE/SIGPIPE and close comes.
func TestReaderClosesEarly(t *testing.T) {
	t.Parallel()
	c := helperCmd("yes")
	c.Stdout = tether.Pipe()
	p := start(t, c)
	if _, err := p.Stdout().Read(make([]byte, 10)); err != nil {
		t.Fatal(err)
	}
	if err := p.Stdout().Close(); err != nil {
		t.Fatal(err)
	}
	waitDone(t, p, 10*time.Second)
	if st, _ := p.Wait(); st.Success() {
		t.Errorf("yes exited %v after its reader left", st)
	}
	if _, err := p.Stdout().Read(make([]byte, 10)); !errors.Is(err, os.ErrClosed) {
		t.Errorf("read after Close: %v", err)
	}
}

// Writing to the stdin of a process that exited is an error wrapping EPIPE,
// not a SIGPIPE that kills the parent, whatever the timing: between exit and
// close (the kernel's EPIPE: a grandchild holds stdout, so the process has
// exited but cannot close) and after close (tether closed the pipe). After
// the caller's own Close it is os.ErrClosed.
func TestWriteStdinAfterExit(t *testing.T) {
	t.Parallel()
	t.Run("exited-not-closed", func(t *testing.T) {
		t.Parallel()
		c := helperCmd("spawn", "-exit", "sleep")
		c.Stdin = tether.Pipe()
		c.DrainTimeout = time.Minute
		p, _, _ := spawnTree(t, c)
		waitExited(t, p, 10*time.Second)
		_, err := p.Stdin().Write([]byte("hello"))
		select {
		case <-p.Done():
			t.Fatal("closed: the grandchild should hold stdout until the drain bound")
		default:
		}
		if !errors.Is(err, syscall.EPIPE) || !strings.HasPrefix(err.Error(), "tether: ") {
			t.Errorf("write after exit: %v", err)
		}
	})
	t.Run("closed", func(t *testing.T) {
		t.Parallel()
		c := helperCmd("exit", "0")
		c.Stdin = tether.Pipe()
		p := start(t, c)
		waitDone(t, p, 10*time.Second)
		_, err := p.Stdin().Write([]byte("hello"))
		if !errors.Is(err, syscall.EPIPE) || !strings.HasPrefix(err.Error(), "tether: ") {
			t.Errorf("write after close: %v", err)
		}
	})
	t.Run("own-Close", func(t *testing.T) {
		t.Parallel()
		c := helperCmd("cat")
		c.Stdin = tether.Pipe()
		p := start(t, c)
		if err := p.Stdin().Close(); err != nil {
			t.Fatal(err)
		}
		_, err := p.Stdin().Write([]byte("hello"))
		if !errors.Is(err, os.ErrClosed) || errors.Is(err, syscall.EPIPE) {
			t.Errorf("write after Close: %v", err)
		}
		waitDone(t, p, 10*time.Second) // cat exits at EOF
		_, err = p.Stdin().Write([]byte("hello"))
		if !errors.Is(err, os.ErrClosed) || errors.Is(err, syscall.EPIPE) {
			t.Errorf("write after Close and close: %v", err)
		}
	})
}

func TestStdioKinds(t *testing.T) {
	t.Parallel()
	t.Run("Pipe-in-out", func(t *testing.T) {
		t.Parallel()
		c := helperCmd("cat")
		c.Stdin, c.Stdout = tether.Pipe(), tether.Pipe()
		p := start(t, c)
		go func() { // ends after the write and close
			_, _ = p.Stdin().Write([]byte("ping\n"))
			_ = p.Stdin().Close()
		}()
		out, err := io.ReadAll(p.Stdout())
		if err != nil || string(out) != "ping\n" {
			t.Errorf("out %q, %v", out, err)
		}
	})
	t.Run("Reader-Writer", func(t *testing.T) {
		t.Parallel()
		var out bytes.Buffer
		c := helperCmd("cat")
		c.Stdin, c.Stdout = tether.Reader(strings.NewReader("through\n")), tether.Writer(&out)
		if _, err := c.Run(context.Background()); err != nil {
			t.Fatal(err)
		}
		if out.String() != "through\n" {
			t.Errorf("out %q", out.String())
		}
	})
	t.Run("File", func(t *testing.T) {
		t.Parallel()
		f, err := os.Create(filepath.Join(t.TempDir(), "out"))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		c := helperCmd("echo", "to a file")
		c.Stdout = tether.File(f)
		if _, err := c.Run(context.Background()); err != nil {
			t.Fatal(err)
		}
		b, _ := os.ReadFile(f.Name())
		if string(b) != "to a file\n" {
			t.Errorf("file holds %q", b)
		}
	})
	t.Run("Null", func(t *testing.T) {
		t.Parallel()
		c := helperCmd("cat")
		p := start(t, c)
		if st, err := p.Wait(); !st.Success() || err != nil {
			t.Errorf("cat from /dev/null: %v %v", st, err)
		}
		if p.Stdout() != nil || p.Stderr() != nil || p.Stdin() != nil {
			t.Error("non-pipe streams must be nil")
		}
	})
	t.Run("Output", func(t *testing.T) {
		t.Parallel()
		out, err := helperCmd("echo", "out").Output(context.Background())
		if err != nil || string(out) != "out\n" {
			t.Errorf("Output %q, %v", out, err)
		}
		_, err = helperCmd("stderr", "it broke").Output(context.Background())
		var ee *tether.ExitError
		if !errors.As(err, &ee) || ee.Code != 3 || string(ee.Stderr) != "it broke\n" {
			t.Errorf("Output error %v (%+v)", err, ee)
		}
	})
	t.Run("CombinedOutput", func(t *testing.T) {
		t.Parallel()
		out, err := helperCmd("stderr", "both").CombinedOutput(context.Background())
		if string(out) != "both\n" || err == nil {
			t.Errorf("CombinedOutput %q, %v", out, err)
		}
	})
}

// Start, read a little, kill, repeat: no goroutine, descriptor or thread
// stays behind. (TestMain checks the whole run too.)
func TestNoLeakAfterCycles(t *testing.T) {
	// Not parallel: it counts the process's goroutines and descriptors.
	base, baseFDs := runtime.NumGoroutine(), countFDs()
	for i := 0; i < 200; i++ {
		c := helperCmd("yes")
		c.Stdout, c.Stderr, c.Stdin = tether.Pipe(), tether.Pipe(), tether.Pipe()
		p, err := c.Start(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := p.Stdout().Read(make([]byte, 100)); err != nil {
			t.Fatal(err)
		}
		_ = p.Kill()
		waitDone(t, p, 10*time.Second)
	}
	deadline := time.Now().Add(10 * time.Second)
	for (runtime.NumGoroutine() > base || countFDs() > baseFDs) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if g, f := runtime.NumGoroutine(), countFDs(); g > base || f > baseFDs {
		t.Errorf("after 200 cycles: %d goroutines (was %d), %d fds (was %d)", g, base, f, baseFDs)
	}
}

func countFDs() int { return openDescriptors() }

func countThreads(t *testing.T) int {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "Threads:"); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(v))
			return n
		}
	}
	t.Fatal("no Threads line")
	return 0
}

func TestSlogObserver(t *testing.T) {
	t.Parallel()
	var buf syncBuffer
	c := helperCmd("exit", "3")
	c.Observer = tether.SlogObserver(slogText(&buf))
	_, _ = c.Run(context.Background())
	out := buf.String()
	for _, want := range []string{"tether: spawn", "tether: exit", "tether: close", "status=\"exit status 3\""} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

var _ = fmt.Sprint
