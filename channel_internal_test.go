//go:build unix

package tether

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"
)

// FuzzChannelFraming feeds arbitrary bytes, in arbitrary pieces, to a
// Channel and checks what Recv yields against a model of the framing: one
// item per complete line (a message, or a *MessageError for one too large or
// not UTF-8), none for Node's internal messages, an io.ErrUnexpectedEOF for a
// cut-off last line, then io.EOF. It must never hang, panic or leak.
func FuzzChannelFraming(f *testing.F) {
	f.Add([]byte("\"a\"\n{\"b\":1}\n"), uint8(3))
	f.Add([]byte("{\"cmd\":\"NODE_HANDLE\"}\n\"x\"\n"), uint8(1))
	f.Add([]byte("\xff\n\"ok\"\n{\"half"), uint8(7))
	f.Add(bytes.Repeat([]byte("y"), 200), uint8(50))
	f.Add([]byte("\n\n\n"), uint8(0))
	f.Fuzz(func(t *testing.T, in []byte, piece uint8) {
		const max = 64
		ch, peer, err := channelPair()
		if err != nil {
			t.Fatal(err)
		}
		ch.SetMaxMessageSize(max)
		drained, wrote := make(chan struct{}), make(chan struct{})
		peerFD := int(peer.Fd())
		defer func() {
			_ = ch.Close()
			<-drained
			<-wrote
			_ = peer.Close()
		}()
		// Drain what the Channel writes back (NACKs), so it never blocks.
		go func() { // ends when the Channel's end closes
			_, _ = io.Copy(io.Discard, peer)
			close(drained)
		}()
		go func() { // ends when in is written
			defer close(wrote)
			step := int(piece) + 1
			for rest := in; len(rest) > 0; {
				n := min(step, len(rest))
				if _, err := peer.Write(rest[:n]); err != nil {
					break
				}
				rest = rest[n:]
			}
			_ = syscall.Shutdown(peerFD, syscall.SHUT_WR) // the Channel reads EOF
		}()

		var want []string // "msg:<line>" or "err"
		lines := bytes.Split(in, []byte("\n"))
		for _, l := range lines[:len(lines)-1] {
			switch {
			case len(l) > max, !utf8.Valid(l):
				want = append(want, "err")
			case isInternal(l):
			default:
				want = append(want, "msg:"+string(l))
			}
		}
		if last := lines[len(lines)-1]; len(last) > max {
			want = append(want, "err", "err")
		} else if len(last) > 0 {
			want = append(want, "err")
		}

		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for i := 0; ; i++ {
			data, err := ch.next(ctx)
			if errors.Is(err, io.EOF) {
				if i != len(want) {
					t.Fatalf("EOF after %d items, want %d: %q", i, len(want), want)
				}
				return
			}
			if i >= len(want) {
				t.Fatalf("item %d (%q, %v) beyond the %d expected", i, data, err, len(want))
			}
			var me *MessageError
			switch {
			case errors.As(err, &me):
				if want[i] != "err" {
					t.Fatalf("item %d: %v, want %q", i, err, want[i])
				}
			case err != nil:
				t.Fatalf("item %d: %v", i, err)
			case want[i] != "msg:"+string(data):
				t.Fatalf("item %d: %q, want %q", i, data, want[i])
			}
		}
	})
}

type benchMsg struct {
	Seq int    `json:"seq"`
	Msg string `json:"msg"`
}

// channelPairBoth is a connected pair of Channels in this process.
func channelPairBoth(b testing.TB) (*Channel, *Channel) {
	a, peer, err := channelPair()
	if err != nil {
		b.Fatal(err)
	}
	defer peer.Close()
	fd, err := syscall.Dup(int(peer.Fd())) // channelFromFD adopts (and closes) its descriptor
	if err != nil {
		b.Fatal(err)
	}
	bc, err := channelFromFD(fd)
	if err != nil {
		b.Fatal(err)
	}
	return a, bc
}

// In-process figures (both ends share the CPUs); bench/ has the
// cross-process comparison with Node.
func BenchmarkChannelOneWay(b *testing.B) {
	a, c := channelPairBoth(b)
	done := make(chan error, 1)
	go func() { // ends after b.N messages or an error
		var m benchMsg
		for i := 0; i < b.N; i++ {
			if err := c.Recv(&m); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	m := benchMsg{Msg: "hello"}
	for i := 0; i < b.N; i++ {
		m.Seq = i
		if err := a.Send(m); err != nil {
			b.Fatal(err)
		}
	}
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	_ = a.Close()
	_ = c.Close()
}

func BenchmarkChannelRoundTrip(b *testing.B) {
	a, c := channelPairBoth(b)
	go func() { // ends at a's Close: Recv returns EOF
		for {
			raw, err := c.RecvRaw()
			if err != nil || c.SendRaw(raw) != nil {
				return
			}
		}
	}()
	m := benchMsg{Msg: "hello"}
	for i := 0; i < b.N; i++ {
		m.Seq = i
		if err := a.Send(m); err != nil {
			b.Fatal(err)
		}
		if err := a.Recv(&m); err != nil {
			b.Fatal(err)
		}
	}
	_ = a.Close()
	_ = c.Close()
}

// A Send blocked on a full queue returns when the peer goes away, rather
// than waiting for room that will never come.
func TestChannelSendUnblocksAtPeerEnd(t *testing.T) {
	ch, peer, err := channelPair()
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	big := string(bytes.Repeat([]byte("x"), 64<<10))
	sent := make(chan error, 1)
	go func() { // ends when a Send fails: the peer is gone
		for {
			if err := ch.Send(big); err != nil {
				sent <- err
				return
			}
		}
	}()
	// Let the queue and the socket fill, then go away. Recv sees the EOF
	// (which is what makes the Channel notice) and the Send must return.
	time.Sleep(100 * time.Millisecond) // not a synchronisation: the test holds either way
	_ = peer.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := ch.next(ctx); !errors.Is(err, io.EOF) {
		t.Fatalf("Recv after the peer closed: %v", err)
	}
	select {
	case err := <-sent:
		if !errors.Is(err, syscall.EPIPE) {
			t.Fatalf("Send: %v, want EPIPE", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Send still blocked 10 s after the peer's end")
	}
}

// writeCounts returns how many writes Send made itself and how many the
// writer goroutine made.
func (c *Channel) writeCounts() (direct, writer int) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.directWrites, c.writerWrites
}

// seqMsg is what the ordering tests send: who sent it and its number.
type seqMsg struct {
	From int `json:"from"`
	Seq  int `json:"seq"`
}

// A round trip's reply is written by Send itself, never handed to the
// writer goroutine, however fast the exchange: the hand-off (and the
// thread it wakes) used to cost go↔go round trips half their rate.
func TestChannelReplyWritesDirectly(t *testing.T) {
	t.Parallel()
	a, b := channelPairBoth(t)
	defer a.Close()
	defer b.Close()
	neverQuiet(a)
	neverQuiet(b)
	go func() { // ends at a's Close: Recv returns EOF
		for {
			raw, err := b.RecvRaw()
			if err != nil {
				return
			}
			if b.SendRaw(raw) != nil {
				return
			}
		}
	}()
	const n = 2000
	for i := range n {
		if err := a.Send(seqMsg{Seq: i}); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			// The first message answers nothing: the writer takes it. Let
			// it end, or a reply could find it still running, and queue.
			if err := a.Flush(); err != nil {
				t.Fatal(err)
			}
		}
		var m seqMsg
		if err := recvBoundedInternal(a, &m); err != nil {
			t.Fatal(err)
		}
		if m.Seq != i {
			t.Fatalf("echo %d, want %d", m.Seq, i)
		}
	}
	if d, w := a.writeCounts(); d != n-1 || w != 1 {
		t.Errorf("requester: %d direct writes and %d by the writer, want %d and 1", d, w, n-1)
	}
	if d, w := b.writeCounts(); d != n || w != 0 {
		t.Errorf("echoer: %d direct writes and %d by the writer, want %d and 0", d, w, n)
	}
}

// neverQuiet makes c's Sends see the channel busy, whatever the time since
// the last one, so that only the reply rule can make one direct.
func neverQuiet(c *Channel) {
	c.wmu.Lock()
	c.quietAfter = math.MaxInt64 // now.Sub(lastSend) saturates there
	c.wmu.Unlock()
}

// receiveInOrder receives n messages on c, in a goroutine of its own that
// ends after them or at the first error, and checks that each sender's come
// in order; reply, if not nil, may answer each one. The channel gets nil or
// the first error.
func receiveInOrder(c *Channel, senders, n int, reply func(seqMsg) error) <-chan error {
	got := make(chan error, 1)
	go func() {
		next := make([]int, senders)
		var m seqMsg
		for range n {
			if err := recvBoundedInternal(c, &m); err != nil {
				got <- err
				return
			}
			if m.From < 0 || m.From >= senders || m.Seq != next[m.From] {
				got <- fmt.Errorf("message %+v, want seq %d", m, next[max(0, min(m.From, senders-1))])
				return
			}
			next[m.From]++
			if reply != nil {
				if err := reply(m); err != nil {
					got <- err
					return
				}
			}
		}
		got <- nil
	}()
	return got
}

func recvBoundedInternal(c *Channel, v any) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return c.RecvContext(ctx, v)
}

// A stream of Sends with nothing received in between is batched by the
// writer: the direct path is for lone messages only, or one-way throughput
// falls to one write(2) per message.
func TestChannelStreamIsBatched(t *testing.T) {
	t.Parallel()
	a, b := channelPairBoth(t)
	defer a.Close()
	defer b.Close()
	const n = 20000
	got := receiveInOrder(b, 1, n, nil)
	// A pause (the sender preempted) would rightly let a message through
	// directly: rule that out to test the decision alone.
	neverQuiet(a)
	for i := range n {
		if err := a.Send(seqMsg{Seq: i}); err != nil {
			t.Fatal(err)
		}
	}
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	if d, w := a.writeCounts(); d != 0 || w > n/2 {
		t.Errorf("%d messages took %d direct writes and %d by the writer, want 0 and batches", n, d, w)
	}
}

// Sends written directly, queued behind a running writer, and replies, in
// any mix, arrive in the order they returned.
func TestChannelSendPathsKeepOrder(t *testing.T) {
	t.Parallel()
	a, b := channelPairBoth(t)
	defer a.Close()
	defer b.Close()
	const n = 5000
	got := receiveInOrder(b, 1, n, func(m seqMsg) error {
		if m.Seq%7 == 0 { // ask for the next one as a reply
			return b.Send(seqMsg{Seq: m.Seq})
		}
		return nil
	})
	for i := range n {
		if err := a.Send(seqMsg{Seq: i}); err != nil {
			t.Fatal(err)
		}
		switch {
		case i%7 == 0: // the next Send is a reply: direct
			var m seqMsg
			if err := recvBoundedInternal(a, &m); err != nil || m.Seq != i {
				t.Fatalf("ack %d: %v, want %d", m.Seq, err, i)
			}
		case i%13 == 0: // a quiet spell: the next Send is direct
			time.Sleep(2 * directIdle) // shapes the traffic; not a synchronisation
		}
	}
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	if d, w := a.writeCounts(); d == 0 || w == 0 {
		t.Fatalf("%d direct writes and %d by the writer: the test did not mix the two", d, w)
	}
}

// Many goroutines sending at once: every message arrives whole, each
// sender's in its order, whichever path wrote it.
func TestChannelConcurrentSends(t *testing.T) {
	t.Parallel()
	a, b := channelPairBoth(t)
	defer a.Close()
	defer b.Close()
	const senders, each = 8, 1000
	got := receiveInOrder(b, senders, senders*each, nil)
	var wg sync.WaitGroup
	errs := make(chan error, senders)
	for s := range senders {
		wg.Add(1)
		go func() { // ends after its messages
			defer wg.Done()
			for i := range each {
				if err := a.Send(seqMsg{From: s, Seq: i}); err != nil {
					errs <- err
					return
				}
				switch {
				case i%100 == 99:
					time.Sleep(2 * directIdle) // some Sends find the channel quiet; not a synchronisation
				case i%250 == 0:
					if err := a.Flush(); err != nil {
						errs <- err
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	if d, w := a.writeCounts(); d == 0 || w == 0 {
		t.Fatalf("%d direct writes and %d by the writer: the test did not mix the two", d, w)
	}
}

// smallSendBuffer shrinks the kernel's send buffer of c's socket so that it
// fills after a few KiB the peer has not read.
func smallSendBuffer(t *testing.T, c *Channel) {
	if err := syscall.SetsockoptInt(c.conn.(*sockConn).fd, syscall.SOL_SOCKET, syscall.SO_SNDBUF, 4096); err != nil {
		t.Fatal(err)
	}
}

// readLines reads n lines from r (a peer that is not a Channel).
func readLines(r io.Reader, n int) ([]string, error) {
	br := bufio.NewReader(r)
	var lines []string
	for range n {
		l, err := br.ReadString('\n')
		if err != nil {
			return lines, err
		}
		lines = append(lines, strings.TrimSuffix(l, "\n"))
	}
	return lines, nil
}

// When the socket is full (the peer is behind), Send's own write takes what
// fits and leaves the rest queued, ahead of what other Sends queued during
// that write; Send returns without waiting for the peer.
func TestChannelFullSocketFallsBackToQueue(t *testing.T) {
	t.Parallel()
	ch, peer, err := channelPair()
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	defer ch.Close()
	smallSendBuffer(t, ch)
	big := strings.Repeat("x", 100<<10) // far more than the socket takes
	second := make(chan error, 1)
	ch.directHook = func() {
		ch.directHook = nil // only the first direct write: Send holds no lock here
		// Another Send while the direct write is under way queues behind
		// it and returns at once.
		second <- ch.Send("second")
	}
	first := make(chan error, 1)
	go func() { first <- ch.Send(big) }() // ends when Send returns
	select {
	case err := <-first:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Send blocked on a full socket with room in the queue")
	}
	if err := <-second; err != nil {
		t.Fatal(err)
	}
	ch.wmu.Lock()
	queued := len(ch.pending)
	busy := ch.writer || ch.writing
	ch.wmu.Unlock()
	if queued == 0 && !busy {
		t.Fatal("the socket took everything: the test did not fill it")
	}
	third := make(chan error, 1)
	go func() { third <- ch.Send("third") }() // queued behind the rest
	lines, err := readLines(peer, 3)
	if err != nil {
		t.Fatalf("after %d lines: %v", len(lines), err)
	}
	if want := []string{`"` + big + `"`, `"second"`, `"third"`}; !reflect.DeepEqual(lines, want) {
		for i := range lines {
			lines[i] = prefixString(lines[i])
		}
		t.Fatalf("peer read %q", lines)
	}
	if err := <-third; err != nil {
		t.Fatal(err)
	}
	if err := ch.Flush(); err != nil {
		t.Fatal(err)
	}
}

func prefixString(s string) string {
	if len(s) > 20 {
		return fmt.Sprintf("%s… (%d bytes)", s[:20], len(s))
	}
	return s
}

// A peer that does not read holds Send back: the socket fills, then the
// queue up to its bound, then Send blocks, whichever path each Send took;
// when the peer reads, everything arrives in order.
func TestChannelBackpressure(t *testing.T) {
	t.Parallel()
	ch, peer, err := channelPair()
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	defer ch.Close()
	smallSendBuffer(t, ch)
	msg := strings.Repeat("y", 1000)
	const n = 2 << 20 / 1000 // 2 MiB: more than the socket and the queue hold
	sent := make(chan error, 1)
	go func() { // ends when every Send returned
		for i := range n {
			if err := ch.Send(seqMsg{Seq: i}); err != nil {
				sent <- err
				return
			}
			if err := ch.SendRaw(json.RawMessage(`"` + msg + `"`)); err != nil {
				sent <- err
				return
			}
		}
		sent <- nil
	}()
	// Wait (bounded) for the queue to reach its bound.
	deadline := time.Now().Add(10 * time.Second)
	for {
		ch.wmu.Lock()
		queued := len(ch.pending)
		ch.wmu.Unlock()
		if queued >= maxPending {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("queue at %d bytes after 10 s", queued)
		}
		time.Sleep(time.Millisecond) // waiting for the sender; bounded above
	}
	select {
	case err := <-sent:
		t.Fatalf("every Send returned (%v) though the peer read nothing", err)
	default:
	}
	ch.wmu.Lock()
	queued := len(ch.pending)
	ch.wmu.Unlock()
	if queued > maxPending+len(msg)+64 {
		t.Fatalf("queue at %d bytes, over the %d bound", queued, maxPending)
	}
	lines, err := readLines(peer, 2*n)
	if err != nil {
		t.Fatalf("after %d lines: %v", len(lines), err)
	}
	for i := range n {
		if want := fmt.Sprintf(`{"from":0,"seq":%d}`, i); lines[2*i] != want || lines[2*i+1] != `"`+msg+`"` {
			t.Fatalf("line %d: %q, want %q", 2*i, prefixString(lines[2*i]), want)
		}
	}
	if err := <-sent; err != nil {
		t.Fatal(err)
	}
}

// echoPeer echoes every message b receives until it ends.
func echoPeer(b *Channel) {
	go func() { // ends at the other end's Close: Recv returns EOF
		for {
			raw, err := b.RecvRaw()
			if err != nil || b.SendRaw(raw) != nil {
				return
			}
		}
	}()
}

func (c *Channel) watcherReads() int {
	c.wkmu.Lock()
	defer c.wkmu.Unlock()
	return c.watchGot
}

// With Done watched (as Context does), Recv still reads the socket itself:
// the watcher stands aside while Recv is in use instead of reading each
// message and handing it over.
func TestChannelWatcherStandsAsideForRecv(t *testing.T) {
	t.Parallel()
	a, b := channelPairBoth(t)
	defer a.Close()
	defer b.Close()
	echoPeer(b)
	_ = a.Done()
	const n = 2000
	for i := range n {
		if err := a.Send(seqMsg{Seq: i}); err != nil {
			t.Fatal(err)
		}
		var m seqMsg
		if err := recvBoundedInternal(a, &m); err != nil || m.Seq != i {
			t.Fatalf("echo %d: %v, want %d", m.Seq, err, i)
		}
	}
	// The first echo may come while the watcher reads (no Recv yet), and
	// a pause of watchIdle between two Recvs (the machine busy) lets it
	// read again; one read per message is the failure.
	if got := a.watcherReads(); got > n/100 {
		t.Fatalf("the watcher read %d of %d messages", got, n)
	}
	select {
	case <-a.Done():
		t.Fatal("Done before the end")
	default:
	}
}

// A Recv that comes while the watcher waits in a read takes the read over:
// the message that follows is read by Recv itself, and none is lost.
func TestChannelRecvTakesOverFromWatcher(t *testing.T) {
	t.Parallel()
	a, b := channelPairBoth(t)
	defer a.Close()
	defer b.Close()
	_ = a.Done()
	// Wait (bounded) until the watcher is in its read.
	deadline := time.Now().Add(10 * time.Second)
	for {
		a.wkmu.Lock()
		reading := a.watchKick != nil
		a.wkmu.Unlock()
		if reading {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the watcher did not start reading in 10 s")
		}
		time.Sleep(time.Millisecond) // waiting for the watcher; bounded above
	}
	got := make(chan error, 1)
	go func() { // ends when the Recv returns
		var m seqMsg
		err := recvBoundedInternal(a, &m)
		if err == nil && m.Seq != 7 {
			err = fmt.Errorf("got %+v", m)
		}
		got <- err
	}()
	// Wait (bounded) until the Recv has stopped the watcher's read, and
	// the read has returned.
	for {
		a.wkmu.Lock()
		ended := a.watchEnds
		a.wkmu.Unlock()
		if ended > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the Recv did not stop the watcher's read in 10 s")
		}
		time.Sleep(time.Millisecond) // as above
	}
	if err := b.Send(seqMsg{Seq: 7}); err != nil {
		t.Fatal(err)
	}
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	if n := a.watcherReads(); n != 0 {
		t.Fatalf("the watcher read %d messages after a Recv took over", n)
	}
}

// When Recvs stop, the watcher reads again: the peer's end is still
// noticed by Done without another Recv.
func TestChannelDoneAfterRecvsStop(t *testing.T) {
	t.Parallel()
	a, b := channelPairBoth(t)
	defer a.Close()
	echoPeer(b)
	done := a.Done()
	for i := range 100 {
		if err := a.Send(seqMsg{Seq: i}); err != nil {
			t.Fatal(err)
		}
		var m seqMsg
		if err := recvBoundedInternal(a, &m); err != nil || m.Seq != i {
			t.Fatalf("echo %d: %v, want %d", m.Seq, err, i)
		}
	}
	_ = b.Close()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Done not closed 10 s after the peer's end, with no Recv")
	}
	if _, err := a.next(context.Background()); !errors.Is(err, io.EOF) {
		t.Fatalf("Recv after the end: %v, want EOF", err)
	}
}

// The messages of one read are cut from one copy of it (fill): each comes
// out whole and in order across many reads, and appending to one leaves the
// next alone.
func TestChannelMessagesOfOneReadStayApart(t *testing.T) {
	ch, peer, err := channelPair()
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	defer ch.Close()
	var want []string
	for r := range 3 { // three writes, read in turn
		var b []byte
		for i := range 100 {
			m := fmt.Sprintf(`{"read":%d,"i":%d}`, r, i)
			want = append(want, m)
			b = append(append(b, m...), '\n')
		}
		if _, err := peer.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	var got [][]byte
	for range want {
		data, err := ch.next(context.Background()) // as Recv and RecvRaw take it
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, data)
		_ = append(data, "garbage"...) // must not reach the next message
	}
	for i := range want {
		if string(got[i]) != want[i] {
			t.Fatalf("message %d: %q, want %q", i, got[i], want[i])
		}
	}
}
