//go:build unix

// (Unix only: its scenes run sh and signal the tree.)

// Command events shows tether's exit and close events on real children: a
// process's two ends, the Node.js leak that never closed (nodejs/node#4049),
// a grandchild that holds a pipe, a graceful stop that has to escalate — and
// a parent SIGKILLed while its tree runs: nothing survives, and the polite
// child still cleans up.
//
//	go run ./examples/events
package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/tetherproc/tether"
	"github.com/tetherproc/tether/internal/treescript"
)

func main() {
	if dir := os.Getenv(envParent); dir != "" {
		parent(dir) // scene 5's parent: this binary, re-executed
		return
	}
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "events:", err)
		os.Exit(1)
	}
}

var t0 time.Time

func observe(e tether.Event) {
	line := fmt.Sprintf("  %+8.3fs  %-8s pid %-7d", time.Since(t0).Seconds(), e.Kind, e.PID)
	if e.Signal != nil {
		line += " " + e.Signal.String()
	}
	if e.Exit != nil {
		line += " " + e.Exit.String()
	}
	if e.Err != nil {
		line += " (" + e.Err.Error() + ")"
	}
	fmt.Println(line)
}

func scene(title string) {
	fmt.Printf("\n%s\n", title)
	t0 = time.Now()
}

func run() error {
	ctx := context.Background()

	scene("1. A process has two ends: exit (reaped), then close (every pipe at EOF).")
	c := tether.Command("sh", "-c", "echo to stdout; echo to stderr >&2; exit 3")
	c.Stdout, c.Stderr, c.Observer = tether.Pipe(), tether.Pipe(), observe
	p, err := c.Start(ctx)
	if err != nil {
		return err
	}
	for line := range tether.Lines(p.Stdout(), 0) {
		fmt.Printf("  stdout:    %s\n", line)
	}
	st, _ := p.Wait()
	fmt.Printf("  Wait returned %v; stderr was never read, and close came anyway\n", st)

	scene("2. Node's leak (nodejs/node#4049): start yes, read once, kill. Close must come.")
	c = tether.Command("yes")
	c.Stdout, c.Observer = tether.Pipe(), observe
	p, err = c.Start(ctx)
	if err != nil {
		return err
	}
	buf := make([]byte, 8)
	n, _ := p.Stdout().Read(buf)
	fmt.Printf("  read %q once\n", buf[:n])
	_ = p.Kill()
	<-p.Done()
	fmt.Println("  closed: nothing waits on a stream nobody reads")

	scene("3. A grandchild keeps the pipe open after the child exits: close comes at the drain bound.")
	c = tether.Command("sh", "-c", "(sleep 1; echo too late) & echo early")
	c.Stdout, c.Observer = tether.Pipe(), observe
	c.DrainTimeout = 300 * time.Millisecond
	p, err = c.Start(ctx)
	if err != nil {
		return err
	}
	for line, err := range tether.Lines(p.Stdout(), 0) {
		if errors.Is(err, tether.ErrDrainTimeout) {
			fmt.Println("  reader:    ErrDrainTimeout after every byte written in time")
			break
		}
		fmt.Printf("  stdout:    %s\n", line)
	}
	_, err = p.Wait()
	fmt.Printf("  Wait: %v\n", err)

	scene("4. Stop a tree whose members ignore SIGTERM: grace, then SIGKILL to the whole tree.")
	c = tether.Command("sh", "-c", `trap "" TERM; sleep 30 & sleep 30 & wait`)
	c.Observer, c.StopTimeout = observe, 500*time.Millisecond
	p, err = c.Start(ctx)
	if err != nil {
		return err
	}
	time.Sleep(100 * time.Millisecond) // let sh start its children, for the show
	if err := p.Stop(); err != nil {
		return err
	}
	st, _ = p.Wait()
	fmt.Printf("  Stop returned after %v: %v, escalated=%v; the sleeps went with it\n",
		time.Since(t0).Round(time.Millisecond), st, st.Escalated)

	return sceneSIGKILL()
}

const envParent = "TETHER_DEMO_PARENT"

// parent starts the tree at the default level, relays its pids and waits to
// be killed.
func parent(dir string) {
	c := tether.Command("sh", "-c", treescript.Script, dir)
	c.Stdout, c.StopTimeout = tether.Pipe(), time.Second
	p, err := c.Start(context.Background())
	if err != nil {
		fmt.Println("start:", err)
		os.Exit(2)
	}
	if err := treescript.Relay(bufio.NewReader(p.Stdout()), treescript.Size, os.Stdout); err != nil {
		os.Exit(2)
	}
	fmt.Println("level", p.Containment())
	select {}
}

func sceneSIGKILL() error {
	scene("5. The parent is SIGKILLed while its tree runs: a grandchild, a SIGTERM-ignorer, a setsid\n" +
		"   child, a double-forked daemon and a polite child. The keeper stops them all, gracefully.")
	dir, err := os.MkdirTemp("", "tether-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	pc := exec.Command(exe)
	pc.Env = append(os.Environ(), envParent+"="+dir)
	out, err := pc.StdoutPipe()
	if err != nil {
		return err
	}
	if err := pc.Start(); err != nil {
		return err
	}
	sc := bufio.NewScanner(out)
	var pids []int
	polite := 0
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if f[0] == "level" {
			fmt.Printf("  parent %d holds a tree of %d at the %s level\n", pc.Process.Pid, len(pids), f[1])
			break
		}
		pid, _ := strconv.Atoi(f[1])
		if len(f) == 3 {
			polite = pid
		}
		pids = append(pids, pid)
	}
	t0 = time.Now()
	_ = pc.Process.Kill()
	_ = pc.Wait()
	fmt.Printf("  %+8.3fs  parent SIGKILLed\n", time.Since(t0).Seconds())
	// Not our children, so no wait(2): look at /proc every 5 ms.
	for alive := len(pids); alive > 0; time.Sleep(5 * time.Millisecond) {
		alive = 0
		for _, pid := range pids {
			if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil && !strings.Contains(string(b), ") Z ") {
				alive++
			}
		}
		if alive == 0 {
			fmt.Printf("  %+8.3fs  all %d descendants gone\n", time.Since(t0).Seconds(), len(pids))
		} else if time.Since(t0) > 5*time.Second {
			return fmt.Errorf("%d of %d descendants survived", alive, len(pids))
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "cleaned-"+strconv.Itoa(polite))); err == nil {
		fmt.Println("  the polite child ran its SIGTERM handler before it went")
	} else {
		fmt.Println("  the polite child did not clean up")
	}
	return nil
}
