package cgroupfs

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// ParentEnv names the cgroup under which keepers make their
// directories, in place of their own cgroup: a delegated cgroup with no
// process of its own, which (unlike the cgroup tether runs in) may hand
// controllers down, so Limits work. A path under the cgroup2 mount, or
// relative to it.
const ParentEnv = "TETHER_CGROUP_PARENT"

// base is where keepers make their directories: $TETHER_CGROUP_PARENT,
// else this process's own cgroup.
func base() (string, error) {
	mnt, err := Mount()
	if err != nil {
		return "", err
	}
	if v := os.Getenv(ParentEnv); v != "" {
		dir := v
		if !strings.HasPrefix(filepath.Clean(v)+"/", filepath.Clean(mnt)+"/") {
			dir = filepath.Join(mnt, v)
		}
		if _, err := os.Stat(filepath.Join(dir, "cgroup.procs")); err != nil {
			return "", fmt.Errorf("%s=%s: not a cgroup v2 directory: %w", ParentEnv, v, err)
		}
		return dir, nil
	}
	own, err := Own()
	if err != nil {
		return "", err
	}
	return filepath.Join(mnt, own), nil
}

// Keeper cgroups: who owns one is proved by a lock, never by a pid.
//
// A keeper's directory is named KeeperPrefix + "PID-RANDOM": the pid
// (in the keeper's own PID namespace) is there for people reading ps and
// the tree, and means nothing to tether; RANDOM makes two keepers' names
// differ even when their pids are equal in their namespaces. The keeper
// holds flock(LOCK_EX) on the directory itself for as long as it lives (the
// descriptor is close-on-exec, so no child inherits it). The lock is on the
// cgroup's inode, which every process that can see the cgroup shares,
// whatever its PID, mount or cgroup namespace; the kernel drops it when the
// keeper ends, however it ends. A keeper that dies without removing its
// directory (it and its parent were SIGKILLed) thus leaves it unlocked, and
// the next keeper to start under the same parent collects it
// (CollectStale).
//
// Old tether versions named their directories "tether-keeper.PID" and held
// no lock: such a name is never collected, as nothing can tell whether its
// keeper lives.
const KeeperPrefix = "tether-keeper-"

// staleSetupAge is how old an unlocked keeper directory without trees must
// be before it counts as stale: younger, it may be one a keeper has just
// made and not locked yet.
const staleSetupAge = 30 * time.Second

// KeeperDir is a keeper's own cgroup directory and the lock that proves
// it is the keeper's.
type KeeperDir struct {
	Dir  string
	lock int // an O_RDONLY descriptor of dir, flock(LOCK_EX)ed; -1 once closed
}

// close releases the lock. The keeper calls it only after removing dir, or
// never: its exit releases it.
func (c *KeeperDir) Close() {
	if c.lock >= 0 {
		_ = unix.Close(c.lock) // best effort: it only drops the lock
		c.lock = -1
	}
}

// NewKeeperDir creates and locks the directory under which a keeper puts
// its trees' cgroups: a child of its own cgroup, or of
// $TETHER_CGROUP_PARENT. Stale directories of dead keepers under the same
// parent are collected first. An error means this machine offers no
// writable cgroup v2 subtree here.
func NewKeeperDir() (*KeeperDir, error) {
	base, err := base()
	if err != nil {
		return nil, err
	}
	if os.Getenv(ParentEnv) != "" {
		// Hand down what the chosen parent is granted; it works where
		// that cgroup has no process of its own, which is the point of
		// choosing it. (Best effort: what fails is reported per tree.)
		_ = EnableControllers(base, LimitControllers)
	}
	CollectStale(base)
	c, err := newKeeperDir(base)
	if err != nil {
		return nil, err
	}
	// cgroup.kill (Linux 5.14) is what makes a tree's kill atomic; without
	// it this level is not worth having.
	if _, err := os.Stat(filepath.Join(c.Dir, "cgroup.kill")); err != nil {
		_ = os.Remove(c.Dir) // best effort: it is empty
		c.Close()
		return nil, fmt.Errorf("cgroup.kill: %w", err)
	}
	return c, nil
}

// newKeeperDir makes a keeper directory under base with a name no other
// keeper has, and locks it.
func newKeeperDir(base string) (*KeeperDir, error) {
	var lastErr error
	for attempt := 0; attempt < 8; attempt++ {
		var rnd [6]byte
		if _, err := rand.Read(rnd[:]); err != nil {
			return nil, err
		}
		dir := filepath.Join(base, KeeperPrefix+strconv.Itoa(os.Getpid())+"-"+hex.EncodeToString(rnd[:]))
		if err := os.Mkdir(dir, 0o755); err != nil {
			if errors.Is(err, fs.ErrExist) {
				lastErr = err
				continue // another keeper's, however unlikely: another name
			}
			return nil, err
		}
		fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if errors.Is(err, unix.ENOENT) {
			lastErr = err
			continue // a collector removed it (a clock that jumped): another name
		}
		if err != nil {
			_ = unix.Rmdir(dir) // best effort: it is empty
			return nil, err
		}
		// A collector may hold the lock for an instant while it looks at
		// the new directory (and leaves it: it has no trees and is young).
		if err := flockWithin(fd, time.Second); err != nil {
			_ = unix.Close(fd)
			lastErr = err
			continue // leave it: a young, empty directory, collected later
		}
		// ...or, with a clock that jumped, removed it just before we
		// locked it: then the descriptor names a removed directory.
		if err := unix.Faccessat(fd, "cgroup.procs", unix.F_OK, 0); err != nil {
			_ = unix.Close(fd)
			lastErr = err
			continue
		}
		return &KeeperDir{Dir: dir, lock: fd}, nil
	}
	return nil, fmt.Errorf("no keeper cgroup under %s: %w", base, lastErr)
}

// flockWithin takes flock(LOCK_EX) on fd, trying for up to d: a collector
// holds another keeper's lock only while it looks.
func flockWithin(fd int, d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		err := unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) || time.Now().After(deadline) {
			return err
		}
		time.Sleep(time.Millisecond)
	}
}

// CollectStale destroys the directories of keepers that died without
// removing them (a SIGKILLed keeper whose parent was SIGKILLed too), under
// parent: those of KeeperPrefix whose lock nobody holds and that have
// trees, or are older than staleSetupAge. It holds each one's lock while it
// looks and destroys, so a live keeper's directory (locked) is never
// touched, nor is one another collector is destroying.
func CollectStale(parent string) {
	entries, err := os.ReadDir(parent)
	if err != nil {
		return
	}
	for _, e := range entries {
		if !e.IsDir() || !strings.HasPrefix(e.Name(), KeeperPrefix) {
			continue
		}
		dir := filepath.Join(parent, e.Name())
		fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			continue // removed meanwhile
		}
		if unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB) == nil && isStale(dir, fd) {
			Destroy(dir)
		}
		_ = unix.Close(fd) // drops the lock, if we took it
	}
}

// isStale judges an unlocked keeper directory, which fd (locked
// by the caller) names: a keeper makes its trees' cgroups only once it holds
// the lock, so one with trees has lost its keeper; one without is stale
// once it is older than staleSetupAge.
func isStale(dir string, fd int) bool {
	if entries, err := os.ReadDir(dir); err == nil {
		for _, e := range entries {
			if e.IsDir() {
				return true
			}
		}
	}
	var st unix.Stat_t
	if unix.Fstat(fd, &st) != nil {
		return false
	}
	// A cgroup directory's mtime is set at its creation, and later only
	// moves forward (cgroups added or removed below it): at worst a stale
	// one looks younger, and waits for a later collector.
	made := time.Unix(st.Mtim.Unix())
	return time.Since(made) > staleSetupAge
}

// Procs lists the processes in a cgroup.
func Procs(dir string) []int {
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

// Kill SIGKILLs every process of the cgroup at once (cgroup.kill:
// nothing can fork its way out).
func Kill(dir string) error {
	return os.WriteFile(filepath.Join(dir, "cgroup.kill"), []byte("1"), 0)
}

// Freeze freezes the cgroup at dir and its descendants (cgroup.freeze,
// Linux 5.2) and waits up to timeout for the kernel to say it is frozen
// (cgroup.events "frozen 1"), so that a read of its processes then is the
// whole of them: none forks meanwhile. It returns the thaw, to call once
// the frozen processes have been dealt with (signals sent to them are
// delivered at the thaw). Where the cgroup cannot be frozen, it freezes
// nothing and the thaw does nothing; past timeout (a member in
// uninterruptible sleep), it goes on with the cgroup part frozen. A cgroup
// someone else froze stays frozen: the thaw does nothing then either.
func Freeze(dir string, timeout time.Duration) (thaw func()) {
	file := filepath.Join(dir, "cgroup.freeze")
	thaw = func() { _ = os.WriteFile(file, []byte("0"), 0) } // best effort: removed, it is empty
	if b, err := os.ReadFile(file); err == nil && bytes.HasPrefix(b, []byte("1")) {
		thaw = func() {} // not ours to thaw
	} else if err := os.WriteFile(file, []byte("1"), 0); err != nil {
		return func() {}
	}
	fd, err := unix.Open(filepath.Join(dir, "cgroup.events"), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return thaw
	}
	defer unix.Close(fd)
	_, _ = waitEvents(fd, time.Now().Add(timeout), func(events []byte) bool {
		return bytes.Contains(events, []byte("frozen 1"))
	}) // past the timeout, or unreadable: on, part frozen
	return thaw
}

// waitEvents waits until the deadline for cond to hold of cgroup.events,
// open as fd, and reports whether it held, or the error of a read that
// failed. Between reads it sleeps in poll(2): the kernel marks the file
// changed (POLLPRI) when "populated" or "frozen" flips, and each read
// re-arms that, so a flip just after a read still wakes the poll.
//
// But the kernel sends that mark at most once per 10 ms (HZ/100 jiffies,
// rounded up: 12 ms at HZ=250) per file (CGROUP_FILE_NOTIFY_MIN_INTV in
// kernel/cgroup/cgroup.c), later ones
// deferred to the interval's end, and a tree's cgroup has often just been
// marked (its first process entered it; the freeze began). What the file
// says is current when read, so the first polls are short (1, 2, 4, 8 ms):
// a freeze of a few processes was seen 10 ms late otherwise (the keeper's
// teardown of one process took 12.8 ms at the median instead of 1.7 ms).
func waitEvents(fd int, deadline time.Time, cond func(events []byte) bool) (bool, error) {
	var buf [128]byte
	step := time.Millisecond
	for {
		n, err := unix.Pread(fd, buf[:], 0)
		if err != nil {
			return false, err
		}
		if cond(buf[:n]) {
			return true, nil
		}
		left := time.Until(deadline)
		if left <= 0 {
			return false, nil
		}
		// At most a minute at a time: poll takes milliseconds in an int,
		// which a timeout of years would overflow.
		ms := int(min(left, time.Minute)/time.Millisecond) + 1
		if step <= 8*time.Millisecond {
			ms = min(ms, int(step/time.Millisecond))
			step *= 2
		}
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLPRI}}
		if _, err := unix.Poll(fds, ms); err != nil && err != unix.EINTR {
			time.Sleep(10 * time.Millisecond) // cannot happen on a valid fd; look again, bounded by the deadline
		}
	}
}

// WaitEmpty waits up to timeout for the cgroup at dir to hold no process,
// or for still to say it is no longer the caller's to wait for, and reports
// whether either came (a cgroup gone counts as empty). It sleeps in poll(2)
// on cgroup.events (waitEvents; Documentation/admin-guide/cgroup-v2.rst).
func WaitEmpty(dir string, timeout time.Duration, still func() bool) bool {
	deadline := time.Now().Add(timeout)
	fd, err := unix.Open(filepath.Join(dir, "cgroup.events"), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ENODEV) {
		return true
	}
	if err != nil {
		// EMFILE, say: no poll, so look again every 10 ms.
		for Populated(dir) && still() {
			if time.Until(deadline) <= 0 {
				return false
			}
			time.Sleep(10 * time.Millisecond)
		}
		return true
	}
	defer unix.Close(fd)
	ok, err := waitEvents(fd, deadline, func(events []byte) bool {
		return !bytes.Contains(events, []byte("populated 1")) || !still()
	})
	return ok || errors.Is(err, syscall.ENODEV) // ENODEV: removed meanwhile
}

// Remove removes an empty cgroup; EBUSY while it is populated.
func Remove(dir string) error {
	err := unix.Rmdir(dir)
	if errors.Is(err, syscall.ENOENT) {
		return nil
	}
	return err
}

// CPU reads user and system time from cpu.stat: the whole tree's,
// reaped or not.
func CPU(dir string) (user, sys time.Duration) {
	b, err := os.ReadFile(filepath.Join(dir, "cpu.stat"))
	if err != nil {
		return 0, 0
	}
	return parseCPU(b)
}

// File is one cgroup's cpu.stat and cgroup.events, kept open: a read is one
// pread(2) at offset 0, which makes the kernel write the file anew, where
// CPU and Populated open, stat, read and close (measured: a tenth of a
// spawn's time in the parent at the cgroup level went to those two). The
// zero File has neither (-1 each, and reads fall back to the path).
type File struct {
	dir                     string
	cpu, events, procs, sub int // cpu.stat, cgroup.events, cgroup.procs, cgroup.stat
}

// OpenFiles opens dir's cpu.stat and cgroup.events. Close them with Close.
func OpenFiles(dir string) *File {
	f := &File{dir: dir, cpu: -1, events: -1, procs: -1, sub: -1}
	for _, o := range []struct {
		name string
		fd   *int
	}{{"cpu.stat", &f.cpu}, {"cgroup.events", &f.events}, {"cgroup.procs", &f.procs}, {"cgroup.stat", &f.sub}} {
		if fd, err := unix.Open(filepath.Join(dir, o.name), unix.O_RDONLY|unix.O_CLOEXEC, 0); err == nil {
			*o.fd = fd
		}
	}
	return f
}

// ProcsTree is ProcsTree(dir), through the open files: one read of
// cgroup.procs, and of cgroup.stat to know whether cgroups below it need
// the walk.
func (f *File) ProcsTree() []int {
	if f.procs < 0 || f.sub < 0 {
		return ProcsTree(f.dir)
	}
	var sb [256]byte
	n, err := unix.Pread(f.sub, sb[:], 0)
	if err != nil || !bytes.Contains(sb[:n], []byte("nr_descendants 0\n")) {
		return ProcsTree(f.dir) // cgroups below it (a nested tether's): walk
	}
	buf := make([]byte, 4096)
	for {
		n, err = unix.Pread(f.procs, buf, 0)
		if err != nil {
			return ProcsTree(f.dir)
		}
		if n < len(buf) {
			break
		}
		buf = make([]byte, 2*len(buf)) // a big tree: read it whole
	}
	var out []int
	for _, w := range bytes.Fields(buf[:n]) {
		if pid, err := strconv.Atoi(string(w)); err == nil {
			out = append(out, pid)
		}
	}
	return out
}

// Close closes what OpenFiles opened.
func (f *File) Close() {
	for _, fd := range []*int{&f.cpu, &f.events, &f.procs, &f.sub} {
		if *fd >= 0 {
			_ = unix.Close(*fd) // best effort: read-only files
			*fd = -1
		}
	}
}

// CPU is CPU(dir), through the open file.
func (f *File) CPU() (user, sys time.Duration) {
	var buf [1024]byte
	if f.cpu < 0 {
		return CPU(f.dir)
	}
	n, err := unix.Pread(f.cpu, buf[:], 0)
	if err != nil || n == len(buf) {
		return CPU(f.dir) // (a cpu.stat longer than we thought: read it whole)
	}
	return parseCPU(buf[:n])
}

// Populated is Populated(dir), through the open file.
func (f *File) Populated() bool {
	var buf [128]byte
	if f.events < 0 {
		return Populated(f.dir)
	}
	n, err := unix.Pread(f.events, buf[:], 0)
	if err != nil {
		return Populated(f.dir)
	}
	return bytes.Contains(buf[:n], []byte("populated 1"))
}

func parseCPU(b []byte) (user, sys time.Duration) {
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

// MemoryPeak reads memory.peak (needs the memory controller); 0 if absent.
func MemoryPeak(dir string) int64 {
	b, err := os.ReadFile(filepath.Join(dir, "memory.peak"))
	if err != nil {
		return 0
	}
	n, _ := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	return n
}

// LimitControllers are the controllers Limits use, enabled for trees'
// cgroups where the keeper's cgroup may have them. (cpu.stat's times need
// none.)
var LimitControllers = []string{"memory", "pids"}

// EnableControllers enables each of want that dir's parent grants
// (dir/cgroup.controllers) in dir/cgroup.subtree_control, so the cgroups
// made under dir have its files (memory.max, memory.peak, pids.max). dir
// has no process of its own, as cgroup v2 requires. It returns each of want
// mapped to "" if trees get it, else to why not.
func EnableControllers(dir string, want []string) map[string]string {
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
	if os.Getenv(ParentEnv) != "" {
		return "not in " + parent + "/cgroup.subtree_control: the cgroup " + ParentEnv +
			" names must have no process of its own for cgroup v2 to let it hand controllers down"
	}
	return "not in " + parent + "/cgroup.subtree_control: cgroup v2 lets a cgroup hand controllers down only " +
		"when it has no process of its own (or is the root); set " + ParentEnv +
		" to a delegated cgroup without processes (docs/design.md)"
}

// Limits are a tree's memory.max and pids.max; 0 is none.
type Limits struct {
	MemoryMax, PidsMax int64
}

// SetLimits writes memory.max and pids.max where want differs from
// had, what the cgroup has now ("max" for a zero limit: none); controllers
// is what EnableControllers said.
func SetLimits(dir string, want, had Limits, controllers map[string]string) error {
	for _, l := range []struct {
		want, had  int64
		file, ctrl string
	}{{want.MemoryMax, had.MemoryMax, "memory.max", "memory"}, {want.PidsMax, had.PidsMax, "pids.max", "pids"}} {
		if l.want == l.had {
			continue
		}
		v := "max"
		if l.want != 0 {
			v = strconv.FormatInt(l.want, 10)
		}
		if err := os.WriteFile(filepath.Join(dir, l.file), []byte(v), 0); err != nil {
			why, known := controllers[l.ctrl]
			if known && why == "" {
				return fmt.Errorf("%s: %v", l.file, err)
			}
			if !known {
				why = "not enabled"
			}
			return fmt.Errorf("%s: the %s controller is not available to tether's cgroups here: %s (see tether doctor)", l.file, l.ctrl, why)
		}
	}
	return nil
}

// OOMKills reads oom_kill from memory.events: processes of the tree
// the OOM killer killed; 0 without the memory controller.
func OOMKills(dir string) int {
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

// dirs lists dir and every cgroup below it, parents first.
func dirs(dir string) []string {
	var dirs []string
	_ = filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			dirs = append(dirs, path)
		}
		return nil
	})
	return dirs
}

// ProcsTree lists the processes in dir's cgroup and below it.
func ProcsTree(dir string) []int {
	var out []int
	for _, d := range dirs(dir) {
		out = append(out, Procs(d)...)
	}
	return out
}

// RemoveAll removes dir's cgroup subtree, deepest first, where it is
// empty; it kills nothing.
func RemoveAll(dir string) {
	dirs := dirs(dir)
	for i := len(dirs) - 1; i >= 0; i-- {
		_ = Remove(dirs[i]) // best effort: EBUSY while populated
	}
}

// Destroy kills everything in dir's cgroup subtree and removes it,
// deepest first. It is how a parent cleans up after a keeper that was
// SIGKILLed, and how a new keeper collects a dead keeper's leftovers.
func Destroy(dir string) {
	dirs := dirs(dir)
	for _, d := range dirs {
		_ = Kill(d) // best effort: a cgroup without processes needs none
	}
	// A killed cgroup empties within microseconds; allow a second.
	deadline := time.Now().Add(time.Second)
	for i := len(dirs) - 1; i >= 0; i-- {
		for Remove(dirs[i]) != nil && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
	}
}

// Populated reads cgroup.events: whether a process is in the cgroup
// or below it. An unreadable file (a removed cgroup) is not populated.
func Populated(dir string) bool {
	b, err := os.ReadFile(filepath.Join(dir, "cgroup.events"))
	return err == nil && strings.Contains(string(b), "populated 1")
}
