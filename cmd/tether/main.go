// Command tether runs processes that cannot outlive it.
//
//	tether run -- CMD  an init and wrapper: signals, zombies, exit code, the whole tree stopped
//	tether up          a Procfile's processes, as foreman runs them
//	tether restart, stop, start, status NAME...
//	                   control a running tether up over its socket
//	tether doctor      what containment this machine offers
//	tether version     tether's version and the Go it was built with
//
// Each subcommand lives in its own file with a Run(ctx, args, stdout) error;
// main only maps errors to exit codes.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

type command struct {
	name, summary string
	run           func(ctx context.Context, args []string, stdout io.Writer) error
	ownSignals    bool // it handles SIGINT and SIGTERM itself
}

var commands = []command{
	{"run", "run a program as an init: forward signals, reap zombies, pass its exit code through", runRun, true},
	{"up", "run a Procfile's processes, as foreman does: prefixed output, restarts, all stopped together", runUp, false},
	{"check", "check a Procfile, its .env and tether.toml, and print what tether up would run (foreman check)", runCheck, false},
	{"exec", "run one command with the stack's environment, or a Procfile type's command (foreman run)", runExec, true},
	{"export", "write a systemd unit that runs the stack with tether up (foreman export systemd)", runExport, false},
	{"restart", "restart processes of a running tether up, each whole tree gone before the new one starts", runRestart, false},
	{"stop", "stop processes of a running tether up; the others go on", runStop, false},
	{"start", "start processes of a running tether up that were stopped or have ended", runStart, false},
	{"connect", "attach this terminal to a process's terminal in a running tether up; Ctrl-] detaches", runConnect, false},
	{"status", "show the processes of a running tether up (-json for scripts)", runStatus, false},
	{"doctor", "print what containment this machine offers and what each level uses", runDoctor, false},
	{"version", "print tether's version and the Go version it was built with (also -version)", runVersion, false},
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: tether COMMAND [flags]\n\ncommands:")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'tether COMMAND -h' for a command's flags.")
}

// errUsage marks a usage error (exit status 2); the message was printed.
var errUsage = errors.New("usage")

func main() {
	if os.Getenv(ttySessionEnv) != "" {
		ttySession(os.Args[1:]) // does not return
	}
	if path, ok := os.LookupEnv(execListenEnv); ok {
		execWithListenPID(path) // does not return
	}
	ctx, stop := context.Background(), func() {}
	if c := find(os.Args[1:]); c == nil || !c.ownSignals {
		ctx, stop = signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	}
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	var code exitCode
	switch {
	case err == nil:
	case errors.As(err, &code):
		os.Exit(int(code)) // the child's status, passed through; it said why
	case errors.Is(err, errUsage), errors.Is(err, flag.ErrHelp):
		os.Exit(2)
	default:
		// The library's errors say "tether: " already.
		fmt.Fprintln(os.Stderr, "tether:", strings.TrimPrefix(err.Error(), "tether: "))
		os.Exit(1)
	}
}

func find(args []string) *command {
	for i := range commands {
		if len(args) > 0 && commands[i].name == args[0] {
			return &commands[i]
		}
	}
	return nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		usage(stderr)
		return errUsage
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		usage(stdout)
		return nil
	case "-version", "--version":
		return runVersion(ctx, args[1:], stdout)
	}
	for _, c := range commands {
		if c.name == args[0] {
			return c.run(ctx, args[1:], stdout)
		}
	}
	fmt.Fprintf(stderr, "tether: unknown command %q\n\n", args[0])
	usage(stderr)
	return errUsage
}

// parseFlags parses a subcommand's flags the same way for every command:
// -h prints its help to stdout (exit status 0); a bad flag, or a bad
// TETHER_* variable for a flag not given, is one line on stderr naming it,
// and a usage error (exit status 2).
func parseFlags(fs *flag.FlagSet, args []string, stdout io.Writer, help func(io.Writer)) (helped bool, err error) {
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	err = fs.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		help(stdout)
		return true, nil
	}
	if err := settingError(fs, err); err != nil {
		return false, badUsage(fs.Name(), "%v", err)
	}
	return false, nil
}

// badUsage prints one line about a usage error and returns errUsage.
func badUsage(command, format string, args ...any) error {
	fmt.Fprintf(os.Stderr, "%s: %s (%s -h for help)\n", command, fmt.Sprintf(format, args...), command)
	return errUsage
}
