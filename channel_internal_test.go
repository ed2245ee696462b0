//go:build unix

package tether

import (
	"bytes"
	"context"
	"errors"
	"io"
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
func channelPairBoth(b *testing.B) (*Channel, *Channel) {
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
