// Command tether runs processes that cannot outlive it.
//
//	tether doctor     what containment this machine offers
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
	"syscall"
)

type command struct {
	name, summary string
	run           func(ctx context.Context, args []string, stdout io.Writer) error
}

var commands = []command{
	{"doctor", "print what containment this machine offers and what each level uses", runDoctor},
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
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	switch {
	case err == nil:
	case errors.Is(err, errUsage), errors.Is(err, flag.ErrHelp):
		stop()
		os.Exit(2)
	default:
		fmt.Fprintln(os.Stderr, "tether:", err)
		stop()
		os.Exit(1)
	}
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
