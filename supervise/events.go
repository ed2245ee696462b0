package supervise

import (
	"time"

	"github.com/tetherproc/tether"
)

// EventKind names a step in a supervised process's life.
//
// One attempt goes Starting, Running, Ready, then Exited when the process
// ends by itself (or Exited alone when it could not be started). After
// Exited comes Backoff and the next attempt's Starting, or one of the final
// events: Ended (the policy does not restart it) or Fatal (the restart limit
// was reached). When Run stops everything, a process that runs gets Stopping
// and Stopped, with no Exited; one that waits for a restart gets Stopped
// alone, and one that exits by itself meanwhile gets Exited, then Stopped (it
// is not restarted). Each process Run started gets exactly one final event:
// Ended, Fatal or Stopped. Supervisor.Stop and Supervisor.Restart stop one
// process with Halting and Halted, which are not final.
type EventKind uint8

const (
	// EventStarting: an attempt begins; Attempt is its number, from 1.
	EventStarting EventKind = iota + 1
	// EventRunning: the process started; PID and Process are set.
	EventRunning
	// EventReady: the process said it is ready (see Readiness), or it
	// started and its Spec has no Ready. The next Spec is started now.
	EventReady
	// EventExited: the attempt is over by itself. Exit says how the process
	// ended; Err says why the attempt failed when that is not the exit
	// status: a start error (Exit is nil), or a readiness failure
	// (ErrNotReady, ErrReadyTimeout: the supervisor stopped the process),
	// or a stream error Wait reported (which is not a failure).
	EventExited
	// EventBackoff: the process will be restarted after Delay.
	EventBackoff
	// EventFatal: the process needs a restart Spec.Limit does not allow; it
	// is given up on. Err matches ErrRestartLimit; Exit is its last exit.
	// Final.
	EventFatal
	// EventEnded: the process ended and its policy does not restart it.
	// Final.
	EventEnded
	// EventStopping: Run is stopping everything and this process's turn has
	// come; it is sent its Cmd's stop (StopSignal, StopTimeout, SIGKILL).
	EventStopping
	// EventStopped: Run is stopping everything and is done with this
	// process. Exit is how its last process ended, nil if none was running.
	// Final.
	EventStopped
	// EventHalting: a Supervisor.Stop or Supervisor.Restart call is
	// stopping this one process, as its Cmd says (StopSignal, StopTimeout,
	// SIGKILL). Not final: Run goes on.
	EventHalting
	// EventHalted: the process that a Stop or Restart call stopped is gone,
	// its whole tree with it. Exit is how it ended, nil if it was waiting
	// for a restart. It stays down until Start or Restart (Restart starts
	// it at once: EventStarting follows). Not final.
	EventHalted
)

var kindNames = [...]string{"", "starting", "running", "ready", "exited", "backoff", "fatal", "ended", "stopping", "stopped", "halting", "halted"}

// String is the kind's name ("starting", "running", ...), "unknown" for the zero
// EventKind and values out of range.
func (k EventKind) String() string {
	if k > 0 && int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "unknown"
}

// Event is one step of a supervised process, delivered to
// Supervisor.Observer.
type Event struct {
	Name    string // the Spec's Name
	Kind    EventKind
	Time    time.Time
	Attempt int // the attempt's number: 1 for the first start, 2 for the next (a restart, or a start after Stop), ...

	// Restarted is set on the events of an attempt that is a restart: one
	// the restart policy made after an exit, or one a Restart call made;
	// not the first attempt, nor one a Start call made after Stop or after
	// the process ended for good. Restarts counts the restarts so far, this
	// attempt's included: what Status.Restarts reports.
	Restarted bool
	Restarts  int

	// PID and Process identify the attempt's process once it has started.
	// Process may be read (Stdout, Channel, ...) and signalled; stopping or
	// killing it yourself counts as an exit like any other.
	PID     int
	Process *tether.Process

	Exit  *tether.Exit
	Delay time.Duration // EventBackoff: the wait before the restart
	Err   error
}
