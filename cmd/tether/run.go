package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/tetherproc/tether"
	"github.com/tetherproc/tether/supervise"
)

// runFlags are tether run's settings; each flag has an environment variable
// (as tini's TINI_* do), and the flag wins.
type runFlags struct {
	stopSignal string
	grace      time.Duration
	tree       treeFlags
	verbose    bool
	restart    restartFlags
	group      bool       // -g: signals to PROGRAM's process group
	forward    string     // -forward: program, group or tree
	rewrite    rewriteMap // -rewrite FROM:TO, repeatable
	success    codeList   // -e CODE, repeatable: exit statuses that mean 0

	dieWithParent bool // -die-with-parent: stop when tether's parent ends
}

func runUsage(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprint(w, `usage: tether run [flags] [--] PROGRAM [ARGS...]

Runs PROGRAM as a container-grade init and wrapper, a drop-in for tini and
dumb-init: it passes the signals tether receives on to PROGRAM, reaps zombies
when it is PID 1 (and is a subreaper otherwise), gives PROGRAM the terminal's
foreground so Ctrl-C and job control behave as without tether, and exits with
PROGRAM's status: its code, 128+N when signal N killed it, 127 when PROGRAM
was not found, 126 when it could not be executed.

Signals: every one tether receives but SIGCHLD goes to PROGRAM alone (to its
process group with -g, to the whole tree with -forward tree), translated by
-rewrite. SIGTERM (docker stop) becomes the -stop-signal. SIGTERM and SIGINT
ask tether to end: after passing them on it sends SIGCONT (a stopped PROGRAM
acts on them) and ends when PROGRAM does, however long that takes — the
deadline is the orchestrator's (docker stop -t), as with tini. SIGHUP and
every other signal are only passed on: PROGRAM may handle them and go on
(nginx reloads on SIGHUP).

When PROGRAM exits, what is left of its tree is stopped: the stop signal,
the grace period, SIGKILL; tether says on stderr which processes it waits
for, and which it kills (one that started during the grace, such as a
clean-up command, is marked so). When tether is SIGKILLed, its keeper stops
the tree the same way. Nothing tether started survives it.

Flags (each also read from the environment variable named, the flag wins):
`)
	fs.SetOutput(w)
	fs.PrintDefaults()
	fs.SetOutput(io.Discard)
	fmt.Fprint(w, `
Examples:
  tether run -- node server.js
  tether run -grace 30s -stop-signal SIGINT -- python app.py
  tether run -g -e 143 -- java -jar app.jar
  tether run -restart on-failure -restart-limit 5/1m -- ./worker
  tether run -memory-max 512M -pids-max 200 -- make -j8
  ENTRYPOINT ["tether", "run", "--"]        # in a Dockerfile
`)
}

func runRun(ctx context.Context, args []string, stdout io.Writer) error {
	var f runFlags
	fs := flag.NewFlagSet("tether run", flag.ContinueOnError)
	fs.Var(signalSetting(&f.stopSignal, "TETHER_STOP_SIGNAL", "SIGTERM"), "stop-signal", "the `signal` PROGRAM and its tree understand as \"stop\": PROGRAM gets it when tether gets SIGTERM, and what PROGRAM leaves gets it when PROGRAM exits ($TETHER_STOP_SIGNAL)")
	fs.Var(graceSetting(&f.grace, "TETHER_GRACE", 10*time.Second), "grace", "how long (a `duration`) what PROGRAM leaves behind has to stop before SIGKILL, once PROGRAM has exited; PROGRAM itself is never given a deadline by tether ($TETHER_GRACE)")
	f.tree.register(fs, "the tree")
	fs.Var(boolSetting(&f.verbose, "TETHER_VERBOSE"), "v", "log each event of the child to stderr ($TETHER_VERBOSE)")
	fs.BoolVar(&f.group, "g", false, "send the signals tether receives to PROGRAM's process group, not to PROGRAM alone (tini's -g); the same as -forward group")
	fs.Var(stringSetting(&f.forward, "TETHER_FORWARD", "program", checkForward), "forward", "where the signals tether receives go: program (PROGRAM alone, as tini), group (its process group, as tini -g and dumb-init) or tree (every process of the tree, setsid ones too) ($TETHER_FORWARD)")
	fs.Var(&f.rewrite, "rewrite", "FROM:TO: pass signal FROM on as TO (TO 0: drop it), as dumb-init's --rewrite; repeatable, e.g. -rewrite TERM:QUIT -rewrite WINCH:0")
	fs.Var(&f.success, "e", "CODE: exit with 0 when PROGRAM exits with CODE (0-255), as tini's -e, and count it as success for -restart; repeatable, e.g. -e 143 for a JVM stopped by SIGTERM")
	fs.Var(boolSetting(&f.dieWithParent, "TETHER_DIE_WITH_PARENT"), "die-with-parent", "stop PROGRAM's tree gracefully when tether's own parent ends, however it ends, SIGKILL included (bwrap's --die-with-parent): the stop signal, then SIGKILL after -grace ($TETHER_DIE_WITH_PARENT)")
	f.restart.register(fs)
	if helped, err := parseFlags(fs, args, stdout, func(w io.Writer) { runUsage(w, fs) }); helped || err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return badUsage(fs.Name(), "no program given")
	}
	sig, err := readSignal(f.stopSignal)
	if err != nil {
		return badUsage(fs.Name(), "-stop-signal: %v", err)
	}
	level, limits, err := f.tree.parse()
	if err != nil {
		return badUsage(fs.Name(), "%v", err)
	}
	if isInit() && level == tether.ContainAuto {
		// A container's init: the kernel kills the namespace when tether
		// dies, however it dies, so a keeper buys nothing and costs a
		// process, its memory, and a race with the kernel on docker kill.
		// tether runs alone and stops the namespace itself (stopNamespace).
		level = tether.ContainGroup
		if os.Getenv("GOMAXPROCS") == "" {
			runtime.GOMAXPROCS(1) // an init waits; fewer threads
		}
	}
	if err := f.restart.check(); err != nil {
		return badUsage(fs.Name(), "%v", err)
	}
	if f.group {
		if f.forward != "program" && f.forward != "group" {
			return badUsage(fs.Name(), "-g and -forward %s disagree", f.forward)
		}
		f.forward = "group"
	}
	switch f.forward {
	case "program", "group", "tree":
	default:
		return badUsage(fs.Name(), "-forward %q: want program, group or tree", f.forward)
	}

	prog := fs.Args()
	cmd := tether.Command(prog[0], prog[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = tether.Inherit(), tether.Inherit(), tether.Inherit()
	if err := passInherited(cmd); err != nil {
		return err
	}
	cmd.StopSignal, cmd.StopTimeout, cmd.Containment, cmd.Limits = sig, f.grace, level, limits
	if f.verbose {
		cmd.Observer = func(e tether.Event) { fmt.Fprintln(os.Stderr, "tether:", describe(e)) }
	}
	code, err := wrap(ctx, cmd, f)
	if err != nil {
		return err
	}
	if slices.Contains(f.success, code) {
		code = 0
	}
	if code != 0 {
		return exitCode(code)
	}
	return nil
}

// exitCode is an exit status to pass through; main exits with it, silently.
type exitCode int

func (c exitCode) Error() string { return fmt.Sprintf("exit status %d", int(c)) }

// wrap is the init loop: start the program (again, per the restart policy),
// forward signals, reap orphans, and say how it ended as an exit code.
func wrap(ctx context.Context, cmd *tether.Cmd, f runFlags) (int, error) {
	// Job control: PROGRAM's stops and continues, from the keeper
	// (EventStopped, EventContinued) or, at the group level, from the
	// reaper's SIGCHLD. Buffered: neither sender may block, and in a burst
	// the newest are dropped (a stop is followed by its continue anyway).
	jobs := make(chan tether.Event, 8)
	reaper := becomeReaper(jobs)
	defer reaper.stop()
	observe := cmd.Observer
	cmd.Observer = func(e tether.Event) {
		if e.Kind == tether.EventStopped || e.Kind == tether.EventContinued {
			select {
			case jobs <- e:
			default: // a burst of stops and continues: see above
			}
		}
		if observe != nil {
			observe(e)
		}
	}

	// A signal ignored when tether started (nohup, a script's background
	// job) stays ignored, in tether and so in PROGRAM, as through exec or
	// tini: it is not caught, and never forwarded.
	sigs := make(chan os.Signal, 32)
	var catch []os.Signal
	for _, s := range forwardable() {
		if !signal.Ignored(s) {
			catch = append(catch, s)
		}
	}
	signal.Notify(sigs, catch...)
	defer signal.Stop(sigs)
	// SIGPIPE from tether's own writes (stderr gone: a dead parent's pipe)
	// is caught and dropped, so the write fails with EPIPE and neither
	// tether nor PROGRAM dies of it.
	pipe := make(chan os.Signal, 1)
	signal.Notify(pipe, sigPipe...)
	defer signal.Stop(pipe)
	parentGone, err := watchParent(f.dieWithParent)
	if err != nil {
		return 0, err
	}

	tty := foregroundTTY()
	cmd.Foreground = tty.ok
	spec := f.restart.spec()
	spec.SuccessCodes = f.success
	restarts := supervise.NewRestarts(spec)
	sess := &session{
		fw:         forwarder{to: f.forward, rewrite: f.rewrite, stop: cmd.StopSignal},
		sigs:       sigs,
		parentGone: parentGone,
		grace:      f.grace,
		jobs:       jobs,
		tty:        tty,
	}
	last := 0
	for {
		p, err := cmd.Start(context.Background()) // its end is driven by serve
		if err != nil && shellFallback(cmd, err) {
			p, err = cmd.Start(context.Background())
		}
		if err != nil {
			last = startFailure(cmd, err)
			break
		}
		if lvl := p.Containment(); lvl == tether.ContainGroup || lvl == tether.ContainCgroup {
			// PROGRAM is tether's own child: the reaper leaves it to
			// tether and follows its stops.
			reaper.program.Store(int64(p.PID()))
		}
		st, ended := serve(ctx, p, sess)
		reaper.program.Store(0)
		tty.takeFrom(p.PID())
		last = statusCode(st)
		if ended {
			break
		}
		delay, again, err := restarts.Next(st, st.Duration())
		if err != nil {
			fmt.Fprintf(os.Stderr, "tether: %s: %s: giving up\n", cmd.Args[0], strings.TrimPrefix(err.Error(), "tether: "))
		}
		if !again {
			break
		}
		fmt.Fprintf(os.Stderr, "tether: %s: %s; restarting in %v\n", cmd.Args[0], st, delay.Round(time.Millisecond))
		if !sleepOrSignal(ctx, delay, sigs) {
			break
		}
	}
	// What is left of the trees (daemons, orphans) is stopped gracefully, and
	// tether returns only when it is gone. It says what it waits for, and
	// what it kills: a leftover that ignores the stop signal holds the
	// container for the whole grace.
	left := leftovers()
	if len(left) > 0 {
		fmt.Fprintf(os.Stderr, "tether: %s exited; stopping %s it left (%v, SIGKILL after %v): %s\n",
			cmd.Args[0], plural(len(left), "process", "processes"), sigName(cmd.StopSignal), f.grace, describeProcs(left, nil))
	}
	named := pidSet(left) // what the later notes compare with
	if isInit() && cmd.Containment == tether.ContainGroup {
		// Every process of the namespace is ours to stop, and the SIGKILL
		// is ours to send: stopNamespace names what it kills.
		stop, _ := cmd.StopSignal.(syscall.Signal)
		stopNamespace(stop, f.grace, reaper, func() {
			if left := leftovers(); len(left) > 0 {
				fmt.Fprintf(os.Stderr, "tether: SIGKILL to %s still running after %v: %s\n",
					plural(len(left), "process", "processes"), f.grace, describeProcs(left, named))
			}
		})
		return last, nil
	}
	// Elsewhere the keeper sends the SIGKILL at the grace; the note comes
	// just before (a tenth of the grace, from 100 ms to half a second, at
	// most half of it), while they can still be named.
	early := min(max(f.grace/10, 100*time.Millisecond), 500*time.Millisecond, f.grace/2)
	// Owner: wrap. Ends when it fires (once) or is stopped.
	killNote := time.AfterFunc(f.grace-early, func() {
		if left := leftovers(); len(left) > 0 {
			fmt.Fprintf(os.Stderr, "tether: %s still running after %v, SIGKILL at %v: %s\n",
				plural(len(left), "process", "processes"), (f.grace - early).Round(time.Millisecond), f.grace, describeProcs(left, named))
		}
	})
	defer killNote.Stop()
	sctx, cancel := context.WithTimeout(context.Background(), f.grace+5*time.Second)
	defer cancel()
	done := make(chan error, 1)
	// Owner: wrap. Ends when Shutdown does: at the grace and its SIGKILL,
	// or at sctx's end.
	go func() { done <- tether.Shutdown(sctx) }()
	for {
		select {
		case err := <-done:
			if err != nil {
				fmt.Fprintln(os.Stderr, "tether: stopping what is left:", err)
			}
			return last, nil
		case s := <-sigs:
			// A Ctrl-C or SIGTERM (a second one, often) while the leftovers have their
			// grace: the user will not wait; neither does tether.
			if !isEnding(s) {
				continue
			}
			if left := leftovers(); len(left) > 0 {
				fmt.Fprintf(os.Stderr, "tether: %s while they had their grace: SIGKILL to %s: %s\n", sigName(s), plural(len(left), "process", "processes"), describeProcs(left, named))
				for _, l := range left {
					signalOne(l.pid, syscall.SIGKILL) // alive when listed; best effort: it may be exiting
				}
			}
		}
	}
}

// procDesc is a process tether waits for, as ps would name it.
type procDesc struct {
	pid int
	cmd string
}

// pidSet is the pids of ps.
func pidSet(ps []procDesc) map[int]bool {
	m := make(map[int]bool, len(ps))
	for _, p := range ps {
		m[p.pid] = true
	}
	return m
}

// describeProcs lists processes as "PID (COMMAND)", at most ten. A later
// note passes the pids the first one named as before: those come first, and
// any other is marked as started during the grace (a trap's clean-up
// command, a leftover that forks), so that a note never passes a newcomer
// off as one of those tether has been waiting for all along.
func describeProcs(ps []procDesc, before map[int]bool) string {
	if before != nil {
		ps = slices.Clone(ps)
		slices.SortStableFunc(ps, func(a, b procDesc) int {
			switch {
			case before[a.pid] == before[b.pid]:
				return 0
			case before[a.pid]:
				return -1
			default:
				return 1
			}
		})
	}
	var parts []string
	for i, p := range ps {
		if i == 10 {
			parts = append(parts, fmt.Sprintf("and %d more", len(ps)-10))
			break
		}
		if before != nil && !before[p.pid] {
			parts = append(parts, fmt.Sprintf("%d (%s; started during the grace)", p.pid, p.cmd))
			continue
		}
		parts = append(parts, fmt.Sprintf("%d (%s)", p.pid, p.cmd))
	}
	return strings.Join(parts, ", ")
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.Itoa(n) + " " + many
}

// session is what serve needs across restarts.
type session struct {
	fw         forwarder
	sigs       <-chan os.Signal
	parentGone <-chan struct{} // closed when tether's parent ends (-die-with-parent); nil otherwise
	grace      time.Duration
	jobs       <-chan tether.Event // PROGRAM stopped or continued
	tty        *ttyOwner
}

// serve passes the signals tether receives on to p until p exits, and
// returns how it exited and whether tether itself was asked to end (no
// restart then). SIGTERM and SIGINT ask tether to end: PROGRAM gets the stop
// signal (for SIGTERM) or SIGINT, then SIGCONT, and tether ends when PROGRAM
// does, however long that takes: the deadline is the orchestrator's (docker
// stop -t, terminationGracePeriodSeconds), as with tini and dumb-init.
// Every other signal, SIGHUP included (a reload for nginx, haproxy,
// prometheus...), is only passed on.
//
// With -die-with-parent, parentGone closes when tether's parent ends: then
// PROGRAM gets the stop signal and SIGCONT as for SIGTERM, and, as nobody is
// left to enforce a deadline, SIGKILL with its tree after grace.
//
// Job control, when tether runs in a terminal's foreground: when PROGRAM
// stops (Ctrl-Z in its terminal, SIGSTOP, a background read), tether does
// what a shell's job does — takes the
// terminal back and stops itself with the same signal, so the shell says
// "Stopped" and gets its prompt; when continued (fg, bg), it gives the
// terminal back if the shell gave it tether (fg), and continues PROGRAM's
// process group.
func serve(ctx context.Context, p *tether.Process, s *session) (*tether.Exit, bool) {
	ended := false
	parentGone := s.parentGone
	var deadline <-chan time.Time
	for {
		select {
		case <-p.Exited():
			<-p.Done() // bounded: DrainTimeout
			return p.Exit(), ended
		case e := <-s.jobs:
			// Only as a shell's job, in a terminal: elsewhere (a container,
			// a service) a stopped PROGRAM is someone's deliberate pause,
			// and tether has no shell to report to. Only this run's: an
			// event of the run before a restart is stale.
			if e.Kind != tether.EventStopped || e.PID != p.PID() || e.Signal == nil || p.Exit() != nil || !s.tty.followsJobs() {
				continue
			}
			// A report can be stale: continued twice (bg's SIGCONT, passed
			// on, and ours), a background read stops PROGRAM twice, and
			// after fg the second report finds it running.
			if !isStopped(p.PID()) {
				continue
			}
			sig, _ := e.Signal.(syscall.Signal)
			s.tty.takeFrom(p.PID()) // not after a background read (SIGTTIN): the shell has it
			stopSelf(sig)           // returns when a shell (or anyone) continues tether
			s.tty.giveIfOurs(p.PID())
			if p.Exit() == nil {
				signalGroup(p.PID(), sigCont)
			}
		case <-parentGone:
			parentGone = nil
			ended = true
			fmt.Fprintf(os.Stderr, "tether: parent gone: stopping pid %d (%s, SIGKILL after %v)\n", p.PID(), sigName(s.fw.stop), s.grace)
			s.fw.pass(p, syscall.SIGTERM)
			deadline = time.After(s.grace)
		case <-deadline:
			deadline = nil
			_ = p.Kill() // the tree; best effort: it may have exited just now
		case <-ctx.Done():
			// A caller's cancellation (tests run this in-process): as
			// SIGTERM.
			ctx = context.Background()
			ended = true
			s.fw.pass(p, syscall.SIGTERM)
		case sig := <-s.sigs:
			if isEnding(sig) {
				ended = true
			}
			if sig == sigCont && p.Exit() == nil {
				// fg after tether was continued in the background, or a
				// SIGCONT from anyone: the terminal goes with it.
				s.tty.giveIfOurs(p.PID())
			}
			s.fw.pass(p, sig)
		}
	}
}

// forwarder passes the signals tether receives on to the program.
type forwarder struct {
	to      string     // program, group or tree
	rewrite rewriteMap // FROM -> TO; TO 0 drops FROM
	stop    os.Signal  // what SIGTERM becomes, unless rewritten
}

// pass sends s, translated, where the forwarder says; after an ending signal
// it sends SIGCONT too, so that a program stopped by Ctrl-Z or SIGSTOP acts
// on it (a stopped process cannot).
func (f forwarder) pass(p *tether.Process, s os.Signal) {
	ss, ok := s.(syscall.Signal)
	if !ok {
		return
	}
	out, rewritten := f.rewrite[ss]
	switch {
	case rewritten && out == 0:
		return // dropped
	case !rewritten && ss == syscall.SIGTERM:
		out, _ = f.stop.(syscall.Signal)
	case !rewritten:
		out = ss
	}
	if p.Exit() != nil {
		return // the loop sees the exit next
	}
	// Before its exit is known the pid is not a stranger: unreaped at the
	// group level; at the keeper levels reuse would need the pid space to
	// wrap in between. PROGRAM leads its own process group at every level.
	send := func(sig syscall.Signal) {
		switch f.to {
		case "tree":
			_ = p.Signal(sig) // best effort: it may have exited
		case "group":
			signalGroup(p.PID(), sig)
		default:
			signalOne(p.PID(), sig)
		}
	}
	send(out)
	if isEnding(s) && sigCont != 0 && out != sigCont && out != syscall.SIGKILL {
		send(sigCont)
	}
}

// rewriteMap is -rewrite: FROM:TO pairs of signals.
type rewriteMap map[syscall.Signal]syscall.Signal

func (m *rewriteMap) String() string {
	var parts []string
	for from, to := range *m {
		parts = append(parts, fmt.Sprintf("%d:%d", from, to))
	}
	slices.Sort(parts)
	return strings.Join(parts, ",")
}

func (m *rewriteMap) Set(v string) error {
	from, to, ok := strings.Cut(v, ":")
	if !ok {
		return fmt.Errorf("%q: want FROM:TO, as TERM:QUIT or 15:3 (TO 0 drops FROM)", v)
	}
	f, err := readSignal(from)
	if err != nil {
		return err
	}
	var t syscall.Signal
	if to != "0" {
		if t, err = readSignal(to); err != nil {
			return err
		}
	}
	if *m == nil {
		*m = rewriteMap{}
	}
	(*m)[f] = t
	return nil
}

// codeList is -e: exit statuses that count as 0.
type codeList []int

func (c *codeList) String() string { return fmt.Sprint([]int(*c)) }

func (c *codeList) Set(v string) error {
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 || n > 255 {
		return fmt.Errorf("%q: want an exit status, 0 to 255", v)
	}
	*c = append(*c, n)
	return nil
}

// sleepOrSignal waits d before a restart; an ending signal or ctx cancels it.
func sleepOrSignal(ctx context.Context, d time.Duration, sigs <-chan os.Signal) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			return true
		case <-ctx.Done():
			return false
		case s := <-sigs:
			if isEnding(s) {
				return false
			}
		}
	}
}

// isEnding reports whether s asks tether itself to end: SIGTERM (docker
// stop, systemd, Kubernetes) and SIGINT (Ctrl-C). SIGHUP is not: programs
// take it as "reload".
func isEnding(s os.Signal) bool {
	return s == syscall.SIGTERM || s == syscall.SIGINT
}

// statusCode is the shell's exit code for st: the code, or 128+N for
// signal N.
func statusCode(st *tether.Exit) int {
	if st == nil {
		return 1
	}
	if st.Signal != nil {
		if s, ok := st.Signal.(syscall.Signal); ok {
			return 128 + int(s)
		}
		return 128
	}
	return st.Code
}

// startFailure prints one line naming the cause and what to do, and returns
// the shell's code: 127 not found, 126 found but not executable, 1 otherwise
// (whyNotStarted).
func startFailure(cmd *tether.Cmd, err error) int {
	msg, code := whyNotStarted(cmd, err)
	fmt.Fprintln(os.Stderr, "tether:", msg)
	return code
}

func describe(e tether.Event) string {
	s := fmt.Sprintf("%s pid %d", e.Kind, e.PID)
	if e.Signal != nil {
		s += " " + e.Signal.String()
	}
	if e.Exit != nil {
		s += ": " + e.Exit.String()
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}
