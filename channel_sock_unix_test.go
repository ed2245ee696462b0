//go:build unix

package tether

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
	"time"
)

// sockPair is a sockConn waiting window in poll(2), and its peer's end.
func sockPair(t *testing.T, window time.Duration) (*sockConn, *os.File) {
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
	peer := os.NewFile(uintptr(fds[1]), "peer")
	t.Cleanup(func() {
		_ = s.Close() // net.ErrClosed when the test closed it
		_ = peer.Close()
	})
	return s, peer
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
	got := make(chan ioResult, 1)
	buf := make([]byte, 64)
	go func() {
		n, err := s.Read(buf)
		got <- ioResult{n, err}
	}()
	for deadline := time.Now().Add(10 * time.Second); s.slowWaits(dirRead) == 0; {
		if time.Now().After(deadline) {
			t.Fatal("the read is still in poll(2) after 10 s")
		}
		time.Sleep(time.Millisecond)
	}
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
	for _, w := range []struct {
		name   string
		window time.Duration
	}{{"poll", time.Hour}, {"netpoller", 0}} {
		t.Run(w.name+"/read", func(t *testing.T) {
			t.Parallel()
			s, _ := sockPair(t, w.window)
			got := make(chan ioResult, 1)
			go func() {
				n, err := s.Read(make([]byte, 64))
				got <- ioResult{n, err}
			}()
			time.Sleep(10 * time.Millisecond) // not needed to pass: lets the read wait first
			_ = s.SetReadDeadline(time.Unix(1, 0))
			if r := within(t, "read", got); !errors.Is(r.err, os.ErrDeadlineExceeded) {
				t.Fatalf("read: %d, %v; want os.ErrDeadlineExceeded", r.n, r.err)
			}
			// The channel goes on: a cleared deadline, then a read that does not wait.
			_ = s.SetReadDeadline(time.Time{})
		})
	}
	t.Run("write", func(t *testing.T) {
		t.Parallel()
		s, _ := sockPair(t, time.Hour)
		fillSocket(t, s)
		got := make(chan ioResult, 1)
		go func() {
			n, err := s.Write(make([]byte, 64<<10))
			got <- ioResult{n, err}
		}()
		time.Sleep(10 * time.Millisecond) // as above
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
	for _, w := range []struct {
		name   string
		window time.Duration
	}{{"poll", time.Hour}, {"netpoller", 0}} {
		t.Run(w.name, func(t *testing.T) {
			t.Parallel()
			s, peer := sockPair(t, w.window)
			fillSocket(t, s)
			read, write := make(chan ioResult, 1), make(chan ioResult, 1)
			go func() {
				n, err := s.Read(make([]byte, 64))
				read <- ioResult{n, err}
			}()
			go func() {
				n, err := s.Write(make([]byte, 64<<10))
				write <- ioResult{n, err}
			}()
			time.Sleep(10 * time.Millisecond) // as above
			closed := make(chan ioResult, 1)
			go func() { closed <- ioResult{err: s.Close()} }()
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
	for deadline := time.Now().Add(10 * time.Second); s.slowWaits(dirRead) == 0; {
		if time.Now().After(deadline) {
			t.Fatal("Recv is still in poll(2) after 10 s")
		}
		time.Sleep(time.Millisecond)
	}
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
	for deadline := time.Now().Add(10 * time.Second); s.slowWaits(dirRead) < 2; {
		if time.Now().After(deadline) {
			t.Fatal("the second Recv is still in poll(2) after 10 s")
		}
		time.Sleep(time.Millisecond)
	}
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
