package main

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestUpOutputReaderGone: tether up's output goes to a program that ends
// first (| tee, whom the terminal's Ctrl-C reaches too). tether up is not
// killed by SIGPIPE: it stops the stack gracefully — the polite process
// cleans up — and exits 0, as after any Ctrl-C. Before, it died of SIGPIPE
// (status 141) at its next line of output, in the middle of the stop.
func TestUpOutputReaderGone(t *testing.T) {
	t.Parallel()
	dir := upDir(t, map[string]string{"Procfile": "polite: trap 'echo bye; echo cleaned > cleaned; exit 0' TERM; echo ready > ready; while :; do sleep 0.2 & wait $!; done\n"})
	c := tetherCmd("up", "-f", filepath.Join(dir, "Procfile"), "-color", "never", "-grace", "5s")
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	c.Stdout, c.Stderr = w, w
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	_ = w.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(filepath.Join(dir, "ready")); err == nil {
			break
		}
		if time.Now().After(deadline) {
			_ = c.Process.Kill()
			_ = c.Wait()
			t.Fatal("the process never got ready")
		}
		time.Sleep(10 * time.Millisecond) // a file, not a pipe: nothing to block on
	}
	_ = r.Close()                        // the reader ends first...
	_ = c.Process.Signal(syscall.SIGINT) // ...and then tether up gets its Ctrl-C
	err = waitBounded(t, c, 15*time.Second)
	if err != nil {
		t.Errorf("tether up with its output reader gone: %v; want exit 0", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "cleaned")); err != nil {
		t.Errorf("the polite process did not clean up: %v", err)
	}
	upNoLeftovers(t, dir)
}

// TestStackErrorsNameTheirCommand: check, exec and export read the stack as
// tether up does; their errors name them, not "up".
func TestStackErrorsNameTheirCommand(t *testing.T) {
	t.Parallel()
	missing := filepath.Join(t.TempDir(), "Procfile")
	for _, args := range [][]string{{"check", "-f", missing}, {"exec", "-f", missing, "true"}} {
		out, err := tetherCmd(args...).CombinedOutput()
		if want := "tether: " + args[0] + ": " + missing + ": no such file"; err == nil || !strings.Contains(string(out), want) {
			t.Errorf("tether %s: %v, %q; want %q", strings.Join(args, " "), err, out, want)
		}
	}
}
