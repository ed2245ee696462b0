package tether

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unicode/utf8"
)

// Node's IPC channel, 'json' serialization (lib/internal/child_process.js and
// lib/internal/child_process/serialization.js): a stream socket, one
// JSON.stringify(value) + "\n" per message. Objects whose "cmd" is a string
// starting with "NODE_" (and longer than it) are Node's own messages.
const (
	nodeChannelFD   = "NODE_CHANNEL_FD"
	nodeChannelMode = "NODE_CHANNEL_SERIALIZATION_MODE"
	internalPrefix  = "NODE_"
)

// DefaultMaxMessageSize bounds one received message (its JSON text) unless
// SetMaxMessageSize says otherwise. Node itself has no bound.
const DefaultMaxMessageSize = 64 << 20

// Errors of a Channel; test with errors.Is.
var (
	// ErrNoChannel is returned by ParentChannel when this process was not
	// started with an IPC channel (NODE_CHANNEL_FD is not set), and by the
	// methods of a nil or zero Channel (see Channel).
	ErrNoChannel = errors.New("tether: no IPC channel: this process was not started with one (NODE_CHANNEL_FD is not set)")

	// ErrChannelClosed is returned by Send and Recv after Close.
	ErrChannelClosed = errors.New("tether: IPC channel closed")

	// ErrMessageTooLarge is returned by Recv, wrapped in a *MessageError, for
	// a message over the size limit; the message is skipped and the next one
	// follows.
	ErrMessageTooLarge = errors.New("tether: IPC message over the size limit")

	// ErrInternalMessage is returned by Send for a value whose "cmd" starts
	// with "NODE_": Node would take it for one of its own messages.
	ErrInternalMessage = errors.New(`tether: IPC message with a "cmd" starting with "NODE_" is reserved for Node`)
)

// MessageError is returned by Recv and RecvRaw for one message that could not
// be delivered: too large (ErrMessageTooLarge), not valid JSON or UTF-8, cut
// short by the peer's end (io.ErrUnexpectedEOF), or not decodable into the
// value given. The channel goes on; the next Recv returns the next message.
type MessageError struct {
	Prefix []byte // up to the first 64 bytes of the message, for diagnosis
	Err    error
}

func (e *MessageError) Error() string {
	return fmt.Sprintf("tether: IPC message %.64q: %v", e.Prefix, e.Err)
}

func (e *MessageError) Unwrap() error { return e.Err }

// Channel is one end of an IPC channel speaking Node's JSON protocol; the same
// type serves a parent (Process.Channel, with Cmd.IPC set) and a child
// (ParentChannel), whether the other end is Go or Node (process.send,
// child_process.fork). Its methods may be called from several goroutines.
//
// Receiving reads the socket only as messages are asked for (Recv, or Done
// and Context, which read ahead by one batch to notice the peer's end), so a
// peer that sends faster than this side receives is held back by the socket:
// backpressure, no unbounded buffer. The descriptor is closed by Close, or
// when the peer's end is gone. On Unix a read that waits (Recv's, or the
// one behind Done and Context) blocks its thread in poll(2) for up to 5 ms,
// then parks in Go's netpoller: on a busy channel a message wakes the
// thread that waits for it, and an idle channel holds no thread. (At most
// 32 reads of the program wait in poll(2) at once; out of descriptors, a
// read stays there.) A Channel uses two descriptors on Linux (the socket
// and an eventfd), three on other Unix systems, and one more for each
// direction waiting in the netpoller; a Channel dropped without Close (and
// not kept alive by Done or Context's watcher) releases them when it is
// garbage collected.
//
// A nil *Channel (what Process.Channel returns when Cmd.IPC was not set) or a
// zero Channel is no channel: Send, SendRaw, Flush, Recv, RecvContext and
// RecvRaw return an error matching both ErrNoChannel and ErrChannelClosed,
// Done is closed, Context is cancelled at once (with that error as its
// cause), Close returns nil and SetMaxMessageSize does nothing.
type Channel struct {
	conn channelConn

	maxMsg atomic.Int64

	// The write side: Send encodes into pending; the writer goroutine
	// writes it out, as much as has accumulated per write.
	wmu      sync.Mutex
	wcond    sync.Cond     // signalled when pending grows, shrinks, or the writer stops
	pending  []byte        // encoded messages not yet handed to the writer
	spare    []byte        // the writer's last buffer, for reuse
	writing  bool          // the writer is in a write
	werr     error         // why writing stopped: a failed write, the peer's end, Close
	wstop    bool          // Close: no more Sends
	writer   bool          // a writer goroutine runs (it ends when pending is empty)
	penc     *json.Encoder // encodes into pending
	peerGone bool          // set at the peer's EOF, before the descriptor closes
	lastSend time.Time     // when Send last found the queue idle, or a write last ended
	reply    atomic.Bool   // Recv took the last message it had: a Send next is a reply

	// For tests: writes by Send itself and by the writer (under wmu), and
	// a hook run in the middle of Send's own write (wmu not held).
	directWrites, writerWrites int
	directHook                 func()
	quietAfter                 time.Duration // directIdle, unless a test says otherwise

	// The read side. rsem is held by whoever reads the socket and parses
	// (a Recv, the watcher, Close's drain); it guards the fields below it.
	rsem       chan struct{}
	rbuf       []byte
	partial    []byte    // the start of a message the last read cut
	discarding bool      // skipping the rest of a message over the limit
	queue      []rawItem // parsed; queue[qhead:] not yet received
	qhead      int       // the next to receive
	rended     bool      // the socket is done: endErr says why
	endErr     error     // io.EOF at the peer's end
	consumed   chan struct{}
	watchOnce  sync.Once

	// Between Recv and the watcher (see watch): watching is set once the
	// watcher runs; wkmu guards the rest.
	watching  atomic.Bool
	wkmu      sync.Mutex
	recvs     int           // Recvs in progress
	lastRecv  time.Time     // when a Recv last ended
	watchKick func()        // while the watcher reads: makes it stop
	watchWait bool          // the watcher waits on recvIdle
	recvIdle  chan struct{} // the last Recv in progress ended
	watchEnds int           // for tests: reads of the watcher that ended,
	watchGot  int           // and of those, how many brought messages

	closed   chan struct{} // closed by Close
	gone     chan struct{} // closed when the socket is done or at Close
	goneOnce sync.Once
	once     sync.Once // for Close

	connOnce sync.Once // the descriptor is closed once: by Close or at the peer's EOF
	connErr  error
}

// maxPending is how far Send may run ahead of the socket before it blocks.
const maxPending = 256 << 10

// directIdle: a Send into an empty queue this long after the previous one
// writes the message itself, as does a reply (see queuedLocked).
const directIdle = 20 * time.Microsecond

// watchIdle: the watcher stands aside until nobody has received for this
// long (see watch).
const watchIdle = 20 * time.Millisecond

// closeFlushTimeout bounds how long Close waits for a peer that does not read.
const closeFlushTimeout = 5 * time.Second

// pendingWriter lets a json.Encoder append to Channel.pending (under wmu).
type pendingWriter struct{ c *Channel }

func (w pendingWriter) Write(b []byte) (int, error) {
	w.c.pending = append(w.c.pending, b...)
	return len(b), nil
}

// rawItem is one received message, or the error that replaced it.
type rawItem struct {
	data []byte
	err  error
}

// noChannelError is what the methods of a nil or zero Channel return.
type noChannelError struct{}

func (noChannelError) Error() string {
	return "tether: no IPC channel (a nil or zero Channel: was Cmd.IPC set?)"
}

func (noChannelError) Is(target error) bool {
	return target == ErrNoChannel || target == ErrChannelClosed
}

// missing reports whether c is a nil or zero Channel: no channel at all.
func (c *Channel) missing() bool { return c == nil || c.conn == nil }

// channelConn is the connection under a Channel: a stream socket on Unix
// (sockConn, channel_unix.go); on Windows a named pipe that carries the
// stream in libuv's IPC frames (channel_windows.go).
type channelConn interface {
	io.ReadWriteCloser
	SetReadDeadline(time.Time) error
	SetWriteDeadline(time.Time) error
	// writeNow writes as much of b as the connection takes without
	// waiting: n < len(b) with a nil error when it is full.
	writeNow(b []byte) (n int, err error)
	// shutdown ends the connection without closing it (see
	// Channel.shutdown); best effort.
	shutdown()
}

func newChannel(conn channelConn) *Channel {
	c := &Channel{
		conn:     conn,
		rsem:     make(chan struct{}, 1),
		consumed: make(chan struct{}, 1),
		recvIdle: make(chan struct{}, 1),
		closed:   make(chan struct{}),
		gone:     make(chan struct{}),

		quietAfter: directIdle,
	}
	c.wcond.L = &c.wmu
	c.maxMsg.Store(DefaultMaxMessageSize)
	c.penc = json.NewEncoder(pendingWriter{c})
	c.penc.SetEscapeHTML(false) // as JSON.stringify: "<" stays "<"
	return c
}

// SetMaxMessageSize bounds the size of one received message in bytes; n <= 0
// restores DefaultMaxMessageSize. Larger messages are skipped, and Recv
// reports each with ErrMessageTooLarge.
func (c *Channel) SetMaxMessageSize(n int) {
	if c.missing() {
		return
	}
	if n <= 0 {
		n = DefaultMaxMessageSize
	}
	c.maxMsg.Store(int64(n))
}

// Send encodes v as JSON (as JSON.stringify would: Go's encoding/json rules,
// HTML characters not escaped) and sends it as one message. Messages go out
// in the order their Sends returned. A lone message — a reply to what Recv
// last returned, or the first after a quiet spell — is written by Send
// itself, as far as the socket takes it without waiting; the rest, and a
// stream of Sends, are queued and written in batches by a goroutine of the
// Channel. Either way Send may return before the message is in the socket:
// call Flush (or Close) before the process exits if the last messages
// matter — as with Node's process.send. When the queue is 256 KiB ahead of
// the socket (the peer is not reading), Send blocks: backpressure, never an
// unbounded queue.
//
// Errors: ErrChannelClosed after Close; ErrInternalMessage for a value whose
// "cmd" starts with "NODE_"; once the peer is gone or a write failed, an
// error matching syscall.EPIPE (or the write's error) for this and every
// later Send, which may concern an earlier message.
func (c *Channel) Send(v any) error {
	if c.missing() {
		return noChannelError{}
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if err := c.waitRoomLocked(); err != nil {
		return err
	}
	start := len(c.pending)
	if err := c.penc.Encode(v); err != nil {
		c.pending = c.pending[:start]
		return fmt.Errorf("tether: IPC send: %w", err)
	}
	return c.queuedLocked(start)
}

// SendRaw queues msg, which must be valid JSON in UTF-8, as one message,
// compacted to one line. Otherwise it is Send.
func (c *Channel) SendRaw(msg json.RawMessage) error {
	if c.missing() {
		return noChannelError{}
	}
	if !utf8.Valid(msg) {
		return errors.New("tether: IPC send: message is not valid UTF-8")
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if err := c.waitRoomLocked(); err != nil {
		return err
	}
	start := len(c.pending)
	buf := bytes.NewBuffer(c.pending)
	if err := json.Compact(buf, msg); err != nil {
		c.pending = c.pending[:start]
		return fmt.Errorf("tether: IPC send: %w", err)
	}
	buf.WriteByte('\n')
	c.pending = buf.Bytes()
	return c.queuedLocked(start)
}

// waitRoomLocked blocks while the queue is full and says whether sending is
// still possible.
func (c *Channel) waitRoomLocked() error {
	for len(c.pending) >= maxPending && c.werr == nil && !c.wstop && !c.peerGone {
		c.wcond.Wait()
	}
	return c.sendErrLocked()
}

func (c *Channel) sendErrLocked() error {
	switch {
	case c.wstop:
		return ErrChannelClosed
	case c.peerGone:
		return fmt.Errorf("tether: IPC send: the peer is gone: %w", syscall.EPIPE)
	case c.werr != nil:
		return fmt.Errorf("tether: IPC send: %w", c.werr)
	}
	return nil
}

// queuedLocked checks the message appended at pending[start:] and sees it
// written, or takes it back.
func (c *Channel) queuedLocked(start int) error {
	if isInternal(c.pending[start:]) {
		c.pending = c.pending[:start]
		return ErrInternalMessage
	}
	// A lone message is written from here, sparing the hand-off to a
	// writer (a goroutine start, and the thread it wakes): the first after
	// a quiet spell, or a reply. Quiet alone missed the fastest exchanges: a
	// go↔go round trip under directIdle sent every message through the
	// writer, at half the rate. A stream of Sends (each within directIdle
	// of the last Send or write, nothing received in between) is batched
	// by the writer.
	reply := c.reply.Load() && c.reply.Swap(false)
	if start == 0 && !c.writer && !c.writing {
		// (The clock is read only here and after each write, not for
		// every Send of a stream.)
		now := time.Now()
		quiet := now.Sub(c.lastSend) > c.quietAfter
		c.lastSend = now
		if quiet || reply {
			c.writeDirectLocked()
			return nil
		}
	}
	c.kickLocked()
	return nil
}

// writeDirectLocked writes pending from Send's goroutine, once and without
// waiting: what the socket does not take now (the peer is behind) stays
// queued, first, for a writer, so that Send does not block on a full socket
// while the queue has room.
func (c *Channel) writeDirectLocked() {
	buf := c.pending
	c.pending, c.spare = c.spare[:0], nil
	c.writing = true
	c.directWrites++
	c.wmu.Unlock()
	if c.directHook != nil {
		c.directHook()
	}
	n, err := c.conn.writeNow(buf)
	c.wmu.Lock()
	if err == nil && n < len(buf) {
		// Ahead of what Sends queued meanwhile.
		rest := append(buf[:0], buf[n:]...)
		c.pending, c.spare = append(rest, c.pending...), c.pending[:0]
		c.writing = false
		c.kickLocked()
		c.wcond.Broadcast()
		return
	}
	c.wroteLocked(buf, err)
}

// kickLocked starts a writer if messages wait and nobody writes them.
func (c *Channel) kickLocked() {
	if len(c.pending) == 0 || c.werr != nil || c.peerGone || c.writer || c.writing {
		return
	}
	c.writer = true
	// Owner: the Channel. Ends when the queue is empty or writing fails.
	go c.writeLoop()
}

// queueInternal queues one of Node's internal messages, ignoring the bound.
func (c *Channel) queueInternal(b []byte) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.sendErrLocked() == nil {
		c.pending = append(c.pending, b...)
		c.kickLocked()
	}
}

// Flush blocks until every message queued by Send is written to the socket,
// and returns the error that stopped writing, if any (as Send does).
func (c *Channel) Flush() error {
	if c.missing() {
		return noChannelError{}
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.waitIdleLocked()
	if c.werr != nil || c.peerGone {
		return c.sendErrLocked()
	}
	return nil
}

// waitIdleLocked waits until nothing is being written: the queue is empty
// or writing failed.
func (c *Channel) waitIdleLocked() {
	for c.writer || c.writing {
		c.wcond.Wait()
	}
}

// writeLoop writes what Send queued, all that has accumulated per write,
// until the queue is empty.
func (c *Channel) writeLoop() {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	for len(c.pending) > 0 && c.werr == nil && !c.peerGone {
		buf := c.pending
		c.pending, c.spare = c.spare[:0], nil
		c.writing = true
		c.writerWrites++
		c.wcond.Broadcast() // room for Sends waiting for it
		c.wmu.Unlock()
		_, err := c.conn.Write(buf)
		c.wmu.Lock()
		c.wroteLocked(buf, err)
	}
	c.writer = false
	c.wcond.Broadcast()
}

func (c *Channel) wroteLocked(buf []byte, err error) {
	c.writing = false
	c.lastSend = time.Now() // a Send soon after is part of the same stream
	if cap(buf) <= 4*maxPending {
		c.spare = buf[:0]
	}
	if err != nil {
		c.werr = err
		c.pending = nil // cannot be delivered
	}
	c.kickLocked() // what was queued meanwhile, if no writer runs
	c.wcond.Broadcast()
}

// Recv receives the next message into v as json.Unmarshal would (v nil
// discards it). It returns io.EOF once the peer's end is gone and every
// message before that was received, ErrChannelClosed after Close, and a
// *MessageError for one message that could not be delivered, after which
// the channel goes on. Node's own messages ("cmd" starting with "NODE_") are
// never delivered.
func (c *Channel) Recv(v any) error {
	return c.RecvContext(context.Background(), v)
}

// RecvContext is Recv that gives up when ctx is done, returning ctx.Err()
// (no message is lost by giving up). A message already read from the socket
// is returned even when ctx is done.
func (c *Channel) RecvContext(ctx context.Context, v any) error {
	if c.missing() {
		return noChannelError{}
	}
	data, err := c.next(ctx)
	if err != nil || v == nil {
		return err
	}
	if err := json.Unmarshal(data, v); err != nil {
		return &MessageError{Prefix: prefix(data), Err: err}
	}
	return nil
}

// RecvRaw receives the next message as JSON text, checked to be valid. Errors
// are as for Recv.
func (c *Channel) RecvRaw() (json.RawMessage, error) {
	if c.missing() {
		return nil, noChannelError{}
	}
	data, err := c.next(context.Background())
	if err != nil {
		return nil, err
	}
	if !json.Valid(data) {
		return nil, &MessageError{Prefix: prefix(data), Err: errors.New("not valid JSON")}
	}
	// data shares its array with the other messages of its read (see
	// fill): a message the caller keeps must not keep them all alive.
	return bytes.Clone(data), nil
}

func (c *Channel) next(ctx context.Context) ([]byte, error) {
	if c.watching.Load() {
		c.recvStart()
		defer c.recvEnd()
	}
	select {
	case c.rsem <- struct{}{}: // nobody reads: the common case, without selectgo
	default:
		select {
		case c.rsem <- struct{}{}:
		case <-c.closed:
			return nil, ErrChannelClosed
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	defer func() { <-c.rsem }()
	for {
		select {
		case <-c.closed:
			return nil, ErrChannelClosed
		default:
		}
		if c.qhead < len(c.queue) {
			it := c.queue[c.qhead]
			c.queue[c.qhead] = rawItem{}
			c.qhead++
			last := c.qhead == len(c.queue)
			if last {
				// Empty: the next fill reuses the array from its start,
				// unless a burst of tiny messages made it large.
				c.queue, c.qhead = c.queue[:0], 0
				if cap(c.queue) > 4096 {
					c.queue = nil
				}
			}
			// Nothing else parsed: a Send now answers this one. (With more
			// queued, this side is working through a burst: its answers
			// batch.)
			if c.reply.Load() != last {
				c.reply.Store(last)
			}
			select {
			case c.consumed <- struct{}{}: // the watcher may read ahead again
			default:
			}
			return it.data, it.err
		}
		if c.rended {
			return nil, c.endErr
		}
		if err := c.fill(ctx); err != nil {
			return nil, err
		}
	}
}

// Close closes this end: the peer reads EOF (Node emits 'disconnect').
// Messages queued by Send are written first: Close waits for that up to 5 s
// while the peer lives but does not read (reading and discarding what the
// peer sends meanwhile, so that neither side blocks the other). Messages not
// yet received are discarded, and Send and Recv return ErrChannelClosed.
// Close is safe to call more than once.
func (c *Channel) Close() error {
	if c.missing() {
		return nil // no channel: nothing to close
	}
	var err error
	c.once.Do(func() {
		// Write what was queued first (bounded by the peer: it reads, or
		// its end closes and the write fails).
		close(c.closed)
		c.markGone()
		drained := make(chan struct{})
		// Owner: Close. Reads and discards what the peer sends while the
		// queue is flushed, so a peer blocked writing to us can go on to
		// read; ends when the descriptor closes below.
		go func() {
			defer close(drained)
			for {
				c.rsem <- struct{}{}
				if c.rended {
					<-c.rsem
					return
				}
				_ = c.fill(context.Background()) // only a context error; there is none
				<-c.rsem
			}
		}()
		// If the peer lives but does not read, give up on the queue: the
		// deadline fails the write. (The timer's goroutine exists only if
		// it fires.)
		t := time.AfterFunc(closeFlushTimeout, func() {
			_ = c.conn.SetWriteDeadline(time.Now()) // best effort: closing anyway
		})
		c.wmu.Lock()
		c.wstop = true
		c.wcond.Broadcast() // Sends waiting for room return ErrChannelClosed
		c.waitIdleLocked()  // bounded: by the peer, or the deadline
		c.wmu.Unlock()
		t.Stop()
		err = c.closeConn()
		<-drained // bounded: its read fails on the closed descriptor
	})
	return err
}

// readToEnd reads what the peer sent into the queue, for Recvs still to
// come, until the end of the socket or ctx, then closes the descriptor.
// If ctx ends first, Recv returns, after what was read, an error matching
// ErrDrainTimeout. If a Recv holds the read side until ctx ends, the
// channel is its caller's, and left alone.
func (c *Channel) readToEnd(ctx context.Context) {
	select {
	case c.rsem <- struct{}{}: // first, even if ctx ended: the descriptor is closed below
	default:
		select {
		case c.rsem <- struct{}{}:
		case <-ctx.Done():
			return
		}
	}
	defer func() { <-c.rsem }()
	for !c.rended {
		if c.fill(ctx) != nil { // ctx ended: give up what is left
			c.rended = true
			c.endErr = fmt.Errorf("tether: IPC receive: %w", ErrDrainTimeout)
			c.markGone()
		}
	}
	_ = c.closeConn() // best effort: fill closed it at EOF; not on another error
}

// shutdown ends the connection without closing the descriptor: the peer
// reads EOF; on Linux this side reads what was already queued, then EOF
// (elsewhere, reads end when the peer's end closes: see sockConn.shutdown).
func (c *Channel) shutdown() { c.conn.shutdown() }

func (c *Channel) closeConn() error {
	c.connOnce.Do(func() { c.connErr = c.conn.Close() })
	return c.connErr
}

// Done is closed when the channel has ended: the peer's end is gone (its
// process exited or closed the channel) and the messages before that were
// read, or Close was called. A child whose channel to its parent is done
// knows its parent is gone; see Context. Noticing the end takes a read:
// Recv's when one is in progress, otherwise, from 20 ms after the last Recv
// ended (or at once if there was none), a read-ahead of the Channel's own.
func (c *Channel) Done() <-chan struct{} {
	if c.missing() {
		return closedChan
	}
	c.watchOnce.Do(func() {
		c.watching.Store(true)
		// Owner: the Channel. Ends when the socket is done or at Close.
		go c.watch()
	})
	return c.gone
}

func (c *Channel) markGone() { c.goneOnce.Do(func() { close(c.gone) }) }

// watch reads ahead one batch at a time while nobody receives, so that the
// peer's end is noticed (Done) even by a process that never calls Recv.
//
// While Recv is in use it stands aside: Recv reads the socket and sees the
// end itself. A watcher that read then would take each message from the
// socket and hand it over, waking a second goroutine per message (that
// halved the round-trip rate of a child using Context). It reads again once
// no Recv is in progress and none ended for watchIdle, so the end of a
// channel whose Recvs stopped is noticed within that; a Recv that comes
// while it reads stops the read (no message is lost: the read either
// returns data, which is parsed, or nothing).
func (c *Channel) watch() {
	idle := time.NewTimer(time.Hour)
	defer idle.Stop()
	for {
		select {
		case c.rsem <- struct{}{}:
		case <-c.closed:
			return
		}
		if c.rended {
			<-c.rsem
			return
		}
		if c.qhead < len(c.queue) {
			<-c.rsem
			select { // until a Recv takes one
			case <-c.consumed:
			case <-c.closed:
				return
			}
			continue
		}
		ctx, wait, ok := c.watchTurn()
		if !ok {
			<-c.rsem
			var until <-chan struct{} = c.recvIdle // a Recv is in progress
			var timer <-chan time.Time
			if wait > 0 { // Recvs ended recently
				idle.Reset(wait)
				until, timer = nil, idle.C
			}
			select {
			case <-until:
			case <-timer:
			case <-c.closed:
				return
			}
			continue
		}
		// (Nothing is taken from the queue while the watcher holds rsem.)
		had := len(c.queue)
		_ = c.fill(ctx) // only ctx's error: a Recv came, and it takes over
		c.watchEnd(len(c.queue) > had)
		<-c.rsem
	}
}

// watchTurn says whether the watcher may read now, and gives it a context
// that a Recv cancels to take over; if not, how long to wait (0: until the
// Recv in progress ends, which signals recvIdle). The watcher holds rsem.
func (c *Channel) watchTurn() (context.Context, time.Duration, bool) {
	c.wkmu.Lock()
	defer c.wkmu.Unlock()
	if c.recvs > 0 {
		c.watchWait = true
		return nil, 0, false
	}
	if since := time.Since(c.lastRecv); since < watchIdle {
		return nil, watchIdle - since, false
	}
	ctx, cancel := context.WithCancel(context.Background())
	c.watchKick = cancel
	return ctx, 0, true
}

// watchEnd ends the watcher's read; got says whether it brought messages.
func (c *Channel) watchEnd(got bool) {
	c.wkmu.Lock()
	defer c.wkmu.Unlock()
	c.watchEnds++
	if got {
		c.watchGot++
	}
	if c.watchKick != nil {
		c.watchKick() // releases the context
		c.watchKick = nil
	}
}

// recvStart marks a Recv in progress, stopping the watcher's read if one is
// under way so that this Recv reads instead.
func (c *Channel) recvStart() {
	c.wkmu.Lock()
	defer c.wkmu.Unlock()
	c.recvs++
	if c.watchKick != nil {
		c.watchKick()
		c.watchKick = nil
	}
}

// recvEnd marks a Recv ended, and tells a watcher that waits for it.
func (c *Channel) recvEnd() {
	c.wkmu.Lock()
	defer c.wkmu.Unlock()
	c.recvs--
	c.lastRecv = time.Now()
	if c.recvs == 0 && c.watchWait {
		c.watchWait = false
		select {
		case c.recvIdle <- struct{}{}:
		default: // already signalled
		}
	}
}

// Context returns a copy of parent that is cancelled when the channel is
// done, with io.EOF as its cause (context.Cause). In a child, this is the
// one call that ties its work to its parent's life:
//
//	ch, err := tether.ParentChannel()
//	...
//	ctx, cancel := ch.Context(context.Background())
//	defer cancel()
func (c *Channel) Context(parent context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancelCause(parent)
	if c.missing() {
		cancel(noChannelError{})
		return ctx, func() { cancel(context.Canceled) }
	}
	// Owner: the returned context. Ends when the channel is done or the
	// context is cancelled, whichever comes first.
	done := c.Done()
	go func() {
		select {
		case <-done:
			cancel(io.EOF)
		case <-ctx.Done():
		}
	}()
	return ctx, func() { cancel(context.Canceled) }
}

// fill reads the socket once and parses what came into queue; at the end of
// the socket it sets rended. It returns only ctx's error, when ctx ended the
// read. The caller holds rsem.
func (c *Channel) fill(ctx context.Context) error {
	if c.rbuf == nil {
		c.rbuf = make([]byte, 64<<10)
	}
	n, err := c.read(ctx)
	chunk := c.rbuf[:n]
	max := c.maxMsg.Load()
	// The whole lines after the first are copied out of rbuf at once, and
	// each is a slice of that copy: one allocation per read, not one per
	// message (Recv's json.Unmarshal keeps no reference to its input;
	// RecvRaw hands out a copy of its own).
	var own []byte
	if i := bytes.IndexByte(chunk, '\n'); i >= 0 {
		if j := bytes.LastIndexByte(chunk, '\n'); j > i {
			own = bytes.Clone(chunk[i+1 : j+1])
		}
	}
	first := true
	for len(chunk) > 0 {
		i := bytes.IndexByte(chunk, '\n')
		if i < 0 {
			if !c.discarding {
				if int64(len(c.partial)+len(chunk)) > max {
					c.discarding = true
					c.push(rawItem{err: &MessageError{Prefix: prefix(append(c.partial, chunk...)), Err: ErrMessageTooLarge}})
					c.partial = nil
				} else {
					c.partial = append(c.partial, chunk...)
				}
			}
			break
		}
		line := chunk[:i]
		chunk = chunk[i+1:]
		if !first {
			line, own = own[:i:i], own[i+1:]
		}
		wasFirst := first
		first = false
		if c.discarding {
			c.discarding = false
			continue
		}
		if len(c.partial) > 0 {
			line = append(c.partial, line...)
			c.partial = nil
		} else if wasFirst {
			line = bytes.Clone(line)
		}
		if int64(len(line)) > max {
			c.push(rawItem{err: &MessageError{Prefix: prefix(line), Err: ErrMessageTooLarge}})
			continue
		}
		c.received(line)
	}
	if err == nil {
		return nil
	}
	if ctx.Err() != nil && errors.Is(err, os.ErrDeadlineExceeded) {
		return ctx.Err()
	}
	c.rended = true
	select {
	case <-c.closed:
		c.endErr = ErrChannelClosed
	default:
		if errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) {
			c.endErr = io.EOF
			if len(c.partial) > 0 || c.discarding {
				// The peer ended mid-message: say so once, then EOF.
				c.push(rawItem{err: &MessageError{Prefix: prefix(c.partial), Err: io.ErrUnexpectedEOF}})
			}
			c.partial = nil
			// The peer is gone: release the descriptor now rather than
			// when (if) the user closes. Send reports EPIPE.
			c.wmu.Lock()
			c.peerGone = true
			c.wcond.Broadcast()
			c.waitIdleLocked() // bounded: a write to a gone peer fails at once
			c.wmu.Unlock()
			_ = c.closeConn() // best effort: nothing more can come or go
		} else {
			c.endErr = fmt.Errorf("tether: IPC receive: %w", err)
		}
	}
	c.markGone()
	return nil
}

// read reads into rbuf, giving up when ctx ends.
func (c *Channel) read(ctx context.Context) (int, error) {
	if ctx.Done() == nil {
		return c.conn.Read(c.rbuf)
	}
	fired := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		_ = c.conn.SetReadDeadline(time.Unix(1, 0)) // wakes the Read; best effort: closed already
		close(fired)
	})
	n, err := c.conn.Read(c.rbuf)
	if !stop() {
		<-fired
		_ = c.conn.SetReadDeadline(time.Time{}) // best effort: as above
	}
	return n, err
}

// push queues an item for Recv; after Close there is nobody to take it.
func (c *Channel) push(it rawItem) {
	select {
	case <-c.closed:
	default:
		// (After what is not yet received: readToEnd fills a queue
		// nobody takes from.)
		c.queue = append(c.queue, it)
	}
}

// received sorts one line: a user message, an error in its place, or one of
// Node's internal messages (answered here, never delivered).
func (c *Channel) received(line []byte) {
	if !utf8.Valid(line) {
		c.push(rawItem{err: &MessageError{Prefix: prefix(line), Err: errors.New("not valid UTF-8")}})
		return
	}
	if isInternal(line) {
		var m struct {
			Cmd string `json:"cmd"`
		}
		_ = json.Unmarshal(line, &m) // isInternal parsed it already
		if m.Cmd == "NODE_HANDLE" {
			// Node passed a handle (a socket or server) with SCM_RIGHTS. A
			// plain read discards the descriptor in the kernel; tell Node it
			// did not arrive, as Node itself does when a handle is lost.
			// Node retries three times, then warns and goes on.
			c.queueInternal([]byte(`{"cmd":"NODE_HANDLE_NACK"}` + "\n"))
		}
		return
	}
	c.push(rawItem{data: line})
}

// isInternal reports whether b, one JSON message, is an object whose top-level
// "cmd" is a string starting with "NODE_" and longer than that, as Node's
// isInternal decides.
func isInternal(b []byte) bool {
	b = bytes.TrimLeft(b, " \t\r\n")
	if len(b) == 0 || b[0] != '{' {
		return false
	}
	// Fast path: the key cannot be there unless "cmd" or an escape is.
	if !bytes.Contains(b, []byte(`"cmd"`)) && !bytes.Contains(b, []byte(`\u`)) {
		return false
	}
	var m struct {
		Cmd json.RawMessage `json:"cmd"`
	}
	if json.Unmarshal(b, &m) != nil || len(m.Cmd) == 0 || m.Cmd[0] != '"' {
		return false
	}
	var cmd string
	if json.Unmarshal(m.Cmd, &cmd) != nil {
		return false
	}
	return len(cmd) > len(internalPrefix) && cmd[:len(internalPrefix)] == internalPrefix
}

func prefix(b []byte) []byte {
	if len(b) > 64 {
		b = b[:64]
	}
	return bytes.Clone(b)
}

// parentChannel is ParentChannel's result, made once.
var parentChannel struct {
	once sync.Once
	ch   *Channel
	err  error
}

// ParentChannel returns the IPC channel to this process's parent: a tether
// parent with Cmd.IPC set, or Node's child_process.fork (or spawn with an
// 'ipc' stdio entry). Like Node, it removes NODE_CHANNEL_FD and
// NODE_CHANNEL_SERIALIZATION_MODE from the environment, and it marks the
// descriptor close-on-exec so the process's own children do not inherit it.
// Every call returns the same Channel. It returns an error matching
// ErrNoChannel when there is none, and one naming the mode when the parent
// asked for Node's 'advanced' serialization, which tether does not speak.
func ParentChannel() (*Channel, error) {
	parentChannel.once.Do(func() {
		parentChannel.ch, parentChannel.err = openParentChannel()
	})
	return parentChannel.ch, parentChannel.err
}

func openParentChannel() (*Channel, error) {
	v, ok := os.LookupEnv(nodeChannelFD)
	if !ok {
		return nil, ErrNoChannel
	}
	mode := os.Getenv(nodeChannelMode)
	_ = os.Unsetenv(nodeChannelFD)   // as Node does; cannot fail for a set key
	_ = os.Unsetenv(nodeChannelMode) // likewise
	fd, err := strconv.Atoi(v)
	if err != nil || fd < 0 {
		return nil, fmt.Errorf("tether: %s=%q is not a descriptor number", nodeChannelFD, v)
	}
	if mode != "" && mode != "json" {
		return nil, fmt.Errorf("tether: IPC channel serialization %q is not supported; use 'json' (the default) in the parent", mode)
	}
	return channelFromFD(fd)
}

// Channel is the parent's end of the IPC channel when Cmd.IPC was set, nil
// otherwise (a nil Channel's methods return ErrNoChannel: see Channel). It
// is the caller's to Close (reading it to io.EOF releases it
// too): messages the child sent stay readable after the process closed, and
// then Recv returns io.EOF — on Linux the channel is shut down at close, so
// a descendant that inherited the child's end cannot hold it open
// (elsewhere it can: macOS and the BSDs would discard what was received).
// A channel not yet asked for when the process closes is read to its end
// then (within DrainTimeout of the exit) and its descriptor released:
// asked for later, it still delivers what the child sent, then io.EOF (or
// an error matching ErrDrainTimeout if the child's end was still open).
func (p *Process) Channel() *Channel {
	if p == nil {
		return nil
	}
	if p.channel != nil {
		p.channelTaken.Store(true)
	}
	return p.channel
}
