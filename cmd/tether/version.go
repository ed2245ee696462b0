package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"strings"
)

// modulePath is the module whose version tether version reports.
const modulePath = "github.com/tetherproc/tether"

func runVersion(_ context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("tether version", flag.ContinueOnError)
	help := func(w io.Writer) {
		fmt.Fprint(w, `usage: tether version

Prints tether's module version ("(devel)" when built from a checkout), the Go
version it was built with and its platform, and, when the build recorded
them, the commit and whether the checkout had uncommitted changes.

Example:
  tether version
  tether -version
`)
	}
	if helped, err := parseFlags(fs, args, stdout, help); helped || err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return badUsage(fs.Name(), "unexpected argument %q", fs.Arg(0))
	}
	bi, _ := debug.ReadBuildInfo() // nil without module support: versionLine says "unknown"
	fmt.Fprintln(stdout, versionLine(bi))
	return nil
}

// versionLine is "tether v1.2.0, go1.26.8 linux/amd64", with ", revision
// HASH" and " (modified)" when the build recorded them (go build in a
// checkout, without -buildvcs=false). tether's version is the main module's,
// or, when another module built it (a go.mod tool line), its dependency's.
func versionLine(bi *debug.BuildInfo) string {
	if bi == nil {
		return fmt.Sprintf("tether (unknown version), %s %s/%s", runtime.Version(), runtime.GOOS, runtime.GOARCH)
	}
	version := "(unknown version)"
	if bi.Main.Path == modulePath {
		version = bi.Main.Version
	} else {
		for _, d := range bi.Deps {
			if d.Path == modulePath {
				version = d.Version
				if d.Replace != nil {
					version += " => " + strings.TrimSpace(d.Replace.Path+" "+d.Replace.Version)
				}
			}
		}
	}
	goos, goarch := runtime.GOOS, runtime.GOARCH
	var rev, modified string
	for _, s := range bi.Settings {
		switch s.Key {
		case "GOOS":
			goos = s.Value
		case "GOARCH":
			goarch = s.Value
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				modified = " (modified)"
			}
		}
	}
	line := fmt.Sprintf("tether %s, %s %s/%s", version, bi.GoVersion, goos, goarch)
	if rev != "" {
		line += ", revision " + rev + modified
	}
	return line
}
