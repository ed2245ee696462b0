//go:build linux || darwin

package keeper

import (
	"encoding/binary"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestServeFailsAnUnreadableSpawnAlone: a spawn whose payload does not
// decode (a bug: the parent is this binary; a bound of the decoder's once
// refused every spawn of tether run's) is answered with an error, and the
// keeper serves the next request; before, the keeper tore down every tree,
// and every start after said "the keeper is gone".
func TestServeFailsAnUnreadableSpawnAlone(t *testing.T) {
	pair, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM, 0) // nothing here forks
	if err != nil {
		t.Fatal(err)
	}
	l := keeperLink{fd: pair[1], asked: new(atomic.Bool)}
	var mu sync.Mutex
	idle := time.AfterFunc(time.Hour, func() {})
	handled := make(chan Op, 4)
	tornDown := make(chan struct{})
	// Owner: this test; ends at the end of the stream, when pair[0] closes.
	go l.serve(&mu, idle, func(in keeperIn) { handled <- in.m.Op }, func() { close(tornDown) })
	defer func() {
		_ = syscall.Close(pair[0])
		<-tornDown
		_ = syscall.Close(pair[1])
	}()
	// A spawn, ID 7, whose payload ends after its ID; then a bye.
	bad := binary.AppendUvarint([]byte{byte(OpSpawn)}, 7)
	frame := append(binary.BigEndian.AppendUint32(nil, uint32(len(bad))), 0)
	frame = append(frame, bad...)
	frame, err = AppendFrame(frame, Msg{Op: OpBye}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := SendFrame(pair[0], frame, nil); err != nil {
		t.Fatal(err)
	}
	// Bounded: a keeper that answers nothing fails the read in 10 s.
	tv := unix.NsecToTimeval((10 * time.Second).Nanoseconds())
	if err := unix.SetsockoptTimeval(pair[0], unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		t.Fatal(err)
	}
	r := NewFrameReader(func(p, oob []byte) (int, int, int, error) {
		n, oobn, flags, _, err := unix.Recvmsg(pair[0], p, oob, 0)
		return n, oobn, flags, err
	})
	defer r.Close()
	m, _, err := r.Next()
	if err != nil || m.Op != OpSpawned || m.ID != 7 || m.Spawned == nil || !strings.Contains(m.Spawned.Err, "malformed spawn request") {
		t.Fatalf("answer to the unreadable spawn: %+v %+v, %v", m, m.Spawned, err)
	}
	select {
	case op := <-handled:
		if op != OpBye {
			t.Fatalf("handled %v after it, want bye", op)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the request after it was not served in 10 s")
	}
	select {
	case <-tornDown:
		t.Fatal("the keeper tore down")
	default:
	}
}
