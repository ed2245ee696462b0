// Package cgroupfs is tether's cgroup v2 plumbing, shared by the parent
// (the cgroup level: its trees' cgroups, Signal, Kill, Exit's figures) and
// the keeper (its directory, proved its own by a lock; the watchdog's
// teardown): where this machine mounts cgroup v2, a keeper's directory and
// the collection of dead keepers' directories (tree_linux.go), and the
// files of one cgroup (procs, kill, cpu.stat, limits). Tests, benchmarks
// and container helpers use it too.
package cgroupfs

import (
	"bufio"
	"errors"
	"os"
	"strconv"
	"strings"
)

// Mount finds the cgroup v2 mount in /proc/self/mountinfo. It is not always
// /sys/fs/cgroup: hybrid hosts mount it at /sys/fs/cgroup/unified.
func Mount() (string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPER
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		if !ok {
			continue
		}
		if f := strings.Fields(post); len(f) > 0 && f[0] == "cgroup2" {
			if pf := strings.Fields(pre); len(pf) >= 5 {
				return unescape(pf[4]), nil
			}
		}
	}
	if err := sc.Err(); err != nil {
		return "", err
	}
	return "", errors.New("no cgroup2 mount")
}

// unescape undoes mountinfo's octal escapes (\040 for a space...).
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// Own is this process's cgroup v2 path, relative to the mount ("0::/path"
// in /proc/self/cgroup).
func Own() (string, error) {
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
