package tether

import (
	"fmt"
	"os"
	"strconv"
	"syscall"

	"github.com/tetherproc/tether/internal/keeper"
	"golang.org/x/sys/unix"
)

// ContainPIDNamespace: the keeper as PID 1 of a PID namespace of its own,
// so that the kernel kills every process in it when the keeper ends, however
// it ends. What differs from the keeper level is here:
//
//   - the parent clones the keeper with CLONE_NEWPID|CLONE_NEWNS (as root),
//     or, failing that, with CLONE_NEWUSER too (startInPIDNamespace);
//   - the keeper makes its mounts private and mounts a /proc of its own, so
//     that its tree walk (procfs.Children, pgidOf) and kill/waitid/fork all speak
//     the namespace's pids, and so do its children's /proc
//     (enterPIDNamespace);
//   - before that mount it keeps a descriptor of the parent's /proc, where it
//     finds the pid the parent knows each leader by (parentsPID): the only
//     pid that crosses the boundary, in "spawned" and "exited";
//   - the parent's pid means nothing inside, so the parent passes a pidfd of
//     itself instead.

// startInPIDNamespace starts the keeper with fork in a new PID and mount
// namespace: as root, or else in a new user namespace mapping only our uid
// and gid. It adds the parent's pidfd to files and its number to env.
func startInPIDNamespace(env *[]string, files *[]*os.File, fork func(*syscall.SysProcAttr) (int, error)) (pid int, userns bool, err error) {
	parentFD := -1
	if fd, err := unix.PidfdOpen(os.Getpid(), 0); err == nil {
		f := os.NewFile(uintptr(fd), "parent-pidfd")
		defer f.Close() // the keeper has its copy once forked
		*files = append(*files, f)
		parentFD = len(*files) - 1
	} // else: without pidfds the socket's EOF is the keeper's one witness
	*env = append(*env, keeper.PIDNSEnv+"="+strconv.Itoa(parentFD))

	flags := uintptr(syscall.CLONE_NEWPID | syscall.CLONE_NEWNS)
	pid, rootErr := fork(&syscall.SysProcAttr{Cloneflags: flags})
	if rootErr == nil {
		return pid, false, nil
	}
	pid, userErr := fork(&syscall.SysProcAttr{
		Cloneflags:  flags | syscall.CLONE_NEWUSER,
		UidMappings: []syscall.SysProcIDMap{{ContainerID: os.Getuid(), HostID: os.Getuid(), Size: 1}},
		GidMappings: []syscall.SysProcIDMap{{ContainerID: os.Getgid(), HostID: os.Getgid(), Size: 1}},
		// Not root inside: exec would drop the capabilities the keeper
		// needs to mount its /proc, unless they are ambient. The keeper
		// clears them before it starts any child (enterPIDNamespace).
		AmbientCaps: []uintptr{unix.CAP_SYS_ADMIN},
	})
	if userErr == nil {
		return pid, true, nil
	}
	return 0, false, fmt.Errorf("a PID namespace needs root or user namespaces: new PID namespace: %w; in a new user namespace: %v", rootErr, userErr)
}
