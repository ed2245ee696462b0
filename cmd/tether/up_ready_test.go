//go:build linux

package main

import (
	"fmt"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/tetherproc/tether"
	"github.com/tetherproc/tether/supervise"
)

// readyHelper (TETHER_TEST_READY=notify, fd or ipc) says it is ready that
// way, prints "said ready", and runs until SIGTERM.
func readyHelper() {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM)
	fail := func(err error) {
		fmt.Println("ready helper:", err)
		os.Exit(2)
	}
	switch how := os.Getenv("TETHER_TEST_READY"); how {
	case "notify":
		c, err := net.Dial("unixgram", os.Getenv(supervise.EnvNotifySocket))
		if err != nil {
			fail(err)
		}
		if _, err := c.Write([]byte("READY=1\n")); err != nil {
			fail(err)
		}
		_ = c.Close()
	case "fd":
		fd, err := strconv.Atoi(os.Getenv(supervise.EnvNotifyFD))
		if err != nil {
			fail(err)
		}
		f := os.NewFile(uintptr(fd), "notify")
		if _, err := f.WriteString("\n"); err != nil {
			fail(err)
		}
		_ = f.Close()
	case "ipc":
		ch, err := tether.ParentChannel()
		if err != nil {
			fail(err)
		}
		if err := ch.Send("ready"); err != nil {
			fail(err)
		}
		if err := ch.Flush(); err != nil {
			fail(err)
		}
	default:
		fail(fmt.Errorf("no way %q", how))
	}
	fmt.Println("said ready")
	<-sigs
	os.Exit(0)
}

// upExe is the test binary's path, for Procfile lines that run a helper.
func upExe(t *testing.T) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return exe
}

// db binds its port 300 ms after it starts; web, after db, says what it
// found. With the readiness, web starts once db accepts.
func TestUpReadyAndOrder(t *testing.T) {
	t.Parallel()
	procfile := fmt.Sprintf(`db: sleep 0.3; TETHER_TEST_BIND=1 exec %s
web: echo web up
`, upExe(t))
	check := func(t *testing.T, out string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		// The server says "bound" once it listens, but the TCP probe can
		// connect before that line has come through its pipe: the line
		// is in the output, in no fixed place after the start.
		upInOrder(t, out, "web.1 waits for db.1 to be ready", "db.1 started",
			"db.1 is ready (TCP localhost:", "web.1 started with pid", "web.1  | web up")
		upInOrder(t, out, "db.1 started", "| bound ")
	}
	t.Run("tether.toml", func(t *testing.T) {
		t.Parallel()
		dir := upDir(t, map[string]string{"Procfile": procfile, "tether.toml": `
[db]
ready = "tcp"        # its $PORT

[web]
depends_on = ["db"]
can_die = true
`})
		h := upStart(t, dir, "-p", freePort(t))
		h.out.waitFor(t, "web.1 has ended; the others go on")
		h.cancel()
		err := h.wait()
		check(t, h.out.String(), err)
	})
	t.Run("flags", func(t *testing.T) {
		t.Parallel()
		dir := upDir(t, map[string]string{"Procfile": procfile})
		port := freePort(t)
		h := upStart(t, dir, "-p", port, "-ready", "db=tcp:"+port, "-after", "web=db", "-can-die", "web")
		h.out.waitFor(t, "web.1 has ended; the others go on")
		h.cancel()
		err := h.wait()
		check(t, h.out.String(), err)
	})
}

// Each readiness a process can use, through /bin/sh -c as a Procfile line
// runs.
func TestUpReadyKinds(t *testing.T) {
	t.Parallel()
	for _, how := range []string{"notify", "fd", "ipc"} {
		t.Run(how, func(t *testing.T) {
			t.Parallel()
			dir := upDir(t, map[string]string{
				"Procfile":    fmt.Sprintf("svc: TETHER_TEST_READY=%s exec %s\nafter: echo after\n", how, upExe(t)),
				"tether.toml": fmt.Sprintf("[svc]\nready = %q\nready_timeout = \"10s\"\n[after]\ndepends_on = [\"svc\"]\ncan_die = true\n", how),
			})
			h := upStart(t, dir)
			h.out.waitFor(t, "after.1 has ended")
			h.cancel()
			err := h.wait()
			out := h.out.String()
			if err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			upIndex(t, out, "svc.1   | said ready")
			upInOrder(t, out, "svc.1 is ready", "after.1 started")
		})
	}
}

// A process that never gets ready fails the start, and the message says
// which and why.
func TestUpNotReady(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, line, toml, want string }{
		{"timeout", "sleep 100", "[svc]\nready = \"fd\"\nready_timeout = \"300ms\"\n",
			"svc.1 did not get ready (notification fd): not ready in time (300ms); terminated by SIGTERM"},
		{"exited-first", "exit 3", "[svc]\nready = \"notify\"\n",
			"svc.1 did not get ready (NOTIFY_SOCKET): not ready: exited first; exited with code 3"},
		{"fd-closed", "exec 3>&-; sleep 100", "[svc]\nready = \"fd\"\n",
			"svc.1 did not get ready (notification fd): not ready: descriptor NOTIFY_FD=3 closed without a newline"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := upDir(t, map[string]string{"Procfile": "svc: " + tc.line + "\nweb: sleep 100\n", "tether.toml": tc.toml + "[web]\ndepends_on = [\"svc\"]\n"})
			out, err := upRun(t, dir)
			if upExitCode(err) != 1 {
				t.Errorf("exit status %d, want 1", upExitCode(err))
			}
			upIndex(t, out, tc.want)
			if strings.Contains(out, "web.1 started") {
				t.Errorf("web started after svc failed its readiness:\n%s", out)
			}
		})
	}
}

// Per-type settings: stop signal, grace, restart policy and can_die.
func TestUpTypeSettings(t *testing.T) {
	t.Parallel()
	dir := upDir(t, map[string]string{
		"Procfile": `int: trap 'echo got INT; exit 0' INT; trap 'echo got TERM; exit 0' TERM; echo ready; while :; do sleep 0.05; done
stubborn: trap 'echo ignoring TERM' TERM; echo ready; while :; do sleep 0.05; done
crash: echo crashing; exit 3
`, "tether.toml": `
[int]
stop_signal = "SIGINT"

[stubborn]
stop_grace_period = "300ms"

[crash]
restart = "on-failure"
can_die = true
`})
	h := upStart(t, dir, "-backoff", "1ms", "-restart-limit", "2/1m")
	h.out.waitFor(t, "crash.1: too many restarts")
	h.out.waitForCount(t, "| ready", 2)
	h.cancel()
	err := h.wait()
	out := h.out.String()
	upIndex(t, out, "int.1      | got INT")
	upIndex(t, out, "stubborn.1 did not stop within the grace (-grace): killed by SIGKILL")
	if n := strings.Count(out, "crash.1    | crashing"); n != 3 {
		t.Errorf("crash ran %d times, want 3 (restarted twice on failure):\n%s", n, out)
	}
	upIndex(t, out, "the others go on (-can-die)")
	if upExitCode(err) != 137 {
		t.Errorf("exit status %d, want 137 (stubborn needed SIGKILL)", upExitCode(err))
	}
}

func TestUpConfigErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, toml, want string }{
		{"syntax", "[web\n", "tether.toml:2: expected '.' or ']' to end table name"},
		{"unknown-key", "[web]\nreddy = \"tcp\"\n", `[web] has no setting "reddy" (there are ready, ready_timeout, depends_on`},
		{"unknown-type", "[db]\nready = \"tcp\"\n", `[db]: the Procfile has no process type "db" (it has web, worker)`},
		{"bad-ready", "[web]\nready = \"http\"\n", `[web]: ready: "http" is not a readiness: want tcp`},
		{"bad-port", "[web]\nready = \"tcp:99999\"\n", `want tcp, tcp:PORT or tcp:HOST:PORT`},
		{"bad-grace", "[web]\nstop_grace_period = \"10\"\n", `stop_grace_period: "10" has no unit`},
		{"bad-signal", "[web]\nstop_signal = \"SIGNOPE\"\n", `stop_signal: "SIGNOPE" is not a signal`},
		{"bad-restart", "[web]\nrestart = \"sometimes\"\n", `restart: "sometimes" is not never, on-failure or always`},
		{"unless-stopped", "[web]\nrestart = \"unless-stopped\"\n", `use always`},
		{"depends-unknown", "[web]\ndepends_on = [\"db\"]\n", `depends_on: the Procfile has no process type "db"`},
		{"cycle", "[web]\ndepends_on = [\"worker\"]\n[worker]\ndepends_on = [\"web\"]\n", `depends_on makes a cycle: web after worker after web`},
		{"wrong-type", "[web]\nready_timeout = 30\n", `incompatible types`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := upDir(t, map[string]string{"Procfile": "web: sleep 100\nworker: sleep 100\n", "tether.toml": tc.toml})
			out, err := upRun(t, dir)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one with %q\n%s", err, tc.want, out)
			}
			if strings.Contains(out, "started") {
				t.Errorf("something started:\n%s", out)
			}
		})
	}
	t.Run("missing-config-flag", func(t *testing.T) {
		t.Parallel()
		dir := upDir(t, map[string]string{"Procfile": "web: sleep 100\n"})
		_, err := upRun(t, dir, "-config", "nope.toml")
		if err == nil || !strings.Contains(err.Error(), "nope.toml: no such file or directory (-config names the settings file)") {
			t.Errorf("error %v", err)
		}
	})
	t.Run("bad-flags", func(t *testing.T) {
		t.Parallel()
		dir := upDir(t, map[string]string{"Procfile": "web: sleep 100\nworker: sleep 100\n"})
		for args, want := range map[string]string{
			"-ready web":          `-ready "web": want TYPE=VALUE`,
			"-ready db=tcp":       `-ready db=tcp: no process named "db"`,
			"-after web=web":      `-after web=web: "web" is not another process type`,
			"-after web=worker+x": `"x" is not another process type`,
		} {
			_, err := upRun(t, dir, strings.Fields(args)...)
			if upExitCode(err) != -1 || err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("%s: %v, want a usage error with %q", args, err, want)
			}
		}
	})
}
