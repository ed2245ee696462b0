package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tetherproc/tether"
	"github.com/tetherproc/tether/procfile"
	"github.com/tetherproc/tether/supervise"
)

// upFlags are tether up's settings. The names follow foreman (-f, -e, -d,
// -m, -p) and overmind (-auto-restart, -can-die); -grace, -stop-signal and
// the restart flags are tether run's.
type upFlags struct {
	command     string // the subcommand reading the stack (up, check, exec, export), for its errors
	procfile    string
	envFiles    upList
	root        string
	formation   string
	port        int
	timestamps  bool
	color       string
	autoRestart upList
	canDie      upList
	stopSignal  string
	grace       time.Duration
	stopOrder   string
	restart     restartFlags
	tree        treeFlags
	socket      string
	tty         upList
	watch       upList
	watchPat    upList
	watchIgnore upList
	watchProcs  upList
	only        upList // -l
	ignore      upList // -i
	config      string
	ready       upList
	after       upList
}

func upUsage(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprint(w, `usage: tether up [flags] [NAME...]

Runs the processes of a Procfile, as foreman, overmind and goreman do, and
none of their trees outlives tether up, however it ends.

A Procfile has one "name: command" line per process type. Each command runs
with /bin/sh -c in the Procfile's directory (-d); as with foreman, a command
without shell syntax replaces the shell (exec). Instances are named TYPE.N
(web.1, web.2) and get PORT = base + 100 × the type's place in the Procfile
+ N-1, where base is -p, else PORT from the .env files or the environment,
else 5000; PS is the instance's name. A process's environment is tether's,
then the .env files (-e; by default the .env next to the Procfile, if any),
then PORT and PS. NAME... runs only those types (web) or instances (web.2).

Every line a process writes, on stdout or stderr, is printed after its name,
padded to align and colored when stdout is a terminal ($NO_COLOR turns colors
off, $FORCE_COLOR on; -color overrides both). tether's own messages (started,
exited, restarting, stopping) are under the name "tether".

A process that ends stops all the others (foreman's rule), unless -can-die
names it. -auto-restart names processes to start again when they end, after
a delay that doubles from -backoff up to -backoff-max, giving up past
-restart-limit (then, unless it can die, everything stops). -restart says
when they restart: always (the default with -auto-restart), on-failure or
never; given alone, it applies to every process. Names in -auto-restart and
-can-die are types, instances or "all".

Processes start all at once, as with foreman (with -stop-order reverse, each
once the one before runs). Ctrl-C, SIGTERM, or a process ending that may not,
stops everything: each process gets -stop-signal, then SIGKILL after -grace;
all at once, or with -stop-order reverse one at a time, the last started
first.

A tether.toml beside the Procfile (-config) sets, per process type:
ready (tcp: its $PORT accepts; tcp:PORT; tcp:HOST:PORT; notify: READY=1 on
$NOTIFY_SOCKET; fd: a newline on $NOTIFY_FD; ipc: "ready" on the Node IPC
channel), ready_timeout, depends_on (start once those types are ready, as
docker compose's depends_on with service_healthy), stop_signal,
stop_grace_period, restart (no, on-failure, always) and can_die:

  [db]
  ready = "tcp"
  [web]
  depends_on = ["db"]
  stop_signal = "SIGINT"

-ready TYPE=HOW and -after TYPE=DEP say the same on the command line. A
process that is not ready within ready_timeout (30s) fails its start.

While it runs, tether restart|stop|start|status [NAME...] (another terminal)
control it over the unix socket .tether.sock beside the Procfile (-socket),
which only tether up's user can use. A restart stops the whole old tree
before the new process starts. -watch PATHS restarts processes when files
change, the same way. -tty NAMES gives processes a terminal of their own
(colors, prompts, debuggers), which tether connect NAME attaches to.

Exit status: that of the first failure, 0 if there was none. A failure is a
process that ended by itself with a non-zero code (128+N if signal N killed
it), unless -can-die names it or it is restarted; or one that did not stop
cleanly when asked (it must exit 0, or by -stop-signal, or with 128+that
signal). So Ctrl-C exits 0 when everything stopped cleanly, as with foreman.

Flags (some also read from the environment variable named; the flag wins):
`)
	fs.SetOutput(w)
	fs.PrintDefaults()
	fs.SetOutput(io.Discard)
	fmt.Fprint(w, `
Examples:
  tether up                                    # ./Procfile, with ./.env if there is one
  tether up -f examples/Procfile -auto-restart crash
  tether up -m web=2,worker=1 -p 3000 -timestamp  # web.1 on 3000, web.2 on 3001, worker.1 on 3100
  tether up -e .env,.env.local web             # only web, with two .env files
  tether up -can-die migrate -auto-restart worker -restart on-failure
  tether up -ready db=tcp -after web=db -t 10   # web once db accepts; 10 s to stop
  tether restart web                           # from another terminal; with up's -f, if it had one
`)
}

func runUp(ctx context.Context, args []string, stdout io.Writer) error {
	// Its output piped into a program that ends first (| tee, | head: a
	// terminal's Ctrl-C reaches both) must not kill tether up by SIGPIPE
	// in the middle of stopping the stack: its writes fail with EPIPE
	// instead, and the stop goes on, as tether run's do.
	pipe := make(chan os.Signal, 1)
	signal.Notify(pipe, sigPipe...)
	defer signal.Stop(pipe)
	f, plan, err := upReadStack("tether up", args, stdout, upUsage)
	if f == nil || err != nil {
		return err
	}
	return plan.run(ctx, stdout)
}

// register makes the flag set of tether up (and of the commands that read
// a stack as it does: check, exec, export) with f's flags.
func (f *upFlags) register(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.StringVar(&f.procfile, "f", "Procfile", "the Procfile: the `file` to run")
	fs.Var(&f.envFiles, "e", "a .env `file` to load; repeat it or separate with commas, later files win (default: the .env next to the Procfile, if any)")
	fs.StringVar(&f.root, "d", "", "the `directory` the processes run in (default: the Procfile's)")
	fs.StringVar(&f.formation, "m", "all=1", "the `formation`: how many of each type, as web=2,worker=1 (all=N for the rest)")
	fs.IntVar(&f.port, "p", 0, "the base `port` (default: PORT from the .env files or the environment, else 5000)")
	fs.BoolVar(&f.timestamps, "timestamp", false, "print the time before each line")
	// -t and -timeout write -grace's value; each its own setting, so that
	// an error names the flag given.
	timeout := func() *setting {
		return &setting{set: func(v string) error {
			d, err := parseTimeout(v)
			if err == nil {
				f.grace = d
			}
			return err
		}, get: func() string { return "" }}
	}
	fs.Var(timeout(), "t", "the shutdown timeout in `seconds`, as foreman's and overmind's -t: the same as -grace")
	fs.Var(timeout(), "timeout", "the shutdown timeout in `seconds` (foreman's --timeout): the same as -grace")
	fs.StringVar(&f.color, "color", "auto", "the color `mode`: auto (colored names when stdout is a terminal), always or never")
	fs.Var(&f.autoRestart, "auto-restart", "restart these processes when they end: `names`, comma-separated, or all")
	fs.Var(&f.autoRestart, "r", "overmind's -r: the same as -auto-restart (`names`)")
	fs.Var(&f.only, "l", "overmind's -l: run only these `names`, comma-separated (as NAME...)")
	fs.Var(&f.ignore, "i", "overmind's -i: run all but these `names`, comma-separated")
	fs.Var(upRefuse("foreman's -c is the formation, -m here; overmind's -c is -can-die", false), "c", "refused: say -m (foreman's formation) or -can-die (overmind's)")
	fs.Var(upRefuse("tether up runs in the foreground; to keep a stack running, tether export systemd", true), "D", "refused: overmind's daemon mode")
	fs.Var(&f.canDie, "can-die", "let these processes end without stopping the others: `names`, comma-separated, or all")
	fs.Var(signalSetting(&f.stopSignal, "TETHER_STOP_SIGNAL", "SIGTERM"), "stop-signal", "the `signal` that asks a process to stop ($TETHER_STOP_SIGNAL)")
	fs.Var(graceSetting(&f.grace, "TETHER_GRACE", 5*time.Second), "grace", "the `duration` each process has to stop before SIGKILL ($TETHER_GRACE)")
	f.tree.register(fs, "each process's tree")
	fs.StringVar(&f.stopOrder, "stop-order", "together", "start and stop all processes `together`, or in order (each started once the one before runs, stopped in reverse, one at a time)")
	f.restart.register(fs)
	fs.StringVar(&f.config, "config", "", "the per-process settings `file` (TOML: readiness, depends_on, stop signal, grace, restart; default: tether.toml beside the Procfile, if any; $TETHER_CONFIG)")
	fs.Var(&f.ready, "ready", "how a type says it is ready, as `TYPE=HOW`: tcp (its $PORT accepts), tcp:PORT, tcp:HOST:PORT, notify, fd or ipc; repeat it or separate with commas")
	fs.Var(&f.after, "after", "start a type once others are ready, as `TYPE=DEP` (DEP+DEP for more); repeat it or separate with commas")
	fs.Var(&f.tty, "tty", "give these processes a terminal of their own (a pty: colors, prompts, debuggers; tether connect attaches to it): `names`, comma-separated, or all")
	fs.Var(&f.watch, "watch", "restart the processes when a file under these `paths` changes (directories with everything under them; .git, node_modules, editors' temporary files and the like are ignored), comma-separated")
	fs.Var(&f.watchPat, "watch-pattern", "with -watch, only files whose name matches these `globs` count, as *.go,*.html")
	fs.Var(&f.watchIgnore, "watch-ignore", "with -watch, ignore these names too: `globs`, as tmp,*.log")
	fs.Var(&f.watchProcs, "watch-restart", "with -watch, restart only these processes: `names`, comma-separated (default: all)")
	fs.StringVar(&f.socket, "s", "", "overmind's -s: the same as -socket (a `path`)")
	fs.StringVar(&f.socket, "socket", "", "the control socket's `path`, which tether restart, stop, start and status reach (default: .tether.sock beside the Procfile; $"+upSocketEnv+")")
	fs.SetOutput(io.Discard) // errors are reported in one line by the caller; -h prints upUsage
	fs.Usage = func() {}
	return fs
}

// parseTimeout reads foreman's and overmind's -t: whole or decimal seconds
// ("10", "2.5"), or a duration ("10s"), more than 0.
func parseTimeout(s string) (time.Duration, error) {
	if n, err := strconv.ParseFloat(strings.TrimSpace(s), 64); err == nil {
		if n <= 0 || n > 1e9 {
			return 0, fmt.Errorf("%q: the timeout must be more than 0 seconds", s)
		}
		return time.Duration(n * float64(time.Second)), nil
	}
	d, err := parseGrace(s)
	if err != nil {
		return 0, fmt.Errorf("%q: want the shutdown timeout in seconds, as foreman's and overmind's -t 10 (to print the time before each line: -timestamp)", s)
	}
	return d, nil
}

// upRefuse is a peer's flag that tether up does not take, refused with a
// hint.
func upRefuse(hint string, isBool bool) *setting {
	var v string
	s := newSetting(&v, "", "", func(string) (string, error) { return "", errors.New(hint) }, func(string) string { return "" })
	s.isBool = isBool
	return s
}

// upParse parses flags and names in any order: "tether up web -t" is
// "tether up -t web".
func upParse(fs *flag.FlagSet, args []string) ([]string, error) {
	var names []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return names, nil
		}
		for n := range strings.SplitSeq(fs.Arg(0), ",") {
			if n = strings.TrimSpace(n); n != "" {
				names = append(names, n)
			}
		}
		args = fs.Args()[1:]
	}
}

// upPlan is everything tether up starts, resolved from its flags and files
// before anything starts.
type upPlan struct {
	procs      []upProc
	stopSignal os.Signal
	together   bool // -stop-order together
	timestamps bool
	colorMode  string       // -color: auto, always or never
	socket     string       // the control socket's path
	watch      *upWatchPlan // -watch; nil without it
	env        []string     // tether's environment with the .env files', without PORT and PS
	root       string       // the processes' directory
}

// upProc is one instance to run.
type upProc struct {
	spec  supervise.Spec
	typ   string // its Procfile entry's name
	port  int    // its PORT
	tty   bool   // it runs on a terminal of its own
	ready string // its readiness as written (tcp, notify, ...); "" none
	color string // the SGR parameters of its name's color
}

// plan reads the Procfile and .env files and resolves the formation, the
// names and the per-process options. set holds the flags given explicitly.
func (f *upFlags) plan(names []string, set map[string]bool) (*upPlan, error) {
	sig, err := readSignal(f.stopSignal)
	if err != nil {
		return nil, upUsageErr("-stop-signal: %v", err)
	}
	level, limits, _ := f.tree.parse() // checked as they were read
	if set["p"] && (f.port < 1 || f.port > 65535) {
		return nil, upUsageErr("-p %d: not a port number", f.port)
	}
	if !slices.Contains([]string{"auto", "always", "never"}, f.color) {
		return nil, upUsageErr("-color %q: want auto, always or never", f.color)
	}
	if f.stopOrder != "together" && f.stopOrder != "reverse" {
		return nil, upUsageErr("-stop-order %q: want together or reverse", f.stopOrder)
	}

	entries, err := procfile.ParseFile(f.procfile)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			return nil, fmt.Errorf("%s: %s: %w (-f names the Procfile)", f.command, f.procfile, pe.Err)
		}
		return nil, err // a *procfile.SyntaxError: "procfile: Procfile:3:5: ..."
	}
	root := f.root
	if root == "" {
		root = filepath.Dir(f.procfile)
	}
	if root, err = filepath.Abs(root); err != nil {
		return nil, fmt.Errorf("%s: -d: %w", f.command, err)
	}
	if st, err := os.Stat(root); err != nil || !st.IsDir() {
		return nil, fmt.Errorf("%s: %s is not a directory to run the processes in (-d)", f.command, root)
	}

	dotenv, err := upLoadEnv(f.envFiles, filepath.Join(filepath.Dir(f.procfile), ".env"))
	if err != nil {
		return nil, err
	}
	base := f.port
	if !set["p"] {
		base, err = procfile.BasePort(func(key string) (string, bool) {
			if v, ok := dotenv.get(key); ok {
				return v, true
			}
			v := os.Getenv(key)
			return v, v != "" // an empty $PORT is no PORT
		})
		if err != nil {
			return nil, err
		}
	}
	counts, err := procfile.ParseFormation(f.formation, entries)
	if err != nil {
		return nil, upUsageErr("-m: %s", strings.TrimPrefix(err.Error(), "procfile: "))
	}
	all, err := procfile.Instances(entries, counts, base)
	if err != nil {
		return nil, upUsageErr("%s", strings.TrimPrefix(err.Error(), "procfile: "))
	}
	run, err := upSelect(all, entries, names)
	if err != nil {
		return nil, err
	}
	if len(f.ignore) > 0 {
		skip, err := upMatcher("-i", f.ignore, entries, all)
		if err != nil {
			return nil, err
		}
		if run = slices.DeleteFunc(run, skip); len(run) == 0 {
			return nil, upUsageErr("-i %s leaves no process to run", strings.Join(f.ignore, ","))
		}
	}
	restarts, err := upMatcher("-auto-restart", f.autoRestart, entries, all)
	if err != nil {
		return nil, err
	}
	canDie, err := upMatcher("-can-die", f.canDie, entries, all)
	if err != nil {
		return nil, err
	}
	tty, err := upMatcher("-tty", f.tty, entries, all)
	if err != nil {
		return nil, err
	}
	// -auto-restart picks which processes restart, -restart when: each
	// defaults to "all" and "always" when only the other is given.
	policy := f.restart.policy
	switch {
	case len(f.autoRestart) == 0 && set["restart"]:
		restarts = func(procfile.Instance) bool { return true }
	case len(f.autoRestart) > 0 && !set["restart"]:
		policy = supervise.Always
	}
	rs := f.restart.spec()
	cfgPath, required := upConfigPath(f.config, f.procfile)
	cfg, err := upLoadConfig(cfgPath, required, entries)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", f.command, err)
	}
	if err := upApplyFlags(cfg, f.ready, f.after, entries); err != nil {
		return nil, err
	}
	if err := upCycle(cfg, entries); err != nil {
		return nil, err
	}

	env := os.Environ()
	for _, kv := range dotenv.vars {
		env = upSetEnv(env, kv.Key, kv.Value)
	}
	socket, err := upSocketPath(f.socket, f.procfile)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", f.command, err)
	}
	var watch *upWatchPlan
	if len(f.watch) > 0 {
		restartAll := f.watchProcs
		if len(restartAll) == 0 {
			restartAll = upList{"all"}
		}
		which, err := upMatcher("-watch-restart", restartAll, entries, all)
		if err != nil {
			return nil, err
		}
		watch = &upWatchPlan{paths: f.watch, patterns: f.watchPat, ignore: f.watchIgnore}
		for _, in := range run {
			if which(in) {
				watch.procs = append(watch.procs, in.Name)
			}
		}
	} else if len(f.watchPat)+len(f.watchIgnore)+len(f.watchProcs) > 0 {
		return nil, upUsageErr("-watch-pattern, -watch-ignore and -watch-restart need -watch PATHS")
	}
	p := &upPlan{stopSignal: sig, watch: watch, together: f.stopOrder == "together", timestamps: f.timestamps, colorMode: f.color, socket: socket,
		env: env, root: root}
	for _, in := range run {
		cmd := upShell(in.Command)
		cmd.Dir = root
		cmd.Env = upSetEnv(upSetEnv(slices.Clone(env), "PORT", strconv.Itoa(in.Port)), "PS", in.Name)
		cmd.Stdout, cmd.Stderr = tether.Pipe(), tether.Pipe()
		cmd.StopSignal, cmd.StopTimeout = sig, f.grace
		cmd.Containment, cmd.Limits = level, limits
		spec := supervise.Spec{Name: in.Name, Cmd: cmd, CanDie: canDie(in)}
		if restarts(in) {
			spec.Restart, spec.Backoff, spec.Limit = policy, rs.Backoff, rs.Limit
		}
		ready, hasTTY := "", tty(in)
		if ts := cfg[in.Type]; ts != nil {
			if ts.tty != nil && len(f.tty) == 0 {
				hasTTY = *ts.tty
			}
			if ts.stopSignal != 0 {
				cmd.StopSignal = ts.stopSignal
			}
			if ts.grace != 0 {
				cmd.StopTimeout = ts.grace
			}
			if ts.restart != nil {
				spec.Restart, spec.Backoff, spec.Limit = *ts.restart, rs.Backoff, rs.Limit
			}
			if ts.canDie != nil {
				spec.CanDie = *ts.canDie
			}
			if ready = ts.ready; ready != "" {
				spec.Ready, spec.ReadyTimeout = upReadiness(ready, in.Port), ts.readyTimeout
				cmd.IPC = ready == "ipc"
			}
			if ts.dependsOn != nil {
				spec.After = []string{}
				for _, dep := range run {
					if slices.Contains(ts.dependsOn, dep.Type) {
						spec.After = append(spec.After, dep.Name)
					}
				}
			}
		}
		i := slices.IndexFunc(entries, func(e procfile.Entry) bool { return e.Name == in.Type })
		p.procs = append(p.procs, upProc{spec: spec, typ: in.Type, port: in.Port, tty: hasTTY, ready: ready, color: upPalette[i%len(upPalette)]})
	}
	return p, nil
}

// upCycle refuses depends_on (and -after) that wait in a circle.
func upCycle(cfg map[string]*upTypeSettings, entries []procfile.Entry) error {
	state := map[string]int{} // 1 visiting, 2 done
	var visit func(typ string, path []string) error
	visit = func(typ string, path []string) error {
		switch state[typ] {
		case 1:
			return upUsageErr("depends_on makes a cycle: %s", strings.Join(append(path, typ), " after "))
		case 2:
			return nil
		}
		state[typ] = 1
		if ts := cfg[typ]; ts != nil {
			for _, d := range ts.dependsOn {
				if err := visit(d, append(path, typ)); err != nil {
					return err
				}
			}
		}
		state[typ] = 2
		return nil
	}
	for _, e := range entries {
		if err := visit(e.Name, nil); err != nil {
			return err
		}
	}
	return nil
}

// upEnv is the variables of the .env files, in order, the last value of
// each key winning.
type upEnv struct{ vars []procfile.EnvVar }

func (e *upEnv) get(key string) (string, bool) {
	for _, v := range e.vars {
		if v.Key == key {
			return v.Value, true
		}
	}
	return "", false
}

func (e *upEnv) set(v procfile.EnvVar) {
	for i := range e.vars {
		if e.vars[i].Key == v.Key {
			e.vars[i] = v
			return
		}
	}
	e.vars = append(e.vars, v)
}

// upLoadEnv reads the -e files in order, or def if none was given and it
// exists (as foreman: a missing default is no error, a missing -e file is).
// $NAME in a file expands to what earlier files set, else the environment.
func upLoadEnv(files []string, def string) (*upEnv, error) {
	if len(files) == 0 {
		if _, err := os.Stat(def); errors.Is(err, fs.ErrNotExist) {
			return &upEnv{}, nil
		}
		files = []string{def}
	}
	e := &upEnv{}
	lookup := func(key string) (string, bool) {
		if v, ok := e.get(key); ok {
			return v, true
		}
		return os.LookupEnv(key)
	}
	for _, path := range files {
		vars, err := procfile.ParseEnvFile(path, lookup)
		if err != nil {
			var pe *fs.PathError
			if errors.As(err, &pe) {
				return nil, fmt.Errorf("up: .env file %s: %w", path, pe.Err)
			}
			return nil, err // "procfile: .env:2:1: ..."
		}
		for _, v := range vars {
			e.set(v)
		}
	}
	return e, nil
}

// upSelect keeps the instances that names (types or instance names) ask
// for; all of them when names is empty.
func upSelect(all []procfile.Instance, entries []procfile.Entry, names []string) ([]procfile.Instance, error) {
	if len(all) == 0 {
		return nil, upUsageErr("-m: the formation runs no process")
	}
	if len(names) == 0 {
		return all, nil
	}
	want := map[string]bool{}
	for _, n := range names {
		if !slices.ContainsFunc(all, func(in procfile.Instance) bool { return in.Name == n || in.Type == n }) {
			return nil, upUsageErr("%s", upUnknown(n, entries, all))
		}
		want[n] = true
	}
	var out []procfile.Instance
	for _, in := range all {
		if want[in.Name] || want[in.Type] {
			out = append(out, in)
		}
	}
	return out, nil
}

// upMatcher reads the names given to flag (types, instances or "all") into
// a test of an instance.
func upMatcher(flag string, names []string, entries []procfile.Entry, all []procfile.Instance) (func(procfile.Instance) bool, error) {
	want := map[string]bool{}
	for _, n := range names {
		if n != "all" && !slices.ContainsFunc(all, func(in procfile.Instance) bool { return in.Name == n || in.Type == n }) &&
			!slices.ContainsFunc(entries, func(e procfile.Entry) bool { return e.Name == n }) {
			return nil, upUsageErr("%s: %s", flag, upUnknown(n, entries, all))
		}
		want[n] = true
	}
	return func(in procfile.Instance) bool { return want["all"] || want[in.Type] || want[in.Name] }, nil
}

// upUnknown says why name matches no process.
func upUnknown(name string, entries []procfile.Entry, all []procfile.Instance) string {
	if slices.ContainsFunc(entries, func(e procfile.Entry) bool { return e.Name == name }) {
		return fmt.Sprintf("%s: the formation (-m) runs no instance of it", name)
	}
	var have []string
	for _, e := range entries {
		have = append(have, e.Name)
	}
	for _, in := range all {
		have = append(have, in.Name)
	}
	return fmt.Sprintf("no process named %q (the Procfile has %s)", name, strings.Join(have, ", "))
}

// upShell runs a Procfile command line as foreman does, which is as Ruby's
// spawn does: with /bin/sh -c, and a line without shell syntax replaces the
// shell (exec), so that the program's own exit status and signal handling
// are what tether sees.
func upShell(line string) *tether.Cmd {
	if runtime.GOOS == "windows" {
		return tether.Command("cmd", "/C", line)
	}
	if upSimple(line) {
		line = "exec " + line
	}
	return tether.Command("/bin/sh", "-c", line)
}

// upSimple is Ruby's test (rb_exec_fillarg) for a command line it runs
// without a shell: no shell metacharacter, no '=' in the first word (an
// assignment), and a first word that is not a shell keyword or builtin.
func upSimple(line string) bool {
	first, _, _ := strings.Cut(strings.TrimLeft(line, " \t"), " ")
	first, _, _ = strings.Cut(first, "\t")
	if first == "" || strings.ContainsAny(line, "*?{}[]<>()~&|\\$;'`\"\n#") || strings.Contains(first, "=") {
		return false
	}
	return !slices.Contains([]string{"!", ".", ":", "break", "case", "continue", "do", "done", "elif", "else", "esac",
		"eval", "exec", "exit", "export", "fi", "for", "if", "in", "readonly", "return", "set", "shift", "then",
		"times", "trap", "unset", "until", "while"}, first)
}

// upSetEnv sets key in env, replacing an earlier value in place.
func upSetEnv(env []string, key, value string) []string {
	for i, kv := range env {
		if k, _, ok := strings.Cut(kv, "="); ok && k == key {
			env[i] = key + "=" + value
			return env
		}
	}
	return append(env, key+"="+value)
}

// upList is a flag that may be repeated and holds comma-separated values.
type upList []string

func (l *upList) String() string { return strings.Join(*l, ",") }

func (l *upList) Set(s string) error {
	for v := range strings.SplitSeq(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			*l = append(*l, v)
		}
	}
	return nil
}

// upUsageError is a usage error (exit status 2) whose message tether up
// printed; errors.Is(err, errUsage) holds.
type upUsageError struct{ msg string }

func (e *upUsageError) Error() string        { return e.msg }
func (e *upUsageError) Is(target error) bool { return target == errUsage }

// upUsageErr prints one line to stderr, where main's error messages go,
// and returns it as an upUsageError.
func upUsageErr(format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	fmt.Fprintf(os.Stderr, "tether up: %s (tether up -h for help)\n", msg)
	return &upUsageError{msg: "tether up: " + msg}
}
