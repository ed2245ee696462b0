package tether

import (
	"encoding/base64"
	"time"
	"unicode/utf8"
)

// The keeper protocol. The keeper is this very binary re-executed
// (startKeeper); the parent and it talk over a stream socketpair, the
// keeper's end at its descriptor 3, one JSON object per frame
// (keeper_frame.go). Every frame is a keeperMsg: its Op names the operation,
// and the operation's payload is the one field its comment names; ID names
// the tree (the parent's number, 1, 2, ...), where there is one.
//
// Parent to keeper:
//
//	spawn     ID, Spawn; the child's descriptors (stdio first) ride as
//	          SCM_RIGHTS. Answered by "spawned", in order.
//	signal    ID, Sig: to the tree's members.
//	sweep     ID: SIGKILL to whatever is left of the tree.
//	release   ID: the parent closed the tree; the keeper forgets it. Sent
//	          with the parent's next frame, or within releaseDelay.
//	shutdown  stop every tree as at the parent's death, then exit.
//	tree      Tree: the stop signal and grace of one of the parent's tree
//	          cgroups (the cgroup level: the parent clones the child, the
//	          keeper is the watchdog). One way, sent before the clone.
//	bye       the parent clones no more into the keeper's cgroup: it may
//	          exit once idle.
//
// Keeper to parent:
//
//	hello      Hello: what the keeper offers (its cgroup, or why none), or
//	           why it cannot work at all; first, and again never.
//	spawned    ID, Spawned: the child's pid, or why it did not start.
//	exited     ID, Exited: how the tree's leader exited, once reaped.
//	stopped    ID, Sig: the leader was stopped by Sig (job control).
//	continued  ID: the leader was continued.
//
// The end of the stream is the end: the keeper reads EOF when the parent is
// gone however it ended, and stops every tree; the parent reads EOF when
// the keeper died, and reports its trees gone.

// op names a keeper operation.
type op string

const (
	opSpawn     op = "spawn"
	opSignal    op = "signal"
	opSweep     op = "sweep"
	opRelease   op = "release"
	opShutdown  op = "shutdown"
	opTree      op = "tree"
	opBye       op = "bye"
	opHello     op = "hello"
	opSpawned   op = "spawned"
	opExited    op = "exited"
	opStopped   op = "stopped"
	opContinued op = "continued"
)

// keeperEnv marks a re-execution of the parent's binary as its keeper; the
// value is the parent's pid.
const keeperEnv = "TETHER_KEEPER_PARENT"

// keeperNSEnv, set beside keeperEnv, makes it the keeper of
// ContainPIDNamespace, PID 1 of a new PID namespace; the value is the
// descriptor of a pidfd of the parent, or -1.
const keeperNSEnv = "TETHER_KEEPER_PIDNS"

// keeperSpawn is what the parent asks the keeper to start.
type keeperSpawn struct {
	Path        string
	Argv        []string
	Env         []string
	Dir         string
	StopSignal  int
	StopTimeout time.Duration
	Cgroup      bool  // the cgroup level, which the parent starts itself; a keeper refuses it
	Foreground  bool  `json:",omitempty"` // make its group the foreground of the terminal at fd 0
	MemoryMax   int64 `json:",omitempty"` // Limits, written to the tree's cgroup before the clone
	PidsMax     int64 `json:",omitempty"`
	// Ignored is the set of signals the parent ignores (bit N-1 for signal
	// N): the child starts with them ignored, as the parent's own child
	// would.
	Ignored uint64 `json:",omitempty"`
	// Holes are the child's descriptor numbers (in order) that get no
	// descriptor, nil ExtraFiles: the frame carries the others in order.
	Holes []int `json:",omitempty"`

	// B64: Path, Argv, Env and Dir are base64, because one of them is not
	// UTF-8 (JSON would replace those bytes; Unix allows any but NUL).
	B64 bool `json:",omitempty"`
}

// encodeBytes makes s safe for JSON when any of its strings is not UTF-8.
func (s *keeperSpawn) encodeBytes() {
	valid := utf8.ValidString(s.Path) && utf8.ValidString(s.Dir)
	for _, l := range [][]string{s.Argv, s.Env} {
		for _, a := range l {
			valid = valid && utf8.ValidString(a)
		}
	}
	if valid {
		return
	}
	enc := func(v string) string { return base64.StdEncoding.EncodeToString([]byte(v)) }
	s.B64, s.Path, s.Dir = true, enc(s.Path), enc(s.Dir)
	s.Argv, s.Env = mapStrings(s.Argv, enc), mapStrings(s.Env, enc)
}

// decodeBytes undoes encodeBytes.
func (s *keeperSpawn) decodeBytes() error {
	if !s.B64 {
		return nil
	}
	var bad error
	dec := func(v string) string {
		b, err := base64.StdEncoding.DecodeString(v)
		if err != nil {
			bad = err
		}
		return string(b)
	}
	s.B64, s.Path, s.Dir = false, dec(s.Path), dec(s.Dir)
	s.Argv, s.Env = mapStrings(s.Argv, dec), mapStrings(s.Env, dec)
	return bad
}

func mapStrings(l []string, f func(string) string) []string {
	out := make([]string, len(l))
	for i, v := range l {
		out[i] = f(v)
	}
	return out
}

// keeperMsg is one frame's message (see the protocol above).
type keeperMsg struct {
	Op op     `json:"op"`
	ID uint64 `json:"id,omitempty"`
	// Sig: signal's signal; stopped's.
	Sig int `json:"sig,omitempty"`

	Spawn   *keeperSpawn `json:"spawn,omitempty"`
	Tree    *treeStop    `json:"tree,omitempty"`
	Hello   *keeperHello `json:"hello,omitempty"`
	Spawned *spawnResult `json:"spawned,omitempty"`
	Exited  *exitReport  `json:"exited,omitempty"`
}

// treeStop is how the keeper stops the tree in one of the parent's tree
// cgroups at the parent's death.
type treeStop struct {
	Cgroup string        // the slot's name, tree.N, under the keeper's directory
	Sig    int           // its stop signal
	Grace  time.Duration // its StopTimeout
}

// keeperHello is the keeper's first word.
type keeperHello struct {
	Cgroup    string `json:",omitempty"` // the keeper's cgroup directory
	CgroupErr string `json:",omitempty"` // why there is none
	// Controllers maps Limits' controllers to "" if the trees' cgroups
	// have them, else to why not.
	Controllers map[string]string `json:",omitempty"`
	Err         string            `json:",omitempty"` // the keeper cannot work, and exits
}

// spawnResult answers a spawn.
type spawnResult struct {
	PID   int    `json:",omitempty"` // in the parent's PID namespace
	Errno int    `json:",omitempty"` // it failed with this errno...
	Err   string `json:",omitempty"` // ...and/or this message
}

// exitReport is how a tree's leader exited.
type exitReport struct {
	PID    int   `json:",omitempty"`
	Code   int   `json:",omitempty"`
	Signal int   `json:",omitempty"`
	Core   bool  `json:",omitempty"`
	Utime  int64 `json:",omitempty"` // ns
	Stime  int64 `json:",omitempty"` // ns
	MaxRSS int64 `json:",omitempty"` // bytes
	// Err: the keeper is gone, and the tree with it (the parent's own
	// report, never the keeper's).
	Err string `json:",omitempty"`
}
