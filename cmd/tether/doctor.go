package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"runtime"
	"text/tabwriter"

	"github.com/tetherproc/tether"
)

func runDoctor(_ context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("tether doctor", flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "print the report as JSON")
	help := func(w io.Writer) {
		fmt.Fprint(w, `usage: tether doctor [-json]

Prints what containment this machine offers: for each level, whether it is
available and how it works here, and which level ContainAuto (the default)
picks. It starts a keeper to find out, as the first tethered start would.

Example:
  tether doctor
  tether doctor -json | jq .auto
`)
	}
	if helped, err := parseFlags(fs, args, stdout, help); helped || err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return badUsage(fs.Name(), "unexpected argument %q", fs.Arg(0))
	}
	r := tether.Probe()
	if *asJSON {
		type level struct {
			Level     string `json:"level"`
			Available bool   `json:"available"`
			Detail    string `json:"detail"`
		}
		out := struct {
			OS     string   `json:"os"`
			Auto   string   `json:"auto"`
			Levels []level  `json:"levels"`
			Facts  []string `json:"facts"`
		}{OS: runtime.GOOS, Auto: r.Auto.String(), Facts: r.Facts}
		for _, l := range r.Levels {
			out.Levels = append(out.Levels, level{l.Level.String(), l.Available, l.Detail})
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	fmt.Fprintf(stdout, "tether doctor: containment on this machine (%s/%s)\n\n", runtime.GOOS, runtime.GOARCH)
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  level\tavailable\thow")
	for _, l := range r.Levels {
		avail := "no"
		if l.Available {
			avail = "yes"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", l.Level, avail, l.Detail)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "\nauto (the default) picks: %s\n\n", r.Auto)
	for _, f := range r.Facts {
		fmt.Fprintf(stdout, "  %s\n", f)
	}
	return nil
}
