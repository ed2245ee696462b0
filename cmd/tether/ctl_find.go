package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// Where tether restart|stop|start|status|connect look for their stack.
// With -socket or $TETHER_SOCKET, there; with -f, beside that Procfile;
// with neither, beside ./Procfile, as foreman looks for ./Procfile. A new
// user of the demo ran `tether status` from the repository's root, where
// nothing runs (the demo's Procfile, and so its socket, is in examples/),
// and read only "no tether up runs here". So when the default place has no
// answer, the error says what was looked for, and names the stacks that do
// run in the directories just below and above, with the command that
// reaches each. It does not act on such a guess: a stop or a restart must
// name its stack.

// ctlWhereHelp says in the commands' help where they look.
const ctlWhereHelp = `The stack is found by its control socket, .tether.sock beside the Procfile
tether up was given: name that Procfile with -f as tether up had it (the
demo, from the repository's root: -f examples/Procfile), or the socket with
-socket or $TETHER_SOCKET. Without them it is ./Procfile's, in this
directory, as foreman reads ./Procfile; if no tether up answers there, tether
says what it looked for and which stacks run in the directories just below
or above, with the -f that reaches each.`

// ctlPlace is where a control command looks for its stack.
type ctlPlace struct {
	path     string // the control socket
	procfile string // -f, as given (the default: Procfile)
	// byProcfile: the path is beside the Procfile (neither -socket nor
	// $TETHER_SOCKET); byDefault: that Procfile is ./Procfile (no -f).
	byProcfile, byDefault bool
}

// ctlLocate resolves the control socket of the stack fs's flags name
// (-f procfile, -socket socket, both parsed).
func ctlLocate(fset *flag.FlagSet, socket, procfile string) (ctlPlace, error) {
	fGiven := false
	fset.Visit(func(f *flag.Flag) { fGiven = fGiven || f.Name == "f" })
	if st, err := os.Stat(procfile); fGiven && socket == "" && os.Getenv(upSocketEnv) == "" && err == nil && st.IsDir() {
		// As tether up and check say: the socket beside a directory is
		// its parent's, not the stack's in it. (With -socket or
		// $TETHER_SOCKET the Procfile is not looked at.)
		return ctlPlace{}, fmt.Errorf("%s: is a directory (-f names the Procfile: %s)", procfile, filepath.Join(procfile, "Procfile"))
	}
	path, err := upSocketPath(socket, procfile)
	if err != nil {
		return ctlPlace{}, err
	}
	byProcfile := socket == "" && os.Getenv(upSocketEnv) == ""
	return ctlPlace{path: path, procfile: procfile, byProcfile: byProcfile, byDefault: byProcfile && !fGiven}, nil
}

// noStackError: no tether up answers at the control socket's path.
type noStackError struct {
	path  string
	stale bool // a socket file is there, left by a tether up that has ended
}

func (e *noStackError) Error() string {
	if e.stale {
		return fmt.Sprintf("no tether up runs here: %s is left from one that has ended (the next tether up replaces it)", e.path)
	}
	return fmt.Sprintf("no tether up runs here: no control socket %s (tether up makes it beside the Procfile; -f, -socket or $%s say where else to look)", e.path, upSocketEnv)
}

// explainNoStack turns err, when it is a *noStackError, into one that says
// what was looked for and how to reach a stack that runs nearby; cmdline
// is the command as the user would type it again, after "tether OP".
func explainNoStack(ctx context.Context, err error, op string, pl ctlPlace, cmdline []string) error {
	var ns *noStackError
	if !errors.As(err, &ns) {
		return err
	}
	if !pl.byDefault {
		if _, serr := os.Stat(pl.procfile); pl.byProcfile && !ns.stale && errors.Is(serr, fs.ErrNotExist) {
			return fmt.Errorf("%w, and there is no Procfile %s", ns, pl.procfile)
		}
		return ns
	}
	dir := filepath.Dir(pl.path)
	var what string
	switch _, serr := os.Stat(filepath.Join(dir, "Procfile")); {
	case ns.stale:
		what = ns.Error()
	case errors.Is(serr, fs.ErrNotExist):
		what = fmt.Sprintf("no tether up runs here: no Procfile in %s, nor a control socket %s (a tether up makes it beside its Procfile while it runs)", dir, pl.path)
	default:
		what = fmt.Sprintf("no tether up runs here: no control socket %s beside ./Procfile (tether up makes it there while it runs)", pl.path)
	}
	near := stacksNear(ctx, dir)
	if len(near) == 0 {
		return fmt.Errorf("%s; none runs in the directories just below or above either: name the stack's Procfile, as tether up was given it: %s (or its socket: -socket, $%s)",
			what, ctlHint(op, "path/to/Procfile", "", cmdline), upSocketEnv)
	}
	hints := make([]string, len(near))
	for i, d := range near {
		rel, rerr := filepath.Rel(dir, d)
		if rerr != nil {
			rel = d
		}
		procfile, socket := filepath.Join(rel, "Procfile"), ""
		if _, serr := os.Stat(filepath.Join(d, "Procfile")); serr != nil {
			// Its Procfile has another name: the socket says where.
			procfile, socket = "", filepath.Join(rel, upSocketName)
		}
		hints[i] = fmt.Sprintf("in %s%c: %s", rel, filepath.Separator, ctlHint(op, procfile, socket, cmdline))
	}
	if len(hints) == 1 {
		return fmt.Errorf("%s; a tether up runs %s", what, hints[0])
	}
	return fmt.Errorf("%s; tether ups run %s", what, strings.Join(hints, ", and "))
}

// ctlHint is the command that reaches a stack by its Procfile (or socket).
func ctlHint(op, procfile, socket string, cmdline []string) string {
	parts := []string{selfCommand(false), op}
	if procfile != "" {
		parts = append(parts, "-f", procfile)
	} else {
		parts = append(parts, "-socket", socket)
	}
	return strings.Join(append(parts, cmdline...), " ")
}

// selfCommand is how to run this tether again from a shell, for the
// commands it suggests: "tether" where $PATH finds this very binary; else
// (a tether built into bin/ and run as bin/tether) its path, relative to
// the working directory when it is below it and the command is to be
// typed here, absolute when it may be typed anywhere.
func selfCommand(anywhere bool) string {
	exe, err := os.Executable()
	if err != nil {
		return "tether"
	}
	onPath := false
	if lp, err := exec.LookPath("tether"); err == nil {
		a, aerr := os.Stat(lp)
		b, berr := os.Stat(exe)
		onPath = aerr == nil && berr == nil && os.SameFile(a, b)
	}
	wd, _ := os.Getwd()
	return commandFor(exe, wd, onPath, anywhere)
}

// commandFor is selfCommand's choice for the binary at exe, from the
// working directory wd (empty if unknown). A path relative to wd has a
// separator in it ("./tether", not "tether", which the shell would look up
// in $PATH).
func commandFor(exe, wd string, onPath, anywhere bool) string {
	if onPath {
		return "tether"
	}
	if !anywhere && wd != "" {
		if rel, err := filepath.Rel(wd, exe); err == nil && filepath.IsLocal(rel) {
			if !strings.ContainsRune(rel, filepath.Separator) {
				rel = "." + string(filepath.Separator) + rel
			}
			return rel
		}
	}
	return exe
}

// maxNear bounds the directories stacksNear looks in below dir.
const maxNear = 1000

// stacksNear lists the directories just below dir, then those above it,
// whose control socket answers, as this user's: where a tether up runs.
func stacksNear(ctx context.Context, dir string) []string {
	var cands []string
	if entries, err := os.ReadDir(dir); err == nil {
		for _, e := range entries {
			if e.IsDir() && len(cands) < maxNear {
				cands = append(cands, filepath.Join(dir, e.Name()))
			}
		}
	}
	for d := dir; filepath.Dir(d) != d; {
		d = filepath.Dir(d)
		cands = append(cands, d)
	}
	var out []string
	for _, d := range cands {
		sock := filepath.Join(d, upSocketName)
		if st, err := os.Lstat(sock); err != nil || st.Mode().Type() != fs.ModeSocket {
			continue
		}
		if stackAnswers(ctx, sock) {
			out = append(out, d)
		}
	}
	return out
}

// stackAnswers reports whether a tether up of this user listens at sock.
// It connects and hangs up: tether up takes a connection without a request
// as nothing to answer.
func stackAnswers(ctx context.Context, sock string) bool {
	d := net.Dialer{Timeout: time.Second}
	c, err := d.DialContext(ctx, "unix", sock)
	if err != nil {
		return false // a leftover (refused), another user's, or too long a path
	}
	defer func() { _ = c.Close() }() // a probe: nothing to say
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return false
	}
	uid, _, err := peerCred(uc)
	return err == nil && uid == os.Geteuid()
}
