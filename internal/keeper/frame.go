//go:build linux || darwin

package keeper

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"syscall"

	"golang.org/x/sys/unix"
)

// The keeper's socket is a SOCK_STREAM socketpair (macOS has no
// SOCK_SEQPACKET for AF_UNIX, and one transport for every Unix keeps the
// macOS path the one tested here). Each message is a frame:
//
//	length  4 bytes, big endian: the payload's, the header not counted; at
//	        most maxFrame (64 MiB)
//	nfds    1 byte: how many descriptors were sent with the frame, at most
//	        MaxFiles
//	payload one Msg: its op byte first, then its fields, as the package
//	        documentation says (proto.go, "Payload"; codec.go)
//
// A frame is written with a single sendmsg where it fits, its descriptors
// attached as SCM_RIGHTS. The kernel delivers descriptors with the first
// byte of the data they were sent with (Linux stops a read after them; BSD
// keeps them at the head of their record), never later, so the reader keeps
// a queue of received descriptors and gives each frame its count from the
// head of the queue once the frame is complete.

const (
	frameHeader = 5
	// maxFrame bounds a message: a spawn carries argv and env, which exec
	// bounds far lower (ARG_MAX).
	maxFrame = 64 << 20
)

// AppendFrame appends m as a frame announcing nfds descriptors.
func AppendFrame(b []byte, m Msg, nfds int) ([]byte, error) {
	if m.Spawn != nil {
		b = slices.Grow(b, frameHeader+spawnSize(m.Spawn))
	}
	start := len(b)
	b = append(b, 0, 0, 0, 0, byte(nfds))
	var err error
	if m.Op == OpHello {
		b, err = appendHelloJSON(b, m.Hello) // JSON in every version: see Version
	} else {
		b, err = appendMsg(b, &m)
	}
	if err != nil {
		return nil, err
	}
	n := len(b) - start - frameHeader
	if n > maxFrame {
		return nil, fmt.Errorf("keeper message of %d bytes (at most %d)", n, maxFrame)
	}
	binary.BigEndian.PutUint32(b[start:], uint32(n))
	return b, nil
}

// FrameReader splits what recv returns into frames and their descriptors.
type FrameReader struct {
	// recv reads into p and oob like recvmsg(2), flags included; n == 0
	// with a nil error is the end of the stream.
	recv func(p, oob []byte) (n, oobn, flags int, err error)
	buf  []byte // unparsed bytes: buf[off:]
	off  int
	oob  []byte
	fds  []int // received, not yet given to a frame; -1 for one the kernel dropped
	// cloexec: mark received descriptors close-on-exec (where recvmsg
	// cannot: macOS has no MSG_CMSG_CLOEXEC).
	Cloexec bool
	// lost: a read's descriptors were cut short (MSG_CTRUNC: the receiver
	// out of descriptors, say); the next frame that announces more than
	// arrived gets -1 for each missing one, and its handler fails it alone.
	lost bool
}

func NewFrameReader(recv func(p, oob []byte) (int, int, int, error)) *FrameReader {
	return &FrameReader{
		recv: recv,
		buf:  make([]byte, 0, 64<<10),
		oob:  make([]byte, unix.CmsgSpace(MaxFiles*4)),
	}
}

var ErrFrame = errors.New("malformed keeper frame")

// next returns the next message and the descriptors sent with it, which the
// caller owns. At the end of the stream it returns io.EOF-like ErrEOF; a
// malformed stream is ErrFrame (the peer is not a copy of this code). With
// ErrFrame, a Msg with an Op says that only that frame's payload did not
// read (its Op and ID, nothing else): the next frame can be read.
func (r *FrameReader) Next() (Msg, []int, error) {
	for {
		if m, fds, ok, err := r.parse(); ok || err != nil {
			return m, fds, err
		}
		if err := r.fill(); err != nil {
			return Msg{}, nil, err
		}
	}
}

func (r *FrameReader) parse() (m Msg, fds []int, ok bool, err error) {
	avail := r.buf[r.off:]
	if len(avail) < frameHeader {
		return m, nil, false, nil
	}
	n32, nfds := binary.BigEndian.Uint32(avail), int(avail[4])
	if n32 > maxFrame || nfds > MaxFiles {
		return m, nil, false, ErrFrame
	}
	n := int(n32) // fits: at most maxFrame, even where int is 32 bits
	if len(avail)-frameHeader < n {
		return m, nil, false, nil
	}
	if nfds > len(r.fds) {
		if !r.lost {
			// The descriptors come with the frame's first byte: a
			// complete frame without them was sent without them.
			return m, nil, false, ErrFrame
		}
		for nfds > len(r.fds) {
			r.fds = append(r.fds, -1)
		}
		r.lost = false
	}
	fds = append([]int(nil), r.fds[:nfds]...)
	r.fds = r.fds[nfds:]
	r.off += frameHeader + n
	m, err = decodeMsg(avail[frameHeader : frameHeader+n])
	if err != nil {
		// The peer is a copy of this code: it cannot happen (or it is a
		// keeper of another version, whose hello this version cannot
		// read: the parent's readLoop says so). The frame's op and ID,
		// where they read, go with the error: the stream is still in
		// step, and the keeper can fail that spawn alone.
		CloseFDs(fds)
		op, id := peekOpID(avail[frameHeader : frameHeader+n])
		return Msg{Op: op, ID: id}, nil, false, ErrFrame
	}
	return m, fds, true, nil
}

// buffered reports whether a whole frame is read and waits to be parsed: the
// peer sent more than the frame next returned last.
func (r *FrameReader) Buffered() bool {
	avail := r.buf[r.off:]
	return len(avail) >= frameHeader && len(avail)-frameHeader >= int(binary.BigEndian.Uint32(avail))
}

var ErrEOF = errors.New("end of the keeper's stream")

// fill reads once more, after moving what is left to the buffer's start and
// growing it for the frame being read.
func (r *FrameReader) fill() error {
	const small = 64 << 10
	rest := len(r.buf) - r.off
	need := small
	if rest >= frameHeader {
		need = max(need, frameHeader+int(min(binary.BigEndian.Uint32(r.buf[r.off:]), maxFrame)))
	}
	if cap(r.buf) < need || (cap(r.buf) > 1<<20 && need == small) {
		// Grow for the frame being read, or shrink back once a large
		// spawn has gone through.
		r.buf = append(make([]byte, 0, need), r.buf[r.off:]...)
	} else {
		r.buf = r.buf[:copy(r.buf[:cap(r.buf)], r.buf[r.off:])]
	}
	r.off = 0
	dropped := false
	for {
		n, oobn, flags, err := r.recv(r.buf[rest:cap(r.buf)], r.oob)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if errors.Is(err, syscall.EMSGSIZE) && !dropped {
			// macOS, with no room for the descriptors: it drops them
			// and fails the read, leaving the data queued. As
			// MSG_CTRUNC: the frame gets -1s, and fails alone.
			r.lost, dropped = true, true
			continue
		}
		if flags&unix.MSG_CTRUNC != 0 {
			r.lost = true
		}
		if oobn > 0 {
			fds, perr := parseRights(r.oob[:oobn])
			for _, fd := range fds {
				if r.Cloexec {
					syscall.CloseOnExec(fd)
				}
			}
			r.fds = append(r.fds, fds...)
			if perr != nil {
				return perr
			}
		}
		if err != nil {
			return err
		}
		if n == 0 {
			return ErrEOF
		}
		r.buf = r.buf[:rest+n]
		return nil
	}
}

// close closes descriptors received and never given to a frame.
func (r *FrameReader) Close() {
	CloseFDs(r.fds)
	r.fds = nil
}

func parseRights(oob []byte) ([]int, error) {
	cmsgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return nil, err
	}
	var fds []int
	for _, cm := range cmsgs {
		if f, err := unix.ParseUnixRights(&cm); err == nil {
			fds = append(fds, f...)
		}
	}
	return fds, nil
}

func CloseFDs(fds []int) {
	for _, fd := range fds {
		if fd >= 0 {
			_ = syscall.Close(fd) // best effort: ours, no longer needed
		}
	}
}

// SendFrame writes frame b on the blocking socket fd, its descriptors
// attached to the first byte; a partial write (a signal, a full buffer) is
// finished without them.
func SendFrame(fd int, b []byte, fds []int) error {
	var oob []byte
	if len(fds) > 0 {
		oob = unix.UnixRights(fds...)
	}
	for len(b) > 0 {
		n, err := unix.SendmsgN(fd, b, oob, nil, 0)
		if errors.Is(err, syscall.EINTR) && n <= 0 {
			continue
		}
		if err != nil {
			return err
		}
		b, oob = b[n:], nil
	}
	return nil
}
