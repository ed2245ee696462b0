// Package testcgroup gives a test run, a benchmark or an experiment a cgroup
// v2 of its own, so that the keepers it starts make their cgroups there and
// can never reach another program's: a keeper collects stale keeper cgroups
// only among its siblings, and every keeper of the run is a descendant of
// the run's cgroup.
package testcgroup

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/tetherproc/tether/internal/cgroupfs"
)

// Jail is the cgroup a run moved itself into, under the one it started in.
type Jail struct {
	dir  string // the run's cgroup
	from string // the cgroup it came from, to return to
	lock int    // flock(LOCK_EX) on dir while the run lives, as keepers hold theirs
}

// prefixes of the cgroups runs make (testproc, cmd/tether's tests, bench).
var prefixes = []string{"tether-test-", "tether-cli-test-", "tether-bench-"}

// Enter moves this process (all its threads) into a new cgroup
// PREFIX-PID-RANDOM under its own; its children are born there. It fails
// where there is no cgroup v2 or its own cgroup is not writable: the run
// then cannot make cgroups either, and goes on where it is.
func Enter(prefix string) (*Jail, error) {
	mnt, err := cgroupfs.Mount()
	if err != nil {
		return nil, err
	}
	own, err := cgroupfs.Own()
	if err != nil {
		return nil, err
	}
	var rnd [4]byte
	_, _ = rand.Read(rnd[:]) // never fails (crypto/rand)
	from := filepath.Join(mnt, own)
	collectDeadRuns(from)
	dir := filepath.Join(from, prefix+"-"+strconv.Itoa(os.Getpid())+"-"+hex.EncodeToString(rnd[:]))
	if err := os.Mkdir(dir, 0o755); err != nil {
		return nil, err
	}
	lock, err := syscall.Open(dir, syscall.O_RDONLY|syscall.O_DIRECTORY|syscall.O_CLOEXEC, 0)
	if err == nil {
		err = syscall.Flock(lock, syscall.LOCK_EX|syscall.LOCK_NB)
	}
	if err == nil {
		err = moveSelf(dir)
	}
	if err != nil {
		_ = syscall.Close(lock) // best effort: -1 if the open failed
		_ = syscall.Rmdir(dir)  // best effort: it is empty
		return nil, err
	}
	return &Jail{dir: dir, from: from, lock: lock}, nil
}

// collectDeadRuns removes the cgroups of runs that were killed before they
// could leave (a test binary's timeout, a SIGKILL): siblings with a run's
// prefix, older than a minute, whose lock nobody holds and where no process
// is left. A live run holds its lock; one that still has processes is left
// alone.
func collectDeadRuns(parent string) {
	entries, _ := os.ReadDir(parent)
	for _, e := range entries {
		if !e.IsDir() || !slices.ContainsFunc(prefixes, func(p string) bool { return strings.HasPrefix(e.Name(), p) }) {
			continue
		}
		dir := filepath.Join(parent, e.Name())
		fd, err := syscall.Open(dir, syscall.O_RDONLY|syscall.O_DIRECTORY|syscall.O_CLOEXEC, 0)
		if err != nil {
			continue
		}
		// Older than a minute too: a run that made its cgroup an instant
		// ago may not hold its lock yet.
		var st syscall.Stat_t
		old := syscall.Fstat(fd, &st) == nil && time.Since(time.Unix(st.Mtim.Unix())) > time.Minute
		if old && syscall.Flock(fd, syscall.LOCK_EX|syscall.LOCK_NB) == nil {
			if ev, err := os.ReadFile(filepath.Join(dir, "cgroup.events")); err == nil && strings.Contains(string(ev), "populated 0") {
				removeTree(dir, 0)
			}
		}
		_ = syscall.Close(fd) // drops the lock, if we took it
	}
}

// removeTree removes dir and the cgroups below it, deepest first, trying for
// up to wait while they empty; it returns what it could not remove.
func removeTree(dir string, wait time.Duration) []string {
	var dirs, problems []string
	_ = filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			dirs = append(dirs, path)
		}
		return nil
	})
	deadline := time.Now().Add(wait)
	for i := len(dirs) - 1; i >= 0; i-- {
		for {
			err := syscall.Rmdir(dirs[i])
			if err == nil || errors.Is(err, syscall.ENOENT) {
				break
			}
			if !time.Now().Before(deadline) {
				problems = append(problems, fmt.Sprintf("cannot remove %s: %v", dirs[i], err))
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	return problems
}

// Dir is the run's cgroup directory.
func (j *Jail) Dir() string { return j.dir }

// Leftovers lists, one line each, the cgroups still under the run's cgroup:
// every keeper removes its own when it ends, so once the run's keepers are
// gone there must be none.
func (j *Jail) Leftovers() []string {
	var out []string
	entries, _ := os.ReadDir(j.dir)
	for _, e := range entries {
		if e.IsDir() {
			out = append(out, "cgroup left behind: "+filepath.Join(j.dir, e.Name()))
		}
	}
	return out
}

// Leave moves this process back where it came from and removes the run's
// cgroup with everything in it: processes of the run that are still there
// (idle keepers, which would end with this process anyway) are SIGKILLed by
// cgroup.kill, and cgroups left below are removed. It returns what it
// could not clean up.
func (j *Jail) Leave() []string {
	var problems []string
	if err := moveSelf(j.from); err != nil {
		return []string{fmt.Sprintf("cannot leave %s: %v", j.dir, err)}
	}
	_ = filepath.WalkDir(j.dir, func(path string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			_ = os.WriteFile(filepath.Join(path, "cgroup.kill"), []byte("1"), 0) // best effort: an empty cgroup needs none
		}
		return nil
	})
	// A killed cgroup empties as its processes die: allow five seconds.
	problems = append(problems, removeTree(j.dir, 5*time.Second)...)
	_ = syscall.Close(j.lock) // the run is over
	return problems
}

// moveSelf writes this process's pid to dir's cgroup.procs: cgroup v2 moves
// the whole process, every thread.
func moveSelf(dir string) error {
	return os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(strconv.Itoa(os.Getpid())), 0)
}
