package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// tether export systemd: foreman's export, for the one format that keeps
// tether's guarantee. foreman writes a unit per process, which systemd
// stops one by one; here one unit runs the whole stack with tether up, so
// readiness, order, restarts, the control socket (tether restart web) and
// the graceful stop of every tree come with it. KillMode=mixed: systemd's
// SIGTERM goes to tether up alone, which stops each tree as configured;
// only what is left after TimeoutStopSec gets systemd's SIGKILL.

func exportUsage(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprint(w, `usage: tether export systemd [-a APP] [-u USER] [tether up's flags] DIR

Writes DIR/APP.service, a systemd unit that runs the stack with tether up:
the same Procfile, .env files, tether.toml, formation and flags, from the
directory tether export runs in. Install it as foreman's export would be:

  sudo tether export systemd -a myapp /etc/systemd/system
  sudo systemctl daemon-reload && sudo systemctl enable --now myapp
  tether restart web                   # the control socket, as with tether up

Where foreman writes a unit per process, one unit keeps tether's guarantee:
systemd's stop reaches tether up alone (KillMode=mixed), which stops every
tree gracefully; TimeoutStopSec leaves it the longest grace plus 10 s.

Flags (and those of tether up, tether up -h):
`)
	fs.SetOutput(w)
	fs.PrintDefaults()
	fs.SetOutput(io.Discard)
}

var exportAppName = regexp.MustCompile(`^[A-Za-z0-9_.@-]+$`)

func runExport(_ context.Context, args []string, stdout io.Writer) error {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "-help" || args[0] == "--help") {
			var f upFlags
			exportUsage(stdout, exportFlags(&f, new(string), new(string)))
			return nil
		}
		return badUsage("tether export", "say the format first: tether export systemd DIR")
	}
	if args[0] != "systemd" {
		return badUsage("tether export", "%q: tether exports systemd only (one unit that runs tether up: foreman's upstart, runit, supervisord and launchd units stop processes one by one, not whole trees)", args[0])
	}
	f := upFlags{command: "export"}
	var app, user string
	fs := exportFlags(&f, &app, &user)
	err := fs.Parse(args[1:])
	if errors.Is(err, flag.ErrHelp) {
		exportUsage(stdout, fs)
		return nil
	}
	if err := settingError(fs, err); err != nil {
		return badUsage("tether export", "%v", err)
	}
	if fs.NArg() != 1 {
		return badUsage("tether export", "give one DIR to write the unit to, after the flags")
	}
	dir := fs.Arg(0)
	set := map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
	plan, err := f.plan(nil, set) // the stack must be one tether up would run
	if err != nil {
		return err
	}
	cwd, err := os.Getwd()
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	if app == "" {
		app = filepath.Base(plan.root)
	}
	if !exportAppName.MatchString(app) {
		return badUsage("tether export", "-a %q: an app name is letters, digits and _ . @ -", app)
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("export: the tether binary's path: %w", err)
	}
	// tether up's arguments as given, but export's own (-a, -u, DIR).
	upArgs := []string{exe, "up", "-color", "never"}
	skip := false
	for _, a := range args[1 : len(args)-1] {
		switch {
		case skip:
			skip = false
		case a == "-a" || a == "-u" || a == "--a" || a == "--u":
			skip = true
		case strings.HasPrefix(a, "-a=") || strings.HasPrefix(a, "-u=") || strings.HasPrefix(a, "--a=") || strings.HasPrefix(a, "--u="):
		default:
			upArgs = append(upArgs, a)
		}
	}
	var grace time.Duration
	for _, p := range plan.procs {
		grace = max(grace, p.spec.Cmd.StopTimeout)
	}
	var b strings.Builder
	fmt.Fprintf(&b, `# Written by tether export systemd: tether up runs the stack, and stopping
# the unit stops every process tree gracefully (KillMode=mixed: systemd's
# SIGTERM reaches tether up alone).
[Unit]
Description=%s: tether up of %s
After=network.target

[Service]
Type=simple
`, app, filepath.Join(plan.root, filepath.Base(f.procfile)))
	if user != "" {
		fmt.Fprintf(&b, "User=%s\n", user)
	}
	fmt.Fprintf(&b, `WorkingDirectory=%s
ExecStart=%s
KillMode=mixed
TimeoutStopSec=%d
Restart=on-failure
RestartSec=1
SyslogIdentifier=%s

[Install]
WantedBy=multi-user.target
`, strings.ReplaceAll(cwd, "%", "%%"), exportCommand(upArgs), int((grace+10*time.Second+time.Second-1)/time.Second), app)
	path := filepath.Join(dir, app+".service")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	fmt.Fprintf(stdout, "wrote %s\n", path)
	return nil
}

func exportFlags(f *upFlags, app, user *string) *flag.FlagSet {
	fs := f.register("tether export")
	fs.StringVar(app, "a", "", "the unit's `name` (default: the processes' directory's name)")
	fs.StringVar(user, "u", "", "the `user` the stack runs as (default: systemd's, root)")
	return fs
}

// exportCommand writes argv as systemd reads a command line: each word in
// double quotes, with \, " escaped, and $ and % doubled (systemd would
// expand them).
func exportCommand(argv []string) string {
	words := make([]string, len(argv))
	for i, a := range argv {
		words[i] = exportQuote(a)
	}
	return strings.Join(words, " ")
}

func exportQuote(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "$", "$$", "%", "%%", "\n", `\n`)
	return `"` + r.Replace(s) + `"`
}
