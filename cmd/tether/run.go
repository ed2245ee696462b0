package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
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
}

func runUsage(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprint(w, `usage: tether run [flags] [--] PROGRAM [ARGS...]

Runs PROGRAM as a container-grade init and wrapper: it forwards every signal
tether receives (but SIGCHLD) to PROGRAM's tree, reaps zombies when it is
PID 1 (and is a subreaper otherwise), gives PROGRAM the terminal's foreground
so Ctrl-C and job control behave as without tether, and exits with PROGRAM's
status: its code, 128+N when signal N killed it, 127 when PROGRAM was not
found, 126 when it could not be executed.

When PROGRAM exits, what is left of its tree is stopped: the stop signal,
the grace period, SIGKILL. When tether gets SIGTERM, SIGINT or SIGHUP, it
passes the signal to PROGRAM (then SIGCONT to the tree, so that a tree
stopped by Ctrl-Z or SIGSTOP acts on it) and ends when PROGRAM does, stopping
the rest of the tree as above (SIGKILL for all if PROGRAM outlives the grace
period); when
tether is SIGKILLed, its keeper stops the tree the same way. Nothing tether
started survives it. Other signals (SIGUSR1, SIGQUIT, SIGWINCH, ...) go to the
whole tree.

Flags (each also read from the environment variable named, the flag wins):
`)
	fs.SetOutput(w)
	fs.PrintDefaults()
	fs.SetOutput(io.Discard)
	fmt.Fprint(w, `
Examples:
  tether run -- node server.js
  tether run -grace 30s -stop-signal SIGINT -- python app.py
  tether run -restart on-failure -restart-limit 5/1m -- ./worker
  tether run -memory-max 512M -pids-max 200 -- make -j8
  ENTRYPOINT ["tether", "run", "--"]        # in a Dockerfile
`)
}

func runRun(ctx context.Context, args []string, stdout io.Writer) error {
	var f runFlags
	fs := flag.NewFlagSet("tether run", flag.ContinueOnError)
	fs.Var(signalSetting(&f.stopSignal, "TETHER_STOP_SIGNAL", "SIGTERM"), "stop-signal", "the `signal` that asks the tree to stop ($TETHER_STOP_SIGNAL)")
	fs.Var(graceSetting(&f.grace, "TETHER_GRACE", 10*time.Second), "grace", "the `duration` the tree has to stop before SIGKILL ($TETHER_GRACE)")
	f.tree.register(fs, "the tree")
	fs.Var(boolSetting(&f.verbose, "TETHER_VERBOSE"), "v", "log each event of the child to stderr ($TETHER_VERBOSE)")
	f.restart.register(fs)
	if helped, err := parseFlags(fs, args, stdout, func(w io.Writer) { runUsage(w, fs) }); helped || err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return badUsage(fs.Name(), "no program given")
	}
	sig, err := parseSignal(f.stopSignal)
	if err != nil {
		return badUsage(fs.Name(), "-stop-signal: %v", err)
	}
	level, limits, err := f.tree.parse()
	if err != nil {
		return badUsage(fs.Name(), "%v", err)
	}
	if err := f.restart.check(); err != nil {
		return badUsage(fs.Name(), "%v", err)
	}

	prog := fs.Args()
	cmd := tether.Command(prog[0], prog[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = tether.Inherit(), tether.Inherit(), tether.Inherit()
	cmd.StopSignal, cmd.StopTimeout, cmd.Containment, cmd.Limits = sig, f.grace, level, limits
	if f.verbose {
		cmd.Observer = func(e tether.Event) { fmt.Fprintln(os.Stderr, "tether:", describe(e)) }
	}
	code, err := wrap(ctx, cmd, f)
	if err != nil {
		return err
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
	reaper := becomeReaper()
	defer reaper.stop()

	sigs := make(chan os.Signal, 32)
	signal.Notify(sigs, forwardable()...)
	defer signal.Stop(sigs)

	tty := foregroundTTY()
	cmd.Foreground = tty.ok
	restarts := supervise.NewRestarts(f.restart.spec())
	last := 0
	for {
		p, err := cmd.Start(context.Background()) // its end is driven by serve
		if err != nil {
			last = startFailure(cmd, err)
			break
		}
		st, ended := serve(ctx, p, cmd.StopSignal, sigs, f.grace)
		tty.take()
		last = statusCode(st)
		if ended {
			break
		}
		delay, again, err := restarts.Next(st, st.Duration())
		if err != nil {
			fmt.Fprintf(os.Stderr, "tether: %s: %v: giving up\n", cmd.Args[0], err)
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
	// tether returns only when it is gone.
	sctx, cancel := context.WithTimeout(context.Background(), f.grace+5*time.Second)
	defer cancel()
	if err := tether.Shutdown(sctx); err != nil {
		fmt.Fprintln(os.Stderr, "tether: stopping what is left:", err)
	}
	return last, nil
}

// serve forwards signals to p's tree until p exits, and returns how it
// exited and whether tether itself was asked to end (no restart then).
func serve(ctx context.Context, p *tether.Process, stop os.Signal, sigs <-chan os.Signal, grace time.Duration) (*tether.Exit, bool) {
	var escalate <-chan time.Time
	ended := false
	for {
		select {
		case <-p.Exited():
			<-p.Done() // bounded: DrainTimeout
			return p.Exit(), ended
		case <-ctx.Done():
			// A caller's cancellation (tests run this in-process): as
			// the stop signal.
			ctx = context.Background()
			ended = true
			_ = p.Signal(stop)
			continueTree(p)
			escalate = afterOnce(escalate, grace)
		case s := <-sigs:
			if !isEnding(s) {
				_ = p.Signal(s) // after exit it may fail: the loop sees the exit next
				continue
			}
			// tether is asked to end: PROGRAM gets the signal, as from
			// tini; the rest of the tree is stopped when it exits
			// (Shutdown: the stop signal, the grace, SIGKILL); if PROGRAM
			// has not exited within the grace, the tree is SIGKILLed.
			// The whole tree is continued after it, so that a PROGRAM
			// stopped by Ctrl-Z or SIGSTOP acts on the signal, and the
			// children it stops in turn can too.
			ended = true
			if p.Exit() == nil {
				// Before its exit is known the pid is not a stranger: unreaped at the
				// group level; at the keeper levels reuse would need the pid space
				// to wrap in between.
				signalOne(p.PID(), s)
				continueTree(p)
			}
			escalate = afterOnce(escalate, grace)
		case <-escalate:
			fmt.Fprintf(os.Stderr, "tether: pid %d did not stop within %v: SIGKILL\n", p.PID(), grace)
			_ = p.Kill()
			escalate = nil
		}
	}
}

func afterOnce(c <-chan time.Time, d time.Duration) <-chan time.Time {
	if c != nil {
		return c
	}
	return time.After(d)
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

// isEnding reports whether s asks tether itself to end.
func isEnding(s os.Signal) bool {
	return s == syscall.SIGTERM || s == syscall.SIGINT || s == syscall.SIGHUP
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
