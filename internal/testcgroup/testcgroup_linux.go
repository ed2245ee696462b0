// Package testcgroup gives a test run, a benchmark or an experiment a cgroup
// v2 of its own, so that the keepers it starts make their cgroups there and
// can never reach another program's: a keeper collects stale keeper cgroups
// only among its siblings, and every keeper of the run is a descendant of
// the run's cgroup.
package testcgroup

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Jail is the cgroup a run moved itself into, under the one it started in.
type Jail struct {
	dir  string // the run's cgroup
	from string // the cgroup it came from, to return to
}

// Enter moves this process (all its threads) into a new cgroup
// PREFIX-PID-RANDOM under its own; its children are born there. It fails
// where there is no cgroup v2 or its own cgroup is not writable: the run
// then cannot make cgroups either, and goes on where it is.
func Enter(prefix string) (*Jail, error) {
	mnt, err := mount()
	if err != nil {
		return nil, err
	}
	own, err := ownCgroup()
	if err != nil {
		return nil, err
	}
	var rnd [4]byte
	_, _ = rand.Read(rnd[:]) // never fails (crypto/rand)
	from := filepath.Join(mnt, own)
	dir := filepath.Join(from, prefix+"-"+strconv.Itoa(os.Getpid())+"-"+hex.EncodeToString(rnd[:]))
	if err := os.Mkdir(dir, 0o755); err != nil {
		return nil, err
	}
	if err := moveSelf(dir); err != nil {
		_ = syscall.Rmdir(dir) // best effort: it is empty
		return nil, err
	}
	return &Jail{dir: dir, from: from}, nil
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
	var dirs []string
	_ = filepath.WalkDir(j.dir, func(path string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			dirs = append(dirs, path)
		}
		return nil
	})
	for _, d := range dirs {
		_ = os.WriteFile(filepath.Join(d, "cgroup.kill"), []byte("1"), 0) // best effort: an empty cgroup needs none
	}
	// A killed cgroup empties as its processes die: allow five seconds.
	deadline := time.Now().Add(5 * time.Second)
	for i := len(dirs) - 1; i >= 0; i-- {
		for {
			err := syscall.Rmdir(dirs[i])
			if err == nil || errors.Is(err, syscall.ENOENT) {
				break
			}
			if time.Now().After(deadline) {
				problems = append(problems, fmt.Sprintf("cannot remove %s: %v", dirs[i], err))
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	return problems
}

// moveSelf writes this process's pid to dir's cgroup.procs: cgroup v2 moves
// the whole process, every thread.
func moveSelf(dir string) error {
	return os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(strconv.Itoa(os.Getpid())), 0)
}

// mount finds the cgroup v2 mount in /proc/self/mountinfo (on hybrid hosts
// it is not /sys/fs/cgroup).
func mount() (string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		if fs := strings.Fields(post); ok && len(fs) > 0 && fs[0] == "cgroup2" {
			if pf := strings.Fields(pre); len(pf) >= 5 {
				return strings.ReplaceAll(pf[4], `\040`, " "), nil
			}
		}
	}
	return "", errors.New("no cgroup2 mount")
}

func ownCgroup() (string, error) {
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if p, ok := strings.CutPrefix(line, "0::"); ok {
			return p, nil
		}
	}
	return "", errors.New("no cgroup v2 entry in /proc/self/cgroup")
}
