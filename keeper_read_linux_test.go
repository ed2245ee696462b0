package tether_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tetherproc/tether"
	"github.com/tetherproc/tether/internal/testproc"
)

func init() {
	testproc.Register("kept-runs", helperKeptRuns)
	testproc.Register("observer-goexit-at-stop", helperObserverGoexitAtStop)
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
	for _, level := range jobEventLevels(t) {
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

// An Observer busy with one process's stop, waiting for what another
// process does, is not in that other process's way: its stop is reported
// meanwhile, and it can be killed and waited for. Before, the job events of
// every process went through one goroutine, in one queue: the other's stop
// waited behind the busy Observer, and its Wait behind its stop.
func TestObserverWaitsForAnotherProcessAtJobEvent(t *testing.T) {
	t.Parallel()
	for _, level := range jobEventLevels(t) {
		t.Run(level, func(t *testing.T) {
			t.Parallel()
			bStopped := make(chan struct{}, 1)
			b := helperCmd("sleep")
			b.Containment = levelNamed(level)
			b.Observer = func(e tether.Event) {
				if e.Kind == tether.EventStopped {
					select {
					case bStopped <- struct{}{}:
					default:
					}
				}
			}
			pb := start(t, b)
			result := make(chan string, 1)
			a := helperCmd("sleep")
			a.Containment = levelNamed(level)
			a.Observer = func(e tether.Event) {
				if e.Kind != tether.EventStopped {
					return
				}
				// Not t.Fatal here: this is the Observer's goroutine.
				say := func(s string) {
					select {
					case result <- s:
					default:
					}
				}
				if err := pb.Signal(syscall.SIGSTOP); err != nil {
					say("stop b: " + err.Error())
					return
				}
				select {
				case <-bStopped:
				case <-time.After(10 * time.Second):
					say("b's stop was not reported in 10 s while a's Observer was busy")
					return
				}
				_ = pb.Kill() // best effort: Done says
				select {
				case <-pb.Done():
					say("")
				case <-time.After(10 * time.Second):
					say("b not done 10 s after its Kill while a's Observer was busy")
				}
			}
			pa := start(t, a)
			if err := pa.Signal(syscall.SIGSTOP); err != nil {
				t.Fatal(err)
			}
			select {
			case s := <-result:
				if s != "" {
					t.Error(s)
				}
			case <-time.After(30 * time.Second):
				t.Fatal("a's Observer did not finish in 30 s")
			}
			_ = pa.Kill()
		})
	}
}

// helperObserverGoexitAtStop starts a process at the keeper level whose
// Observer calls runtime.Goexit (a test's t.Fatal) at its stop, stops it,
// and waits for the program to end.
func helperObserverGoexitAtStop([]string) {
	c := helperCmd("sleep")
	c.Containment = tether.ContainKeeper
	c.Observer = func(e tether.Event) {
		if e.Kind == tether.EventStopped {
			runtime.Goexit()
		}
	}
	p, err := c.Start(context.Background())
	if err != nil {
		fmt.Println("start:", err)
		os.Exit(3)
	}
	if err := p.Signal(syscall.SIGSTOP); err != nil {
		fmt.Println("stop:", err)
		os.Exit(3)
	}
	// The stop's report ends the program; else, after 20 s, a Kill
	// should close the process.
	select {
	case <-p.Done():
		fmt.Println("done")
	case <-time.After(20 * time.Second):
		_ = p.Kill()
		select {
		case <-p.Done():
			fmt.Println("not ended in 20 s; done after a Kill")
		case <-time.After(10 * time.Second):
			fmt.Println("not ended in 20 s; not done 10 s after a Kill")
		}
	}
	os.Exit(3)
}

// A runtime.Goexit in an Observer at a job event (a test's t.Fatal there)
// ends the program, as it does at the exit and close events: it must not
// leave the process's Wait hanging behind an event never reported.
func TestObserverGoexitAtJobEventEndsTheProgram(t *testing.T) {
	t.Parallel()
	wantHelperPanic(t, "observer-goexit-at-stop", "runtime.Goexit", "tether: panic in an Observer, at the stopped event of")
}
