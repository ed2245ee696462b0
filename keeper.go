package tether

import "time"

// The keeper protocol: one JSON object per SOCK_SEQPACKET message between a
// parent and its keeper; a spawn carries the child's stdin, stdout and stderr
// as SCM_RIGHTS. The keeper answers each spawn in order, and reports exits as
// they happen.

// keeperEnv marks a re-execution of the parent's binary as its keeper; the
// value is the parent's pid.
const keeperEnv = "TETHER_KEEPER_PARENT"

// keeperSpawn is what the parent asks the keeper to start.
type keeperSpawn struct {
	Path        string
	Argv        []string
	Env         []string
	Dir         string
	StopSignal  int
	StopTimeout time.Duration
	Cgroup      bool // put the tree in a cgroup of its own; fail if none can be had
}

// keeperMsg is every message, in both directions; Op says which fields count.
type keeperMsg struct {
	Op string `json:"op"` // parent: spawn, signal, sweep, release; keeper: hello, spawned, exited
	ID uint64 `json:"id"`

	Spawn *keeperSpawn `json:"spawn,omitempty"`
	Sig   int          `json:"sig,omitempty"`

	PID   int    `json:"pid,omitempty"`
	Errno int    `json:"errno,omitempty"` // spawn failed with this errno...
	Err   string `json:"err,omitempty"`   // ...or this message

	Code   int   `json:"code,omitempty"`
	Signal int   `json:"signal,omitempty"`
	Core   bool  `json:"core,omitempty"`
	Utime  int64 `json:"utime,omitempty"` // ns
	Stime  int64 `json:"stime,omitempty"` // ns
	MaxRSS int64 `json:"maxrss,omitempty"`

	Cgroup    string `json:"cgroup,omitempty"`     // hello: the keeper's cgroup directory; spawned: the tree's
	CgroupErr string `json:"cgroup_err,omitempty"` // hello: why there is none
	TreeUser  int64  `json:"tree_user,omitempty"`  // exited: the tree's CPU time from its cgroup, ns
	TreeSys   int64  `json:"tree_sys,omitempty"`
	TreePeak  int64  `json:"tree_peak,omitempty"` // exited: memory.peak, bytes
}
