package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

// tether exec: foreman's and overmind's `run`, under another name because
// `tether run` is the init. One command, with the environment a process of
// the stack gets, run as tether run runs a program (signals passed on, the
// whole tree stopped when it exits, its exit status passed through).

func execUsage(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprint(w, `usage: tether exec [tether up's flags] [--] NAME | COMMAND [ARGS...]

Runs one command with the stack's environment, as foreman run and overmind
run do (tether run is the init, so here it is exec): tether's environment,
then the .env files (-e; by default the .env beside the Procfile), in the
processes' directory (-d; by default the Procfile's). NAME, a process type of
the Procfile, runs that type's command as its first instance would run, with
its PORT and PS; anything else runs as given — one word with shell syntax
through /bin/sh -c. It runs as under tether run: signals passed on, the
terminal's foreground given to it, the whole tree stopped when it exits,
and its exit status passed through.

Examples:
  tether exec web                      # the Procfile's web command, PORT and all
  tether exec -- rails console         # with the .env's variables
  tether exec 'echo $DATABASE_URL'     # through /bin/sh -c

Flags: those of tether up (tether up -h) that read the stack: -f, -e, -d,
-p, -m, -config.
`)
	_ = fs
}

func runExec(ctx context.Context, args []string, stdout io.Writer) error {
	f := upFlags{command: "exec"}
	fs := f.register("tether exec")
	err := fs.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		execUsage(stdout, fs)
		return nil
	}
	if err := settingError(fs, err); err != nil {
		return badUsage("tether exec", "%v", err)
	}
	if fs.NArg() == 0 {
		return badUsage("tether exec", "no command given: a process type of the Procfile, or a command")
	}
	set := map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
	plan, err := f.plan(nil, set)
	if err != nil {
		return err
	}
	argv, env, dir := fs.Args(), plan.env, plan.root
	if len(argv) == 1 {
		for _, p := range plan.procs {
			if p.typ == argv[0] {
				// Its first instance's command line, environment and
				// directory.
				argv, env, dir = p.spec.Cmd.Args, p.spec.Cmd.Env, p.spec.Cmd.Dir
				break
			}
		}
		if len(argv) == 1 && !upSimple(argv[0]) {
			argv = upShell(argv[0]).Args
		}
	}
	// This process is tether exec's own: its environment and directory
	// become the command's, and tether run takes it from there.
	os.Clearenv()
	for _, kv := range env {
		if k, v, ok := strings.Cut(kv, "="); ok {
			_ = os.Setenv(k, v) // cannot fail: the key came from an environment
		}
	}
	if err := os.Chdir(dir); err != nil {
		return fmt.Errorf("exec: %w", err)
	}
	return runRun(ctx, append([]string{"--"}, argv...), stdout)
}
