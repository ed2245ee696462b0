//go:build linux

package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// init records, when TETHER_TEST_INIT_LOG names a file, the pid of every
// process that runs the init functions of this package: one that imports
// tether, as a host program's main package does.
func init() {
	if path := os.Getenv("TETHER_TEST_INIT_LOG"); path != "" {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
		if err == nil {
			_, _ = f.WriteString(strconv.Itoa(os.Getpid()) + "\n") // a failure shows as a missing line
			_ = f.Close()
		}
	}
}

// The package documentation says a keeper, a re-execution of the host's
// binary, never runs the init functions of a package that imports tether
// (its main included): tether's init takes the process over first. tether
// run at each keeper level starts a keeper from this very binary, with the
// variable in its environment; only tether run's own process may log.
func TestRunKeeperSkipsHostInit(t *testing.T) {
	t.Parallel()
	for _, level := range []string{"keeper", "cgroup", "pidns"} {
		t.Run(level, func(t *testing.T) {
			t.Parallel()
			log := filepath.Join(t.TempDir(), "inits")
			c := tetherCmd("run", "-containment", level, "--", "true")
			c.Env = append(c.Env, "TETHER_TEST_INIT_LOG="+log)
			var stderr strings.Builder
			c.Stderr = &stderr
			if err := c.Start(); err != nil {
				t.Fatal(err)
			}
			if err := waitBounded(t, c, 30*time.Second); err != nil {
				t.Skipf("level %s not here: %v, %s", level, err, stderr.String())
			}
			b, err := os.ReadFile(log)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := strings.Fields(string(b)), []string{strconv.Itoa(c.Process.Pid)}; strings.Join(got, " ") != strings.Join(want, " ") {
				t.Errorf("this package's init ran in pids %v; want only tether run's, %v (a keeper ran it)", got, want)
			}
		})
	}
}
