package main

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/creack/pty"
	"github.com/tetherproc/tether"
	"golang.org/x/term"
)

// upTTY is the pseudo-terminal of one process that asked for one (tty =
// true): every attempt of the process runs on it, as in an overmind tmux
// pane, so a restart keeps it. tether up prints what the process writes
// there, line by line after its name like any output, and tether connect
// attaches to it.
type upTTY struct {
	master, slave *os.File

	mu     sync.Mutex
	sinks  []net.Conn // the tether connect clients attached
	closed bool       // detachAll was called: no more clients
}

// upOpenTTY makes a terminal of size (rows, cols) and points cmd at it:
// through the tether binary's session starter (see ttySession), as cmd's
// stdin, stdout and stderr.
func upOpenTTY(cmd *tether.Cmd, rows, cols int) (*upTTY, error) {
	master, slave, err := pty.Open()
	if err != nil {
		return nil, fmt.Errorf("up: a terminal for the process: %w", err)
	}
	if err := pty.Setsize(master, &pty.Winsize{Rows: uint16(rows), Cols: uint16(cols)}); err != nil {
		_ = master.Close() // best effort: just opened
		_ = slave.Close()
		return nil, fmt.Errorf("up: the terminal's size: %w", err)
	}
	exe, err := os.Executable()
	if err != nil {
		_ = master.Close() // best effort: just opened
		_ = slave.Close()
		return nil, fmt.Errorf("up: the tether binary, to start the terminal's session: %w", err)
	}
	cmd.Args = append([]string{exe}, cmd.Args...)
	cmd.Path = exe
	cmd.Env = upSetEnv(slices.Clone(cmd.Env), ttySessionEnv, "1")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = tether.File(slave), tether.File(slave), tether.File(slave)
	return &upTTY{master: master, slave: slave}, nil
}

// upTermSize is the size of the terminal f is, or 24×80.
func upTermSize(f *os.File) (rows, cols int) {
	if f != nil && term.IsTerminal(int(f.Fd())) {
		if c, r, err := term.GetSize(int(f.Fd())); err == nil && r > 0 && c > 0 {
			return r, c
		}
	}
	return 24, 80
}

// pump copies what the process writes to its terminal to line (each line
// without the terminal's \r) and, as it comes, to the attached clients. It
// returns when the master is closed (close).
func (t *upTTY) pump(line func(string)) {
	buf := make([]byte, 32<<10)
	var partial []byte
	for {
		n, err := t.master.Read(buf)
		if n > 0 {
			t.fanOut(buf[:n])
			partial = append(partial, buf[:n]...)
			for {
				i := bytes.IndexByte(partial, '\n')
				if i < 0 {
					break
				}
				line(string(bytes.TrimRight(partial[:i], "\r")))
				partial = partial[i+1:]
			}
			for len(partial) >= upMaxLine {
				line(string(partial[:upMaxLine]))
				partial = partial[upMaxLine:]
			}
			partial = slices.Clip(partial) // the consumed front is not kept alive
		}
		if err != nil {
			if len(partial) > 0 {
				line(string(bytes.TrimRight(partial, "\r")))
			}
			return // the master was closed, or every slave end is (EIO)
		}
	}
}

// fanOut writes b to every attached client; one that cannot take it within
// a second is detached, so that a stuck client never stops the process.
func (t *upTTY) fanOut(b []byte) {
	t.mu.Lock()
	defer t.mu.Unlock()
	kept := t.sinks[:0]
	for _, c := range t.sinks {
		_ = c.SetWriteDeadline(time.Now().Add(time.Second))
		if _, err := c.Write(b); err != nil {
			_ = c.Close() // its handler sees the close and ends
			continue
		}
		kept = append(kept, c)
	}
	t.sinks = kept
}

// attach copies what c sends to the terminal, and the terminal's output to
// c, until c is closed by the client (detach) or by detachAll. rows and
// cols, when not 0, resize the terminal to the client's.
func (t *upTTY) attach(c net.Conn, rows, cols int) {
	t.resize(rows, cols)
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return
	}
	t.sinks = append(t.sinks, c)
	t.mu.Unlock()
	_, _ = io.Copy(t.master, c) // ends at the client's EOF, or when c is closed
	t.mu.Lock()
	t.sinks = slices.DeleteFunc(t.sinks, func(s net.Conn) bool { return s == c })
	t.mu.Unlock()
}

// resize sets the terminal's size (the kernel sends the process SIGWINCH);
// 0 leaves it as it is.
func (t *upTTY) resize(rows, cols int) {
	if rows > 0 && cols > 0 && rows <= 0xffff && cols <= 0xffff {
		_ = pty.Setsize(t.master, &pty.Winsize{Rows: uint16(rows), Cols: uint16(cols)}) // best effort: the size is a nicety
	}
}

// detachAll closes every attached client's connection: tether up is ending.
func (t *upTTY) detachAll() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, c := range t.sinks {
		_ = c.Close() // its attach returns
	}
	t.sinks, t.closed = nil, true
}

// close closes both ends once the processes are gone: the pump returns.
func (t *upTTY) close() {
	_ = t.slave.Close()  // best effort: every process that had it is gone
	_ = t.master.Close() // ends pump's Read
}
