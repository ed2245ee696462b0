package supervise

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tetherproc/tether"
)

// Environment variables that tell a child how to say it is ready.
const (
	// EnvNotifyFD names, for ReadyFD, the descriptor number the child
	// writes a newline to when it is ready. s6 passes the number by
	// configuration instead; the variable is this package's convention.
	EnvNotifyFD = "NOTIFY_FD"
	// EnvNotifySocket is, for ReadyNotify, systemd's variable: the path of
	// the datagram socket sd_notify(3) writes to.
	EnvNotifySocket = "NOTIFY_SOCKET"
)

// Readiness says how a process tells the supervisor that it is ready to
// serve, so that the next Spec starts only then. Values come from ReadyFD,
// ReadyNotify, ReadyIPC and ReadyTCP; a nil Readiness means a process is
// ready as soon as it has started. A process that exits, or closes what it
// would have said it on, before it is ready fails with ErrNotReady; one that
// takes longer than Spec.ReadyTimeout fails with ErrReadyTimeout and is
// stopped. Either way the attempt counts as a failed start.
type Readiness interface {
	// check reports early whether c can be started with this readiness.
	check(c *tether.Cmd) error
	// prepare readies one attempt: it changes c, a copy of the Spec's Cmd,
	// and returns what waits for the process's word.
	prepare(c *tether.Cmd) (probe, error)
	String() string
}

// probe waits for one process to be ready.
type probe interface {
	// started is called when Start has returned: the parent drops its
	// copies of what only the child needs.
	started()
	// wait returns nil once p is ready, an error when it cannot be any
	// more, or ctx's error when ctx ends first.
	wait(ctx context.Context, p *tether.Process) error
	// close releases the probe; called once, after wait has returned (or
	// instead of it, when Start failed).
	close()
}

// ReadyFD is s6's readiness notification: the child gets the write end of a
// pipe as a descriptor named by NOTIFY_FD (after any Cmd.ExtraFiles: 3 when
// there are none) and writes a newline to it when it is ready, then should
// close it. In a shell: echo >&$NOTIFY_FD. Closing it first fails the
// start with ErrNotReady. Unix only; elsewhere Run returns an error matching
// errors.ErrUnsupported.
func ReadyFD() Readiness { return fdReady{} }

// ReadyNotify is systemd's readiness protocol (sd_notify(3), Type=notify):
// the child gets NOTIFY_SOCKET, the path of a datagram socket in a private
// directory, and is ready once a datagram holds the line READY=1. Other
// lines (STATUS=, MAINPID=, ...) are ignored. The socket and its directory
// are removed once the process is ready, so later notifications fail, as
// sd_notify callers expect and ignore. Unix only; elsewhere Run returns an
// error matching errors.ErrUnsupported.
func ReadyNotify() Readiness { return notifyReady{} }

// ReadyIPC is PM2's wait_ready: the child is ready when it sends the string
// "ready" over its IPC channel (process.send('ready') in Node; Send("ready")
// on tether.ParentChannel in Go). Cmd.IPC must be set. The supervisor reads
// the channel until that message, and discards what comes before it; then
// it reads no more. The channel is the caller's from EventReady on
// (Event.Process.Channel()), until the process closes: the supervisor then
// closes it, discarding what is still unread.
func ReadyIPC() Readiness { return ipcReady{} }

// ReadyTCP waits until something accepts TCP connections at addr, a
// loopback address ("127.0.0.1:8080", "[::1]:8080", "localhost:8080", or
// ":8080" for this host). The listener sees each probe as a connection that
// closes at once. A port some other program already listens on makes the
// process ready at once.
func ReadyTCP(addr string) Readiness { return tcpReady{addr} }

// readyUnsupported is nil where ReadyFD and ReadyNotify work.
var readyUnsupported = unixOnly()

type fdReady struct{}

func (fdReady) String() string { return "notification fd" }

func (fdReady) check(*tether.Cmd) error {
	if readyUnsupported != nil {
		return fmt.Errorf("tether: ReadyFD: %w", readyUnsupported)
	}
	return nil
}

func (r fdReady) prepare(c *tether.Cmd) (probe, error) {
	if err := r.check(c); err != nil {
		return nil, err
	}
	rd, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("tether: notification pipe: %w", err)
	}
	fd := 3 + len(c.ExtraFiles)
	c.ExtraFiles = append(slices.Clip(c.ExtraFiles), w)
	c.Env = withEnv(c.Env, EnvNotifyFD, strconv.Itoa(fd))
	return &fdProbe{r: rd, w: w, fd: fd}, nil
}

type fdProbe struct {
	r, w *os.File
	fd   int
}

func (f *fdProbe) started() {
	_ = f.w.Close() // the child has its copy; ours would hide its EOF
}

func (f *fdProbe) wait(ctx context.Context, _ *tether.Process) error {
	// The pipe is in the netpoller: a past deadline wakes the Read.
	defer context.AfterFunc(ctx, func() {
		_ = f.r.SetReadDeadline(time.Unix(1, 0)) // cannot fail on a pipe
	})()
	buf := make([]byte, 512)
	for {
		n, err := f.r.Read(buf)
		if bytes.IndexByte(buf[:n], '\n') >= 0 {
			return nil
		}
		switch {
		case err == nil:
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.Is(err, io.EOF):
			return fmt.Errorf("%w: descriptor %s=%d closed without a newline", ErrNotReady, EnvNotifyFD, f.fd)
		default:
			return fmt.Errorf("tether: reading %s=%d: %w", EnvNotifyFD, f.fd, err)
		}
	}
}

func (f *fdProbe) close() {
	_ = f.r.Close() // best effort: nothing was written to it
	_ = f.w.Close() // already closed unless Start failed
}

type notifyReady struct{}

func (notifyReady) String() string { return "NOTIFY_SOCKET" }

func (notifyReady) check(*tether.Cmd) error {
	if readyUnsupported != nil {
		return fmt.Errorf("tether: ReadyNotify: %w", readyUnsupported)
	}
	return nil
}

func (r notifyReady) prepare(c *tether.Cmd) (probe, error) {
	if err := r.check(c); err != nil {
		return nil, err
	}
	// A directory of our own (0700): no other user can reach the socket,
	// and removing it cleans up whatever the bind left.
	dir, err := os.MkdirTemp("", "tether-notify-")
	if err != nil {
		return nil, fmt.Errorf("tether: notify socket: %w", err)
	}
	path := filepath.Join(dir, "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		_ = os.RemoveAll(dir) // best effort: our own empty directory
		return nil, fmt.Errorf("tether: notify socket: %w", err)
	}
	c.Env = withEnv(c.Env, EnvNotifySocket, path)
	return &notifyProbe{conn: conn, dir: dir}, nil
}

type notifyProbe struct {
	conn *net.UnixConn
	dir  string
}

func (*notifyProbe) started() {}

func (n *notifyProbe) wait(ctx context.Context, _ *tether.Process) error {
	defer context.AfterFunc(ctx, func() {
		_ = n.conn.SetReadDeadline(time.Unix(1, 0)) // wakes the Read below
	})()
	buf := make([]byte, 4096) // systemd's own limit per datagram (PIPE_BUF)
	for {
		m, err := n.conn.Read(buf)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("tether: reading %s: %w", EnvNotifySocket, err)
		}
		for line := range strings.SplitSeq(string(buf[:m]), "\n") {
			if line == "READY=1" {
				return nil
			}
		}
	}
}

func (n *notifyProbe) close() {
	_ = n.conn.Close()      // best effort: we only read from it
	_ = os.RemoveAll(n.dir) // best effort: our own temporary directory
}

type ipcReady struct{}

func (ipcReady) String() string { return "IPC message" }

func (ipcReady) check(c *tether.Cmd) error {
	if !c.IPC {
		return errors.New("tether: ReadyIPC needs Cmd.IPC")
	}
	return nil
}

func (r ipcReady) prepare(c *tether.Cmd) (probe, error) {
	if err := r.check(c); err != nil {
		return nil, err
	}
	return ipcProbe{}, nil
}

type ipcProbe struct{}

func (ipcProbe) started() {}

func (ipcProbe) wait(ctx context.Context, p *tether.Process) error {
	ch := p.Channel()
	for {
		var v any
		err := ch.RecvContext(ctx, &v)
		var me *tether.MessageError
		switch {
		case err == nil:
			if v == "ready" {
				return nil
			}
		case errors.As(err, &me):
			// One bad message; the channel goes on.
		case errors.Is(err, io.EOF):
			return fmt.Errorf(`%w: IPC channel closed before "ready"`, ErrNotReady)
		default:
			return err
		}
	}
}

func (ipcProbe) close() {}

type tcpReady struct{ addr string }

func (t tcpReady) String() string { return "TCP " + t.addr }

func (t tcpReady) check(*tether.Cmd) error {
	host, _, err := net.SplitHostPort(t.addr)
	if err != nil {
		return fmt.Errorf("tether: ReadyTCP: %w", err)
	}
	if host == "" || host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("tether: ReadyTCP: %q is not a loopback address", t.addr)
	}
	return nil
}

func (t tcpReady) prepare(c *tether.Cmd) (probe, error) {
	if err := t.check(c); err != nil {
		return nil, err
	}
	return t, nil
}

func (tcpReady) started() {}
func (tcpReady) close()   {}

// Dial backoff for ReadyTCP.
const (
	tcpFirstRetry = 5 * time.Millisecond
	tcpMaxRetry   = 25 * time.Millisecond
)

func (t tcpReady) wait(ctx context.Context, _ *tether.Process) error {
	// The kernel has no event for "a port now accepts" that a process other
	// than the socket's owner can wait for, so this dials, with a backoff
	// from 5 ms up to 25 ms between attempts, until ctx ends. A refused
	// dial on loopback fails at once and costs microseconds, so the cap is
	// low: with 250 ms, a server ready after 90 ms was seen at 155 ms,
	// which made a tether restart half again as slow (docs/benchmarks.md).
	var d net.Dialer
	retry := tcpFirstRetry
	for {
		conn, err := d.DialContext(ctx, "tcp", t.addr)
		if err == nil {
			_ = conn.Close() // a probe: nothing to say
			return nil
		}
		tm := time.NewTimer(retry)
		select {
		case <-ctx.Done():
			tm.Stop()
			return ctx.Err()
		case <-tm.C:
		}
		retry = min(2*retry, tcpMaxRetry)
	}
}

// withEnv returns env (the parent's environment if nil) with key set to
// value, replacing what it had.
func withEnv(env []string, key, value string) []string {
	if env == nil {
		env = os.Environ()
	}
	out := make([]string, 0, len(env)+1)
	for _, kv := range env {
		if !strings.HasPrefix(kv, key+"=") {
			out = append(out, kv)
		}
	}
	return append(out, key+"="+value)
}
