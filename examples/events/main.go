// Command events shows tether's exit and close events on real children: a
// process's two ends, the Node.js leak that never closed (nodejs/node#4049),
// a grandchild that holds a pipe, and a graceful stop that has to escalate.
//
//	go run ./examples/events
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/tetherproc/tether"
)

func main() {
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

	scene("4. Stop a tree whose members ignore SIGTERM: grace, then SIGKILL to the whole group.")
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
	return nil
}
