package tether

import (
	"fmt"
	"os"
	"time"
)

// Exit describes how a process ended. Wait returns it once the process is
// done; Process.Exit returns it as soon as the process has exited.
type Exit struct {
	PID int
	// Code is the exit status, or -1 when the process was killed by a signal.
	Code int
	// Signal is the signal that killed the process, nil if it exited.
	Signal os.Signal
	// CoreDumped reports whether the killing signal produced a core dump.
	CoreDumped bool
	// Started and Ended are when the process was started and when its exit
	// was observed.
	Started, Ended time.Time
	// UserTime and SystemTime are the CPU time the process and the
	// descendants it waited for consumed. Zero where the OS does not say.
	UserTime, SystemTime time.Duration
	// MaxRSS is the peak resident set size in bytes of the process (or of
	// the largest descendant it waited for). Zero where the OS does not say.
	MaxRSS int64
	// Escalated reports that a graceful stop ran out of time and the tree
	// was sent SIGKILL.
	Escalated bool
	// TreeUserTime and TreeSystemTime are the CPU time of the whole tree up
	// to the exit — descendants not waited for included — and TreeMaxMemory
	// its peak memory in bytes. Only at the ContainCgroup level (memory
	// needs the cgroup memory controller); zero otherwise.
	TreeUserTime, TreeSystemTime time.Duration
	TreeMaxMemory                int64
	// TreeOOMKills counts the processes of the tree the kernel's OOM killer
	// killed, as Limits.MemoryMax makes it do (memory.events). Only at the
	// ContainCgroup level with the memory controller; zero otherwise.
	TreeOOMKills int
}

// Success reports whether the process exited with status 0 (false for a
// nil Exit).
func (e *Exit) Success() bool { return e != nil && e.Signal == nil && e.Code == 0 }

// Duration is the time from start to exit; 0 for a nil Exit.
func (e *Exit) Duration() time.Duration {
	if e == nil {
		return 0
	}
	return e.Ended.Sub(e.Started)
}

// String reads like os/exec's: "exit status 1", "signal: killed".
func (e *Exit) String() string {
	if e == nil {
		return "<nil>"
	}
	if e.Signal != nil {
		s := "signal: " + e.Signal.String()
		if e.CoreDumped {
			s += " (core dumped)"
		}
		return s
	}
	return fmt.Sprintf("exit status %d", e.Code)
}
