package tether

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
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

// cgroupParentEnv names the cgroup under which keepers make their
// directories, in place of their own cgroup: a delegated cgroup with no
// process of its own, which (unlike the cgroup tether runs in) may hand
// controllers down, so Limits work. A path under the cgroup2 mount, or
// relative to it.
const cgroupParentEnv = "TETHER_CGROUP_PARENT"

// cgroupBase is where keepers make their directories: $TETHER_CGROUP_PARENT,
// else this process's own cgroup.
func cgroupBase() (string, error) {
	mnt, err := cgroup2Mount()
	if err != nil {
		return "", err
	}
	if v := os.Getenv(cgroupParentEnv); v != "" {
		dir := v
		if !strings.HasPrefix(filepath.Clean(v)+"/", filepath.Clean(mnt)+"/") {
			dir = filepath.Join(mnt, v)
		}
		if _, err := os.Stat(filepath.Join(dir, "cgroup.procs")); err != nil {
			return "", fmt.Errorf("%s=%s: not a cgroup v2 directory: %w", cgroupParentEnv, v, err)
		}
		return dir, nil
	}
	own, err := ownCgroup()
	if err != nil {
		return "", err
	}
	return filepath.Join(mnt, own), nil
}

// cgroupParent creates the directory under which a keeper puts its trees'
// cgroups: a child of its own cgroup, or of $TETHER_CGROUP_PARENT. An
// error means this machine offers no writable cgroup v2 subtree here.
func cgroupParent(name string) (string, error) {
	base, err := cgroupBase()
	if err != nil {
		return "", err
	}
	if os.Getenv(cgroupParentEnv) != "" {
		// Hand down what the chosen parent is granted; it works where
		// that cgroup has no process of its own, which is the point of
		// choosing it. (Best effort: what fails is reported per tree.)
		_ = cgroupEnableControllers(base, limitControllers)
		// The parent may be shared by programs in other PID namespaces,
		// whose keepers' pids mean nothing here: the name says whose.
		name += "." + pidNamespaceID()
	}
	collectStaleKeepers(base)
	dir := filepath.Join(base, name)
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

// limitControllers are the controllers Limits use, enabled for trees'
// cgroups where the keeper's cgroup may have them. (cpu.stat's times need
// none.)
var limitControllers = []string{"memory", "pids"}

// cgroupEnableControllers enables each of want that dir's parent grants
// (dir/cgroup.controllers) in dir/cgroup.subtree_control, so the cgroups
// made under dir have its files (memory.max, memory.peak, pids.max). dir
// has no process of its own, as cgroup v2 requires. It returns each of want
// mapped to "" if trees get it, else to why not.
func cgroupEnableControllers(dir string, want []string) map[string]string {
	b, _ := os.ReadFile(filepath.Join(dir, "cgroup.controllers"))
	granted := strings.Fields(string(b))
	out := make(map[string]string, len(want))
	for _, c := range want {
		if !slices.Contains(granted, c) {
			out[c] = whyNotGranted(filepath.Dir(dir), c)
		} else if err := os.WriteFile(filepath.Join(dir, "cgroup.subtree_control"), []byte("+"+c), 0); err != nil {
			out[c] = err.Error()
		} else {
			out[c] = ""
		}
	}
	return out
}

// whyNotGranted explains why parent does not hand controller c down.
func whyNotGranted(parent, c string) string {
	if v1, _ := os.ReadFile("/proc/self/cgroup"); slices.ContainsFunc(strings.Split(string(v1), "\n"), func(l string) bool {
		f := strings.SplitN(l, ":", 3)
		return len(f) == 3 && f[0] != "0" && slices.Contains(strings.Split(f[1], ","), c)
	}) {
		return "held by a cgroup v1 hierarchy (a hybrid host), so cgroup v2 cannot have it"
	}
	b, _ := os.ReadFile(filepath.Join(parent, "cgroup.controllers"))
	if !slices.Contains(strings.Fields(string(b)), c) {
		return "not delegated to " + parent + " by its parent"
	}
	if os.Getenv(cgroupParentEnv) != "" {
		return "not in " + parent + "/cgroup.subtree_control: the cgroup " + cgroupParentEnv +
			" names must have no process of its own for cgroup v2 to let it hand controllers down"
	}
	return "not in " + parent + "/cgroup.subtree_control: cgroup v2 lets a cgroup hand controllers down only " +
		"when it has no process of its own (or is the root); set " + cgroupParentEnv +
		" to a delegated cgroup without processes (docs/design.md)"
}

// cgroupSetLimits writes memory.max and pids.max for the non-zero limits;
// controllers is what cgroupEnableControllers said.
func cgroupSetLimits(dir string, memoryMax, pidsMax int64, controllers map[string]string) error {
	for _, l := range []struct {
		v          int64
		file, ctrl string
	}{{memoryMax, "memory.max", "memory"}, {pidsMax, "pids.max", "pids"}} {
		if l.v == 0 {
			continue
		}
		if err := os.WriteFile(filepath.Join(dir, l.file), []byte(strconv.FormatInt(l.v, 10)), 0); err != nil {
			why, known := controllers[l.ctrl]
			if known && why == "" {
				return fmt.Errorf("%s: %v", l.file, err) // not %w: the keeper would send the errno alone
			}
			if !known {
				why = "not enabled"
			}
			return fmt.Errorf("%s: the %s controller is not available to tether's cgroups here: %s (see tether doctor)", l.file, l.ctrl, why)
		}
	}
	return nil
}

// cgroupOOMKills reads oom_kill from memory.events: processes of the tree
// the OOM killer killed; 0 without the memory controller.
func cgroupOOMKills(dir string) int {
	b, err := os.ReadFile(filepath.Join(dir, "memory.events"))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "oom_kill "); ok {
			n, _ := strconv.Atoi(v)
			return n
		}
	}
	return 0
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

// pidNamespaceID names this process's PID namespace: the inode number of
// /proc/self/ns/pid ("4026531836"), or "0" if it cannot be read.
func pidNamespaceID() string {
	l, err := os.Readlink("/proc/self/ns/pid")
	if v, ok := strings.CutPrefix(l, "pid:["); err == nil && ok {
		return strings.TrimSuffix(v, "]")
	}
	return "0"
}

// collectStaleKeepers destroys the cgroups of keepers that died without
// removing them (a SIGKILLed keeper whose parent died too): siblings named
// tether-keeper.PID whose PID is no longer a keeper.
//
// A name may end in ".NS", the PID namespace of a keeper under
// TETHER_CGROUP_PARENT: only those of this process's namespace are judged,
// as another namespace's pids cannot be looked up here.
func collectStaleKeepers(parent string) {
	entries, err := os.ReadDir(parent)
	if err != nil {
		return
	}
	ns := pidNamespaceID()
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), "tether-keeper.")
		if !ok || !e.IsDir() {
			continue
		}
		pidStr, theirNS, hasNS := strings.Cut(rest, ".")
		if hasNS && theirNS != ns {
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
