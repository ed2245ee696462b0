// Package keeper is tether's keeper: the process that holds a parent's trees
// (the keeper and PID-namespace levels: it spawns and reaps them) or watches
// them (the cgroup level: the parent spawns into the keeper's cgroups), and
// stops them all when the parent ends, however it ends. It is the parent's
// own binary re-executed (the root package's startKeeper); this package's
// init runs it when the environment says so (ParentEnv), before main.
//
// This file is the protocol both ends speak; server_*.go run only in the
// keeper; the parent's end is the root package's keeper_client_*.go.
//
// # Protocol
//
// The parent and the keeper talk over a stream socketpair, the
// keeper's end at its descriptor 3, one JSON object per frame
// (frame.go). Every frame is a Msg: its Op names the operation,
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
//	           why it cannot work at all; the first frame, and the only hello.
//	spawned    ID, Spawned: the child's pid, or why it did not start.
//	exited     ID, Exited: how the tree's leader exited, once reaped.
//	stopped    ID, Sig: the leader was stopped by Sig (job control).
//	continued  ID: the leader was continued.
//	ending     the keeper began to stop every tree (SIGTERM to it, a
//	           shutdown): the parent starts nothing more through it.
//
// The end of the stream is the end: the keeper reads EOF when the parent is
// gone however it ended, and stops every tree; the parent reads EOF when
// the keeper died, and reports its trees gone.
package keeper

import (
	"encoding/base64"
	"time"
	"unicode/utf8"
)

// Op names a keeper operation.
type Op string

const (
	OpSpawn     Op = "spawn"
	OpSignal    Op = "signal"
	OpSweep     Op = "sweep"
	OpRelease   Op = "release"
	OpShutdown  Op = "shutdown"
	OpTree      Op = "tree"
	OpBye       Op = "bye"
	OpHello     Op = "hello"
	OpSpawned   Op = "spawned"
	OpExited    Op = "exited"
	OpStopped   Op = "stopped"
	OpContinued Op = "continued"
	OpEnding    Op = "ending"
)

// ParentEnv marks a re-execution of the parent's binary as its keeper; the
// value is the parent's pid.
const ParentEnv = "TETHER_KEEPER_PARENT"

// PIDNSEnv, set beside ParentEnv, makes it the keeper of
// ContainPIDNamespace, PID 1 of a new PID namespace; the value is the
// descriptor of a pidfd of the parent, or -1.
const PIDNSEnv = "TETHER_KEEPER_PIDNS"

// Spawn is what the parent asks the keeper to start.
type Spawn struct {
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

// EncodeBytes makes s safe for JSON when any of its strings is not UTF-8.
func (s *Spawn) EncodeBytes() {
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

// DecodeBytes undoes EncodeBytes.
func (s *Spawn) DecodeBytes() error {
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

// Msg is one frame's message (see the protocol above).
type Msg struct {
	Op Op     `json:"op"`
	ID uint64 `json:"id,omitempty"`
	// Sig: signal's signal; stopped's.
	Sig int `json:"sig,omitempty"`

	Spawn   *Spawn       `json:"spawn,omitempty"`
	Tree    *TreeStop    `json:"tree,omitempty"`
	Hello   *Hello       `json:"hello,omitempty"`
	Spawned *SpawnResult `json:"spawned,omitempty"`
	Exited  *ExitReport  `json:"exited,omitempty"`
}

// TreeStop is how the keeper stops the tree in one of the parent's tree
// cgroups at the parent's death.
type TreeStop struct {
	Cgroup string        // the slot's name, tree.N, under the keeper's directory
	Sig    int           // its stop signal
	Grace  time.Duration // its StopTimeout
}

// Hello is the keeper's first word.
type Hello struct {
	Version   int    // the keeper's Version
	Cgroup    string `json:",omitempty"` // the keeper's cgroup directory
	CgroupErr string `json:",omitempty"` // why there is none
	// Controllers maps Limits' controllers to "" if the trees' cgroups
	// have them, else to why not.
	Controllers map[string]string `json:",omitempty"`
	Err         string            `json:",omitempty"` // the keeper cannot work, and exits
}

// SpawnResult answers a spawn.
type SpawnResult struct {
	PID   int    `json:",omitempty"` // in the parent's PID namespace
	Errno int    `json:",omitempty"` // it failed with this errno...
	Err   string `json:",omitempty"` // ...and/or this message
}

// ExitReport is how a tree's leader exited.
type ExitReport struct {
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

// ProbedEnv tells a keeper that an earlier one's probe of a clone into a
// cgroup passed, for this same parent: it skips its own.
const ProbedEnv = "TETHER_KEEPER_PROBED"

// Version is the protocol's version, in every hello: a keeper of another
// version is refused (on macOS the keeper is the binary at the program's
// path, which may have been replaced).
const Version = 2

// ProbeEnv makes a re-execution of the binary exit at once: the keeper's
// probe of a clone into a cgroup, where /bin/true is missing.
const ProbeEnv = "TETHER_KEEPER_PROBE"

// MaxFiles bounds the descriptors one spawn passes to the keeper: stdio,
// ExtraFiles and the IPC channel.
const MaxFiles = 64

// DefaultGrace is how long the keeper waits at the parent's death for a tree
// it was told nothing of (a slot never announced, orphans only): the root
// package's DefaultStopTimeout, which a test holds equal.
const DefaultGrace = 10 * time.Second
