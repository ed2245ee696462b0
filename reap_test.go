//go:build linux

package tether_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tetherproc/tether"
	"github.com/tetherproc/tether/internal/testproc"
)

func init() {
	testproc.Register("reaper", helperReaper)
}

// ReapOrphans, in a subreaper, reaps an orphan that died and leaves tether's
// own exited child to its Process.
func TestReapOrphans(t *testing.T) {
	t.Parallel()
	out, err := helperCmd("reaper").CombinedOutput(context.Background())
	if err != nil || string(out) != "reaped 1; own child: exit status 7\n" {
		t.Fatalf("%v: %s", err, out)
	}
}

func helperReaper([]string) {
	fail := func(f string, a ...any) { fmt.Printf(f+"\n", a...); os.Exit(2) }
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		fail("prctl: %v", err)
	}
	own := helperCmd("exit", "7")
	own.Containment = tether.ContainGroup // a direct child of ours
	p, err := own.Start(context.Background())
	if err != nil {
		fail("start: %v", err)
	}
	<-p.Exited() // a zombie until the Process releases it at close

	// An orphan: daemonize starts a member in a session of its own and exits;
	// the member is re-parented to us, the subreaper.
	path, argv, env := testproc.Command("daemonize")
	d := exec.Command(path, argv[1:]...)
	d.Args[0], d.Env = argv[0], env
	dout, err := d.StdoutPipe() // the orphan holds it: read its line, not to EOF
	if err != nil {
		fail("pipe: %v", err)
	}
	if err := d.Start(); err != nil {
		fail("daemonize: %v", err)
	}
	line, err := bufio.NewReader(dout).ReadString('\n')
	if err != nil {
		fail("daemonize: %v", err)
	}
	if err := d.Wait(); err != nil {
		fail("daemonize: %v", err)
	}
	orphan, _ := strconv.Atoi(strings.TrimPrefix(strings.TrimSpace(line), "pid "))
	// As an init does: reap on SIGCHLD.
	chld := make(chan os.Signal, 1)
	signal.Notify(chld, syscall.SIGCHLD)
	if err := syscall.Kill(orphan, syscall.SIGKILL); err != nil {
		fail("kill orphan: %v", err)
	}
	n := 0
	timeout := time.After(10 * time.Second)
	for {
		if _, err := os.Stat("/proc/" + strconv.Itoa(orphan)); err != nil {
			break // reaped
		}
		select {
		case <-chld:
		case <-timeout:
			fail("orphan %d not reaped", orphan)
		}
		m, err := tether.ReapOrphans()
		if err != nil {
			fail("ReapOrphans: %v", err)
		}
		n += m
	}
	st, _ := p.Wait()
	fmt.Printf("reaped %d; own child: %v\n", n, st)
}
