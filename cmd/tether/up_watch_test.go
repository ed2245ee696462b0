//go:build linux

package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// -watch restarts on real file changes, built on tether restart: the web
// process's grandchild holds the port, and every new one binds it. .git
// and files the pattern does not match do not count; a directory made
// after the start is watched too.
func TestUpWatch(t *testing.T) {
	t.Parallel()
	dir := upDir(t, map[string]string{
		"Procfile": fmt.Sprintf("web: sh -c 'TETHER_TEST_BIND=1 %s & wait'\nworker: %s\n", upExe(t), upPolite),
	})
	for _, d := range []string{"src", ".git"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write := func(name string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(name), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	up := upSpawn(t, dir, "-p", freePort(t), "-ready", "web=tcp", "-watch", ".", "-watch-pattern", "*.go", "-watch-restart", "web")
	up.out.waitFor(t, "web.1 is ready")
	up.out.waitFor(t, "worker.1 | ready")

	// Changes that do not count, then one that does: the restart names it
	// alone.
	write(".git/HEAD")
	write("src/notes.txt")
	write("src/a.go")
	up.out.waitFor(t, "| src/a.go changed: restarting web.1 (-watch)")
	up.out.waitForCount(t, "web.1 is ready", 2)
	up.out.waitForCount(t, "| bound ", 2)

	// A burst is one restart.
	write("src/b.go")
	write("src/c.go")
	write("src/d.go")
	up.out.waitFor(t, "| src/b.go and 2 more changed: restarting web.1 (-watch)")
	up.out.waitForCount(t, "web.1 is ready", 3)

	// A directory made now.
	if err := os.MkdirAll(filepath.Join(dir, "src", "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	write("src/sub/e.go")
	up.out.waitFor(t, "src/sub/e.go changed: restarting web.1 (-watch)")
	up.out.waitForCount(t, "web.1 is ready", 4)
	up.out.waitForCount(t, "| bound ", 4)

	out := up.out.String()
	if strings.Contains(out, "bind failed") || strings.Count(out, "worker.1 started") != 1 || strings.Count(out, "(-watch)") != 3 {
		t.Errorf("want 3 restarts of web alone, each binding:\n%s", out)
	}
}

func TestUpWatchErrors(t *testing.T) {
	t.Parallel()
	dir := upDir(t, map[string]string{"Procfile": "web: sleep 100\n"})
	for args, want := range map[string]string{
		"-watch nope":               "-watch nope: lstat nope: no such file or directory",
		"-watch-pattern *.go":       "need -watch PATHS",
		"-watch . -watch-pattern [": `-watch pattern "[": syntax error in pattern`,
		"-watch . -watch-restart x": `-watch-restart: no process named "x"`,
	} {
		out, code := tetherIn(t, dir, append([]string{"up"}, strings.Fields(args)...)...)
		if code == 0 || !strings.Contains(out, want) || strings.Contains(out, "started") {
			t.Errorf("up %s: exit %d, want %q before anything starts:\n%s", args, code, want, out)
		}
	}
}

// nodemon's habit: a process that crashed (and may: -can-die) waits for the
// next change, and -watch starts it again.
func TestUpWatchStartsEnded(t *testing.T) {
	t.Parallel()
	dir := upDir(t, map[string]string{
		"Procfile": "web: if [ -e broken ]; then echo broken; exit 1; fi; echo serving; exec sleep 100\nother: " + upPolite + "\n",
		"broken":   "",
	})
	up := upSpawn(t, dir, "-can-die", "web", "-watch", ".", "-watch-pattern", "*.go")
	up.out.waitFor(t, "web.1 has ended; the others go on (-can-die)")
	up.out.waitFor(t, "other.1 | ready")
	if err := os.Remove(filepath.Join(dir, "broken")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "fix.go"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	up.out.waitFor(t, "fix.go changed: restarting web.1, other.1 (-watch)")
	up.out.waitFor(t, "web.1   | serving")
	if out, code := tetherIn(t, dir, "status", "web"); code != 0 || !strings.Contains(out, "running") {
		t.Errorf("web after the fix: %d\n%s", code, out)
	}
}
