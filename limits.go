package tether

import (
	"fmt"
	"strconv"
)

// Limits caps a tree's resources through its cgroup (see Cmd.Limits). The
// kernel enforces them from before the child's first instruction: the
// tree's cgroup gets them before the child is cloned into it.
//
// cgroup v2 lets a cgroup hand controllers to its children only if it has
// no process of its own (or is the root), and keepers make their cgroups
// under the one the program runs in, which holds the program. So limits work
// where the program runs in the root cgroup, or where TETHER_CGROUP_PARENT
// names a delegated cgroup without processes (a systemd service with
// Delegate=yes whose processes moved into a leaf, say) under which keepers
// then make their cgroups. tether doctor says what this machine allows.
type Limits struct {
	// MemoryMax is the tree's memory.max in bytes: past it the kernel
	// reclaims, then its OOM killer kills within the tree (Exit.TreeOOMKills
	// counts the kills). Needs the memory controller. Zero: no limit.
	MemoryMax int64

	// PidsMax is the tree's pids.max: how many processes and threads it may
	// have at once; fork and clone fail with EAGAIN past it. Needs the pids
	// controller. Zero: no limit.
	PidsMax int64
}

// pidsMaxLimit is Linux's PID_MAX_LIMIT, the most pids.max takes: 4194304 on
// 64-bit machines, 32768 on 32-bit ones.
const pidsMaxLimit = 32768 + (strconv.IntSize/64)*(4<<20-32768)

func (l Limits) isZero() bool { return l == Limits{} }

// check refuses limits that cannot be met at level c before anything starts.
func (l Limits) check(c Containment) error {
	if l.isZero() {
		return nil
	}
	if l.MemoryMax < 0 || l.PidsMax < 0 {
		return fmt.Errorf("negative limit (MemoryMax %d, PidsMax %d)", l.MemoryMax, l.PidsMax)
	}
	if l.PidsMax > pidsMaxLimit {
		return fmt.Errorf("PidsMax %d is above the kernel's largest, %d", l.PidsMax, pidsMaxLimit)
	}
	if c == ContainAuto {
		c = autoLevel()
	}
	if c != ContainCgroup {
		return fmt.Errorf("limits need the cgroup level, and this Cmd's is %v (see tether doctor)", c)
	}
	return nil
}
