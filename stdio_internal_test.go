//go:build unix

package tether

import (
	"errors"
	"io"
	"os"
	"syscall"
	"testing"
)

// A read error while draining ends the stream with that error, not with
// ErrDrainTimeout (a directory stands in for a pipe whose read fails).
func TestDrainReadError(t *testing.T) {
	f, err := os.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	r := newPipeReader("stdout", f)
	r.drain() // returns: the first read fails
	if st := r.state.Load(); st != pipeFailed {
		t.Fatalf("state %d after a failed read, want pipeFailed", st)
	}
	_, err = io.ReadAll(r)
	if !errors.Is(err, syscall.EISDIR) || errors.Is(err, ErrDrainTimeout) {
		t.Errorf("read after the failure: %v; want EISDIR, not ErrDrainTimeout", err)
	}
}
