//go:build linux

package main

import (
	"bytes"
	"context"
	"io"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tetherproc/tether"
)

// Issue 11, "input that must get a clear error": each scenario as a new user
// tried it, run through the real command (the test binary is tether).

// badSettings are values refused alike from a flag and from its variable:
// the message is the same but for the name ("$TETHER_GRACE" or "-grace").
var badSettings = []struct {
	env, flag, value, why string
}{
	{"TETHER_GRACE", "grace", "5", `"5" has no unit: durations need one, as in 5s`},
	{"TETHER_GRACE", "grace", "abc", `"abc" is not a duration such as 10s, 1m30s or 500ms`},
	{"TETHER_GRACE", "grace", "-1s", `"-1s": the grace must be more than 0, as 10s`},
	{"TETHER_GRACE", "grace", "0", `"0": the grace must be more than 0, as 10s`},
	{"TETHER_BACKOFF", "backoff", "x", `"x" is not a duration such as 10s, 1m30s or 500ms`},
	{"TETHER_BACKOFF_MAX", "backoff-max", "-2s", `"-2s": must not be negative`},
	{"TETHER_VERBOSE", "v", "maybe", `"maybe" is neither on (1, true, yes, on) nor off (0, false, no, off)`},
	{"TETHER_STOP_SIGNAL", "stop-signal", "SIGNOPE", `"SIGNOPE" is not a signal (want a name such as SIGTERM, TERM or term, or a number)`},
	{"TETHER_RESTART", "restart", "sometimes", `"sometimes" is not never, on-failure or always`},
	{"TETHER_RESTART_LIMIT", "restart-limit", "5", `"5": want N/DURATION, as 5/10s`},
	{"TETHER_CONTAINMENT", "containment", "jail", `"jail" is not auto, group, keeper, cgroup or pidns`},
	{"TETHER_MEMORY_MAX", "memory-max", "lots", `"lots" is not a size such as 512M or 2G`},
	{"TETHER_PIDS_MAX", "pids-max", "0", `"0" is not a count of processes`},
	{"TETHER_FORWARD", "forward", "everywhere", `"everywhere" is not program, group or tree`},
	{"TETHER_DIE_WITH_PARENT", "die-with-parent", "maybe", `"maybe" is neither on (1, true, yes, on) nor off (0, false, no, off)`},
}

// runOnly are the settings tether up does not have.
var runOnly = map[string]bool{"v": true, "forward": true, "die-with-parent": true}

// runTether runs tether with args and extra environment, and returns its
// status and stderr.
func runTether(t *testing.T, env []string, args ...string) (int, string) {
	t.Helper()
	c := tetherCmd(args...)
	c.Env = append(c.Env, env...)
	var stderr strings.Builder
	c.Stderr = &stderr
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	return exitStatus(waitBounded(t, c, 30*time.Second)), stderr.String()
}

// A bad TETHER_* value was ignored and the default used, while the flag
// refused it: now both are refused, by one parser, naming what was wrong.
func TestRunEnvBadValues(t *testing.T) {
	t.Parallel()
	for _, tc := range badSettings {
		t.Run(tc.env+"="+tc.value, func(t *testing.T) {
			t.Parallel()
			code, stderr := runTether(t, []string{tc.env + "=" + tc.value}, "run", "--", "true")
			want := "tether run: $" + tc.env + ": " + tc.why + " (tether run -h for help)\n"
			if code != 2 || stderr != want {
				t.Errorf("status %d, stderr %q; want 2, %q", code, stderr, want)
			}
			code, stderr = runTether(t, nil, "run", "-"+tc.flag+"="+tc.value, "--", "true")
			want = "tether run: -" + tc.flag + ": " + tc.why + " (tether run -h for help)\n"
			if code != 2 || stderr != want {
				t.Errorf("as a flag: status %d, stderr %q; want 2, %q", code, stderr, want)
			}
		})
	}
	// The flag wins: a bad variable behind a good flag is not read.
	t.Run("flag-wins", func(t *testing.T) {
		t.Parallel()
		if code, stderr := runTether(t, []string{"TETHER_GRACE=abc"}, "run", "-grace", "1s", "--", "true"); code != 0 {
			t.Errorf("TETHER_GRACE=abc -grace 1s: status %d, %q", code, stderr)
		}
	})
	// Good values from the environment are used.
	t.Run("TETHER_VERBOSE=yes", func(t *testing.T) {
		t.Parallel()
		code, stderr := runTether(t, []string{"TETHER_VERBOSE=yes"}, "run", "--", "true")
		if code != 0 || !strings.Contains(stderr, "tether: exit pid ") {
			t.Errorf("status %d, stderr %q; want 0 and the events", code, stderr)
		}
	})
}

// tether up reads the same variables with the same parsers.
func TestUpEnvBadValues(t *testing.T) {
	t.Parallel()
	dir := upDir(t, map[string]string{"Procfile": "web: true\n"})
	for _, tc := range badSettings {
		if runOnly[tc.flag] {
			continue
		}
		t.Run(tc.env+"="+tc.value, func(t *testing.T) {
			t.Parallel()
			code, stderr := runTether(t, []string{tc.env + "=" + tc.value}, "up", "-f", filepath.Join(dir, "Procfile"))
			want := "tether up: $" + tc.env + ": " + tc.why + " (tether up -h for help)\n"
			if code != 2 || stderr != want {
				t.Errorf("status %d, stderr %q; want 2, %q", code, stderr, want)
			}
		})
	}
}

// `-grace -1s` ran, and ended with "context deadline exceeded" and status 0;
// `-grace 5` was a bare parse error.
func TestRunGrace(t *testing.T) {
	t.Parallel()
	for args, want := range map[string]string{
		"-grace=-1s": `tether run: -grace: "-1s": the grace must be more than 0, as 10s (tether run -h for help)` + "\n",
		"-grace=5":   `tether run: -grace: "5" has no unit: durations need one, as in 5s (tether run -h for help)` + "\n",
	} {
		t.Run(args, func(t *testing.T) {
			t.Parallel()
			if code, stderr := runTether(t, nil, "run", args, "--", "true"); code != 2 || stderr != want {
				t.Errorf("status %d, stderr %q; want 2, %q", code, stderr, want)
			}
		})
	}
}

// `-containment pidns` was refused, though tether doctor lists the level:
// every level doctor names is accepted, by run and by up.
func TestRunContainmentDoctorLevels(t *testing.T) {
	t.Parallel()
	report := tether.Probe()
	for _, l := range report.Levels {
		got, err := parseContainment(l.Level.String())
		if err != nil || got != l.Level {
			t.Errorf("doctor's level %q: parsed as %v, %v", l.Level, got, err)
		}
		t.Run(l.Level.String(), func(t *testing.T) {
			t.Parallel()
			code, stderr := runTether(t, nil, "run", "-containment", l.Level.String(), "--", "true")
			switch {
			case l.Available && code != 0:
				t.Errorf("available here, but status %d, %q", code, stderr)
			case !l.Available && (code != 1 || stderr == ""):
				t.Errorf("unavailable here: status %d, %q; want 1 and why", code, stderr)
			}
			var out bytes.Buffer
			err := run(context.Background(), []string{"up", "-containment", l.Level.String(), "-color", "never",
				"-f", filepath.Join(upDir(t, map[string]string{"Procfile": "web: true\n"}), "Procfile")}, &out, io.Discard)
			if l.Available && err != nil {
				t.Errorf("tether up: %v\n%s", err, out.String())
			}
		})
	}
}

// One signal parser for every command: `-stop-signal term` worked for run
// and was refused by up.
func TestUpStopSignalTerm(t *testing.T) {
	t.Parallel()
	dir := upDir(t, map[string]string{"Procfile": "web: trap 'echo got TERM; exit 0' TERM; echo ready; while :; do sleep 0.05; done\n"})
	for _, sig := range []string{"term", "TERM", "SIGTERM", "sigterm", "15"} {
		t.Run(sig, func(t *testing.T) {
			t.Parallel()
			h := upStart(t, dir, "-stop-signal", sig)
			h.out.waitFor(t, "web.1  | ready\n")
			h.cancel()
			if err := h.wait(); err != nil {
				t.Errorf("%v:\n%s", err, h.out.String())
			}
			upInOrder(t, h.out.String(), "sending SIGTERM to all processes", "web.1  | got TERM\n")
		})
	}
	t.Run("TETHER_STOP_SIGNAL=term", func(t *testing.T) {
		t.Parallel()
		code, stderr := runTether(t, []string{"TETHER_STOP_SIGNAL=term"}, "up", "-f", filepath.Join(upDir(t, map[string]string{"Procfile": "web: true\n"}), "Procfile"))
		if code != 0 {
			t.Errorf("status %d, %q", code, stderr)
		}
	})
}

// tether run parses the canonical name the one parser stores, for every
// signal this OS has: the two cannot disagree.
func TestRunStopSignalOneParser(t *testing.T) {
	t.Parallel()
	for n := syscall.Signal(1); n <= 64; n++ {
		if !signalExists(n) {
			continue
		}
		for _, in := range []string{signalName(n), strings.ToLower(strings.TrimPrefix(signalName(n), "SIG")), strconv.Itoa(int(n))} {
			got, err := readSignal(in)
			if err != nil || got != n {
				t.Errorf("readSignal(%q) = %v, %v; want %v", in, got, err, n)
			}
		}
	}
	code, stderr := runTether(t, nil, "run", "-stop-signal", "term", "--", "true")
	if code != 0 {
		t.Errorf("tether run -stop-signal term: status %d, %q", code, stderr)
	}
}
