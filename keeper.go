package tether

import (
	"encoding/base64"
	"time"
	"unicode/utf8"
)

// The keeper protocol: one JSON object per frame (keeper_frame.go) on a
// stream socketpair between a parent and its keeper; a spawn carries the
// child's stdin, stdout and stderr as SCM_RIGHTS. The keeper answers each spawn in order, and reports exits as
// they happen.

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

// keeperMsg is every message, in both directions; Op says which fields count.
type keeperMsg struct {
	// parent: spawn, signal, sweep, release, shutdown, tree (Cgroup, Sig,
	// Grace: a slot's stop at the parent's death; no answer), bye (the
	// parent clones no more into the keeper's cgroup); keeper: hello,
	// spawned, exited, stopped (Sig), continued
	Op string `json:"op"`
	ID uint64 `json:"id"`

	Spawn *keeperSpawn  `json:"spawn,omitempty"`
	Sig   int           `json:"sig,omitempty"`
	Grace time.Duration `json:"grace,omitempty"` // tree: the slot's StopTimeout

	PID   int    `json:"pid,omitempty"`
	Errno int    `json:"errno,omitempty"` // spawn failed with this errno...
	Err   string `json:"err,omitempty"`   // ...and/or this message; hello: the keeper cannot work, and exits
	Step  string `json:"step,omitempty"`  // spawned: the step that failed, "" for the exec ("cgroup": making the tree's cgroup)
	Gone  bool   `json:"gone,omitempty"`  // spawned: the keeper's own cgroup was removed from under it (Err names it)

	Code   int   `json:"code,omitempty"`
	Signal int   `json:"signal,omitempty"`
	Core   bool  `json:"core,omitempty"`
	Utime  int64 `json:"utime,omitempty"` // ns
	Stime  int64 `json:"stime,omitempty"` // ns
	MaxRSS int64 `json:"maxrss,omitempty"`

	Cgroup      string            `json:"cgroup,omitempty"`      // hello: the keeper's cgroup directory; spawned: the tree's
	CgroupErr   string            `json:"cgroup_err,omitempty"`  // hello: why there is none
	Controllers map[string]string `json:"controllers,omitempty"` // hello: Limits' controllers, "" if trees have them, else why not
	TreeUser    int64             `json:"tree_user,omitempty"`   // exited: the tree's CPU time from its cgroup, ns
	TreeSys     int64             `json:"tree_sys,omitempty"`
	TreePeak    int64             `json:"tree_peak,omitempty"` // exited: memory.peak, bytes
	TreeOOM     int               `json:"tree_oom,omitempty"`  // exited: memory.events oom_kill
}
