//go:build linux

package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// bindServer is a server for the restart tests (TETHER_TEST_BIND set): it
// listens on 127.0.0.1:$PORT, says "bound PID", and on SIGTERM lingers
// 200 ms before it exits, holding the port: a restart that started the new
// process before the whole old tree was gone would find the port taken.
// It cannot bind: "bind failed: why", exit 1.
func bindServer() {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM)
	ln, err := net.Listen("tcp", "127.0.0.1:"+os.Getenv("PORT"))
	if err != nil {
		fmt.Println("bind failed:", err)
		os.Exit(1)
	}
	fmt.Println("bound", os.Getpid())
	<-sigs
	time.Sleep(200 * time.Millisecond) // the lingering under test, not a wait for something
	_ = ln.Close()
	os.Exit(0)
}

// upProcess is a tether up run as its own process, as users run it.
type upProcess struct {
	cmd    *exec.Cmd
	out    *upBuffer
	exited chan error
}

// upSpawn runs `tether up -f dir/Procfile args...` in a process of its own.
// Cleanup interrupts it (SIGINT), waits at most 20 s, and checks that
// nothing is left in dir.
func upSpawn(t *testing.T, dir string, args ...string) *upProcess {
	t.Helper()
	c := tetherCmd(append([]string{"up", "-f", filepath.Join(dir, "Procfile"), "-color", "never", "-grace", "5s", "-stop-signal", "SIGTERM"}, args...)...)
	c.Dir = dir
	u := &upProcess{cmd: c, out: newUpBuffer(), exited: make(chan error, 1)}
	c.Stdout, c.Stderr = u.out, u.out
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { u.exited <- c.Wait() }() // ends when tether up has exited
	t.Cleanup(func() {
		_ = c.Process.Signal(syscall.SIGINT) // errors: it has exited already
		select {
		case err := <-u.exited:
			u.exited <- err
		case <-time.After(20 * time.Second):
			_ = c.Process.Kill()
			<-u.exited
			t.Errorf("tether up still running 20 s after SIGINT:\n%s", u.out.String())
		}
		upNoLeftovers(t, dir)
	})
	return u
}

// tetherIn runs `tether args...` in dir, a second process beside tether up,
// and returns its output and exit status (at most 30 s).
func tetherIn(t *testing.T, dir string, args ...string) (string, int) {
	t.Helper()
	c := tetherCmd(args...)
	c.Dir = dir
	var out bytes.Buffer
	c.Stdout, c.Stderr = &out, &out
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	err := waitBounded(t, c, 30*time.Second)
	code := 0
	if err != nil {
		code = c.ProcessState.ExitCode()
	}
	return out.String(), code
}

// The fault of file-watching restarters: the old server's grandchild still
// holds the port when the new one starts, which fails with EADDRINUSE. A
// web process whose grandchild binds its port, and lingers 200 ms after
// SIGTERM, restarted 20 times by `tether restart` from a second process:
// each restart returns with the new process running, and every new one
// binds.
func TestUpControlRestartFreesPort(t *testing.T) {
	t.Parallel()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := upDir(t, map[string]string{"Procfile": fmt.Sprintf("web: sh -c 'TETHER_TEST_BIND=1 %s & wait'\n", exe)})
	// Ready when the port accepts: each restart returns once the new
	// grandchild has bound it.
	up := upSpawn(t, dir, "-p", freePort(t), "-ready", "web=tcp")
	up.out.waitFor(t, "web.1 is ready")
	const restarts = 20
	for i := 1; i <= restarts; i++ {
		out, code := tetherIn(t, dir, "restart", "web")
		if code != 0 || !strings.Contains(out, "web.1") || !strings.Contains(out, "running") {
			t.Fatalf("restart %d: exit status %d:\n%s\ntether up's output:\n%s", i, code, out, up.out.String())
		}
		up.out.waitForCount(t, "| bound ", i+1)
		up.out.waitForCount(t, "web.1 is ready", i+1)
	}
	if o := up.out.String(); strings.Contains(o, "bind failed") || strings.Count(o, "| web.1 started with pid") != restarts+1 {
		t.Fatalf("a restart did not bind:\n%s", o)
	}
}

func TestUpControl(t *testing.T) {
	t.Parallel()
	dir := upDir(t, map[string]string{"Procfile": "web: " + upPolite + "\nworker: " + upPolite + "\n"})
	up := upSpawn(t, dir, "-m", "web=2,worker=1", "-p", "7000")
	up.out.waitForCount(t, "| ready", 3)

	sock := filepath.Join(dir, ".tether.sock")
	st, err := os.Lstat(sock)
	if err != nil || st.Mode().Type() != os.ModeSocket || st.Mode().Perm() != 0o600 {
		t.Fatalf("control socket %s: %v %v, want a socket of mode 0600", sock, st, err)
	}

	status := func() map[string]ctlProcess {
		t.Helper()
		out, code := tetherIn(t, dir, "status", "-json")
		var ps []ctlProcess
		if err := json.Unmarshal([]byte(out), &ps); code != 0 || err != nil {
			t.Fatalf("status -json: exit status %d, %v:\n%s", code, err, out)
		}
		m := map[string]ctlProcess{}
		for _, p := range ps {
			m[p.Name] = p
		}
		return m
	}
	// tether up says how to reach it, with a command that works from
	// anywhere: here, from the root directory.
	hint := "control: " + selfCommand(true) + " status|restart|stop|start [NAME...] -socket " + sock
	up.out.waitFor(t, hint)
	if out, code := tetherIn(t, "/", "status", "-socket", sock); code != 0 || !strings.Contains(out, "web.1") {
		t.Errorf("status -socket %s from /, as tether up's line says: exit status %d:\n%s", sock, code, out)
	}

	before := status()
	if len(before) != 3 || before["web.2"].Port != 7001 || before["worker.1"].Port != 7100 ||
		before["web.1"].State != "running" || before["web.1"].PID == 0 || before["web.1"].Type != "web" {
		t.Fatalf("status: %+v", before)
	}

	t.Run("stop-one-instance", func(t *testing.T) {
		out, code := tetherIn(t, dir, "stop", "web.2")
		if code != 0 || !strings.Contains(out, "web.2") || !strings.Contains(out, "stopped") {
			t.Fatalf("stop web.2: %d\n%s", code, out)
		}
		if syscall.Kill(before["web.2"].PID, 0) == nil {
			t.Errorf("web.2 (pid %d) still there after tether stop returned", before["web.2"].PID)
		}
		up.out.waitFor(t, "web.2    | bye")
		now := status()
		if now["web.2"].State != "stopped" || now["web.2"].PID != 0 || now["web.1"].PID != before["web.1"].PID {
			t.Errorf("after stop web.2: %+v", now)
		}
	})
	t.Run("start", func(t *testing.T) {
		if out, code := tetherIn(t, dir, "start", "web"); code != 0 {
			t.Fatalf("start web: %d\n%s", code, out)
		}
		now := status()
		if now["web.2"].State != "running" || now["web.2"].Restarts != 0 || now["web.1"].PID != before["web.1"].PID {
			t.Errorf("after start web: %+v", now)
		}
	})
	t.Run("restart-type", func(t *testing.T) {
		old := status()
		if out, code := tetherIn(t, dir, "restart", "web"); code != 0 {
			t.Fatalf("restart web: %d\n%s", code, out)
		}
		now := status()
		for _, n := range []string{"web.1", "web.2"} {
			if now[n].PID == old[n].PID || now[n].State != "running" {
				t.Errorf("%s after restart web: %+v (was pid %d)", n, now[n], old[n].PID)
			}
		}
		if now["worker.1"].PID != old["worker.1"].PID {
			t.Errorf("worker.1 restarted by restart web")
		}
	})
	t.Run("text", func(t *testing.T) {
		out, code := tetherIn(t, dir, "status")
		if code != 0 || !strings.HasPrefix(out, "NAME") || !strings.Contains(out, "worker.1") || !strings.Contains(out, "7100") {
			t.Errorf("status: %d\n%s", code, out)
		}
	})
	t.Run("unknown-name", func(t *testing.T) {
		out, code := tetherIn(t, dir, "restart", "nope")
		if code != 1 || !strings.Contains(out, `no process named "nope" (this stack runs web.1, web.2, worker.1)`) {
			t.Errorf("restart nope: %d\n%s", code, out)
		}
	})
	t.Run("second-up-without-socket", func(t *testing.T) {
		// foreman's habit: tether up web and tether up worker in two
		// terminals. The second runs, without a socket, and says why.
		other := upDir(t, nil) // its processes' directory, where its cleanup looks
		h := upStart(t, other, "-f", filepath.Join(dir, "Procfile"), "-d", other, "worker")
		h.out.waitFor(t, "worker.1 | ready")
		h.out.waitFor(t, "no control socket (tether restart, stop and status will not reach this stack): another tether up runs (pid ")
		if out, code := tetherIn(t, dir, "status", "worker"); code != 0 || !strings.Contains(out, strconv.Itoa(before["worker.1"].PID)) {
			t.Errorf("the socket is no longer the first tether up's: %d\n%s", code, out)
		}
	})
	t.Run("socket-flag-and-env", func(t *testing.T) {
		other := upDir(t, nil)
		out, code := tetherIn(t, other, "status", "-socket", sock)
		if code != 0 || !strings.Contains(out, "web.1") {
			t.Errorf("status -socket: %d\n%s", code, out)
		}
		c := tetherCmd("status")
		c.Dir = other
		c.Env = append(c.Env, "TETHER_SOCKET="+sock)
		if b, err := c.CombinedOutput(); err != nil || !strings.Contains(string(b), "web.1") {
			t.Errorf("status with $TETHER_SOCKET: %v\n%s", err, b)
		}
	})
	// Ctrl-C still stops everything, the stopped-then-started ones too, and
	// tether up removes its socket.
	if err := up.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-up.exited:
		up.exited <- err
		if err != nil {
			t.Errorf("tether up: %v\n%s", err, up.out.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("tether up still running 20 s after SIGINT")
	}
	if _, err := os.Lstat(sock); !os.IsNotExist(err) {
		t.Errorf("socket still there after tether up ended: %v", err)
	}
	out, code := tetherIn(t, dir, "status")
	if code != 1 || !strings.Contains(out, "no tether up runs here: no control socket "+sock) {
		t.Errorf("status with no stack: %d\n%s", code, out)
	}
}

// A new user's report: tether stop web then tether start web showed
// RESTARTS 1 in tether status. A stop and a start starts the process anew
// (PM2's restart count, systemd's NRestarts): only the restart policy and
// tether restart count, in status and in tether up's "(restart N)".
func TestUpStopThenStartIsNotARestart(t *testing.T) {
	t.Parallel()
	dir := upDir(t, map[string]string{"Procfile": "web: " + upPolite + "\n"})
	up := upSpawn(t, dir)
	up.out.waitFor(t, "web.1  | ready")
	restarts := func(what string, want int) {
		t.Helper()
		out, code := tetherIn(t, dir, "status", "-json")
		var ps []ctlProcess
		if err := json.Unmarshal([]byte(out), &ps); code != 0 || err != nil || len(ps) != 1 {
			t.Fatalf("status -json after %s: exit status %d, %v:\n%s", what, code, err, out)
		}
		if ps[0].State != "running" || ps[0].Restarts != want {
			t.Errorf("after %s: %+v, want running with %d restarts", what, ps[0], want)
		}
		text, _ := tetherIn(t, dir, "status")
		if f := strings.Fields(text); len(f) < 10 || f[3] != "RESTARTS" || f[9] != strconv.Itoa(want) {
			t.Errorf("after %s: status says\n%s\nwant RESTARTS %d", what, text, want)
		}
	}
	for i := 1; i <= 2; i++ {
		for _, op := range []string{"stop", "start"} {
			if out, code := tetherIn(t, dir, op, "web"); code != 0 {
				t.Fatalf("%s web: %d\n%s", op, code, out)
			}
		}
		up.out.waitForCount(t, "web.1  | ready", i+1)
		restarts(fmt.Sprintf("stop and start %d", i), 0)
	}
	if out, code := tetherIn(t, dir, "restart", "web"); code != 0 {
		t.Fatalf("restart web: %d\n%s", code, out)
	}
	restarts("restart", 1)
	o := up.out.String()
	if n := strings.Count(o, "(restart "); n != 1 || !strings.Contains(o, "(restart 1)\n") {
		t.Errorf("tether up says \"(restart N)\" %d times, want once, for tether restart:\n%s", n, o)
	}
}

// A new user's report: from the repository's root, with the demo running
// (bin/tether up -f examples/Procfile), tether status said only that no
// stack runs here. Without -f the commands look beside ./Procfile; finding
// no tether up there, they say what they looked for and name the stack
// that runs just below, with the command that reaches it, which works.
// From below the stack's directory they name it above; where none runs
// near, they say how to name one. They never act on what they found.
func TestControlWithoutFFromRepoRootNamesTheStack(t *testing.T) {
	t.Parallel()
	root := upDir(t, nil)
	examples := filepath.Join(root, "examples")
	if err := os.MkdirAll(filepath.Join(examples, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(examples, "Procfile"), []byte("web: "+upPolite+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	up := upSpawn(t, examples)
	up.out.waitFor(t, "web.1  | ready")

	out, code := tetherIn(t, root, "status")
	hint := regexp.MustCompile(`; a tether up runs in examples/: (\S+ status -f examples/Procfile)\n$`).FindStringSubmatch(out)
	if code != 1 || hint == nil ||
		!strings.Contains(out, "status: no tether up runs here: no Procfile in "+root+", nor a control socket "+filepath.Join(root, ".tether.sock")) {
		t.Fatalf("status from the stack's parent: exit status %d:\n%s", code, out)
	}
	// The command it names works, from there.
	args := strings.Fields(hint[1])[1:]
	if out, code := tetherIn(t, root, args...); code != 0 || !strings.Contains(out, "web.1") || !strings.Contains(out, "running") {
		t.Errorf("%s: exit status %d:\n%s", hint[1], code, out)
	}
	pid := func() int {
		t.Helper()
		out, code := tetherIn(t, examples, "status", "-json")
		var ps []ctlProcess
		if err := json.Unmarshal([]byte(out), &ps); code != 0 || err != nil || len(ps) != 1 {
			t.Fatalf("status -json: exit status %d, %v:\n%s", code, err, out)
		}
		return ps[0].PID
	}
	before := pid()
	// Names and flags are kept in the command it names; the stack it found
	// is left alone.
	if out, code := tetherIn(t, root, "restart", "web"); code != 1 || !strings.HasSuffix(out, "; a tether up runs in examples/: "+selfCommand(false)+" restart -f examples/Procfile web\n") {
		t.Errorf("restart web from the stack's parent: exit status %d:\n%s", code, out)
	}
	if after := pid(); after != before {
		t.Errorf("restart web from the parent restarted the stack below (pid %d, then %d)", before, after)
	}
	if out, code := tetherIn(t, filepath.Join(examples, "sub"), "status", "-json"); code != 1 || !strings.HasSuffix(out, "; a tether up runs in ../: "+selfCommand(false)+" status -f ../Procfile -json\n") {
		t.Errorf("status from below the stack's directory: exit status %d:\n%s", code, out)
	}
	// A Procfile here, and no stack of it: said so.
	if err := os.WriteFile(filepath.Join(root, "Procfile"), []byte("other: true\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, code := tetherIn(t, root, "status"); code != 1 || !strings.Contains(out, "no control socket "+filepath.Join(root, ".tether.sock")+" beside ./Procfile") ||
		!strings.HasSuffix(out, selfCommand(false)+" status -f examples/Procfile\n") {
		t.Errorf("status beside a Procfile whose stack does not run: exit status %d:\n%s", code, out)
	}
	// Nothing runs near: how to name a stack.
	if out, code := tetherIn(t, upDir(t, nil), "stop", "web"); code != 1 ||
		!strings.Contains(out, "; none runs in the directories just below or above either: name the stack's Procfile, as tether up was given it: "+selfCommand(false)+" stop -f path/to/Procfile web") {
		t.Errorf("stop with no stack near: exit status %d:\n%s", code, out)
	}
	// A -f that names no Procfile, and no stack beside it: said so.
	if out, code := tetherIn(t, root, "status", "-f", "example/Procfile"); code != 1 || !strings.Contains(out, "and there is no Procfile example/Procfile") {
		t.Errorf("status -f of a missing Procfile: exit status %d:\n%s", code, out)
	}
	// A -f that names the stack's directory, not its Procfile: said so, as
	// tether up and check say it, not a search beside the directory.
	if out, code := tetherIn(t, root, "status", "-f", "examples"); code != 1 || !strings.Contains(out, "examples: is a directory (-f names the Procfile: examples/Procfile)") {
		t.Errorf("status -f of a directory: exit status %d:\n%s", code, out)
	}
	// -socket names the stack: no Procfile is looked for, nor a stack nearby.
	empty := upDir(t, nil)
	if out, code := tetherIn(t, empty, "status", "-socket", "s.sock"); code != 1 || strings.Contains(out, "no Procfile") || strings.Contains(out, "none runs") ||
		!strings.Contains(out, "no control socket "+filepath.Join(empty, "s.sock")) {
		t.Errorf("status -socket of a missing socket: exit status %d:\n%s", code, out)
	}
}

// A socket left by a tether up that was SIGKILLed: the commands say so, and
// the next tether up replaces it.
func TestUpControlStaleSocket(t *testing.T) {
	t.Parallel()
	dir := upDir(t, map[string]string{"Procfile": "web: " + upPolite + "\n"})
	sock := filepath.Join(dir, ".tether.sock")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	_ = ln.Close() // the file stays, and nobody listens: a leftover
	out, code := tetherIn(t, dir, "status")
	if code != 1 || !strings.Contains(out, "is left from one that has ended") {
		t.Errorf("status with a stale socket: %d\n%s", code, out)
	}
	up := upSpawn(t, dir)
	up.out.waitFor(t, "| ready")
	if out, code := tetherIn(t, dir, "status"); code != 0 || !strings.Contains(out, "running") {
		t.Errorf("status after the stale socket was replaced: %d\n%s", code, out)
	}
	if strings.Contains(up.out.String(), "no control socket") {
		t.Errorf("tether up did not replace the leftover:\n%s", up.out.String())
	}

	t.Run("not-a-socket", func(t *testing.T) {
		d := upDir(t, map[string]string{"Procfile": "web: " + upPolite + "\n", ".tether.sock": "mine"})
		h := upStart(t, d)
		h.out.waitFor(t, "the path exists and is not a socket: remove it, or give another with -socket")
		h.out.waitFor(t, "web.1  | ready")
		h.cancel()
		if err := h.wait(); err != nil {
			t.Errorf("tether up: %v", err)
		}
		if b, _ := os.ReadFile(filepath.Join(d, ".tether.sock")); string(b) != "mine" {
			t.Errorf("tether up replaced a file that is not a socket")
		}
	})
}

// Only the stack's user reaches it: the socket's mode keeps others out, and
// the peer check refuses them even where the mode would not (here the test
// opens the socket to all).
func TestUpControlOtherUser(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("needs root, to run a client as another user")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	// A copy of the test binary that user nobody may run, in a directory
	// nobody may enter (t.TempDir's parent is root's alone).
	binDir, err := os.MkdirTemp("", "tether-nobody-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(binDir) })
	if err := os.Chmod(binDir, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(binDir, "tether")
	copyFile(t, exe, bin, 0o755)
	dir := upDir(t, map[string]string{"Procfile": "web: " + upPolite + "\n"})
	up := upSpawn(t, dir, "-socket", filepath.Join(binDir, "ctl.sock"))
	up.out.waitFor(t, "| ready")
	sock := filepath.Join(binDir, "ctl.sock")
	asNobody := func() (string, int) {
		c := exec.Command(bin, "status", "-socket", sock)
		c.Env = append(os.Environ(), "TETHER_TEST_CLI=1", "GORACE=atexit_sleep_ms=0")
		c.Dir = "/"
		c.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		var out bytes.Buffer
		c.Stdout, c.Stderr = &out, &out
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		err := waitBounded(t, c, 30*time.Second)
		if err != nil {
			return out.String(), c.ProcessState.ExitCode()
		}
		return out.String(), 0
	}
	if out, code := asNobody(); code != 1 || !strings.Contains(out, "permission denied") {
		t.Errorf("status as nobody: %d\n%s", code, out)
	}
	if err := os.Chmod(sock, 0o666); err != nil {
		t.Fatal(err)
	}
	// The client refuses a stack of another user, and the stack refuses
	// the client: either says so.
	if out, code := asNobody(); code != 1 || !strings.Contains(out, "refused") {
		t.Errorf("status as nobody, socket mode 0666: %d\n%s", code, out)
	}
	// And the server's own check, without the client's: a raw request.
	c := exec.Command(bin)
	c.Env = append(os.Environ(), "TETHER_TEST_RAWCTL="+sock)
	c.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	var out bytes.Buffer
	c.Stdout, c.Stderr = &out, &out
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	if err := waitBounded(t, c, 30*time.Second); err != nil || !strings.Contains(out.String(), `"error":"refused: this stack is uid 0's (yours: 65534`) {
		t.Errorf("a raw status request as nobody: %v\n%s", err, out.String())
	}
}

// rawControl (TETHER_TEST_RAWCTL=PATH) sends a status request to the
// control socket at PATH without the client's checks and prints the answer.
func rawControl() {
	c, err := net.Dial("unix", os.Getenv("TETHER_TEST_RAWCTL"))
	if err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	_, _ = io.WriteString(c, `{"op":"status"}`+"\n")
	b, _ := io.ReadAll(c)
	fmt.Print(string(b))
	os.Exit(0)
}

func copyFile(t *testing.T, from, to string, mode os.FileMode) {
	t.Helper()
	src, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
}

// The commands tether suggests name a binary the shell runs: "tether" only
// where $PATH finds this one, else a path with a separator in it.
func TestSuggestedCommandRunsThisBinary(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		exe, wd          string
		onPath, anywhere bool
		want             string
	}{
		{"/usr/bin/tether", "/home/u", true, false, "tether"},
		{"/src/t/bin/tether", "/src/t", false, false, "bin/tether"},
		{"/src/t/bin/tether", "/src/t/bin", false, false, "./tether"},
		{"/src/t/bin/tether", "/elsewhere", false, false, "/src/t/bin/tether"},
		{"/src/t/bin/tether", "/src/t", false, true, "/src/t/bin/tether"},
		{"/src/t/bin/tether", "", false, false, "/src/t/bin/tether"},
	} {
		if got := commandFor(tc.exe, tc.wd, tc.onPath, tc.anywhere); got != tc.want {
			t.Errorf("commandFor(%q, %q, onPath %v, anywhere %v) = %q, want %q", tc.exe, tc.wd, tc.onPath, tc.anywhere, got, tc.want)
		}
	}
}
