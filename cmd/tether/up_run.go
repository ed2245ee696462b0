package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/tetherproc/tether"
	"github.com/tetherproc/tether/supervise"
)

// upMaxLine bounds the memory a line takes: a longer one is printed in
// pieces of this size, each after the name.
const upMaxLine = tether.DefaultMaxLine

// run supervises the plan's processes until they end or ctx is done, prints
// their output and tether's events, and returns exitCode(N) for the first
// failure (see upUsage), nil if there was none.
func (p *upPlan) run(ctx context.Context, stdout io.Writer) error {
	width := len(upOwnName)
	specs := make([]supervise.Spec, len(p.procs))
	s := &upSession{
		ctx:      ctx,
		stopSig:  p.stopSignal,
		together: p.together,
		grace:    p.procs[0].spec.Cmd.StopTimeout,
		procs:    make(map[string]*upProc, len(p.procs)),
		pumps:    make(map[*tether.Process]*sync.WaitGroup),
		ttys:     make(map[string]*upTTY),
		stopping: make(map[string]bool),
		halted:   make(map[string]bool),
	}
	for i := range p.procs {
		pr := &p.procs[i]
		specs[i] = pr.spec
		s.procs[pr.spec.Name] = pr
		width = max(width, len(pr.spec.Name))
	}
	color := upUseColor(p.colorMode, stdout, os.Getenv)
	s.out = &upPrefixer{w: stdout, width: width, color: color, stamps: p.timestamps}
	outFile, _ := stdout.(*os.File)
	rows, cols := upTermSize(outFile)
	for i := range p.procs {
		pr := &p.procs[i]
		if !pr.tty {
			continue
		}
		cmd := *pr.spec.Cmd
		t, err := upOpenTTY(&cmd, rows, cols)
		if err != nil {
			s.closeTTYs()
			s.all.Wait() // the pumps of the terminals opened before end with them
			return err
		}
		specs[i].Cmd = &cmd
		s.ttys[pr.spec.Name] = t
		name, sgr := pr.spec.Name, pr.color
		s.all.Add(1)
		// Owner: the session. Ends when closeTTYs closes the terminal,
		// once every process is gone; run waits for it.
		go func() {
			defer s.all.Done()
			t.pump(func(line string) { s.out.line(name, sgr, line) })
		}()
	}

	sup := &supervise.Supervisor{Observer: s.observe, StartTogether: p.together, StopTogether: p.together}
	ln, ino, err := upListen(p.socket)
	switch {
	case err != nil:
		// foreman lets two of a Procfile run (tether up web, tether up
		// worker): the second goes on without a socket, and says so.
		s.say("no control socket (tether restart, stop and status will not reach this stack): %s", upTrim(err))
	default:
		ctl := &upControl{ln: ln, path: p.socket, ino: ino, sup: sup, ctx: ctx, say: s.say, ttys: s.ttys}
		for i := range p.procs {
			ctl.procs = append(ctl.procs, &p.procs[i])
		}
		ctl.serve()
		defer ctl.close() // after Run: the requests in flight have their answers
		// How to reach it: -socket works from anywhere (a Procfile found
		// from another directory would name another place).
		s.say("control: %s status|restart|stop|start [NAME...] -socket %s", selfCommand(true), p.socket)
	}
	for _, pr := range p.procs {
		if len(pr.spec.After) > 0 {
			s.say("%s waits for %s to be ready", pr.spec.Name, strings.Join(pr.spec.After, ", "))
		}
	}
	if w := p.watch; w != nil {
		watcher, err := upWatch(w.paths, w.patterns, w.ignore, w.procs, sup, s.say)
		if err != nil {
			s.closeTTYs()
			s.all.Wait() // the terminals' pumps end with them
			return err
		}
		stop := make(chan struct{})
		// Owner: run. Ends when Run has returned (stop) or ctx is done;
		// run waits for it before it returns.
		go watcher.run(ctx, stop)
		defer func() {
			close(stop)
			<-watcher.done
		}()
	}
	err = sup.Run(ctx, specs...)
	s.closeTTYs()
	s.all.Wait() // bounded: every process has closed, so every stream is at its end

	var ee *supervise.ExitError
	if err != nil && ctx.Err() == nil && !errors.As(err, &ee) {
		return err // an invalid Spec: a bug of tether up's
	}
	s.mu.Lock()
	code := s.firstCode
	s.mu.Unlock()
	if code == 0 && ee != nil {
		code = upStatus(ee.Exit, ee.Err) // not seen as an event: cannot happen, but never exit 0 for it
	}
	if code != 0 {
		return exitCode(code)
	}
	return nil
}

// upSession is one run of tether up: it turns the supervisor's events into
// lines, copies each process's output, and finds the exit status.
type upSession struct {
	ctx      context.Context
	out      *upPrefixer
	stopSig  os.Signal
	together bool               // every process is stopped at once
	grace    time.Duration      // each process's, before SIGKILL
	procs    map[string]*upProc // by instance name; read-only while Run runs
	ttys     map[string]*upTTY  // the terminals, by instance name; read-only while Run runs

	all sync.WaitGroup // every stream copier

	mu        sync.Mutex
	pumps     map[*tether.Process]*sync.WaitGroup // the copiers of each running process
	stopping  map[string]bool                     // the supervisor is stopping it
	halted    map[string]bool                     // tether stop stopped it
	stopBegun bool
	firstCode int // the exit status of the first failure; 0 while none
}

func (s *upSession) say(format string, args ...any) {
	s.out.line(upOwnName, upOwnColor, fmt.Sprintf(format, args...))
}

// observe is the Supervisor's Observer: the supervisor calls it one event at
// a time, so the lines of one process's life come in order.
func (s *upSession) observe(e supervise.Event) {
	pr := s.procs[e.Name]
	switch e.Kind {
	case supervise.EventRunning:
		if e.Restarted {
			s.say("%s started with pid %d (restart %d)", e.Name, e.PID, e.Restarts)
		} else {
			s.say("%s started with pid %d", e.Name, e.PID)
		}
		if !pr.tty {
			s.pump(e.Name, pr.color, e.Process) // a terminal's output has its own pump
		}
	case supervise.EventReady:
		if pr.spec.Ready != nil {
			s.say("%s is ready (%s)", e.Name, pr.spec.Ready)
		}
	case supervise.EventExited:
		s.drained(e.Process)
		switch {
		case e.Exit == nil:
			s.say("%s could not start: %s", e.Name, upTrim(e.Err))
		case errors.Is(e.Err, supervise.ErrNotReady):
			s.say("%s did not get ready (%s): %s; %s", e.Name, pr.spec.Ready, upTrim(e.Err), upDescribe(e.Exit))
		default:
			s.say("%s %s", e.Name, upDescribe(e.Exit))
		}
	case supervise.EventBackoff:
		s.say("%s restarting in %v", e.Name, e.Delay.Round(time.Millisecond))
	case supervise.EventEnded:
		if pr.spec.CanDie {
			s.say("%s has ended; the others go on (-can-die)", e.Name)
			return
		}
		if errors.Is(e.Err, supervise.ErrNotReady) {
			s.fail(1) // its exit status is the stop's
		} else if !e.Exit.Success() {
			s.fail(upStatus(e.Exit, e.Err))
		}
		s.beginStop(e.Name + " has ended")
	case supervise.EventFatal:
		s.say("%s: %s: giving up", e.Name, strings.TrimPrefix(upTrim(e.Err), e.Name+": "))
		if pr.spec.CanDie {
			s.say("the others go on (-can-die)")
			return
		}
		s.fail(upStatus(e.Exit, e.Err))
		s.beginStop(e.Name + " failed too often")
	case supervise.EventStopping:
		s.beginStop("")
		s.mu.Lock()
		s.stopping[e.Name] = true
		s.mu.Unlock()
		if !s.together {
			s.say("sending %s to %s", upSignalName(s.stopSig), e.Name)
		}
	case supervise.EventHalting:
		s.mu.Lock()
		s.stopping[e.Name] = true
		s.mu.Unlock()
		s.say("sending %s to %s", upSignalName(pr.spec.Cmd.StopSignal), e.Name)
	case supervise.EventHalted:
		s.drained(e.Process)
		s.mu.Lock()
		s.stopping[e.Name], s.halted[e.Name] = false, true
		s.mu.Unlock()
		if e.Process == nil {
			s.say("%s stopped: it will not be restarted", e.Name)
		} else {
			s.say("%s %s", e.Name, upDescribe(e.Exit))
		}
	case supervise.EventStarting:
		s.mu.Lock()
		delete(s.halted, e.Name)
		s.mu.Unlock()
	case supervise.EventStopped:
		s.beginStop("")
		s.drained(e.Process)
		s.mu.Lock()
		asked, halted := s.stopping[e.Name], s.halted[e.Name]
		s.mu.Unlock()
		switch {
		case halted:
			// tether stop stopped it before: nothing more to say.
		case asked:
			s.say("%s %s", e.Name, upDescribe(e.Exit))
			if !upStoppedCleanly(e.Exit, s.stopSig) {
				s.fail(upStatus(e.Exit, e.Err))
			}
		case e.Exit == nil || e.Process == nil:
			s.say("%s will not be restarted", e.Name) // it was waiting to restart
		case !pr.spec.CanDie && !e.Exit.Success():
			// It ended by itself as everything was stopping (its
			// EventExited said how): not restarted, and it failed.
			s.fail(upStatus(e.Exit, e.Err))
		}
	}
}

// closeTTYs detaches the clients of every terminal and closes it, which
// ends its pump: every process is gone.
func (s *upSession) closeTTYs() {
	for _, t := range s.ttys {
		t.detachAll()
		t.close()
	}
}

// beginStop says, once, that everything is stopping, why and how; an empty
// why is the caller's cancellation of ctx (Ctrl-C).
func (s *upSession) beginStop(why string) {
	s.mu.Lock()
	begun := s.stopBegun
	s.stopBegun = true
	s.mu.Unlock()
	if begun {
		return
	}
	if why == "" {
		why = "interrupted"
		if c := context.Cause(s.ctx); c != nil && c != context.Canceled {
			why = c.Error() // signal.NotifyContext: "interrupt signal received"
		}
	}
	if s.together {
		s.say("%s: sending %s to all processes (SIGKILL after %v)", why, upSignalName(s.stopSig), s.grace)
	} else {
		s.say("%s: stopping all processes, the last started first (SIGKILL after %v each)", why, s.grace)
	}
}

// fail records a failure; the first one gives tether up its exit status.
func (s *upSession) fail(code int) {
	if code == 0 {
		code = 1
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.firstCode == 0 {
		s.firstCode = code
	}
}

// pump copies p's stdout and stderr, line by line, to the output.
func (s *upSession) pump(name, sgr string, p *tether.Process) {
	wg := new(sync.WaitGroup)
	s.mu.Lock()
	s.pumps[p] = wg
	s.mu.Unlock()
	for _, r := range []io.Reader{p.Stdout(), p.Stderr()} {
		wg.Add(1)
		s.all.Add(1)
		// Owner: the session; drained waits for it when p has exited, and
		// run before returning. Ends at the stream's end, which p's close
		// brings within its DrainTimeout.
		go func() {
			defer s.all.Done()
			defer wg.Done()
			for line, err := range tether.Lines(r, upMaxLine) {
				if err != nil && !errors.Is(err, tether.ErrLineTooLong) {
					s.say("%s: %s", name, upTrim(err)) // ErrDrainTimeout: a descendant kept the pipe open
					return
				}
				s.out.line(name, sgr, line)
			}
		}()
	}
}

// drained waits until p's output is printed, so that a process's last lines
// come before the line that says how it ended. p has closed: its streams
// are at their end, and the copiers only print what is buffered.
func (s *upSession) drained(p *tether.Process) {
	if p == nil {
		return
	}
	s.mu.Lock()
	wg := s.pumps[p]
	delete(s.pumps, p)
	s.mu.Unlock()
	if wg != nil {
		wg.Wait()
	}
}

// upStoppedCleanly reports whether a process asked to stop with sig ended
// as it should: exit 0, killed by sig itself, or exit 128+sig (what a shell
// or the JVM exits with on it). Not when the grace ran out and SIGKILL came.
func upStoppedCleanly(exit *tether.Exit, sig os.Signal) bool {
	if exit == nil || exit.Escalated {
		return exit == nil
	}
	if exit.Signal != nil {
		return exit.Signal == sig
	}
	n, ok := sig.(syscall.Signal)
	return exit.Code == 0 || ok && exit.Code == 128+int(n)
}

// upStatus is the shell's exit status for a process's end: its code, or
// 128+N when signal N killed it; for one that could not start, 127 when
// not found, 126 when not executable, 1 otherwise.
func upStatus(exit *tether.Exit, err error) int {
	switch {
	case exit != nil && exit.Signal != nil:
		if n, ok := exit.Signal.(syscall.Signal); ok {
			return 128 + int(n)
		}
		return 128
	case exit != nil:
		return exit.Code
	case errors.Is(err, fs.ErrNotExist):
		return 127
	case errors.Is(err, fs.ErrPermission):
		return 126
	}
	return 1
}

// upDescribe says how a process ended, in foreman's words.
func upDescribe(exit *tether.Exit) string {
	switch {
	case exit == nil:
		return "was not running"
	case exit.Escalated:
		return "did not stop within the grace (-grace): killed by SIGKILL"
	case exit.Signal != nil:
		return "terminated by " + upSignalName(exit.Signal)
	}
	return fmt.Sprintf("exited with code %d", exit.Code)
}

// upTrim is err's message without the "tether: " its packages start with.
func upTrim(err error) string {
	if err == nil {
		return "unknown error"
	}
	return strings.ReplaceAll(err.Error(), "tether: ", "")
}
