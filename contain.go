package tether

import "fmt"

// Containment says how a process tree is held: what Signal, Stop and Kill
// reach, and what becomes of the tree when the parent itself ends. The zero
// value, ContainAuto, picks the strongest level this machine offers:
// ContainCgroup, else ContainKeeper, else ContainGroup (on platforms without
// a keeper, or when this binary cannot re-execute itself), decided once per
// process. Probe, and `tether doctor`, say which levels a machine offers and
// which one ContainAuto picks. The levels, weakest first:
//
//   - ContainGroup ("group") starts the child in a process group of its own
//     and signals the child and the group. Descendants that leave the group
//     (setsid, double fork) are out of reach, and nothing survives the
//     parent's death to stop the tree. On Windows the tree is a Job Object
//     instead: no descendant can leave it, and the kernel kills it when the
//     parent ends, however it ends, or when the process closes; Stop sends
//     CTRL_BREAK_EVENT, then terminates the job.
//
//   - ContainKeeper ("keeper") starts the child from a keeper: a
//     re-execution of the parent's binary, one per parent, that is a child
//     subreaper. Every descendant, setsid and double-forked ones included,
//     stays in its subtree. When the parent ends — however it ends, SIGKILL
//     included — the keeper sends each tree its StopSignal (and SIGTERM to
//     the rest), waits up to the largest StopTimeout, SIGKILLs what is left,
//     and exits. Linux and macOS; elsewhere Start returns ErrUnsupported. On
//     macOS, which has no subreaper and no PDEATHSIG, a tree is the child's
//     process group: descendants that setsid or double-fork escape it, and a
//     SIGKILLed keeper leaves the trees running; the parent's end, however it
//     comes, still stops every tree (kqueue watches the parent). The macOS
//     keeper is built in tether's CI but not run there. The keeper runs your
//     binary, so mind your init functions (see "The keeper runs your binary"
//     in the package documentation).
//
//   - ContainCgroup ("cgroup") puts each tree in a cgroup v2 of its own,
//     entered at clone time (CLONE_INTO_CGROUP), so no process of the tree
//     is ever outside it. The parent clones the child itself, into one of
//     the cgroups a keeper owns (made ahead and reused once empty), so a
//     spawn costs what the group level's does; the keeper is the watchdog:
//     when the parent ends, however it ends, it stops every tree as at the
//     keeper level, cgroup.kills what is left and removes the cgroups. A
//     tree is exactly its cgroup: Signal, Stop and Kill reach descendants
//     that double-forked away too, Kill is cgroup.kill, and Exit gets the
//     tree's CPU time since its start (and peak memory where the memory
//     controller is enabled). The child is the parent's own child, so
//     orphans of the tree are reaped by the nearest subreaper or PID 1, as
//     os/exec's are (the cgroup, not the reaper, holds the tree), and
//     EventStopped is not reported. Cmd.Limits needs this level. Start
//     fails with a *StartError when the machine offers no writable cgroup
//     v2 subtree.
//
//   - ContainPIDNamespace ("pidns", opt-in: ContainAuto never picks it) is
//     ContainKeeper with the keeper as PID 1 of a new PID namespace (and a
//     private mount namespace with its own /proc, so the children's /proc
//     matches their pids). When the keeper ends, however it ends — SIGKILL
//     and the OOM killer included — the kernel kills every process in the
//     namespace: no descendant survives it. Process.PID is the pid as the
//     parent sees it; inside, the tree sees its namespace's pids. Trees have
//     no cgroups at this level. It needs root (CAP_SYS_ADMIN), or else
//     unprivileged user namespaces, in which case the keeper and the
//     children run in a user namespace that maps only this process's uid and
//     gid to themselves. Where neither works, Start returns a *StartError
//     saying why. Linux only: elsewhere Start returns ErrUnsupported.
//
// String returns the level's name in parentheses above, which tether's
// commands take (-containment, TETHER_CONTAINMENT) and tether doctor shows.
type Containment uint8

const (
	// ContainAuto, the zero value: the strongest level this machine offers.
	ContainAuto Containment = iota

	// ContainGroup: a process group per tree (a Job Object on Windows);
	// nothing stops the tree if the parent dies.
	ContainGroup

	// ContainKeeper: a keeper, this binary re-executed, holds every tree and
	// stops them when the parent ends, however it ends.
	ContainKeeper

	// ContainCgroup: ContainKeeper, with a cgroup v2 per tree.
	ContainCgroup

	// ContainPIDNamespace: ContainKeeper, with the keeper as PID 1 of a PID
	// namespace of its own; opt-in.
	ContainPIDNamespace
)

func (c Containment) String() string {
	switch c {
	case ContainAuto:
		return "auto"
	case ContainGroup:
		return "group"
	case ContainKeeper:
		return "keeper"
	case ContainCgroup:
		return "cgroup"
	case ContainPIDNamespace:
		return "pidns"
	}
	return fmt.Sprintf("Containment(%d)", uint8(c))
}
