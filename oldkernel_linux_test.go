package tether_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/tetherproc/tether"
	"github.com/tetherproc/tether/internal/sigabi"
	"github.com/tetherproc/tether/internal/testproc"

	"golang.org/x/sys/unix"
)

func init() {
	testproc.Register("old-kernel", helperOldKernel)
}

// helperOldKernel takes the older kernels' paths named by args[0]
// ("nowaitid", "nopoll" or "both"; OldKernelForTest) and, at the group level
// and the default one, runs a program to its exit status, starts one and
// waits for it, kills one, and lets one exit unwaited until Done; then it
// checks that no goroutine is left, and prints "ok" or what went wrong.
func helperOldKernel(args []string) {
	mode := args[0]
	tether.OldKernelForTest(mode == "nowaitid" || mode == "both", mode == "nopoll" || mode == "both")
	fail := func(f string, a ...any) {
		fmt.Printf(f+"\n", a...)
		os.Exit(2)
	}
	ctx := context.Background()
	base := runtime.NumGoroutine()
	for _, level := range []tether.Containment{tether.ContainGroup, tether.ContainAuto} {
		for range 20 {
			c := helperCmd("exit", "3")
			c.Containment = level
			st, err := c.Run(ctx)
			var ee *tether.ExitError
			if !errors.As(err, &ee) || st == nil || st.Code != 3 {
				fail("%v: Run: %v, %v; want exit 3", level, st, err)
			}
			c = helperCmd("exit", "5")
			c.Containment = level
			p, err := c.Start(ctx)
			if err != nil {
				fail("%v: Start: %v", level, err)
			}
			if st, _ := p.Wait(); st == nil || st.Code != 5 {
				fail("%v: Wait: %v; want exit 5", level, st)
			}
			c = helperCmd("sleep")
			c.Containment, c.Stdout = level, tether.Pipe()
			if p, err = c.Start(ctx); err != nil {
				fail("%v: Start: %v", level, err)
			}
			if l, _ := bufio.NewReader(p.Stdout()).ReadString('\n'); l != "ready\n" {
				fail("%v: the sleeper said %q", level, l)
			}
			if err := p.Kill(); err != nil {
				fail("%v: Kill: %v", level, err)
			}
			if st, _ := p.Wait(); st == nil || st.Signal != syscall.SIGKILL {
				fail("%v: Wait after Kill: %v; want SIGKILL", level, st)
			}
			c = helperCmd("exit", "0")
			c.Containment = level
			if p, err = c.Start(ctx); err != nil {
				fail("%v: Start: %v", level, err)
			}
			select {
			case <-p.Done(): // closed by the watcher or the monitor goroutine, unwaited
			case <-time.After(10 * time.Second):
				fail("%v: not done 10 s after its exit", level)
			}
		}
	}
	if mode != "nowaitid" && tether.ExitWatcherRunsForTest() {
		fail("the exit watcher runs, though no pidfd could be polled")
	}
	// Bounded: the monitors and the watcher end with their processes (the
	// watcher a second after its last); the keeper's client stays.
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > base+2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > base+2 {
		fail("%d goroutines, %d before", n, base)
	}
	// No zombie child either: each was reaped at its close (by pid, where
	// there is no waitid(P_PIDFD)). The keeper may still be a live child.
	var info unix.Siginfo
	if err := unix.Waitid(unix.P_ALL, 0, &info, unix.WEXITED|unix.WNOHANG|unix.WNOWAIT, nil); err == nil && sigabi.ChildPID(&info) != 0 {
		fail("pid %d is a zombie child", sigabi.ChildPID(&info))
	}
	fmt.Println("ok")
}

// The paths of the kernels that have pidfds but cannot wait through them
// (Linux 5.2, 5.3) or poll them (5.2), forced in a program of their own:
// exit statuses, Wait, Kill and Done come out as with a current kernel,
// with nothing left behind.
func TestOldKernelPaths(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"nowaitid", "nopoll", "both"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			c, out := startHelper(t, "old-kernel", mode)
			line, _ := bufio.NewReader(out).ReadString('\n')
			err := c.Wait()
			if line != "ok\n" || err != nil {
				t.Errorf("%s: %q, %v", mode, line, err)
			}
		})
	}
}
