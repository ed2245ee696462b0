//go:build unix

// The examples run Unix programs (sh, yes, printf).

package tether_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"time"

	"github.com/tetherproc/tether"
)

// The seed's scenario: read once, kill, and close still comes.
func Example() {
	cmd := tether.Command("yes")
	cmd.Stdout = tether.Pipe()
	p, err := cmd.Start(context.Background())
	if err != nil {
		fmt.Println(err)
		return
	}
	buf := make([]byte, 2)
	_, _ = p.Stdout().Read(buf)
	_ = p.Kill()
	st, _ := p.Wait()
	fmt.Printf("read %q, then %v\n", buf, st)
	// Output: read "y\n", then signal: killed
}

func ExampleCmd_Output() {
	out, err := tether.Command("echo", "hello").Output(context.Background())
	fmt.Printf("%q %v\n", out, err)
	// Output: "hello\n" <nil>
}

func ExampleCmd_Start_notFound() {
	_, err := tether.Command("no-such-program-here").Start(context.Background())
	fmt.Println(errors.Is(err, fs.ErrNotExist))
	fmt.Println(err)
	// Output:
	// true
	// tether: start no-such-program-here: lookup: exec: "no-such-program-here": executable file not found in $PATH
}

// Stop a tree gracefully: SIGTERM, then SIGKILL after StopTimeout.
func ExampleProcess_Stop() {
	cmd := tether.Command("sh", "-c", "sleep 60 & sleep 60")
	cmd.StopTimeout = 2 * time.Second
	p, err := cmd.Start(context.Background())
	if err != nil {
		fmt.Println(err)
		return
	}
	_ = p.Stop() // returns once the process has closed
	fmt.Println(p.Exit())
	// Output: signal: terminated
}

func ExampleLines() {
	cmd := tether.Command("printf", `one\ntwo\nthree`)
	cmd.Stdout = tether.Pipe()
	p, err := cmd.Start(context.Background())
	if err != nil {
		fmt.Println(err)
		return
	}
	for line, err := range tether.Lines(p.Stdout(), 0) {
		if err != nil && !errors.Is(err, tether.ErrLineTooLong) {
			break
		}
		fmt.Println(line)
	}
	_, _ = p.Wait()
	// Output:
	// one
	// two
	// three
}

// Log every lifecycle event with log/slog.
func ExampleSlogObserver() {
	logger := slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey || a.Key == "pid" || a.Key == "ran" {
				return slog.Attr{} // vary from run to run
			}
			return a
		},
	}))
	cmd := tether.Command("/bin/sh", "-c", "exit 3")
	cmd.Observer = tether.SlogObserver(logger)
	_, _ = cmd.Run(context.Background())
	// Output:
	// level=INFO msg="tether: spawn" path=/bin/sh
	// level=INFO msg="tether: exit" path=/bin/sh status="exit status 3"
	// level=INFO msg="tether: close" path=/bin/sh status="exit status 3"
}

// What containment does this machine offer? (The output depends on the
// machine, so this example is compiled, not run.)
func ExampleProbe() {
	r := tether.Probe()
	for _, l := range r.Levels {
		fmt.Printf("%-7s available=%-5v %s\n", l.Level, l.Available, l.Detail)
	}
	fmt.Println("the default picks", r.Auto)
}

// Ask for a level explicitly: ContainCgroup fails to start where the machine
// has no writable cgroup v2 subtree, rather than falling back silently.
func ExampleContainment() {
	cmd := tether.Command("sleep", "10")
	cmd.Containment = tether.ContainCgroup
	p, err := cmd.Start(context.Background())
	if err != nil {
		fmt.Println(err)
		return
	}
	defer p.Stop()
	fmt.Println("tree held at the", p.Containment(), "level")
}

// A child with an IPC channel, in Node's protocol: here a shell that echoes
// one message back on descriptor 3 (a Node child would use process.send; a
// Go child, tether.ParentChannel).
func ExampleChannel() {
	cmd := tether.Command("sh", "-c", `read -r msg <&3; printf '%s\n' "$msg" >&3`)
	cmd.IPC = true
	p, err := cmd.Start(context.Background())
	if err != nil {
		fmt.Println(err)
		return
	}
	ch := p.Channel()
	defer ch.Close()
	if err := ch.Send(map[string]string{"hello": "world"}); err != nil {
		fmt.Println(err)
		return
	}
	var reply map[string]string
	if err := ch.Recv(&reply); err != nil {
		fmt.Println(err)
		return
	}
	st, _ := p.Wait()
	fmt.Println(reply["hello"], st)
	// Output: world exit status 0
}

// In a child: a context that ends when the parent is gone, however it ended.
func ExampleParentChannel() {
	ch, err := tether.ParentChannel()
	if errors.Is(err, tether.ErrNoChannel) {
		fmt.Println("not started with a channel")
		return
	}
	ctx, cancel := ch.Context(context.Background())
	defer cancel()
	<-ctx.Done() // ... work until the parent is gone
	// Output: not started with a channel
}

// A program about to exit stops every tree it started, gracefully, and
// waits for them to be gone (what tether run does when its child exits).
func ExampleShutdown() {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := tether.Shutdown(ctx); err != nil {
		fmt.Println("some processes were still stopping:", err)
	}
}

// Caps on a whole tree, from before its first instruction. They need the
// cgroup level and the memory and pids controllers where tether makes its
// cgroups (tether doctor says); elsewhere Start says why, and nothing runs.
func ExampleLimits() {
	cmd := tether.Command("make", "-j8")
	cmd.Containment = tether.ContainCgroup
	cmd.Limits = tether.Limits{MemoryMax: 2 << 30, PidsMax: 256}
	p, err := cmd.Start(context.Background())
	if err != nil {
		fmt.Println(err) // e.g. "... pids.max: the pids controller is not available to tether's cgroups here: ..."
		return
	}
	st, _ := p.Wait()
	if st.TreeOOMKills > 0 {
		fmt.Printf("the OOM killer killed %d processes of the build\n", st.TreeOOMKills)
	}
}
