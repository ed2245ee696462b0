//go:build linux

package main

import (
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// A process with -tty runs on a terminal of its own (isatty, a controlling
// terminal), its output still prefixed; tether connect, in a real terminal
// (tmux), types into it, passes Ctrl-C on as its SIGINT, and detaches with
// Ctrl-] while the process goes on. A restart keeps the terminal.
func TestUpTTYConnect(t *testing.T) {
	t.Parallel()
	dir := upDir(t, map[string]string{"Procfile": `rep: if [ -t 0 ] && [ -t 1 ]; then echo "tty: yes"; fi; tty >/dev/null && echo "ctty: $(ps -o tty= -p $$)"; trap 'echo got INT' INT; trap 'echo "size $(stty size) cols"' WINCH; while :; do if read -r l; then echo "got $l"; fi; done
other: sleep 100
`})
	up := upSpawn(t, dir, "-tty", "rep")
	up.out.waitFor(t, "rep.1   | tty: yes")
	up.out.waitFor(t, "rep.1   | ctty: pts/")
	before, code := tetherIn(t, dir, "status", "rep")
	if code != 0 {
		t.Fatalf("status: %d\n%s", code, before)
	}

	s := interactive(t, "connect -f "+filepath.Join(dir, "Procfile")+" rep")
	s.waitFor("attached to rep.1; Ctrl-] detaches")
	// The terminal takes the size of the one attached (tmux: 150 columns),
	// and follows it.
	up.out.waitFor(t, " 150 cols")
	if out, err := s.tmux("resize-window", "-t", "t", "-x", "100", "-y", "30"); err != nil {
		t.Fatalf("resize-window: %v: %s", err, out)
	}
	up.out.waitFor(t, " 100 cols")
	if !regexp.MustCompile(`rep\.1 +\| size \d+ 150 cols\n(.*\n)*rep\.1 +\| size \d+ 100 cols\n`).MatchString(up.out.String()) {
		t.Errorf("no size 150 columns, then 100:\n%s", up.out.String())
	}
	s.keys("hello")
	s.keys("Enter")
	s.waitFor("got hello")
	up.out.waitFor(t, "rep.1   | got hello")
	s.keys("C-c")
	up.out.waitFor(t, "got INT")
	if out, err := s.tmux("send-keys", "-t", "t", "C-]"); err != nil {
		t.Fatalf("send-keys: %v: %s", err, out)
	}
	s.waitFor("detached from rep.1; it goes on")
	s.waitFor("status 0")
	after, _ := tetherIn(t, dir, "status", "rep")
	if after != before && strings.Fields(after)[7] != strings.Fields(before)[7] { // the pid column
		t.Errorf("rep.1 changed after the detach:\n%s\n%s", before, after)
	}
	if !strings.Contains(after, "running") {
		t.Errorf("rep.1 not running after the detach:\n%s", after)
	}

	if out, code := tetherIn(t, dir, "restart", "rep"); code != 0 {
		t.Fatalf("restart: %d\n%s", code, out)
	}
	up.out.waitForCount(t, "rep.1   | tty: yes", 2)

	if out, code := tetherIn(t, dir, "connect", "other"); code != 1 || !strings.Contains(out, "other.1 has no terminal: give it one with tty = true in tether.toml, or -tty other") {
		t.Errorf("connect to a process without a terminal: %d\n%s", code, out)
	}
}
