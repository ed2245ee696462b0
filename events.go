package tether

import (
	"context"
	"log/slog"
	"os"
	"time"
)

// EventKind names a step in a process's life.
type EventKind uint8

const (
	// EventSpawn: the process started; PID is set.
	EventSpawn EventKind = iota + 1
	// EventExit: the process exited; Exit is set. Pipes may still be open.
	EventExit
	// EventClose: exit, and every pipe reached EOF, was closed by its reader
	// or was abandoned at the drain timeout; Exit is set, Err says what
	// went wrong with the streams, if anything. Always the last event: the
	// events of a Signal, Kill or Stop that races the close (a signal,
	// escalate, stop-message or error) are not delivered after it.
	EventClose
	// EventSignal: a signal is sent to the process's tree; Signal is set.
	// It is emitted as the signal goes, so it comes before the exit the
	// signal causes; if sending fails, an EventError follows.
	// The SIGCONT a stop sends after its StopSignal or StopMessage is part
	// of the stop and not reported (a SIGCONT sent with Signal is); if it
	// fails, an EventError with Signal SIGCONT says so.
	EventSignal
	// EventEscalate: a graceful stop ran out of time; SIGKILL follows.
	EventEscalate
	// EventError: something failed; Err is set. A failed Start emits only
	// this event.
	EventError
	// EventStopMessage: Stop sends Cmd.StopMessage on the IPC channel;
	// emitted before the send, as EventSignal is before the signal, so the
	// exit it causes comes after it (an EventError follows a failed send).
	EventStopMessage
	// EventStopped: the process was stopped by a signal (a terminal's
	// SIGTSTP, SIGSTOP, SIGTTIN, SIGTTOU); Signal is set. Reported at the
	// keeper and PID-namespace levels, where the keeper is the process's
	// parent and the kernel tells it (waitid WSTOPPED); not at the group
	// and cgroup levels, where the process is the program's own child and
	// the program's SIGCHLD is the only witness.
	EventStopped
	// EventContinued: a stopped process was continued (SIGCONT). Where
	// EventStopped is reported.
	EventContinued
)

var kindNames = [...]string{"", "spawn", "exit", "close", "signal", "escalate", "error", "stop-message", "stopped", "continued"}

// String is the kind's name ("spawn", "exit", ...), "unknown" for the zero
// EventKind and values out of range.
func (k EventKind) String() string {
	if k > 0 && int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "unknown"
}

// Event is one lifecycle step, delivered to Cmd.Observer.
type Event struct {
	Kind   EventKind
	Time   time.Time
	Path   string // the program
	PID    int    // 0 before spawn
	Signal os.Signal
	Exit   *Exit
	Err    error
}

// SlogObserver returns an observer that logs every event to l: spawn, exit,
// close, signal, stop message, stopped and continued at Info, escalate at
// Warn and error at Error, with the event's fields as attributes. Assign it
// to Cmd.Observer.
func SlogObserver(l *slog.Logger) func(Event) {
	return func(e Event) {
		level := slog.LevelInfo
		switch e.Kind {
		case EventEscalate:
			level = slog.LevelWarn
		case EventError:
			level = slog.LevelError
		}
		if !l.Enabled(context.Background(), level) {
			return
		}
		attrs := make([]slog.Attr, 0, 6)
		attrs = append(attrs, slog.String("path", e.Path))
		if e.PID != 0 {
			attrs = append(attrs, slog.Int("pid", e.PID))
		}
		if e.Signal != nil {
			attrs = append(attrs, slog.String("signal", e.Signal.String()))
		}
		if e.Exit != nil {
			attrs = append(attrs, slog.String("status", e.Exit.String()))
			if e.Kind == EventExit {
				attrs = append(attrs, slog.Duration("ran", e.Exit.Duration()))
			}
		}
		if e.Err != nil {
			attrs = append(attrs, slog.Any("err", e.Err))
		}
		l.LogAttrs(context.Background(), level, "tether: "+e.Kind.String(), attrs...)
	}
}
