package tether

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// cgroup2Mount finds the cgroup v2 mount in /proc/self/mountinfo. It is not
// always /sys/fs/cgroup: hybrid hosts mount it at /sys/fs/cgroup/unified.
func cgroup2Mount() (string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPER
		line := sc.Text()
		pre, post, ok := strings.Cut(line, " - ")
		if !ok {
			continue
		}
		if f := strings.Fields(post); len(f) > 0 && f[0] == "cgroup2" {
			if pf := strings.Fields(pre); len(pf) >= 5 {
				return unescapeMount(pf[4]), nil
			}
		}
	}
	if err := sc.Err(); err != nil {
		return "", err
	}
	return "", errors.New("no cgroup2 mount")
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space...).
func unescapeMount(s string) string {
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

// ownCgroup is this process's cgroup v2 path ("0::/path" in /proc/self/cgroup).
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

// cgroupParent creates the directory under which a keeper puts its trees'
// cgroups: a child of its own cgroup. An error means this machine offers no
// writable cgroup v2 subtree here.
func cgroupParent(name string) (string, error) {
	mnt, err := cgroup2Mount()
	if err != nil {
		return "", err
	}
	own, err := ownCgroup()
	if err != nil {
		return "", err
	}
	collectStaleKeepers(filepath.Join(mnt, own))
	dir := filepath.Join(mnt, own, name)
	if err := os.Mkdir(dir, 0o755); err != nil {
		return "", err
	}
	// cgroup.kill (Linux 5.14) is what makes a tree's kill atomic; without
	// it this level is not worth having.
	if _, err := os.Stat(filepath.Join(dir, "cgroup.kill")); err != nil {
		_ = os.Remove(dir) // best effort: it is empty
		return "", fmt.Errorf("cgroup.kill: %w", err)
	}
	return dir, nil
}

// cgroupProcs lists the processes in a cgroup.
func cgroupProcs(dir string) []int {
	b, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	if err != nil {
		return nil
	}
	var out []int
	for _, f := range strings.Fields(string(b)) {
		if pid, err := strconv.Atoi(f); err == nil {
			out = append(out, pid)
		}
	}
	return out
}

// cgroupKill SIGKILLs every process of the cgroup at once (cgroup.kill:
// nothing can fork its way out).
func cgroupKill(dir string) error {
	return os.WriteFile(filepath.Join(dir, "cgroup.kill"), []byte("1"), 0)
}

// cgroupRemove removes an empty cgroup; EBUSY while it is populated.
func cgroupRemove(dir string) error {
	err := unix.Rmdir(dir)
	if errors.Is(err, syscall.ENOENT) {
		return nil
	}
	return err
}

// cgroupCPU reads user and system time from cpu.stat: the whole tree's,
// reaped or not.
func cgroupCPU(dir string) (user, sys time.Duration) {
	b, err := os.ReadFile(filepath.Join(dir, "cpu.stat"))
	if err != nil {
		return 0, 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, _ := strings.Cut(line, " ")
		n, _ := strconv.ParseInt(v, 10, 64)
		switch k {
		case "user_usec":
			user = time.Duration(n) * time.Microsecond
		case "system_usec":
			sys = time.Duration(n) * time.Microsecond
		}
	}
	return user, sys
}

// cgroupMemoryPeak reads memory.peak (needs the memory controller); 0 if absent.
func cgroupMemoryPeak(dir string) int64 {
	b, err := os.ReadFile(filepath.Join(dir, "memory.peak"))
	if err != nil {
		return 0
	}
	n, _ := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	return n
}

// cgroupDestroy kills everything in dir's cgroup subtree and removes it,
// deepest first. It is how a parent cleans up after a keeper that was
// SIGKILLed, and how a new keeper collects a dead keeper's leftovers.
func cgroupDestroy(dir string) {
	var dirs []string
	_ = filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			dirs = append(dirs, path)
		}
		return nil
	})
	for _, d := range dirs {
		_ = cgroupKill(d) // best effort: a cgroup without processes needs none
	}
	// A killed cgroup empties within microseconds; allow a second.
	deadline := time.Now().Add(time.Second)
	for i := len(dirs) - 1; i >= 0; i-- {
		for cgroupRemove(dirs[i]) != nil && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
	}
}

// collectStaleKeepers destroys the cgroups of keepers that died without
// removing them (a SIGKILLed keeper whose parent died too): siblings named
// tether-keeper.PID whose PID is no longer a keeper.
func collectStaleKeepers(parent string) {
	entries, err := os.ReadDir(parent)
	if err != nil {
		return
	}
	for _, e := range entries {
		pidStr, ok := strings.CutPrefix(e.Name(), "tether-keeper.")
		if !ok || !e.IsDir() {
			continue
		}
		pid, err := strconv.Atoi(pidStr)
		if err != nil || pid == os.Getpid() {
			continue
		}
		cmd, _ := os.ReadFile("/proc/" + pidStr + "/cmdline")
		if strings.HasPrefix(string(cmd), "tether-keeper") {
			continue // alive: another parent's keeper
		}
		cgroupDestroy(filepath.Join(parent, e.Name()))
	}
}
