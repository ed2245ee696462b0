package tether

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
)

// Stdio says what one of a child's standard streams is connected to. The zero
// value is Null: the child reads end-of-file from stdin and its output is
// discarded. Build other values with Pipe, Inherit, File, Writer and Reader.
type Stdio struct {
	kind stdioKind
	w    io.Writer
	r    io.Reader
	f    *os.File
}

type stdioKind uint8

const (
	stdioNull stdioKind = iota
	stdioPipe
	stdioInherit
	stdioFile
	stdioWriter
	stdioReader
)

// Null connects the stream to the null device. It is the zero Stdio.
func Null() Stdio { return Stdio{} }

// Pipe connects the stream to a pipe the parent reads (Process.Stdout,
// Process.Stderr) or writes (Process.Stdin). While the child runs, only the
// parent's reads empty an output pipe: a child that writes more than the
// pipe holds (64 KiB on Linux) waits for them, so read it while the process
// runs — Process.Wait does not. After the exit tether drains what is left
// (see Process.Wait and Cmd.DrainTimeout).
func Pipe() Stdio { return Stdio{kind: stdioPipe} }

// Inherit gives the child the parent's own stream (os.Stdin, os.Stdout or
// os.Stderr).
func Inherit() Stdio { return Stdio{kind: stdioInherit} }

// File gives the child f itself (a duplicate of its descriptor). The caller
// keeps f and closes it when it likes.
func File(f *os.File) Stdio { return Stdio{kind: stdioFile, f: f} }

// Writer copies the stream (stdout or stderr) into w. An *os.File is passed to
// the child directly; anything else is fed from a pipe by a goroutine the
// Process owns, and Done waits for it to copy everything (within the drain
// bound). When Stdout and Stderr are the same Writer they share one pipe, so
// their interleaving is kept, and w needs no locking.
func Writer(w io.Writer) Stdio { return Stdio{kind: stdioWriter, w: w} }

// Reader feeds stdin from r. An *os.File is passed to the child directly;
// anything else is copied into a pipe by a goroutine that ends when r returns
// an error or EOF, or a write fails because the child is gone (a Read blocked
// forever in r keeps it, as with os/exec).
func Reader(r io.Reader) Stdio { return Stdio{kind: stdioReader, r: r} }

func (s Stdio) String() string {
	switch s.kind {
	case stdioPipe:
		return "Pipe()"
	case stdioInherit:
		return "Inherit()"
	case stdioFile:
		return "File()"
	case stdioWriter:
		return "Writer()"
	case stdioReader:
		return "Reader()"
	}
	return "Null()"
}

// Pipe states. A pipe leaves pipeOpen exactly once; whoever makes that
// transition closes the descriptor and marks the stream finished.
const (
	pipeOpen int32 = iota
	pipeEOF
	pipeClosed    // closed by its reader
	pipeAbandoned // drain timeout
	pipeFailed    // a read failed (err says how)
)

// errWouldBlock: readNow found nothing to read yet, or cannot tell.
var errWouldBlock = errors.New("read would block")

// maxDrain bounds the bytes a pipe buffers on its reader's behalf after the
// process exited; past it the drainer waits for the reader to catch up.
const maxDrain = 1 << 20

// pipeReader is the parent's read end of a stdout/stderr pipe.
//
// Reads of f are serialised by mu, and so is buf: after the process exits a
// drainer goroutine reads the rest of the pipe into buf, so that the stream
// reaches EOF (and the process closes) even if the user stopped reading —
// Node's issue 4049 — while a user who goes on reading still gets every byte,
// in order, first from buf and then from f.
type pipeReader struct {
	name  string
	f     *os.File
	state atomic.Int32
	done  chan struct{} // closed when state leaves pipeOpen

	mu    sync.Mutex
	buf   []byte
	off   int
	space chan struct{} // reader consumed buf: wakes a drainer waiting for room
	mode  int8          // f's mode as readNow found it (see there)
	err   error         // the read error of pipeFailed; set before the transition
}

func newPipeReader(name string, f *os.File) *pipeReader {
	return &pipeReader{name: name, f: f, done: make(chan struct{}), space: make(chan struct{}, 1)}
}

// finish moves the pipe out of pipeOpen once; it reports whether it did.
func (r *pipeReader) finish(state int32) bool {
	if !r.state.CompareAndSwap(pipeOpen, state) {
		return false
	}
	_ = r.f.Close() // best effort: EOF reached or nobody will read further
	close(r.done)
	return true
}

func (r *pipeReader) Read(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.off < len(r.buf) {
		n := copy(b, r.buf[r.off:])
		r.off += n
		if r.off == len(r.buf) {
			r.buf, r.off = nil, 0
			select {
			case r.space <- struct{}{}:
			default:
			}
		}
		return n, nil
	}
	if st := r.state.Load(); st != pipeOpen {
		return 0, r.endErr(st)
	}
	n, err := r.f.Read(b)
	if err == nil {
		return n, nil
	}
	if errors.Is(err, io.EOF) {
		r.finish(pipeEOF)
		return n, io.EOF
	}
	if st := r.state.Load(); st != pipeOpen {
		// Closed under us by Close or by the drain timeout.
		return n, r.endErr(st)
	}
	return n, fmt.Errorf("tether: read %s: %w", r.name, err)
}

func (r *pipeReader) endErr(st int32) error {
	switch st {
	case pipeEOF:
		return io.EOF
	case pipeAbandoned:
		return fmt.Errorf("%w (reading %s)", ErrDrainTimeout, r.name)
	case pipeFailed:
		return fmt.Errorf("tether: read %s: %w", r.name, r.err)
	}
	return fmt.Errorf("tether: read %s: %w", r.name, os.ErrClosed)
}

// Close discards what is left of the stream: the child gets EPIPE or SIGPIPE
// if it writes again, and the process no longer waits for this pipe to close.
func (r *pipeReader) Close() error {
	if r.finish(pipeClosed) {
		r.mu.Lock()
		r.buf, r.off = nil, 0
		r.mu.Unlock()
	}
	return nil
}

// drain runs after the process exited, in a goroutine owned by the Process's
// monitor; it ends when the pipe leaves pipeOpen (EOF, Close, or abandon at
// the drain timeout, which closes f and so unblocks it).
func (r *pipeReader) drain() {
	for r.state.Load() == pipeOpen {
		r.drainStep(true)
	}
}

// drainNow is drain without waiting: it reads what the pipe holds now and
// reports whether the stream has ended. An exited child's pipes are most
// often at EOF already, and then the monitor needs no drain bound (a timer
// would cost every Process a wake of the scheduler).
func (r *pipeReader) drainNow() bool {
	for r.state.Load() == pipeOpen {
		if !r.drainStep(false) {
			return false
		}
	}
	return true
}

// drainStep reads one chunk of the pipe into buf, or, with buf at maxDrain,
// waits for the reader to take some. Without wait it waits for nothing, the
// lock a reader holds included, and reports whether it got anywhere (read,
// or the stream ended).
func (r *pipeReader) drainStep(wait bool) bool {
	const chunk = 32 << 10
	if wait {
		r.mu.Lock()
	} else if !r.mu.TryLock() {
		return false // a reader is in a read that may block: so would we
	}
	defer r.mu.Unlock()
	if r.state.Load() != pipeOpen {
		return true
	}
	if len(r.buf)-r.off >= maxDrain {
		if !wait {
			return false
		}
		r.mu.Unlock()
		select {
		case <-r.space:
		case <-r.done:
		}
		r.mu.Lock()
		return true
	}
	// As much as the pipe holds, where the kernel says (FIONREAD), else a
	// chunk: an exited child's 64 KiB costs one allocation of 64 KiB, not
	// three growing to 96. Nothing held, without wait: a small read, for
	// EOF, into a buffer on the stack.
	want := chunk
	if held, ok := pipeHeld(r.f); ok && (held > 0 || !wait) {
		want = min(held, maxDrain-(len(r.buf)-r.off)) // a pipe can hold 1 MiB (F_SETPIPE_SZ)
	}
	var small [512]byte
	dst := small[:]
	if want > 0 {
		if r.off > 0 && cap(r.buf)-len(r.buf) < want {
			r.buf = append(r.buf[:0], r.buf[r.off:]...)
			r.off = 0
		}
		r.buf = growTail(r.buf, want)
		dst = r.buf[len(r.buf) : len(r.buf)+want]
	}
	var n int
	var err error
	if wait {
		n, err = r.f.Read(dst)
	} else if n, err = readNow(r.f, dst, &r.mode); errors.Is(err, errWouldBlock) {
		return false
	}
	if want > 0 {
		r.buf = r.buf[:len(r.buf)+n]
	} else {
		r.buf = append(r.buf, small[:n]...) // more came since FIONREAD
	}
	if errors.Is(err, io.EOF) {
		r.finish(pipeEOF)
	} else if err != nil && r.state.Load() == pipeOpen {
		// An unexpected read error: the stream ends here, and the
		// reader sees the error after what was buffered. (r.err is
		// read only after the transition, which publishes it.)
		r.err = err
		r.finish(pipeFailed)
	}
	return true
}

func growTail(b []byte, n int) []byte {
	if cap(b)-len(b) >= n {
		return b
	}
	// At least double, up to maxDrain: a pipe that trickles after the
	// exit, read as FIONREAD sizes it, would otherwise copy the whole
	// buffer at every read.
	nb := make([]byte, len(b), max(len(b)+n, min(2*cap(b), maxDrain)))
	copy(nb, b)
	return nb
}

// stdinPipe is the parent's write end of a stdin pipe.
type stdinPipe struct {
	f      *os.File
	pid    int
	closer atomic.Int32 // who closed f: stdinOpen, stdinClosedByUser or stdinClosedAtClose
}

// Who closed a stdin pipe. The mark is set before f is closed, so a write
// that fails because f is closed always sees it.
const (
	stdinOpen int32 = iota
	stdinClosedByUser
	stdinClosedAtClose
)

// Write writes to the child's stdin. After the child exited (or closed its
// stdin), the kernel answers EPIPE until the process closes; then tether has
// closed the pipe, and Write says EPIPE all the same: the promise does not
// depend on when the write comes.
func (w *stdinPipe) Write(b []byte) (int, error) {
	n, err := w.f.Write(b)
	if err != nil {
		if perr, ok := brokenPipe(err); ok {
			return n, fmt.Errorf("tether: write stdin of pid %d: the process closed its stdin or exited: %w", w.pid, perr)
		}
		switch {
		case errors.Is(err, os.ErrClosed) && w.closer.Load() == stdinClosedAtClose:
			return n, fmt.Errorf("tether: write stdin of pid %d: the process exited and closed: %w", w.pid, syscall.EPIPE)
		case errors.Is(err, os.ErrClosed):
			return n, fmt.Errorf("tether: write stdin of pid %d after Close: %w", w.pid, os.ErrClosed)
		}
		return n, fmt.Errorf("tether: write stdin of pid %d: %w", w.pid, err)
	}
	return n, nil
}

// Close closes the child's stdin; it is safe to call more than once.
func (w *stdinPipe) Close() error {
	w.closer.CompareAndSwap(stdinOpen, stdinClosedByUser)
	return w.close()
}

// closeAtClose is the monitor's close, at the process's close.
func (w *stdinPipe) closeAtClose() {
	w.closer.CompareAndSwap(stdinOpen, stdinClosedAtClose)
	_ = w.close() // best effort: nobody reads it any more
}

func (w *stdinPipe) close() error {
	if err := w.f.Close(); err != nil && !errors.Is(err, os.ErrClosed) {
		return fmt.Errorf("tether: close stdin: %w", err)
	}
	return nil
}

// sameWriter reports whether two Writer stdios wrap the same writer. Interface
// comparison panics on uncomparable dynamic types; those are never "the same".
func sameWriter(a, b Stdio) (same bool) {
	if a.kind != stdioWriter || b.kind != stdioWriter {
		return false
	}
	defer func() {
		if recover() != nil {
			same = false
		}
	}()
	return a.w == b.w
}

// stdioSetup gathers the descriptors one Start creates, so that a failure at
// any step closes exactly what was opened.
type stdioSetup struct {
	op         string // the step that failed, for StartError
	child      [3]*os.File
	childEnds  []*os.File // ours; closed once the child has its copies
	parentEnds []*os.File // closed only if the start fails
	stdin      *stdinPipe
	stdout     *pipeReader
	stderr     *pipeReader
	copiers    []*copier
	stdinCopy  *stdinCopier
	devNull    *os.File
}

var stdioNames = [3]string{"stdin", "stdout", "stderr"}

func (s *stdioSetup) open(c *Cmd, p *Process) error {
	cfg := [3]Stdio{c.Stdin, c.Stdout, c.Stderr}
	for i, sd := range cfg {
		s.op = stdioNames[i]
		if i == 0 && sd.kind == stdioWriter {
			return errors.New("Writer() is for Stdout and Stderr; use Reader() or File()")
		}
		if i > 0 && sd.kind == stdioReader {
			return errors.New("Reader() is for Stdin; use Writer() or File()")
		}
		if i == 2 && sameWriter(cfg[1], cfg[2]) {
			s.child[2] = s.child[1]
			continue
		}
		switch sd.kind {
		case stdioNull:
			if s.devNull == nil {
				f, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
				if err != nil {
					return err
				}
				s.devNull = f
				s.childEnds = append(s.childEnds, f)
			}
			s.child[i] = s.devNull
			continue
		case stdioInherit:
			s.child[i] = [3]*os.File{os.Stdin, os.Stdout, os.Stderr}[i]
			continue
		case stdioFile:
			if sd.f == nil {
				return errors.New("File(nil)")
			}
			s.child[i] = sd.f
			continue
		case stdioWriter:
			if f, ok := sd.w.(*os.File); ok {
				s.child[i] = f
				continue
			}
			if sd.w == nil {
				return errors.New("Writer(nil)")
			}
		case stdioReader:
			if f, ok := sd.r.(*os.File); ok {
				s.child[i] = f
				continue
			}
			if sd.r == nil {
				return errors.New("Reader(nil)")
			}
		}
		s.op = stdioNames[i] + " pipe"
		r, w, err := os.Pipe()
		if err != nil {
			return err
		}
		if i == 0 {
			s.child[0] = r
			s.childEnds = append(s.childEnds, r)
			s.parentEnds = append(s.parentEnds, w)
			if sd.kind == stdioPipe {
				s.stdin = &stdinPipe{f: w}
			} else {
				s.stdinCopy = &stdinCopier{r: sd.r, w: w}
			}
			continue
		}
		s.child[i] = w
		s.childEnds = append(s.childEnds, w)
		s.parentEnds = append(s.parentEnds, r)
		pr := newPipeReader(stdioNames[i], r)
		switch {
		case sd.kind != stdioPipe:
			s.copiers = append(s.copiers, &copier{pr: pr, w: sd.w, done: make(chan struct{})})
		case i == 1:
			s.stdout = pr
		default:
			s.stderr = pr
		}
	}
	return nil
}

func (s *stdioSetup) closeChildEnds() {
	for _, f := range s.childEnds {
		_ = f.Close() // best effort: the child has its own copies
	}
	s.childEnds = nil
}

func (s *stdioSetup) closeParentEnds() {
	for _, f := range s.parentEnds {
		_ = f.Close() // best effort: the start failed, nobody will use them
	}
	s.parentEnds = nil
}

func (s *stdioSetup) closeAll() {
	s.closeChildEnds()
	s.closeParentEnds()
}

// streams lists what close waits for: every output pipe.
func (s *stdioSetup) streams() []stream {
	var out []stream
	for _, pr := range []*pipeReader{s.stdout, s.stderr} {
		if pr != nil {
			out = append(out, stream{pr: pr, done: pr.done})
		}
	}
	for _, cp := range s.copiers {
		out = append(out, stream{pr: cp.pr, cp: cp, done: cp.done})
	}
	return out
}

// stream is one output the monitor waits for before close.
type stream struct {
	pr   *pipeReader
	cp   *copier // nil for a Pipe() the user reads
	done <-chan struct{}
}

// copier feeds a Writer() stream from its pipe.
type copier struct {
	pr   *pipeReader
	w    io.Writer
	done chan struct{}
	err  error // set before done is closed
}

func (c *copier) run() {
	defer close(c.done)
	_, err := io.Copy(c.w, c.pr)
	if err != nil {
		c.err = err
		if !errors.Is(err, ErrDrainTimeout) {
			c.err = fmt.Errorf("tether: copy %s: %w", c.pr.name, err)
		}
		// Stop reading: the child gets EPIPE rather than blocking forever.
		_ = c.pr.Close()
	}
}

// stdinCopier feeds a Reader() stdin.
type stdinCopier struct {
	r io.Reader
	w *os.File
}

func (c *stdinCopier) run() {
	// A failed write means the child closed its stdin or is gone (EPIPE),
	// or the monitor closed the pipe at close; neither is the caller's error.
	_, _ = io.Copy(c.w, c.r)
	_ = c.w.Close() // EOF for the child; a second close after the monitor's is harmless
}
