//go:build unix

package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
)

// ttySessionEnv, when set, makes the tether binary the session starter of
// a process tether up gives a terminal (tty = true): tether.Cmd puts every
// child in a process group of its own, and a group leader cannot start a
// session (setsid fails with EPERM), so the program runs in a child of this
// process that does: setsid, and the terminal at fd 0 (the pty) as its
// controlling terminal. Then Ctrl-C typed through tether connect is SIGINT
// to the program's foreground group, /dev/tty opens, and a shell's job
// control works, as in overmind's tmux panes.
const ttySessionEnv = "TETHER_TTY_SESSION"

// ttySession runs argv as described above and exits as it does: with its
// code, or by the signal that killed it. It does not return.
//
// It passes no signal on: tether signals and stops the whole tree, this
// process and the session alike, so it only waits (keeping its own
// disposition for the signals it would otherwise die of first, while its
// child's stay the default across exec).
func ttySession(argv []string) {
	_ = os.Unsetenv(ttySessionEnv) // not for the program's own children
	sigs := make(chan os.Signal, 16)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGUSR2)
	if len(argv) == 0 {
		fmt.Fprintln(os.Stderr, "tether: tty session: no program")
		os.Exit(127)
	}
	c := exec.Command(argv[0], argv[1:]...)
	c.Stdin, c.Stdout, c.Stderr = os.Stdin, os.Stdout, os.Stderr
	c.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := c.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "tether:", err)
		if errors.Is(err, exec.ErrNotFound) || errors.Is(err, os.ErrNotExist) {
			os.Exit(127)
		}
		os.Exit(126)
	}
	// Owner: this process. Ends when it exits; drains the signals it got.
	go func() {
		for range sigs {
		}
	}()
	err := c.Wait()
	ws, ok := c.ProcessState.Sys().(syscall.WaitStatus)
	switch {
	case err == nil:
		os.Exit(0)
	case ok && ws.Signaled():
		// Die of the same signal, so that tether up reports it as the
		// program's.
		signal.Reset(ws.Signal())
		_ = syscall.Kill(os.Getpid(), ws.Signal())
		os.Exit(128 + int(ws.Signal())) // a signal whose default is not to die
	case ok:
		os.Exit(ws.ExitStatus())
	}
	os.Exit(1)
}
