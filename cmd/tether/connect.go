package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strings"

	"golang.org/x/term"
)

// tether connect: overmind's connect. Attaches this terminal to the
// terminal of one process of a running tether up (tty = true), and
// detaches again with Ctrl-] without stopping it.

// connectDetach is the key that detaches: Ctrl-], as telnet's escape.
const connectDetach = 0x1d

func runConnect(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("tether connect", flag.ContinueOnError)
	procfile := fs.String("f", "Procfile", "the stack's Procfile: its control socket is .tether.sock beside it")
	socket := fs.String("socket", "", "the control socket's `path` (default: beside the Procfile; $"+upSocketEnv+")")
	help := func(w io.Writer) {
		fmt.Fprint(w, `usage: tether connect [-f Procfile] [-socket PATH] NAME

Attaches this terminal to the terminal of process NAME (an instance, web.1,
or a type with one instance) of the stack a tether up runs, as overmind
connect does: what you type goes to the process — Ctrl-C is its SIGINT, a
debugger's prompt answers — and what it writes shows here, as well as in
tether up's output. Ctrl-] detaches; the process goes on. The process must
have a terminal: tty = true in tether.toml, or tether up -tty NAME.

`+ctlWhereHelp+`

Flags:
`)
		fs.SetOutput(w)
		fs.PrintDefaults()
		fs.SetOutput(io.Discard)
	}
	if helped, err := parseFlags(fs, args, stdout, help); helped || err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return badUsage(fs.Name(), "name one process")
	}
	pl, err := ctlLocate(fs, *socket, *procfile)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	path := pl.path
	in := os.Stdin
	rows, cols := upTermSize(in)
	conn, rd, res, err := controlOpen(ctx, path, ctlRequest{Op: "connect", Names: []string{fs.Arg(0)}, Rows: rows, Cols: cols})
	if err != nil {
		return fmt.Errorf("connect: %w", explainNoStack(ctx, err, "connect", pl, fs.Args()))
	}
	defer func() { _ = conn.Close() }() // best effort: detached
	if res.Error != "" {
		return fmt.Errorf("connect: %s", res.Error)
	}
	name := fs.Arg(0)
	if len(res.Processes) == 1 {
		name = res.Processes[0].Name
	}
	if term.IsTerminal(int(in.Fd())) {
		old, err := term.MakeRaw(int(in.Fd()))
		if err != nil {
			return fmt.Errorf("connect: %w", err)
		}
		defer func() { _ = term.Restore(int(in.Fd()), old) }() // best effort: the terminal as it was
	}
	fmt.Fprintf(stdout, "tether: attached to %s; Ctrl-] detaches\r\n", name)
	ended := make(chan struct{})     // the copy of the terminal's output has ended
	detached := make(chan error, 1)  // the reading of this terminal has ended
	detachedC := make(chan struct{}) // closed on the way out
	winch := make(chan os.Signal, 1)
	notifyResize(winch)
	defer signal.Stop(winch)
	resized := make(chan struct{})
	// Owner: runConnect, which closes resized on its way out and waits.
	// Passes this terminal's new size on, over a request of its own.
	go func() {
		defer close(resized)
		for {
			select {
			case <-winch:
				r, c := upTermSize(in)
				_, _ = controlCall(ctx, path, ctlRequest{Op: "resize", Names: []string{name}, Rows: r, Cols: c}) // best effort: the size is a nicety
			case <-ended:
				return
			case <-detachedC:
				return
			}
		}
	}()
	defer func() {
		close(detachedC)
		<-resized // bounded: a resize request in flight is answered at once
	}()
	// Owner: runConnect. Ends when tether up closes the connection (it
	// ended) or when runConnect closes it (detach); runConnect waits.
	go func() {
		defer close(ended)
		_, _ = io.Copy(stdout, rd)
	}()
	// Owner: runConnect. Ends at Ctrl-], at the end of stdin, or when the
	// connection fails; not waited for once the other side has ended (a
	// read of the terminal cannot be interrupted: the process exits).
	go func() {
		buf := make([]byte, 1024)
		for {
			n, err := in.Read(buf)
			chunk := buf[:n]
			if i := bytes.IndexByte(chunk, connectDetach); i >= 0 {
				_, _ = conn.Write(chunk[:i])
				detached <- nil
				return
			}
			if _, werr := conn.Write(chunk); werr != nil {
				detached <- werr
				return
			}
			if err != nil {
				detached <- err // io.EOF: stdin ended; detach
				return
			}
		}
	}()
	select {
	case <-detached:
		_ = conn.Close() // ends the copy above
		<-ended
		fmt.Fprintf(stdout, "\r\ntether: detached from %s; it goes on\r\n", name)
		return nil
	case <-ended:
		fmt.Fprintf(stdout, "\r\ntether: %s's stack has ended\r\n", name)
		return nil
	case <-ctx.Done():
		_ = conn.Close()
		<-ended
		return context.Cause(ctx)
	}
}

// controlOpen sends one request and reads the response, leaving the
// connection open: for connect, whose connection goes on as a stream. rd
// reads what follows the response.
func controlOpen(ctx context.Context, path string, req ctlRequest) (*net.UnixConn, *bufio.Reader, ctlResponse, error) {
	conn, err := controlDial(ctx, path)
	if err != nil {
		return nil, nil, ctlResponse{}, err
	}
	b, _ := json.Marshal(req) // a plain struct: cannot fail
	if _, err := conn.Write(append(b, '\n')); err != nil {
		_ = conn.Close()
		return nil, nil, ctlResponse{}, fmt.Errorf("%s: %w", path, err)
	}
	rd := bufio.NewReader(conn)
	line, err := rd.ReadBytes('\n')
	if err != nil {
		_ = conn.Close()
		return nil, nil, ctlResponse{}, fmt.Errorf("%s: no answer: %w", path, err)
	}
	var res ctlResponse
	if err := json.Unmarshal(line, &res); err != nil {
		_ = conn.Close()
		return nil, nil, ctlResponse{}, fmt.Errorf("%s: bad answer: %w", path, err)
	}
	res.Error = strings.TrimSpace(res.Error)
	return conn, rd, res, nil
}
