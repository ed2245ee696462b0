package tether_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tetherproc/tether"
	"github.com/tetherproc/tether/internal/testproc"
	"github.com/tetherproc/tether/internal/treescript"
)

// The test binary is also every child program the tests need.
func TestMain(m *testing.M) {
	testproc.Register("yes", helperYes)
	testproc.Register("echo", helperEcho)
	testproc.Register("exit", helperExit)
	testproc.Register("cat", helperCat)
	testproc.Register("sleep", helperSleep)
	testproc.Register("ignore-term", helperIgnoreTerm)
	testproc.Register("spawn", helperSpawn)
	testproc.Register("bytes", helperBytes)
	testproc.Register("close-stdout", helperCloseStdout)
	testproc.Register("emfile", helperEMFILE)
	testproc.Register("stderr", helperStderr)
	testproc.Register("observer-panic-run", helperObserverPanicRun)
	testproc.Register("observer-panic-spawn", helperObserverPanicSpawn)
	testproc.Register("observer-panic-stop", helperObserverPanicStop)
	testproc.Register("observer-goexit-stop", helperObserverGoexitStop)
	testproc.Register("observer-kills-itself", helperObserverKillsItself)
	testproc.Register("observer-panic-unprintable", helperObserverPanicUnprintable)
	testproc.Register("observer-panic-start-error", helperObserverPanicStartError)
	testproc.Register("observer-goexit-exit", helperObserverGoexitAtExit)
	registerIPCHelpers()
	testproc.Main(m)
}

// helperCmd is a Cmd that runs program name from the test binary, at the
// level TETHER_TEST_LEVEL names (group, keeper, cgroup), ContainAuto if unset:
// `make test` runs the core tests at the group level too.
func helperCmd(name string, args ...string) *tether.Cmd {
	path, argv, env := testproc.Command(name, args...)
	c := &tether.Cmd{Path: path, Args: argv, Env: env}
	if l := os.Getenv("TETHER_TEST_LEVEL"); l != "" && !testproc.IsChild() {
		c.Containment = levelNamed(l)
	}
	return c
}

// start starts c and makes sure the process is gone when the test ends.
func start(t testing.TB, c *tether.Cmd) *tether.Process {
	t.Helper()
	p, err := c.Start(context.Background())
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		_ = p.Kill() // best effort: it may have closed already
		waitDone(t, p, 10*time.Second)
	})
	return p
}

func waitDone(t testing.TB, p *tether.Process, d time.Duration) {
	t.Helper()
	select {
	case <-p.Done():
	case <-time.After(d):
		t.Fatalf("pid %d not closed after %v", p.PID(), d)
	}
}

func waitExited(t testing.TB, p *tether.Process, d time.Duration) {
	t.Helper()
	select {
	case <-p.Exited():
	case <-time.After(d):
		t.Fatalf("pid %d not exited after %v", p.PID(), d)
	}
}

// readLine reads one line from r, failing the test after d.
func readLine(t testing.TB, br *bufio.Reader, d time.Duration) string {
	t.Helper()
	type res struct {
		s   string
		err error
	}
	ch := make(chan res, 1)
	go func() { // ends when ReadString returns: at the latest when the pipe closes
		s, err := br.ReadString('\n')
		ch <- res{s, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			t.Fatalf("read line: %v (got %q)", r.err, r.s)
		}
		return r.s[:len(r.s)-1]
	case <-time.After(d):
		t.Fatalf("no line after %v", d)
	}
	return ""
}

func helperYes([]string) {
	buf := make([]byte, 8192)
	for i := 0; i < len(buf); i += 2 {
		buf[i], buf[i+1] = 'y', '\n'
	}
	for {
		if _, err := os.Stdout.Write(buf); err != nil {
			os.Exit(1)
		}
	}
}

func helperEcho(args []string) {
	for i, a := range args {
		if i > 0 {
			fmt.Print(" ")
		}
		fmt.Print(a)
	}
	fmt.Println()
}

func helperExit(args []string) {
	code, _ := strconv.Atoi(args[0])
	os.Exit(code)
}

func helperCat([]string) {
	if _, err := io.Copy(os.Stdout, os.Stdin); err != nil {
		os.Exit(1)
	}
}

func helperStderr(args []string) {
	fmt.Fprintln(os.Stderr, args[0])
	os.Exit(3)
}

// helperSleep prints "ready" and blocks until killed or until stdin closes.
func helperSleep([]string) {
	fmt.Println("ready")
	_, _ = io.Copy(io.Discard, os.Stdin)
	blockForever()
}

func helperIgnoreTerm([]string) {
	signal.Ignore(syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	fmt.Println("ready")
	blockForever()
}

// helperSpawn starts another program and prints "pid N". Options before the
// program: -setsid (the child starts a new session), -exit (return at once
// instead of sleeping), -null (the child's stdout is /dev/null, not ours).
func helperSpawn(args []string) {
	setsid, exit, null := false, false, false
	for len(args) > 0 && args[0][0] == '-' {
		switch args[0] {
		case "-setsid":
			setsid = true
		case "-exit":
			exit = true
		case "-null":
			null = true
		}
		args = args[1:]
	}
	path, argv, env := testproc.Command(args[0], args[1:]...)
	c := exec.Command(path, argv[1:]...)
	c.Args[0] = argv[0]
	c.Env = env
	if !null {
		c.Stdout = os.Stdout
	}
	c.SysProcAttr = newSessionAttr(setsid)
	if err := c.Start(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	fmt.Printf("pid %d\n", c.Process.Pid)
	if exit {
		os.Exit(0)
	}
	fmt.Println("ready")
	blockForever()
}

// helperBytes writes N bytes of a deterministic sequence (see pattern).
func helperBytes(args []string) {
	n, _ := strconv.ParseInt(args[0], 10, 64)
	w := bufio.NewWriterSize(os.Stdout, 256<<10)
	buf := make([]byte, 64<<10)
	var pos int64
	for pos < n {
		chunk := buf[:min(int64(len(buf)), n-pos)]
		pattern(chunk, pos)
		if _, err := w.Write(chunk); err != nil {
			os.Exit(1)
		}
		pos += int64(len(chunk))
	}
	if err := w.Flush(); err != nil {
		os.Exit(1)
	}
}

// pattern fills b with the bytes at offset off of a sequence that does not
// repeat within 4 GiB, so a lost, doubled or reordered chunk shows.
func pattern(b []byte, off int64) {
	for i := range b {
		x := uint64(off + int64(i))
		b[i] = byte(x ^ x>>8 ^ x>>16 ^ x>>24 ^ x>>29)
	}
}

// helperCloseStdout closes stdout and stderr early, prints nothing, and exits
// when stdin closes.
func helperCloseStdout([]string) {
	_ = os.Stdout.Close()
	_ = os.Stderr.Close()
	_, _ = io.Copy(io.Discard, os.Stdin)
}

// helperEMFILE lowers its descriptor limit so that a Start cannot open its
// pipes, and reports what Start said.
func helperEMFILE([]string) {
	// Use up the descriptors below the limit we set.
	if err := lowerFDLimit(12); err != nil {
		fmt.Println("setrlimit:", err)
		os.Exit(2)
	}
	var hold []*os.File
	for {
		f, err := os.Open(os.DevNull)
		if err != nil {
			break
		}
		hold = append(hold, f)
	}
	// Free one: enough for /dev/null, not for a pipe pair.
	if len(hold) > 0 {
		_ = hold[len(hold)-1].Close()
	}
	c := tether.Command("/bin/true")
	c.Stdout = tether.Pipe()
	_, err := c.Start(context.Background())
	fmt.Println(err)
	if errors.Is(err, syscall.EMFILE) {
		os.Exit(0)
	}
	os.Exit(1)
}

// startRelay, in a helper program, starts c (whose Stdout is a Pipe) and
// copies its first n lines to stdout; it exits 2 if that fails.
func startRelay(c *tether.Cmd, n int) (*tether.Process, *bufio.Reader) {
	p, err := c.Start(context.Background())
	if err != nil {
		fmt.Println("start:", err)
		os.Exit(2)
	}
	br := bufio.NewReader(p.Stdout())
	var w io.Writer = os.Stdout
	var lines *bytes.Buffer
	if p.Containment() == tether.ContainPIDNamespace {
		lines = new(bytes.Buffer) // their pids are the namespace's: translated below
		w = lines
	}
	if err := treescript.Relay(br, n, w); err != nil {
		fmt.Println("tree:", err)
		os.Exit(2)
	}
	if lines != nil {
		if err := hostPIDLines(p.PID(), lines.String()); err != nil {
			fmt.Println("tree:", err)
			os.Exit(2)
		}
	}
	return p, br
}

// hostPIDLines prints a tree's "pid N" lines with each pid as this process
// sees it; leader is the tree's leader, a process of the tree's namespace.
// Every process named is alive: it printed its pid, and waits.
func hostPIDLines(leader int, lines string) error {
	host := testproc.HostPIDs(testproc.PIDNamespace(leader))
	for _, l := range strings.Split(strings.TrimSuffix(lines, "\n"), "\n") {
		f := strings.Fields(l)
		if len(f) < 2 || f[0] != "pid" {
			return fmt.Errorf("line %q", l)
		}
		pid, _ := strconv.Atoi(f[1])
		if host[pid] == 0 {
			return fmt.Errorf("pid %d: not found in %s", pid, testproc.PIDNamespace(leader))
		}
		f[1] = strconv.Itoa(host[pid])
		fmt.Println(strings.Join(f, " "))
	}
	return nil
}

// blockForever blocks until the process is killed. Not select {}: with no
// other goroutine (on Windows, once stdin is at EOF) the runtime calls that
// a deadlock and the program exits.
func blockForever() {
	for {
		time.Sleep(time.Hour)
	}
}

// startHelper starts program name of the test binary with os/exec (outside
// tether: a parent the test ends itself) and returns its stdout.
func startHelper(t *testing.T, name string, args ...string) (*exec.Cmd, io.Reader) {
	t.Helper()
	path, argv, env := testproc.Command(name, args...)
	c := exec.Command(path, argv[1:]...)
	c.Args[0], c.Env = argv[0], env
	out, err := c.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	return c, out
}

// wantHelperPanic runs the helper program name and wants it ended by a
// panic (exit status 2) whose report holds each of wants, with nothing on
// its stdout (where the helper says what happened instead).
func wantHelperPanic(t *testing.T, name string, wants ...string) {
	t.Helper()
	path, argv, env := testproc.Command(name)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // a hang fails, not blocks
	defer cancel()
	c := exec.CommandContext(ctx, path, argv[1:]...)
	c.Args[0], c.Env = argv[0], env
	var stderr bytes.Buffer
	c.Stderr = &stderr
	out, err := c.Output()
	var ee *exec.ExitError
	ok := errors.As(err, &ee) && ee.ExitCode() == 2 && len(out) == 0
	for _, w := range wants {
		ok = ok && strings.Contains(stderr.String(), w)
	}
	if !ok {
		t.Errorf("%s: exit %v, stdout %q, want a panic with %q; stderr:\n%.2000s", name, err, out, wants, stderr.String())
	}
}
