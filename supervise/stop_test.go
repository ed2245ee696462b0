//go:build linux

package supervise_test

import (
	"context"
	"errors"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tetherproc/tether/supervise"
)

// The supervisor's stop reaches a process that was stopped (SIGSTOP, or a
// terminal's Ctrl-Z): it is continued after its stop signal, exits by its
// SIGTERM handler, and the stop does not wait out StopTimeout (20 s here).
func TestStopStoppedProcess(t *testing.T) {
	t.Parallel()
	sp := serving("p")
	sp.Cmd.StopTimeout = 20 * time.Second
	r := start(t, sp)
	ready := r.rec.waitFor(t, "p", supervise.EventReady)
	if err := r.s.Signal("p", syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	waitStopped(t, ready.PID)
	began := time.Now()
	r.cancel()
	if err := r.wait(t); !errors.Is(err, context.Canceled) {
		t.Fatalf("Run = %v, want context.Canceled", err)
	}
	took := time.Since(began)
	t.Logf("stop of a stopped process: %v (StopTimeout 20s)", took.Round(time.Millisecond))
	e := r.rec.waitFor(t, "p", supervise.EventStopped)
	if e.Exit == nil || e.Exit.Code != codeTerm || e.Exit.Escalated || took >= 10*time.Second {
		t.Errorf("stopped with %v after %v; want status %d (its SIGTERM handler) well within StopTimeout", e.Exit, took, codeTerm)
	}
}

// waitStopped waits up to 10 s for pid to be stopped ('T' in /proc/PID/stat).
// Polled: only a process's parent hears of its stop.
func waitStopped(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		s := string(b)
		if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) && s[i+2] == 'T' {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("pid %d not stopped after 10s: %q", pid, s)
		}
		time.Sleep(2 * time.Millisecond)
	}
}
