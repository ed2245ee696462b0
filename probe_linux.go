package tether

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/tetherproc/tether/internal/cgroupfs"
)

func probeFacts() []string {
	var facts []string
	add := func(format string, args ...any) { facts = append(facts, fmt.Sprintf(format, args...)) }
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		add("kernel: Linux %s", strings.TrimSpace(string(b)))
	}
	if fd, err := unix.PidfdOpen(os.Getpid(), 0); err == nil {
		_ = unix.Close(fd)
		add("pidfd: yes (exits watched by one epoll)")
	} else {
		add("pidfd: no (%v): a wait4 thread per waiting child", err)
	}
	if mnt, err := cgroupfs.Mount(); err == nil {
		own, _ := cgroupfs.Own()
		add("cgroup2: mounted at %s; this process is in %s", mnt, own)
		if v := os.Getenv(cgroupfs.ParentEnv); v != "" {
			add("cgroup2: keepers make their cgroups under %s=%s", cgroupfs.ParentEnv, v)
		}
	} else {
		add("cgroup2: %v", err)
	}
	if b, err := os.ReadFile("/proc/sys/kernel/pid_max"); err == nil {
		add("pid_max: %s", strings.TrimSpace(string(b)))
	}
	if b, err := os.ReadFile("/proc/sys/user/max_user_namespaces"); err == nil {
		add("user namespaces: max %s", strings.TrimSpace(string(b)))
	}
	add("running as uid %d", os.Getuid())
	return facts
}

func probeLevels() []LevelReport {
	out := []LevelReport{{Level: ContainGroup, Available: true,
		Detail: "a process group per child; Signal/Stop/Kill reach the group; nothing stops the tree if the parent dies"}}
	k, err := getKeeper()
	if err != nil {
		return append(out,
			LevelReport{Level: ContainKeeper, Detail: "cannot start the keeper: " + err.Error()},
			LevelReport{Level: ContainCgroup, Detail: "needs the keeper"},
			probePIDNamespace())
	}
	<-k.hello
	out = append(out, LevelReport{Level: ContainKeeper, Available: true, Detail: fmt.Sprintf(
		"keeper pid %d (this binary re-executed): child subreaper, own process group, PDEATHSIG from a locked thread; stops every tree when the parent ends", k.pid)})
	if k.cgroup != "" {
		out = append(out, LevelReport{Level: ContainCgroup, Available: true, Detail: fmt.Sprintf(
			"a cgroup per tree under %s, entered at clone time; Kill is cgroup.kill; %s", k.cgroup, limitsReport(k.controllers))})
	} else {
		out = append(out, LevelReport{Level: ContainCgroup, Detail: "no writable cgroup v2 subtree: " + k.cgroupErr})
	}
	return append(out, probePIDNamespace())
}

// probePIDNamespace starts the keeper of ContainPIDNamespace, if none runs:
// the only sure test that the machine allows one.
func probePIDNamespace() LevelReport {
	k, err := getKeeperAt(true)
	if err != nil {
		return LevelReport{Level: ContainPIDNamespace, Detail: "opt-in; not available: " + err.Error()}
	}
	how := "as root"
	if k.userns {
		how = "in a user namespace (not root)"
	}
	return LevelReport{Level: ContainPIDNamespace, Available: true, Detail: fmt.Sprintf(
		"opt-in: keeper pid %d is PID 1 of a new PID namespace, %s, with its own /proc; the kernel kills every descendant when it ends, SIGKILL included", k.pid, how)}
}

var (
	autoMu  sync.Mutex
	autoErr error // why Auto falls back to the process group for good, if it does
)

// autoLevel is the strongest level available: the cgroup level where the
// keeper can make cgroups, else the keeper, else the process group (if this
// binary cannot re-execute itself, say: then decided once per process; a
// transient failure such as EMFILE is tried again at the next start).
func autoLevel() Containment {
	autoMu.Lock()
	failed := autoErr
	autoMu.Unlock()
	if failed != nil {
		return ContainGroup
	}
	k, err := getKeeper()
	if err != nil {
		if !errors.Is(err, syscall.EMFILE) && !errors.Is(err, syscall.ENFILE) &&
			!errors.Is(err, syscall.EAGAIN) && !errors.Is(err, syscall.ENOMEM) {
			autoMu.Lock()
			autoErr = err
			autoMu.Unlock()
		}
		return ContainGroup
	}
	<-k.hello
	if k.cgroup != "" {
		return ContainCgroup
	}
	return ContainKeeper
}

// limitsReport says which Limits the cgroup level can set here, from what
// the keeper's hello said of the controllers.
func limitsReport(controllers map[string]string) string {
	var can, cannot []string
	for _, c := range cgroupfs.LimitControllers {
		why, known := controllers[c]
		switch {
		case known && why == "":
			can = append(can, map[string]string{"memory": "MemoryMax", "pids": "PidsMax"}[c]+" ("+c+")")
		case known:
			cannot = append(cannot, c+": "+why)
		}
	}
	s := "Limits: none"
	if len(can) > 0 {
		s = "Limits: " + strings.Join(can, ", ")
	}
	if len(cannot) > 0 {
		s += "; not available: " + strings.Join(cannot, "; ")
	}
	return s
}
