package tether_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tetherproc/tether"
	"github.com/tetherproc/tether/internal/testproc"
)

func init() {
	testproc.Register("kept-runs", helperKeptRuns)
}

// helperKeptRuns runs args[0]-many processes at the keeper level one after
// another, with the keeper client's readLoop held back, and prints how many
// spawn answers and exit reports were read by the goroutines that awaited
// them, and how many by readLoop.
func helperKeptRuns(args []string) {
	tether.KeeperReadsForTest(time.Hour)
	var n int
	_, _ = fmt.Sscan(args[0], &n)
	for range n {
		c := helperCmd("exit", "0")
		c.Containment = tether.ContainKeeper
		if _, err := c.Run(context.Background()); err != nil {
			fmt.Println("run:", err)
			os.Exit(2)
		}
	}
	awaited, byLoop := tether.KeeperReadsForTest(0)
	fmt.Println("awaited", awaited, "readLoop", byLoop)
}

// A Run at the keeper level reads its spawn's answer and its exit report
// itself, from the keeper's socket: neither is handed to it by a reading
// goroutine (a hand-off that wakes a second thread per message). readLoop
// may read the first answer, when it was reading already as the first Run
// began.
func TestKeeperAnswersReadByTheirWaiters(t *testing.T) {
	t.Parallel()
	const runs = 20
	c, out := startHelper(t, "kept-runs", fmt.Sprint(runs))
	line, _ := bufio.NewReader(out).ReadString('\n')
	if err := c.Wait(); err != nil {
		t.Fatalf("helper: %v (said %q)", err, line)
	}
	var awaited, byLoop int
	if _, err := fmt.Sscanf(line, "awaited %d readLoop %d", &awaited, &byLoop); err != nil {
		t.Fatalf("helper said %q", line)
	}
	if awaited+byLoop != 2*runs || byLoop > 1 {
		t.Errorf("of %d answers and exit reports, %d were read by their waiters and %d by readLoop; want at most 1 by readLoop",
			2*runs, awaited, byLoop)
	}
}

// An Observer that starts a process at the keeper level when it hears of a
// stop (EventStopped, which the keeper reports) gets it started: the event is
// not reported by a goroutine that the new start's answer must wait for.
// Before, the client's reading goroutine ran the Observer, and a start from
// there waited for an answer nobody read.
func TestObserverStartsKeptProcessAtJobEvent(t *testing.T) {
	t.Parallel()
	for _, level := range keptLevels(t) {
		if level == "cgroup" {
			continue // no job events: the process is the program's own child
		}
		t.Run(level, func(t *testing.T) {
			t.Parallel()
			ran := make(chan error, 1)
			c := helperCmd("sleep")
			c.Containment = levelNamed(level)
			c.Observer = func(e tether.Event) {
				if e.Kind != tether.EventStopped {
					return
				}
				n := helperCmd("exit", "0")
				n.Containment = levelNamed(level)
				_, err := n.Run(context.Background())
				select {
				case ran <- err:
				default: // a second stop: the first one's answer counts
				}
			}
			p := start(t, c)
			if err := p.Signal(syscall.SIGSTOP); err != nil {
				t.Fatal(err)
			}
			select {
			case err := <-ran:
				if err != nil {
					t.Errorf("the Observer's Run: %v", err)
				}
			case <-time.After(20 * time.Second):
				// The Observer is stuck: the process cannot be closed
				// either, and the test binary's leak check will say so.
				t.Fatal("the Observer's Run did not return in 20 s")
			}
			if err := p.Kill(); err != nil && !strings.Contains(err.Error(), "done") {
				t.Fatal(err)
			}
		})
	}
}
