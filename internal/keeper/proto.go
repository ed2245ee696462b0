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
// keeper's end at its descriptor 3, one Msg per frame (frame.go). Its Op
// names the operation, and the operation's payload is the one field its
// comment names; ID names the tree (the parent's number, 1, 2, ...), where
// there is one.
//
// Parent to keeper:
//
//	spawn     ID, Spawn; the child's descriptors (stdio first) ride as
//	          SCM_RIGHTS. Answered by "spawned", in order; one whose
//	          payload does not read past its ID, with an Err.
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
//
// # Payload
//
// A frame's payload is one Msg in a binary form (codec.go), the same for
// every Op. It is built of:
//
//	byte    one byte
//	uint    an unsigned integer as a uvarint: 7 bits a byte, least
//	        significant first, the high bit set on every byte but the last
//	        (encoding/binary's AppendUvarint; at most 10 bytes)
//	int     a signed integer (Go's int, int64, time.Duration in
//	        nanoseconds) as a zigzag varint: the uint of 2n for n >= 0, of
//	        -2n-1 for n < 0 (encoding/binary's AppendVarint)
//	bool    one byte, 0 or 1
//	string  a uint length, then that many bytes, as they are: any byte,
//	        UTF-8 or not (Unix paths, arguments and environment may hold
//	        any but NUL)
//	list    a uint count, then that many elements; empty and nil are one
//	        (no field here means something else by either: exec sees no
//	        element)
//	map     a uint count, then each key and its value, both strings, keys
//	        in ascending byte order, each once
//
// A Msg is, in this order:
//
//	Op       byte: 1 spawn, 2 signal, 3 sweep, 4 release, 5 shutdown,
//	         6 tree, 7 bye, 8 hello, 9 spawned, 10 exited, 11 stopped,
//	         12 continued, 13 ending (the Op constants' values)
//	ID       uint
//	Sig      int
//	present  byte: which payload structs follow, bit 0 (the lowest)
//	         Spawn, 1 Tree, 2 Hello, 3 Spawned, 4 Exited; the other bits 0
//
// then each struct present, in the order of those bits, its fields in this
// order:
//
//	Spawn        Path string, Argv list of string, Env list of string,
//	             Dir string, StopSignal int, StopTimeout int, Cgroup bool,
//	             Foreground bool, MemoryMax int, PidsMax int, Ignored uint,
//	             Holes list of int
//	TreeStop     Cgroup string, Sig int, Grace int
//	Hello        Version int, Cgroup string, CgroupErr string,
//	             Controllers map, Err string
//	SpawnResult  PID int, Errno int, Err string
//	ExitReport   PID int, Code int, Signal int, Core bool, Utime int,
//	             Stime int, MaxRSS int, Err string
//
// The payload ends with the last of them: a reader refuses an unknown op,
// a present bit or bool of another value, a length or count beyond the
// payload's end, an integer beyond its Go type, and bytes left over.
//
// The hello is the exception, the same in every version so that a parent
// and a keeper of different versions each read the other's Version: its
// payload is JSON, encoding/json's form of versions 1 and 2's Msg,
//
//	{"op":"hello","hello":{"Version":3,"Cgroup":"...","CgroupErr":"...","Controllers":{...},"Err":"..."}}
//
// with the empty fields left out (Hello's JSON names). A reader tells it
// by its first byte, '{', which no op is. (Up to Version 2 every payload
// was JSON.)
package keeper

import (
	"strconv"
	"time"
)

// Op names a keeper operation; its value is its byte on the wire, and its
// String the name the protocol above gives it.
type Op uint8

const (
	OpSpawn     Op = 1
	OpSignal    Op = 2
	OpSweep     Op = 3
	OpRelease   Op = 4
	OpShutdown  Op = 5
	OpTree      Op = 6
	OpBye       Op = 7
	OpHello     Op = 8
	OpSpawned   Op = 9
	OpExited    Op = 10
	OpStopped   Op = 11
	OpContinued Op = 12
	OpEnding    Op = 13
)

var opNames = [...]string{
	OpSpawn: "spawn", OpSignal: "signal", OpSweep: "sweep", OpRelease: "release",
	OpShutdown: "shutdown", OpTree: "tree", OpBye: "bye", OpHello: "hello",
	OpSpawned: "spawned", OpExited: "exited", OpStopped: "stopped",
	OpContinued: "continued", OpEnding: "ending",
}

// valid reports whether op is one of the protocol's.
func (op Op) valid() bool { return op > 0 && int(op) < len(opNames) }

func (op Op) String() string {
	if op.valid() {
		return opNames[op]
	}
	return "op(" + strconv.Itoa(int(op)) + ")"
}

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
	Foreground  bool  // make its group the foreground of the terminal at fd 0
	MemoryMax   int64 // Limits, written to the tree's cgroup before the clone
	PidsMax     int64
	// Ignored is the set of signals the parent ignores (bit N-1 for signal
	// N): the child starts with them ignored, as the parent's own child
	// would.
	Ignored uint64
	// Holes are the child's descriptor numbers (in order) that get no
	// descriptor, nil ExtraFiles: the frame carries the others in order.
	Holes []int
}

// Msg is one frame's message (see the protocol above).
type Msg struct {
	Op Op
	ID uint64
	// Sig: signal's signal; stopped's.
	Sig int

	Spawn   *Spawn
	Tree    *TreeStop
	Hello   *Hello
	Spawned *SpawnResult
	Exited  *ExitReport
}

// TreeStop is how the keeper stops the tree in one of the parent's tree
// cgroups at the parent's death.
type TreeStop struct {
	Cgroup string        // the slot's name, tree.N, under the keeper's directory
	Sig    int           // its stop signal
	Grace  time.Duration // its StopTimeout
}

// Hello is the keeper's first word.
// Its JSON names are those of versions 1 and 2 (see helloJSON).
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
	PID   int    // in the parent's PID namespace
	Errno int    // it failed with this errno...
	Err   string // ...and/or this message
}

// ExitReport is how a tree's leader exited.
type ExitReport struct {
	PID    int
	Code   int
	Signal int
	Core   bool
	Utime  int64 // ns
	Stime  int64 // ns
	MaxRSS int64 // bytes
	// Err: the keeper is gone, and the tree with it (the parent's own
	// report, never the keeper's).
	Err string
}

// ProbedEnv tells a keeper that an earlier one's probe of a clone into a
// cgroup passed, for this same parent: it skips its own.
const ProbedEnv = "TETHER_KEEPER_PROBED"

// Version is the protocol's version, in every hello: a keeper of another
// version is refused (on macOS the keeper is the binary at the program's
// path, which an upgrade may have replaced). Version 3 replaced the JSON
// payload of versions 1 and 2 with the binary one above but for the hello,
// which stayed JSON: a parent of version 2 reads a version 3 keeper's
// hello, and a parent of version 3 a version 2 keeper's, and each refuses
// the other with the error that says so. (A first frame the parent cannot
// read at all counts as another version's too.)
const Version = 3

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
