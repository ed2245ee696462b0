package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"

	"github.com/tetherproc/tether"
)

// Descriptors tether run was given beyond stdin, stdout and stderr reach
// PROGRAM at the same numbers, as through tini or a plain exec: systemd's
// socket activation (LISTEN_FDS, from fd 3), Node's IPC channel
// (NODE_CHANNEL_FD), a pipe a script set up with 3>.

// execListenEnv, in the environment of a re-execution of tether, names the
// program to execute after setting LISTEN_PID (see execWithListenPID).
const execListenEnv = "TETHER_EXEC_LISTEN_PID"

// passInherited makes cmd give PROGRAM every descriptor from 3 up that
// tether inherited, at its number (and no other). Under socket activation (LISTEN_FDS and LISTEN_PID set: the
// sockets are for the process whose pid LISTEN_PID names, sd_listen_fds(3)),
// PROGRAM is started through a re-execution of tether that sets LISTEN_PID
// to its own pid, which exec keeps, and then executes PROGRAM (when
// LISTEN_PID named tether: the sockets were tether's to pass on).
func passInherited(cmd *tether.Cmd) error {
	files, err := inheritedFiles()
	if err != nil {
		return fmt.Errorf("inherited descriptors: %w", err)
	}
	if len(files) == 0 {
		return nil
	}
	cmd.ExtraFiles = files // nil in a gap: closed in PROGRAM too
	// Only sockets meant for tether: a LISTEN_PID naming another process
	// (a parent that did not unset it) makes them nobody's here.
	if os.Getenv("LISTEN_FDS") != "" && os.Getenv("LISTEN_PID") == strconv.Itoa(os.Getpid()) {
		self, err := os.Executable()
		if err != nil {
			return fmt.Errorf("socket activation needs tether's own path to set LISTEN_PID: %w", err)
		}
		cmd.Env = append(os.Environ(), execListenEnv+"="+cmd.Path)
		cmd.Path = self
	}
	return nil
}

// execWithListenPID runs in the re-execution passInherited sets up: it sets
// LISTEN_PID to this process's pid and executes path with tether's argv
// (PROGRAM's). It returns only by exiting, 127 or 126 as a shell would.
func execWithListenPID(path string) {
	_ = os.Unsetenv(execListenEnv)
	_ = os.Setenv("LISTEN_PID", strconv.Itoa(os.Getpid()))
	err := syscall.Exec(path, os.Args, os.Environ())
	fmt.Fprintf(os.Stderr, "tether: %s: %v\n", os.Args[0], err)
	if os.IsNotExist(err) {
		os.Exit(127)
	}
	os.Exit(126)
}

// describeFDs is for messages: "3, 4 and 7".
func describeFDs(fds []int) string {
	s := make([]string, len(fds))
	for i, fd := range fds {
		s[i] = strconv.Itoa(fd)
	}
	if len(s) == 1 {
		return s[0]
	}
	return strings.Join(s[:len(s)-1], ", ") + " and " + s[len(s)-1]
}
