// Package oci runs programs as PID 1 of runc containers, for the tests and
// benchmarks that show tether run as a container's init. Not API.
//
// Every container's cgroup is made under a cgroup v2 directory the caller
// names (its own test or benchmark cgroup), never elsewhere, whatever the
// host's cgroup layout. runc chooses its layout from what it finds at
// /sys/fs/cgroup: on a hybrid host (cgroup v1 controllers there, cgroup v2 at
// /sys/fs/cgroup/unified) it makes a cgroup in every v1 hierarchy and, for
// v2, puts even a relative cgroupsPath at the root of the unified hierarchy
// (runc 1.1.5, measured), outside the caller's cgroup. So each runc runs in
// a mount namespace of its own where the caller's cgroup v2 directory is
// bind-mounted on /sys/fs/cgroup: runc sees a pure cgroup v2 host whose root
// is the caller's cgroup, makes the container's cgroup below it, leaves
// every v1 hierarchy alone (so the container stays in the caller's v1
// cgroups too), and cannot write to any cgroup above it.
package oci

import (
	"bytes"
	"debug/elf"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/tetherproc/tether/internal/cgroupfs"
)

// Runc runs runc with its state and its containers' cgroups apart from any
// other runc user.
type Runc struct {
	Path      string // the runc binary
	Root      string // runc --root: where this caller's containers' state lives
	CgroupDir string // the cgroup v2 directory every container's cgroup is made in
}

// Command is runc with args, run in a mount namespace of its own where
// CgroupDir is /sys/fs/cgroup (see the package doc). Every runc command for
// a container must go through it: runc finds the container's cgroup again
// by the path it saved, relative to /sys/fs/cgroup.
func (r *Runc) Command(args ...string) *exec.Cmd {
	c := exec.Command("/bin/sh", append([]string{"-c", `mount --bind "$0" /sys/fs/cgroup && exec "$@"`,
		r.CgroupDir, r.Path, "--root", r.Root}, args...)...)
	// Go's fork makes / private (MS_REC|MS_PRIVATE) after CLONE_NEWNS, as
	// unshare(1) does, so the bind mount stays in this namespace.
	c.SysProcAttr = &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS}
	return c
}

// InitPID is the host pid of container id's PID 1, from `runc state`.
func (r *Runc) InitPID(id string) (int, error) {
	out, err := Output(r.Command("state", id), time.Minute)
	if err != nil {
		return 0, err
	}
	var st struct {
		Pid int `json:"pid"`
	}
	if err := json.Unmarshal(out, &st); err != nil {
		return 0, fmt.Errorf("runc state %s: %w", id, err)
	}
	return st.Pid, nil
}

// Output runs cmd and returns its stdout; its stderr is in the error. A cmd
// still running after d is killed.
func Output(cmd *exec.Cmd, d time.Duration) ([]byte, error) {
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }() // owner: Output; ends when cmd is reaped
	var err error
	select {
	case err = <-done:
	case <-time.After(d):
		_ = cmd.Process.Kill() // best effort: it may have just exited
		<-done
		err = fmt.Errorf("still running after %v", d)
	}
	if err != nil {
		return stdout.Bytes(), fmt.Errorf("%v: %w: %s", cmd.Args, err, bytes.TrimSpace(stderr.Bytes()))
	}
	return stdout.Bytes(), nil
}

// OwnCgroup is the cgroup v2 directory this process is in, found through
// /proc/self/mountinfo (on hybrid hosts the mount is not /sys/fs/cgroup).
func OwnCgroup() (string, error) {
	mnt, err := cgroupfs.Mount()
	if err != nil {
		return "", err
	}
	own, err := cgroupfs.Own()
	if err != nil {
		return "", err
	}
	return filepath.Join(mnt, own), nil
}

// Bundle is what WriteBundle needs.
type Bundle struct {
	// Files are copied into the root filesystem: path there -> file here.
	// Nothing else is in it but the mount points runc makes.
	Files map[string]string
	Args  []string // PID 1's argv
	// CgroupsPath is the container's cgroup, absolute: under Runc.CgroupDir.
	CgroupsPath string
}

// WriteBundle makes dir an OCI bundle: dir/rootfs with b.Files, and a
// config.json close to `runc spec`'s (its capabilities, namespaces, masked
// paths and mounts) with a read-only root, no terminal, a cgroup namespace
// and cgroup2 mounted read-only, as Docker does on cgroup v2. No seccomp
// profile.
func WriteBundle(dir string, b Bundle) error {
	rootfs := filepath.Join(dir, "rootfs")
	if err := os.MkdirAll(rootfs, 0o755); err != nil {
		return err
	}
	for dst, src := range b.Files {
		if err := copyFile(filepath.Join(rootfs, dst), src); err != nil {
			return err
		}
	}
	caps := []string{"CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"}
	ns := func(types ...string) []map[string]string {
		var out []map[string]string
		for _, t := range types {
			out = append(out, map[string]string{"type": t})
		}
		return out
	}
	config := map[string]any{
		"ociVersion": "1.0.2-dev",
		"process": map[string]any{
			"terminal": false,
			"user":     map[string]int{"uid": 0, "gid": 0},
			"args":     b.Args,
			"env":      []string{"PATH=/"},
			"cwd":      "/",
			"capabilities": map[string][]string{
				"bounding": caps, "effective": caps, "permitted": caps, "ambient": caps,
			},
			"rlimits":         []map[string]any{{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}},
			"noNewPrivileges": true,
		},
		"root":     map[string]any{"path": "rootfs", "readonly": true},
		"hostname": "tether-container-test",
		"mounts": []map[string]any{
			{"destination": "/proc", "type": "proc", "source": "proc"},
			{"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
			{"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"}},
			{"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": []string{"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}},
			{"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": []string{"nosuid", "noexec", "nodev", "ro"}},
			{"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": []string{"nosuid", "noexec", "nodev", "relatime", "ro"}},
		},
		"linux": map[string]any{
			"cgroupsPath": b.CgroupsPath,
			"resources":   map[string]any{"devices": []map[string]any{{"allow": false, "access": "rwm"}}},
			"namespaces":  ns("pid", "network", "ipc", "uts", "mount", "cgroup"),
			"maskedPaths": []string{"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
				"/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi"},
			"readonlyPaths": []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"},
		},
	}
	js, err := json.MarshalIndent(config, "", "\t")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "config.json"), js, 0o644)
}

func copyFile(dst, src string) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		_ = out.Close() // the copy's error is the one to report
		return err
	}
	return out.Close()
}

// Static returns an error unless path is an ELF executable that needs no
// dynamic loader and no shared library: one that runs without libc.
func Static(path string) error {
	f, err := elf.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			return fmt.Errorf("%s is dynamically linked (%v)", path, p.Type)
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 { // no dynamic section: no error to tell
		return fmt.Errorf("%s needs %v", path, libs)
	}
	return nil
}

// Libraries lists the files a dynamically linked binary loads (its loader
// and shared libraries, as ldd resolves them on this host), so that a bundle
// can hold them; none for a static one.
func Libraries(path string) ([]string, error) {
	if Static(path) == nil {
		return nil, nil
	}
	out, err := exec.Command("ldd", path).Output()
	if err != nil {
		return nil, fmt.Errorf("ldd %s: %w", path, err)
	}
	var libs []string
	for _, f := range strings.Fields(string(out)) {
		if strings.HasPrefix(f, "/") {
			libs = append(libs, f)
		}
	}
	return libs, nil
}

// Proc is what /proc tells of one host process.
type Proc struct {
	PID     int
	Comm    string
	State   byte // R, S, Z, ...
	Threads int
	RSSKiB  int
}

// ReadProc reads /proc/PID/status.
func ReadProc(pid int) (Proc, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return Proc{}, err
	}
	p := Proc{PID: pid}
	for _, line := range bytes.Split(b, []byte("\n")) {
		k, v, ok := strings.Cut(string(line), ":")
		if !ok {
			continue
		}
		v = strings.TrimSpace(v)
		switch k {
		case "Name":
			p.Comm = v
		case "State":
			if v != "" {
				p.State = v[0]
			}
		case "Threads":
			p.Threads, _ = strconv.Atoi(v)
		case "VmRSS": // absent for a zombie
			p.RSSKiB, _ = strconv.Atoi(strings.TrimSuffix(v, " kB"))
		}
	}
	return p, nil
}

// Tree is pid and its descendants, zombies included (a zombie stays in its
// parent's children list until it is reaped), read from
// /proc/PID/task/TID/children.
func Tree(pid int) []int {
	out := []int{pid}
	for i := 0; i < len(out); i++ {
		tasks, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", out[i])) // gone: no children to list
		for _, t := range tasks {
			b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/children", out[i], t.Name()))
			for _, f := range strings.Fields(string(b)) {
				if c, err := strconv.Atoi(f); err == nil {
					out = append(out, c)
				}
			}
		}
	}
	return out
}

func (p Proc) String() string {
	return fmt.Sprintf("%d %s %c threads=%d rss=%dKiB", p.PID, p.Comm, p.State, p.Threads, p.RSSKiB)
}
