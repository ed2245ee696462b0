//go:build unix

package tether_test

import (
	"errors"
	"io"
	"syscall"
	"testing"
	"time"

	"github.com/tetherproc/tether"
)

// TestCloseWhileReaderBlockedOnHeldPipe: the reader is blocked in a Read of
// the child's stdout when the child exits, and a grandchild holds the pipe
// open and writes nothing. Close still comes at the drain bound, and the
// blocked Read returns ErrDrainTimeout. (Once, the monitor's first,
// non-waiting look at the pipe waited for the reader's lock before it armed
// the bound: close never came while the grandchild lived.)
func TestCloseWhileReaderBlockedOnHeldPipe(t *testing.T) {
	t.Parallel()
	c := helperCmd("spawn", "sleep")
	c.DrainTimeout = 300 * time.Millisecond
	p, _, br := spawnTree(t, c)
	if line := readLine(t, br, 10*time.Second); line != "ready" {
		t.Fatalf("line = %q", line)
	}
	readErr := make(chan error, 1)
	go func() { // ends when the pipe is abandoned at the drain bound
		_, err := io.Copy(io.Discard, br)
		readErr <- err
	}()
	// The leader alone (the grandchild keeps the pipe): it is our child, or
	// the keeper's, and unreaped until close, so its pid is its own.
	if err := syscall.Kill(p.PID(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	closesAtDrainBound(t, p)
	select {
	case err := <-readErr:
		if !errors.Is(err, tether.ErrDrainTimeout) {
			t.Errorf("blocked read ended with %v, want ErrDrainTimeout", err)
		}
	case <-time.After(5 * time.Second):
		t.Error("the blocked read did not end at close")
	}
}
