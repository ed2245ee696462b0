//go:build unix

package tether

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/tetherproc/tether/internal/testproc"
	"golang.org/x/sys/unix"
)

// sockPair is a sockConn waiting window in poll(2), and its peer's end,
// both closed at the test's end.
func sockPair(t *testing.T, window time.Duration) (*sockConn, *os.File) {
	t.Helper()
	s, peer := newSockPair(t, window)
	t.Cleanup(func() {
		_ = s.Close() // net.ErrClosed when the test closed it
		_ = peer.Close()
	})
	return s, peer
}

// newSockPair is sockPair, the caller to close both.
func newSockPair(t *testing.T, window time.Duration) (*sockConn, *os.File) {
	t.Helper()
	fds, err := socketpairCloexec()
	if err != nil {
		t.Fatal(err)
	}
	s, err := newSockConn(fds[0])
	if err != nil {
		t.Fatal(err)
	}
	s.window = window
	return s, os.NewFile(uintptr(fds[1]), "peer")
}

// slowWaits is how many waits of direction dir went to the netpoller.
func (s *sockConn) slowWaits(dir int) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.dir[dir].slowN
}

// fillSocket writes into s until the socket takes no more (its send buffer
// shrunk to a few KiB, the peer not reading).
func fillSocket(t *testing.T, s *sockConn) {
	t.Helper()
	if err := syscall.SetsockoptInt(s.fd, syscall.SOL_SOCKET, syscall.SO_SNDBUF, 4096); err != nil {
		t.Fatal(err)
	}
	chunk := bytes.Repeat([]byte("x"), 1024)
	for {
		n, err := s.writeNow(chunk)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			return
		}
	}
}

type ioResult struct {
	n   int
	err error
}

// inBackground runs op in a goroutine of its own (it ends when op returns)
// and hands over its result.
func inBackground(op func() (int, error)) <-chan ioResult {
	ch := make(chan ioResult, 1)
	go func() {
		n, err := op()
		ch <- ioResult{n, err}
	}()
	return ch
}

// eventually waits, up to 10 s, until cond holds.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after 10 s", what)
		}
	}
}

// waiting waits until s waits in direction dir: in poll(2) with a window,
// in the netpoller without (a write always waits there).
func waiting(t *testing.T, s *sockConn, dir int, window time.Duration) {
	t.Helper()
	eventually(t, "the wait", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		if dir == dirRead && window > 0 {
			return s.polling
		}
		return s.dir[dir].slow != nil
	})
}

// waitPlaces are where a wait happens: poll(2) (with an hour's window, so
// that nothing else ends it) and the netpoller (no window).
var waitPlaces = []struct {
	name   string
	window time.Duration
}{{"poll", time.Hour}, {"netpoller", 0}}

func within(t *testing.T, what string, ch <-chan ioResult) ioResult {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: still waiting after 10 s", what)
		return ioResult{}
	}
}

// A read that waits longer than the window leaves poll(2), and its
// thread, for the netpoller, and gets the message there.
func TestChannelIdleReadWaitsInTheNetpoller(t *testing.T) {
	t.Parallel()
	s, peer := sockPair(t, time.Millisecond)
	buf := make([]byte, 64)
	got := inBackground(func() (int, error) { return s.Read(buf) })
	eventually(t, "the read in the netpoller", func() bool { return s.slowWaits(dirRead) > 0 })
	if _, err := peer.Write([]byte("{}\n")); err != nil {
		t.Fatal(err)
	}
	if r := within(t, "read", got); r.err != nil || string(buf[:r.n]) != "{}\n" {
		t.Fatalf("read %q, %v", buf[:r.n], r.err)
	}
	if n := s.slowWaits(dirRead); n != 1 {
		t.Fatalf("%d waits in the netpoller, want 1", n)
	}
}

// A deadline set while a read waits ends the wait, in poll(2) (here it
// would otherwise wait an hour) and in the netpoller, and so does one set
// while a write waits (always in the netpoller): this is how RecvContext
// gives up, how the watcher stands aside for Recv, and how Close gives up
// on a peer that does not read.
func TestChannelDeadlineEndsAWait(t *testing.T) {
	t.Parallel()
	for _, w := range waitPlaces {
		t.Run(w.name+"/read", func(t *testing.T) {
			t.Parallel()
			s, peer := sockPair(t, w.window)
			got := inBackground(func() (int, error) { return s.Read(make([]byte, 64)) })
			waiting(t, s, dirRead, w.window)
			_ = s.SetReadDeadline(time.Unix(1, 0))
			if r := within(t, "read", got); !errors.Is(r.err, os.ErrDeadlineExceeded) {
				t.Fatalf("read: %d, %v; want os.ErrDeadlineExceeded", r.n, r.err)
			}
			if w.window == 0 && s.slowWaits(dirRead) != 1 {
				t.Fatalf("%d reads waited in the netpoller, want 1", s.slowWaits(dirRead))
			}
			// The socket goes on: with the deadline cleared, a read gets
			// what the peer sent.
			_ = s.SetReadDeadline(time.Time{})
			if _, err := peer.Write([]byte("{}\n")); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 64)
			if n, err := s.Read(buf); err != nil || string(buf[:n]) != "{}\n" {
				t.Fatalf("read after the deadline was cleared: %q, %v", buf[:n], err)
			}
		})
	}
	t.Run("write", func(t *testing.T) {
		t.Parallel()
		s, _ := sockPair(t, time.Hour)
		fillSocket(t, s)
		got := inBackground(func() (int, error) { return s.Write(make([]byte, 64<<10)) })
		waiting(t, s, dirWrite, 0)
		_ = s.SetWriteDeadline(time.Now())
		if r := within(t, "write", got); !errors.Is(r.err, os.ErrDeadlineExceeded) {
			t.Fatalf("write: %d, %v; want os.ErrDeadlineExceeded", r.n, r.err)
		}
		if n := s.slowWaits(dirWrite); n != 1 {
			t.Fatalf("%d writes waited in the netpoller, want 1", n)
		}
	})
}

// Close ends a read and a write waiting in poll(2) or in the netpoller,
// and waits for them before it closes the descriptor.
func TestChannelCloseEndsWaits(t *testing.T) {
	t.Parallel()
	for _, w := range waitPlaces {
		t.Run(w.name, func(t *testing.T) {
			t.Parallel()
			s, peer := sockPair(t, w.window)
			fillSocket(t, s)
			read := inBackground(func() (int, error) { return s.Read(make([]byte, 64)) })
			write := inBackground(func() (int, error) { return s.Write(make([]byte, 64<<10)) })
			waiting(t, s, dirRead, w.window)
			waiting(t, s, dirWrite, 0)
			closed := inBackground(func() (int, error) { return 0, s.Close() })
			if r := within(t, "Close", closed); r.err != nil {
				t.Fatal(r.err)
			}
			if r := within(t, "read", read); r.err != io.EOF && !errors.Is(r.err, net.ErrClosed) {
				t.Fatalf("read after Close: %d, %v", r.n, r.err)
			}
			if r := within(t, "write", write); r.err == nil {
				t.Fatalf("write after Close: %d, no error", r.n)
			}
			if _, err := s.Read(make([]byte, 1)); !errors.Is(err, net.ErrClosed) {
				t.Fatalf("read after Close returned: %v; want net.ErrClosed", err)
			}
			if err := s.Close(); !errors.Is(err, net.ErrClosed) {
				t.Fatalf("second Close: %v; want net.ErrClosed", err)
			}
			// The peer sees the end.
			if n, err := io.Copy(io.Discard, peer); err != nil {
				t.Fatalf("peer after Close: read %d, %v", n, err)
			}
		})
	}
}

// A Recv that waited past the window still gets its message, and the
// channel's Close still ends a Recv waiting in the netpoller.
func TestChannelRecvAfterTheWindow(t *testing.T) {
	t.Parallel()
	ch, peerFile, err := channelPair()
	if err != nil {
		t.Fatal(err)
	}
	defer peerFile.Close()
	s := ch.conn.(*sockConn)
	s.window = time.Millisecond
	got := make(chan error, 1)
	go func() {
		var v map[string]int
		err := ch.Recv(&v)
		if err == nil && v["a"] != 1 {
			err = errors.New("wrong message")
		}
		got <- err
	}()
	eventually(t, "Recv in the netpoller", func() bool { return s.slowWaits(dirRead) > 0 })
	if _, err := peerFile.Write([]byte(`{"a":1}` + "\n")); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-got:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Recv still waiting 10 s after the message")
	}
	go func() { got <- ch.Recv(nil) }()
	eventually(t, "the second Recv in the netpoller", func() bool { return s.slowWaits(dirRead) > 1 })
	if err := ch.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-got:
		if !errors.Is(err, ErrChannelClosed) {
			t.Fatalf("Recv at Close: %v; want ErrChannelClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not end a Recv waiting in the netpoller")
	}
}

// A deadline set between a read's look at the deadline and its poll(2)
// still ends the wait (the kicker stays readable until the read resets
// it): here the hook sets it in that gap, with an hour's window.
func TestChannelDeadlineBeforePollEndsTheWait(t *testing.T) {
	t.Parallel()
	s, _ := sockPair(t, time.Hour)
	s.beforePoll = func() {
		s.beforePoll = nil // once; only the reader reads it
		_ = s.SetReadDeadline(time.Unix(1, 0))
	}
	got := inBackground(func() (int, error) { return s.Read(make([]byte, 64)) })
	eventually(t, "the read ends", func() bool {
		if s.slowWaits(dirRead) > 0 {
			t.Fatal("the read waited in the netpoller: every poll(2) slot was taken (a slot not given back?)")
		}
		return len(got) > 0
	})
	if r := <-got; !errors.Is(r.err, os.ErrDeadlineExceeded) {
		t.Fatalf("read: %d, %v; want os.ErrDeadlineExceeded", r.n, r.err)
	}
}

// Every way a read ends gives its poll(2) slot back: data, a deadline,
// Close, and the move to the netpoller. Not parallel: it counts the slots
// of the whole program.
func TestChannelReadsGiveTheirPollSlotBack(t *testing.T) {
	base := pollWaits.Load()
	check := func(how string) {
		t.Helper()
		eventually(t, how+": slots back", func() bool { return pollWaits.Load() == base })
	}
	s, peer := sockPair(t, time.Hour)
	got := inBackground(func() (int, error) { return s.Read(make([]byte, 64)) })
	eventually(t, "the read in poll(2)", func() bool { return pollWaits.Load() == base+1 })
	if _, err := peer.Write([]byte("{}\n")); err != nil {
		t.Fatal(err)
	}
	within(t, "read", got)
	check("data")
	got = inBackground(func() (int, error) { return s.Read(make([]byte, 64)) })
	eventually(t, "the read in poll(2)", func() bool { return pollWaits.Load() == base+1 })
	_ = s.SetReadDeadline(time.Unix(1, 0))
	within(t, "read", got)
	check("deadline")
	_ = s.SetReadDeadline(time.Time{})
	got = inBackground(func() (int, error) { return s.Read(make([]byte, 64)) })
	eventually(t, "the read in poll(2)", func() bool { return pollWaits.Load() == base+1 })
	_ = s.Close()
	within(t, "read", got)
	check("Close")
	s, _ = sockPair(t, time.Millisecond)
	got = inBackground(func() (int, error) { return s.Read(make([]byte, 64)) })
	eventually(t, "the read in the netpoller", func() bool { return s.slowWaits(dirRead) > 0 })
	check("netpoller")
	_ = s.Close()
	within(t, "read", got)
}

// No more than maxPollWaits reads of all channels wait in poll(2) at once,
// each holding a thread; the rest wait in the netpoller from the start.
// Not parallel: it takes every slot, which would send the reads of the
// tests about poll(2) to the netpoller.
func TestChannelPollWaitsAreBounded(t *testing.T) {
	const n = maxPollWaits + 8
	socks := make([]*sockConn, n)
	peers := make([]*os.File, n)
	got := make(chan ioResult, n)
	for i := range socks {
		socks[i], peers[i] = sockPair(t, time.Hour)
		go func() {
			k, err := socks[i].Read(make([]byte, 64))
			got <- ioResult{k, err}
		}()
	}
	slow := func() int {
		m := 0
		for _, s := range socks {
			m += s.slowWaits(dirRead)
		}
		return m
	}
	eventually(t, fmt.Sprintf("%d reads in the netpoller", n-maxPollWaits), func() bool {
		if w := pollWaits.Load(); w > maxPollWaits {
			t.Fatalf("%d reads wait in poll(2), more than %d", w, maxPollWaits)
		}
		return slow() >= n-maxPollWaits
	})
	for _, p := range peers {
		if _, err := p.Write([]byte("{}\n")); err != nil {
			t.Fatal(err)
		}
	}
	for range n {
		if r := within(t, "read", got); r.err != nil {
			t.Fatal(r.err)
		}
	}
}

// A Channel dropped without Close releases its descriptors when it is
// collected, as a net.Conn's would: the peer reads its end.
func TestChannelDroppedWithoutCloseIsReleased(t *testing.T) {
	t.Parallel()
	peer := func() *os.File { // the Channel is unreachable after this returns
		ch, peer, err := channelPair()
		if err != nil || ch.missing() {
			t.Fatal(err)
		}
		return peer
	}()
	defer peer.Close()
	ended := make(chan error, 1)
	go func() {
		_, err := peer.Read(make([]byte, 1))
		ended <- err
	}()
	for deadline := time.Now().Add(10 * time.Second); ; {
		runtime.GC()
		select {
		case err := <-ended:
			if err != io.EOF {
				t.Fatalf("peer read %v, want io.EOF", err)
			}
			return
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("the dropped channel's socket is still open after 10 s of GCs")
		}
	}
}

// Every descriptor a socket made for its waits (the kicker, the
// netpoller's duplicates) is closed with it. Not parallel: it counts this
// process's descriptors.
func TestChannelWaitsLeaveNoDescriptors(t *testing.T) {
	before := openDescriptorsInternal(t)
	for _, window := range []time.Duration{time.Hour, 0} {
		s, peer := newSockPair(t, window)
		got := inBackground(func() (int, error) { return s.Read(make([]byte, 64)) })
		waiting(t, s, dirRead, window)
		_ = s.SetReadDeadline(time.Now())
		within(t, "read", got)
		fillSocket(t, s)
		_ = s.SetWriteDeadline(time.Now().Add(10 * time.Millisecond))
		if _, err := s.Write(make([]byte, 64<<10)); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("write: %v, want os.ErrDeadlineExceeded", err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		_ = peer.Close()
	}
	if after := openDescriptorsInternal(t); after != before {
		t.Fatalf("%d descriptors open after, %d before", after, before)
	}
}

func openDescriptorsInternal(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/dev/fd")
	if err != nil {
		t.Skip("no /dev/fd:", err)
	}
	return len(ents)
}

func init() { testproc.Register("sock-emfile", helperSockEMFILE) }

// Out of descriptors, a wait that cannot have a duplicate for the
// netpoller stays in poll(2): the channel goes on rather than fail (before,
// Recv returned "dup: too many open files" and Done closed, as if the peer
// had gone). Run in a helper program, whose descriptor limit it lowers.
func TestChannelWaitsWithoutSpareDescriptors(t *testing.T) {
	t.Parallel()
	path, argv, env := testproc.Command("sock-emfile")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := exec.CommandContext(ctx, path, argv[1:]...)
	c.Args[0], c.Env = argv[0], env
	out, err := c.CombinedOutput()
	if err != nil || !bytes.Equal(out, []byte("ok\n")) {
		t.Fatalf("%v; output:\n%s", err, out)
	}
}

func helperSockEMFILE([]string) {
	fail := func(format string, args ...any) {
		fmt.Printf(format+"\n", args...)
		os.Exit(1)
	}
	time.AfterFunc(30*time.Second, func() { fail("still running after 30 s") })
	fds, err := socketpairCloexec()
	if err != nil {
		fail("socketpair: %v", err)
	}
	s, err := newSockConn(fds[0])
	if err != nil {
		fail("newSockConn: %v", err)
	}
	s.window = time.Millisecond
	peer := fds[1]
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &syscall.Rlimit{Cur: 64, Max: 64}); err != nil {
		fail("setrlimit: %v", err)
	}
	var hold []*os.File
	exhaust := func() {
		for {
			f, err := os.Open(os.DevNull)
			if err != nil {
				return
			}
			hold = append(hold, f)
		}
	}
	release := func() {
		for _, f := range hold {
			_ = f.Close()
		}
		hold = nil
	}
	exhaust()
	fallbacks := func(dir int) int {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.dir[dir].fallbackN
	}
	await := func(what string, cond func() bool) {
		for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				fail("%s: not after 10 s", what)
			}
		}
	}
	// A read past its window gets its message in poll(2).
	buf := make([]byte, 64)
	readOne := func(during func()) {
		got := inBackground(func() (int, error) { return s.Read(buf) })
		during()
		if _, err := syscall.Write(peer, []byte("{}\n")); err != nil {
			fail("peer write: %v", err)
		}
		if r := <-got; r.err != nil || string(buf[:r.n]) != "{}\n" {
			fail("read: %q, %v", buf[:r.n], r.err)
		}
	}
	readOne(func() { await("a read without a duplicate", func() bool { return fallbacks(dirRead) > 0 }) })
	// Once descriptors are free again, the read goes to the netpoller.
	readOne(func() {
		before := fallbacks(dirRead)
		await("the second read without a duplicate", func() bool { return fallbacks(dirRead) > before })
		release()
		await("the read in the netpoller", func() bool { return s.slowWaits(dirRead) > 0 })
	})
	exhaust()
	// A write to a full socket: it waits, then goes on as the peer reads.
	if err := syscall.SetsockoptInt(s.fd, syscall.SOL_SOCKET, syscall.SO_SNDBUF, 4096); err != nil {
		fail("setsockopt: %v", err)
	}
	fill := func() {
		for {
			n, err := s.writeNow(bytes.Repeat([]byte("x"), 1024))
			if err != nil {
				fail("writeNow: %v", err)
			}
			if n == 0 {
				return
			}
		}
	}
	fill()
	wrote := make(chan ioResult, 1)
	go func() {
		n, err := s.Write(make([]byte, 32<<10))
		wrote <- ioResult{n, err}
	}()
	await("a write without a duplicate", func() bool { return fallbacks(dirWrite) > 0 })
	// The peer reads until the write is done, then stops.
	if err := syscall.SetNonblock(peer, true); err != nil {
		fail("peer: %v", err)
	}
	b := make([]byte, 64<<10)
	for done := false; !done; {
		select {
		case r := <-wrote:
			if r.err != nil || r.n != 32<<10 {
				fail("write: %d, %v", r.n, r.err)
			}
			done = true
		default:
			_, _ = syscall.Read(peer, b) // EAGAIN until the writer writes more
			pfd := []unix.PollFd{{Fd: int32(peer), Events: unix.POLLIN}}
			_, _ = unix.Poll(pfd, 1) // paces the loop; either outcome is fine
		}
	}
	// The write deadline still holds there: the peer reads no more.
	fill()
	_ = s.SetWriteDeadline(time.Now().Add(20 * time.Millisecond))
	if _, err := s.Write(make([]byte, 1<<20)); !errors.Is(err, os.ErrDeadlineExceeded) {
		fail("write past the deadline: %v", err)
	}
	release()
	fmt.Println("ok")
}
