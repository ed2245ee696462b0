// Package supervise keeps processes running: it starts them in order, each
// once the one before is ready, restarts them by policy with an exponential
// backoff and a restart limit, and stops them in reverse order. It is the
// engine of `tether up` (a Procfile's processes); `tether run` uses its
// restart rules (Restarts) for its one process.
//
//	var s supervise.Supervisor
//	s.Observer = func(e supervise.Event) { log.Println(e.Name, e.Kind, e.Exit) }
//	err := s.Run(ctx,
//		supervise.Spec{Name: "db", Cmd: db, Ready: supervise.ReadyNotify()},
//		supervise.Spec{Name: "web", Cmd: web, Restart: supervise.OnFailure,
//			Ready: supervise.ReadyTCP("127.0.0.1:8080")},
//	)
//
// A process says it is ready in one of four ways (see Readiness): a newline
// on a descriptor (s6, NOTIFY_FD), READY=1 on systemd's NOTIFY_SOCKET, the
// message "ready" on the IPC channel (PM2's process.send('ready')), or a
// TCP port that accepts. Every step of every process reaches
// Supervisor.Observer as an Event.
//
// While Run runs, Supervisor.Stop, Start and Restart control one process
// (a restart stops its whole tree before the new process starts) and
// Supervisor.Status reports them all; Spec.After orders starts as docker
// compose's depends_on does.
//
// Processes are tether processes: each attempt is a tether.Cmd.Start, so a
// process's whole tree is stopped with it and cannot outlive Run's caller.
// The package never logs and never exits: what happens is in the events and
// in Run's error (an *ExitError names the process that ended everything).
package supervise
