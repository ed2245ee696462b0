package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
)

// tether check: foreman's check. It reads the stack as tether up would —
// the Procfile, the .env files, tether.toml, the formation and the flags —
// and says what tether up would run, or what is wrong, without running
// anything.

func runCheck(_ context.Context, args []string, stdout io.Writer) error {
	f, plan, err := upReadStack("tether check", args, stdout, func(w io.Writer, fs *flag.FlagSet) {
		fmt.Fprint(w, `usage: tether check [tether up's flags] [NAME...]

Checks the stack tether up would run — the Procfile, the .env files,
tether.toml, the formation and the flags, as foreman check does — and prints
each process with its port, readiness, order and stop settings. Exit status
0 when tether up would start, 1 (with the reason) when it would not, 2 for
a bad flag.

Flags: those of tether up (tether up -h).
`)
	})
	if f == nil || err != nil {
		return err
	}
	var types []string
	for _, p := range plan.procs {
		if len(types) == 0 || types[len(types)-1] != p.typ {
			types = append(types, p.typ)
		}
	}
	fmt.Fprintf(stdout, "valid Procfile detected (%s): %s\n", strings.Join(types, ", "), f.procfile)
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tPORT\tREADY\tAFTER\tSTOP\tRESTART\tCAN DIE")
	for _, p := range plan.procs {
		ready, after := "-", "-"
		if p.spec.Ready != nil {
			ready = p.spec.Ready.String()
		}
		if len(p.spec.After) > 0 {
			after = strings.Join(p.spec.After, ",")
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s, %v\t%s\t%v\n", p.spec.Name, p.port, ready, after,
			upSignalName(p.spec.Cmd.StopSignal), p.spec.Cmd.StopTimeout, p.spec.Restart, p.spec.CanDie)
	}
	return tw.Flush()
}

// upReadStack parses tether up's flags for command and resolves the stack
// as tether up does. A nil upFlags with a nil error: -h was printed.
func upReadStack(command string, args []string, stdout io.Writer, usage func(io.Writer, *flag.FlagSet)) (*upFlags, *upPlan, error) {
	f := upFlags{command: strings.TrimPrefix(command, "tether ")}
	fs := f.register(command)
	names, err := upParse(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		usage(stdout, fs)
		return nil, nil, nil
	}
	if err := settingError(fs, err); err != nil {
		return nil, nil, upUsageErr("%v", err) // "tether up: ...": the stack is read as tether up reads it
	}
	names = append(names, f.only...)
	set := map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
	if os.Getenv("TETHER_RESTART") != "" {
		set["restart"] = true
	}
	plan, err := f.plan(names, set)
	if err != nil {
		return nil, nil, err
	}
	return &f, plan, nil
}
