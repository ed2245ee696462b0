package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"
)

// tether restart|stop|start|status: a running tether up's controls, over its
// control socket (see up_control.go for the protocol).

func runRestart(ctx context.Context, args []string, stdout io.Writer) error {
	return runControl(ctx, "restart", args, stdout)
}

func runStop(ctx context.Context, args []string, stdout io.Writer) error {
	return runControl(ctx, "stop", args, stdout)
}

func runStart(ctx context.Context, args []string, stdout io.Writer) error {
	return runControl(ctx, "start", args, stdout)
}

func runStatus(ctx context.Context, args []string, stdout io.Writer) error {
	return runControl(ctx, "status", args, stdout)
}

var controlHelp = map[string]string{
	"restart": `Restarts processes of the stack a tether up runs: each one's whole tree is
stopped (its stop signal, its grace, then SIGKILL) and gone before the new
process starts, so nothing of the old one still holds its port. It returns
once every new process is ready (see tether up's readiness) or has failed,
and prints each one's state. A stopped or ended process is started.`,
	"stop": `Stops processes of the stack a tether up runs, each one's whole tree, and
returns once they are gone. They stay stopped, and the others go on, until
tether start or tether restart; tether up's end (Ctrl-C) still ends them.`,
	"start": `Starts processes of the stack a tether up runs that tether stop stopped,
that wait for a restart, or that ended and could (-can-die), and returns
once they are ready. A running process is left as it is.`,
	"status": `Prints the processes of the stack a tether up runs: name, pid, state
(pending, starting, running, backoff, stopping, stopped, exited, fatal),
restarts, port, and the time in that state. -json prints the control
protocol's process objects instead, one JSON array.

RESTARTS counts restarts: those of the restart policy after an exit
(-auto-restart, restart in tether.toml) and those of tether restart (and
-watch). tether stop then tether start is not one: it starts the process
anew, as PM2's restart count and systemd's NRestarts have it.`,
}

func runControl(ctx context.Context, op string, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("tether "+op, flag.ContinueOnError)
	procfile := fs.String("f", "Procfile", "the stack's Procfile: its control socket is .tether.sock beside it")
	socket := fs.String("socket", "", "the control socket's `path` (default: beside the Procfile; $"+upSocketEnv+")")
	asJSON := false
	if op == "status" {
		fs.BoolVar(&asJSON, "json", false, "print JSON: [{name, type, pid, state, restarts, port, uptime}], uptime in seconds")
	}
	help := func(w io.Writer) {
		names := " [NAME...]"
		if op == "status" {
			names = " [-json] [NAME...]"
		}
		fmt.Fprintf(w, "usage: tether %s [-f Procfile] [-socket PATH]%s\n\n%s\n\nNAME is a process type (web: every instance) or an instance (web.2); none\nmeans every process.\n\n%s\n\nFlags:\n", op, names, controlHelp[op], ctlWhereHelp)
		fs.SetOutput(w)
		fs.PrintDefaults()
		fs.SetOutput(io.Discard)
	}
	// Help and errors are printed below, once: the flag package's own
	// "Usage of" would add its copy on stderr.
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	names, err := upParse(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		help(stdout)
		return nil
	}
	if err != nil {
		return badUsage(fs.Name(), "%v", err)
	}
	pl, err := ctlLocate(fs, *socket, *procfile)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	res, err := controlCall(ctx, pl.path, ctlRequest{Op: op, Names: names})
	if err != nil {
		cmdline := names
		if asJSON {
			cmdline = append([]string{"-json"}, names...)
		}
		return fmt.Errorf("%s: %w", op, explainNoStack(ctx, err, op, pl, cmdline))
	}
	if asJSON {
		if res.Processes == nil {
			res.Processes = []ctlProcess{}
		}
		b, _ := json.MarshalIndent(res.Processes, "", "  ") // plain structs: cannot fail
		fmt.Fprintf(stdout, "%s\n", b)
	} else if len(res.Processes) > 0 {
		tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tPID\tSTATE\tRESTARTS\tPORT\tFOR")
		for _, p := range res.Processes {
			pid := "-"
			if p.PID != 0 {
				pid = strconv.Itoa(p.PID)
			}
			d := time.Duration(p.Uptime * float64(time.Second)).Round(time.Second)
			if d < time.Second {
				d = time.Duration(p.Uptime * float64(time.Second)).Round(time.Millisecond)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%v\n", p.Name, pid, p.State, p.Restarts, p.Port, d)
		}
		_ = tw.Flush() // best effort: stdout
	}
	if res.Error != "" {
		return fmt.Errorf("%s: %s", op, res.Error)
	}
	return nil
}

// controlCall sends one request to the tether up at path and returns its
// answer. Errors say when no tether up runs there.
func controlCall(ctx context.Context, path string, req ctlRequest) (ctlResponse, error) {
	conn, err := controlDial(ctx, path)
	if err != nil {
		return ctlResponse{}, err
	}
	defer func() { _ = conn.Close() }() // best effort: the answer is read
	// Ctrl-C ends the wait (the operation goes on in tether up).
	defer context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })()
	b, _ := json.Marshal(req) // a plain struct: cannot fail
	if _, err := conn.Write(append(b, '\n')); err != nil {
		return ctlResponse{}, fmt.Errorf("%s: %w", path, err)
	}
	line, err := bufio.NewReader(conn).ReadBytes('\n')
	if err != nil {
		if ctx.Err() != nil {
			return ctlResponse{}, context.Cause(ctx)
		}
		return ctlResponse{}, fmt.Errorf("%s: no answer: %w", path, err)
	}
	var res ctlResponse
	if err := json.Unmarshal(line, &res); err != nil {
		return ctlResponse{}, fmt.Errorf("%s: bad answer: %w", path, err)
	}
	res.Error = strings.TrimSpace(res.Error)
	return res, nil
}

// controlDial connects to the tether up at path, and checks that it runs
// as this user. Errors say when no tether up runs there.
func controlDial(ctx context.Context, path string) (*net.UnixConn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, &noStackError{path: path}
	case errors.Is(err, syscall.ECONNREFUSED):
		return nil, &noStackError{path: path, stale: true}
	case errors.Is(err, fs.ErrPermission):
		return nil, fmt.Errorf("%s: permission denied: the stack is another user's", path)
	case err != nil:
		return nil, err
	}
	conn := c.(*net.UnixConn)
	// Talk only to a tether up of our own user: a socket at a path others
	// can write to may be anyone's.
	if uid, _, err := peerCred(conn); err != nil || uid != os.Geteuid() {
		_ = conn.Close() // refused
		return nil, fmt.Errorf("%s: refused: it is served by uid %d, not by you (uid %d): %v", path, uid, os.Geteuid(), err)
	}
	return conn, nil
}
