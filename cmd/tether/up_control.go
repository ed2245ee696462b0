package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/tetherproc/tether/supervise"
)

// The control socket: while tether up runs, `tether restart|stop|start|status`
// reach it over a unix stream socket, by default .tether.sock beside the
// Procfile (overmind's .overmind.sock), else the path -socket or
// $TETHER_SOCKET names. Only the user tether up runs as may use it: the
// socket is mode 0600, and each end checks the other's credentials
// (SO_PEERCRED, getpeereid) besides.
//
// The protocol, one exchange per connection: the client writes one request,
// a JSON object on one line; tether up answers with one response, a JSON
// object on one line, once the request is done (a restart: once every new
// process is ready or has failed), and closes the connection.
//
//	request:  {"op": "status"|"stop"|"start"|"restart", "names": ["web", "worker.2"]}
//	          {"op": "connect"|"resize", "names": ["web.1"], "rows": 40, "cols": 120}
//	response: {"error": "why, if it failed", "processes": [PROCESS...]}
//	PROCESS:  {"name": "web.1", "type": "web", "pid": 1234, "state": "running",
//	           "restarts": 0, "port": 5000, "uptime": 12.5}
//
// names are types (every instance) or instances; none means every process.
// state is one of supervise.State's names; pid is 0 when none runs; uptime
// is the seconds spent in that state. The response lists the processes
// named, as they are once the request is done.
//
// connect names one process that has a terminal (tty = true). After the
// response (an error, or the process), the connection carries the terminal
// raw both ways: what the client writes is typed into it, what the process
// writes there comes back, until the client closes its end (detach) or
// tether up ends. resize sets the size of that terminal (tether connect
// sends it on SIGWINCH, on a connection of its own).

const (
	upSocketName = ".tether.sock"
	upSocketEnv  = "TETHER_SOCKET"
	// upRequestTimeout bounds the wait for a client's request line and
	// for writing the response to it: a client that says nothing or reads
	// nothing does not hold a goroutine for ever.
	upRequestTimeout = 10 * time.Second
)

// ctlRequest and ctlResponse are the control protocol's two messages.
type ctlRequest struct {
	Op    string   `json:"op"`
	Names []string `json:"names,omitempty"`
	Rows  int      `json:"rows,omitempty"` // connect: the client's terminal size
	Cols  int      `json:"cols,omitempty"`
}

type ctlResponse struct {
	Error     string       `json:"error,omitempty"`
	Processes []ctlProcess `json:"processes,omitempty"`
}

type ctlProcess struct {
	Name     string  `json:"name"`
	Type     string  `json:"type"`
	PID      int     `json:"pid"`
	State    string  `json:"state"`
	Restarts int     `json:"restarts"`
	Port     int     `json:"port"`
	Uptime   float64 `json:"uptime"`
}

// upSocketPath is where the control socket of the stack run from procfile
// is: flagValue if given, else $TETHER_SOCKET, else beside the Procfile.
func upSocketPath(flagValue, procfile string) (string, error) {
	p := flagValue
	if p == "" {
		p = os.Getenv(upSocketEnv)
	}
	if p == "" {
		p = filepath.Join(filepath.Dir(procfile), upSocketName)
	}
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", fmt.Errorf("control socket %s: %w", p, err)
	}
	// sun_path's size, less the NUL: 108 on Linux, 104 on the BSDs.
	limit := 103
	if runtime.GOOS == "linux" {
		limit = 107
	}
	if len(abs) > limit {
		return "", fmt.Errorf("control socket %s: the path is %d bytes, more than a unix socket's %d: give a shorter one with -socket or $%s", abs, len(abs), limit, upSocketEnv)
	}
	return abs, nil
}

// errStackRuns: another tether up answers on the socket's path.
var errStackRuns = errors.New("another tether up runs")

// upControl serves the control socket of one tether up.
type upControl struct {
	ln    *net.UnixListener
	path  string
	ino   uint64 // the socket file's inode: removed at the end only if still ours
	sup   *supervise.Supervisor
	ctx   context.Context // tether up's: the requests' operations end with it
	procs []*upProc       // in Procfile order
	say   func(format string, args ...any)
	ttys  map[string]*upTTY // by instance name

	wg sync.WaitGroup // the accept loop and every connection's handler
}

// upListen makes the control socket at path: a leftover of a tether up that
// has ended is replaced; one that answers is another tether up running,
// errStackRuns; a file that is not a socket is left alone, an error.
func upListen(path string) (*net.UnixListener, uint64, error) {
	if err := peerCredsSupported(); err != nil {
		return nil, 0, err
	}
	addr := &net.UnixAddr{Name: path, Net: "unix"}
	ln, err := net.ListenUnix("unix", addr)
	if errors.Is(err, syscall.EADDRINUSE) {
		st, lerr := os.Lstat(path)
		switch {
		case lerr != nil:
			return nil, 0, err
		case st.Mode().Type() != fs.ModeSocket:
			return nil, 0, fmt.Errorf("control socket %s: the path exists and is not a socket: remove it, or give another with -socket", path)
		}
		c, derr := net.DialTimeout("unix", path, 2*time.Second)
		if derr == nil {
			pid := 0
			if uc, ok := c.(*net.UnixConn); ok {
				_, pid, _ = peerCred(uc)
			}
			_ = c.Close() // a probe: nothing to say
			who := ""
			if pid > 0 {
				who = fmt.Sprintf(" (pid %d)", pid)
			}
			return nil, 0, fmt.Errorf("%w%s with the control socket %s: give this one another with -socket", errStackRuns, who, path)
		}
		if !errors.Is(derr, syscall.ECONNREFUSED) {
			return nil, 0, fmt.Errorf("control socket %s: %w", path, derr)
		}
		// Nobody listens: a tether up that ended without removing it
		// (SIGKILL). Remove it, unless it was replaced meanwhile.
		if st2, err := os.Lstat(path); err == nil && os.SameFile(st, st2) {
			if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return nil, 0, fmt.Errorf("control socket %s: removing the leftover: %w", path, err)
			}
		}
		ln, err = net.ListenUnix("unix", addr)
	}
	if err != nil {
		return nil, 0, fmt.Errorf("control socket: %w", err)
	}
	// Removed by upControl.close, and only if it is still ours.
	ln.SetUnlinkOnClose(false)
	// The socket's mode: only its user can connect. (Between bind and
	// chmod another user could; the peer check refuses them.)
	if err := os.Chmod(path, 0o600); err != nil {
		_ = ln.Close()
		_ = os.Remove(path) // best effort: just made
		return nil, 0, fmt.Errorf("control socket %s: %w", path, err)
	}
	st, err := os.Lstat(path)
	if err != nil {
		_ = ln.Close()
		return nil, 0, fmt.Errorf("control socket %s: %w", path, err)
	}
	return ln, fileIno(st), nil
}

// serve accepts connections until close.
func (c *upControl) serve() {
	c.wg.Add(1)
	// Owner: the upControl. Ends when close closes the listener.
	go func() {
		defer c.wg.Done()
		for {
			conn, err := c.ln.AcceptUnix()
			if err != nil {
				if errors.Is(err, net.ErrClosed) {
					return
				}
				continue // a client that went away between connect and accept
			}
			c.wg.Add(1)
			// Owner: the upControl; close waits for it. Ends when the
			// request is answered: its operations end when tether up's
			// supervisor stops, and every read and write has a deadline.
			go func() {
				defer c.wg.Done()
				defer func() { _ = conn.Close() }() // best effort: the answer is written or cannot be
				c.handle(conn)
			}()
		}
	}()
}

// close stops accepting, waits for the requests in flight (they end with
// the supervisor, which has returned), and removes the socket if it is
// still ours.
func (c *upControl) close() {
	_ = c.ln.Close() // ends the accept loop
	c.wg.Wait()
	if st, err := os.Lstat(c.path); err == nil && fileIno(st) == c.ino {
		_ = os.Remove(c.path) // best effort: a leftover is replaced by the next tether up
	}
}

func (c *upControl) handle(conn *net.UnixConn) {
	_ = conn.SetDeadline(time.Now().Add(upRequestTimeout)) // cannot fail on an open socket
	reply := func(r ctlResponse) {
		_ = conn.SetWriteDeadline(time.Now().Add(upRequestTimeout))
		b, _ := json.Marshal(r)            // plain structs: cannot fail
		_, _ = conn.Write(append(b, '\n')) // best effort: the client may be gone
	}
	if uid, _, err := peerCred(conn); err != nil || uid != os.Geteuid() {
		reply(ctlResponse{Error: fmt.Sprintf("refused: this stack is uid %d's (yours: %d, %v)", os.Geteuid(), uid, err)})
		return
	}
	line, err := bufio.NewReader(conn).ReadBytes('\n')
	if err != nil {
		return // no request: nothing to answer
	}
	var req ctlRequest
	if err := json.Unmarshal(line, &req); err != nil {
		reply(ctlResponse{Error: "bad request: " + err.Error()})
		return
	}
	_ = conn.SetDeadline(time.Time{}) // the operation takes what it takes; it ends with tether up
	procs, err := c.match(req.Names)
	if err != nil {
		reply(ctlResponse{Error: err.Error()})
		return
	}
	var op func(context.Context, string) error
	switch req.Op {
	case "connect", "resize":
		if len(procs) != 1 {
			reply(ctlResponse{Error: fmt.Sprintf("%s one process, not %d: name an instance (%s)", req.Op, len(procs), procs[0].spec.Name)})
			return
		}
		t := c.ttys[procs[0].spec.Name]
		if t == nil {
			reply(ctlResponse{Error: fmt.Sprintf("%s has no terminal: give it one with tty = true in tether.toml, or -tty %s", procs[0].spec.Name, procs[0].typ)})
			return
		}
		if req.Op == "resize" {
			t.resize(req.Rows, req.Cols)
			reply(ctlResponse{Processes: c.status(procs)})
			return
		}
		reply(ctlResponse{Processes: c.status(procs)})
		t.attach(conn, req.Rows, req.Cols)
		return
	case "status":
	case "stop":
		op = c.sup.Stop
	case "start":
		op = c.sup.Start
	case "restart":
		op = c.sup.Restart
	default:
		reply(ctlResponse{Error: fmt.Sprintf("unknown op %q (want status, stop, start or restart)", req.Op)})
		return
	}
	var res ctlResponse
	if op != nil {
		names := make([]string, len(procs))
		for i, p := range procs {
			names[i] = p.spec.Name
		}
		c.say("%s %s (tether %s)", req.Op, strings.Join(names, ", "), req.Op)
		errs := make([]error, len(procs))
		var wg sync.WaitGroup
		for i, p := range procs {
			wg.Add(1)
			// Owner: this handler, which waits for it below. Ends when the
			// supervisor has done the operation, or has stopped.
			go func() {
				defer wg.Done()
				errs[i] = op(c.ctx, p.spec.Name)
			}()
		}
		wg.Wait()
		var msgs []string
		for _, err := range errs {
			if err != nil {
				msgs = append(msgs, upTrim(err))
			}
		}
		res.Error = strings.Join(msgs, "; ")
	}
	res.Processes = c.status(procs)
	reply(res)
}

// match resolves names (types or instances; none: all) to processes, in
// Procfile order.
func (c *upControl) match(names []string) ([]*upProc, error) {
	if len(names) == 0 {
		return c.procs, nil
	}
	for _, n := range names {
		if !slices.ContainsFunc(c.procs, func(p *upProc) bool { return p.spec.Name == n || p.typ == n }) {
			have := make([]string, len(c.procs))
			for i, p := range c.procs {
				have[i] = p.spec.Name
			}
			return nil, fmt.Errorf("no process named %q (this stack runs %s)", n, strings.Join(have, ", "))
		}
	}
	var out []*upProc
	for _, p := range c.procs {
		if slices.Contains(names, p.spec.Name) || slices.Contains(names, p.typ) {
			out = append(out, p)
		}
	}
	return out, nil
}

func (c *upControl) status(procs []*upProc) []ctlProcess {
	all := c.sup.Status()
	out := make([]ctlProcess, 0, len(procs))
	now := time.Now()
	for _, p := range procs {
		i := slices.IndexFunc(all, func(s supervise.Status) bool { return s.Name == p.spec.Name })
		cp := ctlProcess{Name: p.spec.Name, Type: p.typ, Port: p.port, State: "stopped"}
		if i >= 0 {
			st := all[i]
			cp.PID, cp.State, cp.Restarts = st.PID, st.State.String(), st.Restarts
			if !st.Since.IsZero() {
				cp.Uptime = now.Sub(st.Since).Round(time.Millisecond).Seconds()
			}
		}
		out = append(out, cp)
	}
	return out
}
