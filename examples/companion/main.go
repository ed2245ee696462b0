// Command companion is the scenario tether grew from: a parent forks a
// companion process, they exchange messages over a Node-compatible IPC
// channel, the parent reacts when the companion dies unexpectedly (it
// restarts it), and when the parent itself is killed — SIGKILL included —
// the companion still ends, and gets to clean up first.
//
//	go run ./examples/companion
//
// The companion is this binary re-executed (a Go child using
// tether.ParentChannel); with node installed, scene 2 runs a Node companion
// (companion.js, process.send) through the same API.
package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/tetherproc/tether"
)

const (
	envRole = "COMPANION_ROLE" // "companion" or "parent": this binary re-executed
	envDir  = "COMPANION_DIR"  // where the companion leaves its clean-up mark
)

// request and reply are the messages of the exchange.
type request struct {
	Op string `json:"op"` // "fib" or "crash"
	N  int    `json:"n,omitempty"`
}

type reply struct {
	Op     string  `json:"op"` // "ready", "fib"
	N      int     `json:"n,omitempty"`
	Result int     `json:"result,omitempty"`
	Millis float64 `json:"ms,omitempty"`
	PID    int     `json:"pid,omitempty"`
}

func main() {
	var err error
	switch os.Getenv(envRole) {
	case "companion":
		err = companion()
	case "parent":
		err = killableParent()
	default:
		err = demo()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "companion:", err)
		os.Exit(1)
	}
}

var t0 = time.Now()

func say(format string, args ...any) {
	fmt.Printf("  %+7.3fs  %s\n", time.Since(t0).Seconds(), fmt.Sprintf(format, args...))
}

// companion is the child: it answers requests until its channel ends, which
// means the parent is gone; then it cleans up and exits.
func companion() error {
	ch, err := tether.ParentChannel()
	if err != nil {
		return err
	}
	ctx, cancel := ch.Context(context.Background())
	defer cancel()
	if err := ch.Send(reply{Op: "ready", PID: os.Getpid()}); err != nil {
		return err
	}
	for {
		var req request
		err := ch.RecvContext(ctx, &req)
		if err != nil {
			// The parent is gone (io.EOF), however it ended.
			if dir := os.Getenv(envDir); dir != "" {
				_ = os.WriteFile(filepath.Join(dir, "cleaned"), []byte("bye\n"), 0o644)
			}
			return nil
		}
		switch req.Op {
		case "crash":
			os.Exit(3) // an unexpected death, for the parent to handle
		case "fib":
			start := time.Now()
			r := fib(req.N)
			_ = ch.Send(reply{Op: "fib", N: req.N, Result: r, Millis: float64(time.Since(start).Microseconds()) / 1000})
		}
	}
}

func fib(n int) int {
	if n < 2 {
		return n
	}
	return fib(n-1) + fib(n-2)
}

// startCompanion forks this binary as the companion and waits for "ready".
func startCompanion(ctx context.Context, dir string) (*tether.Process, *tether.Channel, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, nil, err
	}
	c := &tether.Cmd{Path: exe, Args: []string{"companion"},
		Env: roleEnv("companion", dir), Stderr: tether.Inherit(), IPC: true, StopTimeout: 2 * time.Second}
	return start(ctx, c)
}

func start(ctx context.Context, c *tether.Cmd) (*tether.Process, *tether.Channel, error) {
	p, err := c.Start(ctx)
	if err != nil {
		return nil, nil, err
	}
	ch := p.Channel()
	var r reply
	if err := ch.Recv(&r); err != nil || r.Op != "ready" {
		_ = ch.Close()
		_ = p.Stop()
		return nil, nil, fmt.Errorf("companion did not say ready: %v", err)
	}
	return p, ch, nil
}

// ask sends a request and waits for its reply.
func ask(ch *tether.Channel, req request) (reply, error) {
	var r reply
	if err := ch.Send(req); err != nil {
		return r, err
	}
	err := ch.Recv(&r)
	return r, err
}

func demo() error {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "tether-companion-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	fmt.Println("1. Fork a Go companion and exchange messages (Node's IPC protocol over a socketpair).")
	t0 = time.Now()
	p, ch, err := startCompanion(ctx, dir)
	if err != nil {
		return err
	}
	say("companion pid %d ready (containment: %s)", p.PID(), p.Containment())
	for _, n := range []int{20, 27, 30} {
		r, err := ask(ch, request{Op: "fib", N: n})
		if err != nil {
			return err
		}
		say("fib(%d) = %d, computed by the companion in %.1f ms", r.N, r.Result, r.Millis)
	}

	fmt.Println("\n2. The companion dies unexpectedly: the parent sees why, and forks a new one.")
	t0 = time.Now()
	if err := ch.Send(request{Op: "crash"}); err != nil {
		return err
	}
	if err := ch.Recv(nil); !errors.Is(err, io.EOF) {
		return fmt.Errorf("after the crash: %v, want EOF", err)
	}
	st, _ := p.Wait()
	say("channel: EOF; companion %s", st)
	_ = ch.Close()
	p, ch, err = startCompanion(ctx, dir)
	if err != nil {
		return err
	}
	say("restarted: companion pid %d ready", p.PID())
	if r, err := ask(ch, request{Op: "fib", N: 25}); err == nil {
		say("fib(25) = %d: back in business", r.Result)
	}
	say("parent closes the channel: the companion sees EOF and exits by itself")
	_ = ch.Close()
	st, _ = p.Wait()
	say("companion %s", st)

	if node, err := exec.LookPath("node"); err == nil {
		_, file, _, _ := runtime.Caller(0)
		c := tether.Command(node, filepath.Join(filepath.Dir(file), "companion.js"))
		c.IPC, c.Stderr = true, tether.Inherit()
		t0 = time.Now()
		p, ch, err := start(ctx, c)
		if err != nil {
			return err
		}
		say("a Node companion (process.send), pid %d, same API:", p.PID())
		if r, err := ask(ch, request{Op: "fib", N: 27}); err == nil {
			say("fib(27) = %d, computed in Node in %.1f ms", r.Result, r.Millis)
		}
		_ = ch.Close()
		st, _ := p.Wait()
		say("node companion %s after the parent closed the channel", st)
	}

	return sceneSIGKILL(dir)
}

// killableParent is scene 3's parent: it starts a companion, prints its pid
// and waits to be killed.
func killableParent() error {
	p, _, err := startCompanion(context.Background(), os.Getenv(envDir))
	if err != nil {
		return err
	}
	fmt.Println("companion", p.PID())
	select {}
}

func sceneSIGKILL(dir string) error {
	fmt.Println("\n3. The parent is SIGKILLed: no clean-up code runs in it. The companion still ends,")
	fmt.Println("   and cleans up first (its channel reaches EOF; the keeper stands behind it).")
	t0 = time.Now()
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	pc := exec.Command(exe)
	pc.Env = roleEnv("parent", dir)
	pc.Stderr = os.Stderr
	out, err := pc.StdoutPipe()
	if err != nil {
		return err
	}
	if err := pc.Start(); err != nil {
		return err
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		_ = pc.Process.Kill()
		_ = pc.Wait()
		return fmt.Errorf("parent: %v", err)
	}
	pid, _ := strconv.Atoi(strings.TrimPrefix(strings.TrimSpace(line), "companion "))
	say("parent pid %d started companion pid %d", pc.Process.Pid, pid)
	_ = pc.Process.Signal(syscall.SIGKILL)
	_ = pc.Wait()
	say("parent SIGKILLed")
	deadline := time.Now().Add(10 * time.Second)
	for alive(pid) && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond) // the demo watches a process that is not its child
	}
	if alive(pid) {
		return fmt.Errorf("companion %d survived its parent", pid)
	}
	_, err = os.Stat(filepath.Join(dir, "cleaned"))
	say("companion gone; cleaned up: %v", err == nil)
	return nil
}

// roleEnv is this process's environment with the role and directory for a
// re-execution of this binary (replacing ours: the first of two entries wins).
func roleEnv(role, dir string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, envRole+"=") && !strings.HasPrefix(kv, envDir+"=") {
			env = append(env, kv)
		}
	}
	return append(env, envRole+"="+role, envDir+"="+dir)
}

// alive reports whether pid runs (a zombie counts as dead: it is no longer
// anyone's process, and PID 1 on some machines never reaps it).
func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}
