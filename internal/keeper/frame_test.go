//go:build linux || darwin

package keeper

import (
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// TestFrameSplitReads feeds a stream of frames to the reader in pieces of
// every size, the descriptors arriving with each frame's first byte as the
// kernel delivers them, and checks every message and descriptor count.
func TestFrameSplitReads(t *testing.T) {
	type sent struct {
		m    Msg
		nfds int
	}
	var msgs []sent
	var stream []byte
	firstByte := map[int]int{} // offset in stream -> descriptors sent with it
	for i := range 200 {
		m := Msg{Op: OpSpawn, ID: uint64(i), Spawned: &SpawnResult{Err: strings.Repeat("x", i*37%5000)}}
		nfds := i % 4
		firstByte[len(stream)] = nfds
		var err error
		if stream, err = AppendFrame(stream, m, nfds); err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, sent{m, nfds})
	}
	for _, maxChunk := range []int{1, 2, 5, 7, 100, 4096, 1 << 20} {
		rng := rand.New(rand.NewPCG(1, uint64(maxChunk)))
		pos := 0
		fake := 1000 // fake descriptor numbers: never closed by the reader on this path
		r := NewFrameReader(func(p, oob []byte) (int, int, int, error) {
			if pos == len(stream) {
				return 0, 0, 0, nil
			}
			n := min(len(p), len(stream)-pos, 1+rng.IntN(maxChunk))
			// A read that reaches a frame's first byte with descriptors
			// stops right after it, as Linux does.
			oobn := 0
			for off := pos; off < pos+n; off++ {
				if k := firstByte[off]; k > 0 {
					fds := make([]int, k)
					for j := range fds {
						fds[j] = fake
						fake++
					}
					oobn = copy(oob, unix.UnixRights(fds...))
					n = off - pos + 1
					break
				}
			}
			copy(p, stream[pos:pos+n])
			pos += n
			return n, oobn, 0, nil
		})
		next := 1000
		for i, want := range msgs {
			m, fds, err := r.Next()
			if err != nil {
				t.Fatalf("chunks ≤%d: frame %d: %v", maxChunk, i, err)
			}
			if m.ID != want.m.ID || payload(m) != payload(want.m) || len(fds) != want.nfds {
				t.Fatalf("chunks ≤%d: frame %d: got id %d, %d bytes, %d fds; want id %d, %d bytes, %d fds",
					maxChunk, i, m.ID, len(payload(m)), len(fds), want.m.ID, len(payload(want.m)), want.nfds)
			}
			for _, fd := range fds {
				if fd != next {
					t.Fatalf("chunks ≤%d: frame %d: descriptor %d, want %d", maxChunk, i, fd, next)
				}
				next++
			}
		}
		if _, _, err := r.Next(); err != ErrEOF {
			t.Fatalf("chunks ≤%d: after the last frame: %v, want ErrEOF", maxChunk, err)
		}
	}
}

// TestFrameMalformed: a header over the bounds, a frame complete without
// the descriptors it announces, or a payload that does not decode (JSON, as
// versions 1 and 2 sent) ends the stream with ErrFrame.
func TestFrameMalformed(t *testing.T) {
	for name, b := range map[string][]byte{
		"too long":          {0xff, 0xff, 0xff, 0xff, 0},
		"too many fds":      {0, 0, 0, 2, MaxFiles + 1, '{', '}'},
		"fds never sent":    {0, 0, 0, 2, 3, '{', '}'},
		"fds never sent, 1": {0, 0, 0, 0, 1},
		"undecodable":       {0, 0, 0, 2, 0, '{', '{'},
	} {
		done := false
		r := NewFrameReader(func(p, oob []byte) (int, int, int, error) {
			if done {
				return 0, 0, 0, nil
			}
			done = true
			return copy(p, b), 0, 0, nil
		})
		if _, _, err := r.Next(); err != ErrFrame {
			t.Errorf("%s: %v, want ErrFrame", name, err)
		}
	}
}

// TestFrameTruncatedRights: when the kernel could not pass every descriptor
// (MSG_CTRUNC), the frame still comes, with -1 for each one missing, and the
// frames after it are unaffected.
func TestFrameTruncatedRights(t *testing.T) {
	var stream []byte
	ends := []int{0}
	for i := range 3 {
		var err error
		if stream, err = AppendFrame(stream, Msg{Op: OpSpawn, ID: uint64(i)}, 3); err != nil {
			t.Fatal(err)
		}
		ends = append(ends, len(stream))
	}
	read := 0
	r := NewFrameReader(func(p, oob []byte) (int, int, int, error) {
		if read == 3 {
			return 0, 0, 0, nil
		}
		i := read
		read++
		n := copy(p, stream[ends[i]:ends[i+1]])
		if i == 1 {
			// One of three made it.
			return n, copy(oob, unix.UnixRights(2000)), unix.MSG_CTRUNC, nil
		}
		return n, copy(oob, unix.UnixRights(1000+10*i, 1001+10*i, 1002+10*i)), 0, nil
	})
	want := [][]int{{1000, 1001, 1002}, {2000, -1, -1}, {1020, 1021, 1022}}
	for i, w := range want {
		m, fds, err := r.Next()
		if err != nil || m.ID != uint64(i) || !slices.Equal(fds, w) {
			t.Fatalf("frame %d: id %d, fds %v, %v; want fds %v", i, m.ID, fds, err, w)
		}
	}
}

// TestFrameDroppedRights: macOS fails the read with EMSGSIZE when the
// receiver has no room for the descriptors, and drops them; the data comes
// with the next read, and the frame gets -1s.
func TestFrameDroppedRights(t *testing.T) {
	stream, err := AppendFrame(nil, Msg{Op: OpSpawn, ID: 7}, 3)
	if err != nil {
		t.Fatal(err)
	}
	reads := 0
	r := NewFrameReader(func(p, oob []byte) (int, int, int, error) {
		reads++
		switch reads {
		case 1:
			return 0, 0, 0, syscall.EMSGSIZE
		case 2:
			return copy(p, stream), 0, 0, nil
		}
		return 0, 0, 0, nil
	})
	m, fds, err := r.Next()
	if err != nil || m.ID != 7 || !slices.Equal(fds, []int{-1, -1, -1}) {
		t.Fatalf("id %d, fds %v, %v; want 7 and three -1s", m.ID, fds, err)
	}
}

// TestFrameBufferShrinks: after large frames the reader's buffer goes back
// to its small size, and small and large frames in any split parse alike.
func TestFrameBufferShrinks(t *testing.T) {
	var stream []byte
	sizes := []int{10, 3 << 20, 20, 2 << 20, 30, 40}
	for i, n := range sizes {
		var err error
		if stream, err = AppendFrame(stream, Msg{Op: OpSpawn, ID: uint64(i), Spawned: &SpawnResult{Err: strings.Repeat("z", n)}}, 0); err != nil {
			t.Fatal(err)
		}
	}
	for _, chunk := range []int{16 << 10, 4 << 20} {
		pos := 0
		r := NewFrameReader(func(p, oob []byte) (int, int, int, error) {
			n := copy(p, stream[pos:min(len(stream), pos+chunk)])
			pos += n
			return n, 0, 0, nil
		})
		for i, n := range sizes {
			m, _, err := r.Next()
			if err != nil || m.ID != uint64(i) || len(payload(m)) != n {
				t.Fatalf("chunks of %d: frame %d: id %d, %d bytes, %v", chunk, i, m.ID, len(payload(m)), err)
			}
		}
		if c := cap(r.buf); c > 1<<20 {
			t.Errorf("chunks of %d: the buffer is %d bytes after the large frames", chunk, c)
		}
	}
}

// TestFrameSocket sends frames with descriptors over a real stream
// socketpair, from a writer that interleaves frames with and without them,
// and checks each received descriptor is the file that was sent.
func TestFrameSocket(t *testing.T) {
	pair, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM, 0) // nothing here forks
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(pair[1])
	var files []*os.File
	for range 3 {
		f, err := os.CreateTemp(t.TempDir(), "fd")
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		files = append(files, f)
	}
	const n = 500
	raw := make([]int, len(files))
	for j, f := range files {
		raw[j] = int(f.Fd())
	}
	written := make(chan struct{})
	defer func() {
		// Before the files close; a writer still sending (the test
		// failed early) gets EPIPE.
		_ = syscall.Shutdown(pair[1], syscall.SHUT_RDWR)
		<-written
	}()
	// Owner: this test; ends after the last frame, or at the first error.
	go func() {
		defer close(written)
		defer syscall.Close(pair[0])
		for i := range n {
			fds := raw[:i%(len(files)+1)]
			b, err := AppendFrame(nil, Msg{Op: OpSpawn, ID: uint64(i), Spawned: &SpawnResult{Err: strings.Repeat("y", i*101%70000)}}, len(fds))
			if err == nil {
				err = SendFrame(pair[0], b, fds)
			}
			if err != nil {
				t.Error(err)
				return
			}
		}
	}()
	r := NewFrameReader(func(p, oob []byte) (int, int, int, error) {
		n, oobn, flags, _, err := unix.Recvmsg(pair[1], p, oob, 0)
		return n, oobn, flags, err
	})
	defer r.Close()
	for i := range n {
		m, fds, err := r.Next()
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if m.ID != uint64(i) || len(payload(m)) != i*101%70000 || len(fds) != i%(len(files)+1) {
			t.Fatalf("frame %d: id %d, %d bytes, %d fds", i, m.ID, len(payload(m)), len(fds))
		}
		for j, fd := range fds {
			var got, want unix.Stat_t
			if err := unix.Fstat(fd, &got); err != nil {
				t.Fatal(err)
			}
			if err := unix.Fstat(int(files[j].Fd()), &want); err != nil {
				t.Fatal(err)
			}
			if got.Ino != want.Ino {
				t.Fatalf("frame %d: descriptor %d is not file %d", i, j, j)
			}
		}
		CloseFDs(fds)
	}
	if _, _, err := r.Next(); err != ErrEOF {
		t.Fatalf("after the last frame: %v, want ErrEOF", err)
	}
}

// payload is the text a test frame carries (in a spawned answer's Err).
func payload(m Msg) string {
	if m.Spawned == nil {
		return ""
	}
	return m.Spawned.Err
}
