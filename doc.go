// Package tether starts child processes that cannot leak and stop whole
// process trees.
//
// It is what os/exec and Node's child_process leave to the caller, built in:
//
//   - Exit and close, exactly. A Process has two ends: Exited (the kernel
//     reports the process gone) and Done (exit, and every output pipe reached
//     EOF, was closed by its reader, or was given up at Cmd.DrainTimeout).
//     Done always comes, at most DrainTimeout after Exited: whether the reader
//     read nothing, part, or all of a pipe, and even when a grandchild holds
//     a copy of it. A reader that reads to EOF loses no byte, even after Done:
//     what the process wrote before it exited is drained into a bounded buffer
//     on the reader's behalf (Node's issue 4049 was a close that never came
//     because a stream had been read once).
//   - Nothing leaks. Every goroutine, descriptor and zombie a Process creates
//     is gone after Done. Exits are watched through pidfds in Go's netpoller:
//     waiting for thousands of children costs goroutines, not threads.
//   - Stop means the tree. Each child runs in a process group of its own;
//     Signal, Stop and Kill reach the child and the group. The child is
//     reaped only at close, so while signals may still be sent its pid and
//     group id cannot be recycled. Stop sends Cmd.StopSignal (SIGTERM), waits
//     Cmd.StopTimeout, then sends SIGKILL; so does the end of Start's context.
//   - Events. Spawn, exit, close, signal, escalation and errors reach
//     Cmd.Observer; SlogObserver logs them with log/slog.
//
// A Cmd is configuration and may be started again; a Process is one run:
//
//	cmd := tether.Command("yes")
//	cmd.Stdout = tether.Pipe()
//	p, err := cmd.Start(ctx)
//	if err != nil {
//		return err // a *StartError; errors.Is(err, fs.ErrNotExist) for a missing program
//	}
//	buf := make([]byte, 4)
//	p.Stdout().Read(buf)
//	p.Kill()
//	st, err := p.Wait() // returns: close always comes
//
// Descendants that leave the process group (setsid, double-forked daemons)
// and the end of the parent itself are beyond what a process group can
// contain; see docs/design.md for the containment levels.
//
// Linux is where tether is built and tested. macOS and FreeBSD use the same
// code with a wait4 goroutine per child in place of pidfds; they compile but
// are not run in CI. On Windows, Start returns ErrUnsupported for now.
package tether
