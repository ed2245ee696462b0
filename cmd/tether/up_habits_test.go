//go:build linux

package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// foreman's and overmind's short flags mean what they mean there, or are
// refused with a hint.
func TestUpPeerFlags(t *testing.T) {
	t.Parallel()
	dir := upDir(t, map[string]string{"Procfile": "web: sleep 100\nworker: sleep 100\nclock: sleep 100\n"})
	check := func(args ...string) (string, int) {
		t.Helper()
		return tetherIn(t, dir, append([]string{"check"}, args...)...)
	}
	for _, tc := range []struct {
		args []string
		want string // a line of tether check's output (spaces squeezed)
	}{
		{[]string{"-t", "10"}, "web.1 5000 - - SIGTERM, 10s never false"},      // foreman's and overmind's shutdown timeout
		{[]string{"-t", "2.5"}, "web.1 5000 - - SIGTERM, 2.5s never false"},    // in seconds
		{[]string{"--timeout", "3"}, "web.1 5000 - - SIGTERM, 3s never false"}, // foreman's long form
		{[]string{"-r", "web"}, "web.1 5000 - - SIGTERM, 5s always false"},     // overmind's -auto-restart
		{[]string{"-l", "worker"}, "valid Procfile detected (worker)"},         // overmind's process list
		{[]string{"-i", "web,clock"}, "valid Procfile detected (worker)"},      // overmind's ignored processes
	} {
		out, code := check(tc.args...)
		squeezed := regexp.MustCompile(` +`).ReplaceAllString(out, " ")
		if code != 0 || !strings.Contains(squeezed, tc.want) {
			t.Errorf("check %v: exit %d, want a line %q:\n%s", tc.args, code, tc.want, out)
		}
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-t", "web"}, `-t: "web": want the shutdown timeout in seconds, as foreman's and overmind's -t 10 (to print the time before each line: -timestamp)`},
		{[]string{"-t", "0"}, "the timeout must be more than 0 seconds"},
		{[]string{"-c", "web"}, "-c: foreman's -c is the formation, -m here; overmind's -c is -can-die"},
		{[]string{"-D"}, "-D: tether up runs in the foreground; to keep a stack running, tether export systemd"},
	} {
		out, code := tetherIn(t, dir, append([]string{"up"}, tc.args...)...)
		if code != 2 || !strings.Contains(out, tc.want) {
			t.Errorf("up %v: exit %d, want 2 and %q:\n%s", tc.args, code, tc.want, out)
		}
	}
}

func TestCheck(t *testing.T) {
	t.Parallel()
	dir := upDir(t, map[string]string{
		"Procfile":    "db: sleep 100\nweb: sleep 100\n",
		".env":        "PORT=6000\n",
		"tether.toml": "[db]\nready = \"tcp\"\n[web]\ndepends_on = [\"db\"]\nstop_signal = \"INT\"\nrestart = \"on-failure\"\n",
	})
	out, code := tetherIn(t, dir, "check", "-m", "web=2,db=1")
	squeezed := regexp.MustCompile(` +`).ReplaceAllString(out, " ")
	for _, want := range []string{
		"valid Procfile detected (db, web): Procfile\n",
		"db.1 6000 TCP localhost:6000 - SIGTERM, 5s never false\n",
		"web.1 6100 - db.1 SIGINT, 5s on-failure false\n",
		"web.2 6101 - db.1 SIGINT, 5s on-failure false\n",
	} {
		if code != 0 || !strings.Contains(squeezed, want) {
			t.Errorf("check: exit %d, want %q:\n%s", code, want, out)
		}
	}
	if upProcsIn(dir) != "" {
		t.Errorf("check started something: %s", upProcsIn(dir))
	}
	bad := upDir(t, map[string]string{"Procfile": "web sleep 100\n"})
	if out, code := tetherIn(t, bad, "check"); code != 1 || !strings.Contains(out, "Procfile:1:") {
		t.Errorf("check of a bad Procfile: exit %d:\n%s", code, out)
	}
	badEnv := upDir(t, map[string]string{"Procfile": "web: sleep 100\n", ".env": "A='unterminated\n"})
	if out, code := tetherIn(t, badEnv, "check"); code != 1 || !strings.Contains(out, ".env:1:") {
		t.Errorf("check of a bad .env: exit %d:\n%s", code, out)
	}
}

// upProcsIn lists the processes whose working directory is dir.
func upProcsIn(dir string) string {
	var left []string
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		if cwd, err := os.Readlink(filepath.Join("/proc", e.Name(), "cwd")); err == nil && cwd == dir {
			left = append(left, e.Name())
		}
	}
	return strings.Join(left, " ")
}

// tether exec: foreman's run.
func TestExec(t *testing.T) {
	t.Parallel()
	dir := upDir(t, map[string]string{
		"Procfile": "web: echo \"web on $PORT as $PS with $GREETING\"\nworker: exit 9\n",
		".env":     "GREETING=hello\n",
	})
	for _, tc := range []struct {
		args []string
		want string
		code int
	}{
		{[]string{"web"}, "web on 5000 as web.1 with hello\n", 0},
		{[]string{"-p", "7000", "web"}, "web on 7000 as web.1 with hello\n", 0},
		{[]string{"worker"}, "", 9},
		{[]string{"echo $GREETING from $PWD"}, "hello from " + dir + "\n", 0},
		{[]string{"--", "sh", "-c", "echo $GREETING; exit 7"}, "hello\n", 7},
		{[]string{"printenv", "PORT"}, "", 1}, // a command has no PORT of its own
	} {
		out, code := tetherIn(t, t.TempDir(), append([]string{"exec", "-f", filepath.Join(dir, "Procfile")}, tc.args...)...)
		if code != tc.code || out != tc.want {
			t.Errorf("exec %q: exit %d, output %q; want %d, %q", tc.args, code, out, tc.code, tc.want)
		}
	}
	if out, code := tetherIn(t, dir, "exec"); code != 2 || !strings.Contains(out, "no command given") {
		t.Errorf("exec of nothing: %d\n%s", code, out)
	}
}

// tether export systemd writes a unit systemd accepts, and its ExecStart
// runs the stack; systemd's stop (SIGTERM to tether up alone, KillMode=mixed)
// stops it whole.
func TestExportSystemd(t *testing.T) {
	t.Parallel()
	dir := upDir(t, map[string]string{"Procfile": "web: " + upPolite + "\nworker: " + upPolite + "\n"})
	units := t.TempDir()
	out, code := tetherIn(t, dir, "export", "systemd", "-a", "shop", "-u", "www", "-t", "7", "-m", "web=2,worker=1", units)
	if code != 0 {
		t.Fatalf("export: %d\n%s", code, out)
	}
	b, err := os.ReadFile(filepath.Join(units, "shop.service"))
	if err != nil {
		t.Fatal(err)
	}
	unit := string(b)
	for _, want := range []string{"\nUser=www\n", "\nWorkingDirectory=" + dir + "\n", "\nKillMode=mixed\n",
		"\nTimeoutStopSec=17\n", "\" \"up\" \"-color\" \"never\" \"-t\" \"7\" \"-m\" \"web=2,worker=1\"\n", "\nWantedBy=multi-user.target\n"} {
		if !strings.Contains(unit, want) {
			t.Errorf("the unit has no %q:\n%s", want, unit)
		}
	}
	if _, err := exec.LookPath("systemd-analyze"); err == nil {
		noUser := strings.Replace(unit, "User=www\n", "", 1) // www may not exist here
		if err := os.WriteFile(filepath.Join(units, "shop.service"), []byte(noUser), 0o644); err != nil {
			t.Fatal(err)
		}
		c := exec.Command("systemd-analyze", "verify", filepath.Join(units, "shop.service"))
		if b, err := c.CombinedOutput(); err != nil {
			t.Errorf("systemd-analyze verify: %v\n%s", err, b)
		}
	}
	// Run ExecStart as systemd would, and stop it as systemd would.
	m := regexp.MustCompile(`(?m)^ExecStart=(.*)$`).FindStringSubmatch(unit)
	var argv []string
	for _, w := range regexp.MustCompile(`"((?:[^"\\]|\\.)*)"`).FindAllStringSubmatch(m[1], -1) {
		argv = append(argv, strings.NewReplacer(`\"`, `"`, `\\`, `\`, "$$", "$", "%%", "%").Replace(w[1]))
	}
	c := tetherCmd(argv[1:]...) // argv[0] is this test binary, which tetherCmd runs
	c.Dir = dir
	buf := newUpBuffer()
	c.Stdout, c.Stderr = buf, buf
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- c.Wait() }() // ends when it has exited
	t.Cleanup(func() {
		_ = c.Process.Kill() // best effort: it has exited unless the test failed
	})
	buf.waitForCount(t, "| ready", 3)
	if err := c.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("the unit's tether up after SIGTERM: %v\n%s", err, buf.String())
		}
	case <-time.After(20 * time.Second):
		_ = c.Process.Kill()
		<-exited
		t.Fatalf("still running 20 s after SIGTERM")
	}
	if n := strings.Count(buf.String(), "| bye"); n != 3 {
		t.Errorf("%d processes said bye, want 3:\n%s", n, buf.String())
	}
	upNoLeftovers(t, dir)

	for args, want := range map[string]string{
		"export":                "say the format first",
		"export upstart /tmp":   "tether exports systemd only",
		"export systemd":        "give one DIR",
		"export systemd -a x/y": "give one DIR",
	} {
		if out, code := tetherIn(t, dir, strings.Fields(args)...); code != 2 || !strings.Contains(out, want) {
			t.Errorf("%s: exit %d, want 2 and %q:\n%s", args, code, want, out)
		}
	}
}
