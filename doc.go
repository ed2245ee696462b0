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
//     is gone after Done. What tether keeps for the next Start is not the
//     Process's: at the cgroup level, up to 32 emptied tree cgroups, each
//     with 5 open descriptors, and the keeper's socket, all released 2 s
//     after the last tree closed and nothing of any tree is left in its
//     cgroup; the exit watcher's epoll, a second after the last exit it
//     watched. On Linux (the group and cgroup levels), exits are
//     watched through pidfds in one epoll: thousands of running children
//     cost no thread each, and of the Waits blocked on them at most 32 hold
//     a thread.
//   - Stop means the tree. Signal, Stop and Kill reach the child and its
//     descendants (see Containment below for how far). Stop sends
//     Cmd.StopSignal (SIGTERM) and SIGCONT (a stopped tree still cleans up),
//     waits Cmd.StopTimeout, then sends SIGKILL; so does the end of Start's
//     context.
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
// # IPC
//
// With Cmd.IPC set, the child gets a channel speaking Node's IPC protocol
// ('json' serialization: a socketpair at NODE_CHANNEL_FD, one
// JSON.stringify(value)+"\n" per message). Both ends are a *Channel: the
// parent's is Process.Channel, a Go child's comes from ParentChannel, and
// either end may be Node (process.send, child_process.fork):
//
//	cmd.IPC = true
//	p, _ := cmd.Start(ctx)
//	ch := p.Channel()
//	ch.Send(map[string]any{"op": "fib", "n": 30})
//	var reply struct{ Result int }
//	err := ch.Recv(&reply) // io.EOF once the child's end is gone
//
// A child whose channel ends knows its parent is gone: Channel.Context
// returns a context cancelled then. Cmd.StopMessage makes Stop ask by message
// first ("shutdown", as PM2 does), then by signal.
//
// # Containment
//
// Cmd.Containment says how a tree is held; the Containment type describes
// each level. The default, ContainAuto, picks the strongest level the machine
// offers. ContainKeeper starts children from a keeper: this program's own
// binary, re-executed (recognised in this package's init, before the host's
// main runs: see below), a child subreaper that stops every tree — stop
// signal, grace, SIGKILL — when the parent ends, however it ends, SIGKILL
// included. ContainCgroup adds a cgroup v2 per tree, so a tree is exactly its
// cgroup, and Cmd.Limits can cap its memory and its number of processes.
// ContainPIDNamespace (opt-in) makes the keeper PID 1 of a PID namespace, so
// that even a SIGKILLed keeper takes every descendant with it. ContainGroup is
// a process group only. Probe, and the `tether doctor` command, say what a
// machine offers; docs/guarantees.md shows what each level achieves,
// measured.
//
// # The keeper runs your binary
//
// A keeper (ContainKeeper, ContainCgroup, ContainPIDNamespace, and
// ContainAuto where it picks one of them) is this program's own executable,
// started again: this package's init function recognises the re-execution
// and runs the keeper in place of your program, which it never returns to.
// Go initialises a package only after every package it imports, so your
// main function and the init functions and package variables of every
// package that imports tether, directly or not, never run in the keeper.
// Those of packages that do not import tether may run there first: Go
// initialises independent packages in the order of their import paths, and
// tether's may come late. So keep such init functions free of side effects
// (no goroutines that work, no files, sockets or output: do that in main),
// or make the package import tether (import _ "github.com/tetherproc/tether"
// is enough), which makes tether's init, and so the keeper, come first. There
// is no function to ask whether this process is a keeper: code that could
// call one never runs in a keeper. At ContainGroup, and on Windows and
// FreeBSD, there is no keeper.
//
// Linux is where tether is built and tested. Windows puts each tree in a Job
// Object that dies with the parent, and speaks Node's IPC there as Node does
// (a named pipe passed as a C runtime descriptor); its tests run under Wine,
// not on Windows. macOS and FreeBSD use the Unix code at the process-group
// level, with a wait4 goroutine per child in place of pidfds; macOS also has
// ContainKeeper (opt-in: trees as process groups, the parent watched by
// kqueue). They compile in CI but are not run.
package tether
