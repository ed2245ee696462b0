package tether

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// libuv's IPC frames, which carry Node's channel on Windows (libuv's
// src/win/pipe.c wraps every write on an IPC pipe in one): a 16-byte
// header, then data_length bytes of the stream.
//
//	uint32 flags         // uvFrameHasData, uvFrameHasSocketXfer, ...
//	uint32 reserved1     // ignored
//	uint32 data_length   // 0 if there is no data
//	uint32 reserved2     // 0
//
// A frame that carries a socket (Node's handle passing, which tether does
// not do) has a uvSocketXferLen record between header and data. Used by
// channel_windows.go; kept portable so its tests run everywhere.
const (
	uvFrameHeaderLen     = 16
	uvFrameHasData       = 0x01
	uvFrameHasSocketXfer = 0x02
	uvFrameValidFlags    = 0x07
	uvSocketXferLen      = 632 // WSAPROTOCOL_INFOW and an error code
)

// errBadFrame is a frame header libuv would not have written.
var errBadFrame = errors.New("tether: IPC pipe: not a libuv IPC frame")

// uvFramer reads and writes a stream inside libuv's frames. The read side
// and the write side each keep their own state: one reader and one writer
// may use it at once.
type uvFramer struct {
	// Read state: the header being read, and what is left of the frame.
	hdr  [uvFrameHeaderLen]byte
	hdrN int
	data uint32 // bytes of the current frame's data not yet read
	skip int    // bytes of a socket transfer record not yet skipped

	wbuf []byte // write's frame, reused
}

// read reads the stream inside the frames from r: at most the rest of the
// current frame's data. A read that r cut short with an error (a deadline)
// resumes where it stopped.
func (u *uvFramer) read(r io.Reader, p []byte) (int, error) {
	for {
		if u.skip > 0 { // the transfer record comes before the data
			var junk [uvSocketXferLen]byte
			n, err := r.Read(junk[:u.skip])
			u.skip -= n
			if err != nil {
				return 0, eofInside(err, true)
			}
			continue
		}
		if u.data > 0 && len(p) > 0 {
			n, err := r.Read(p[:min(uint32(len(p)), u.data)])
			u.data -= uint32(n)
			return n, eofInside(err, true)
		}
		if len(p) == 0 {
			return 0, nil
		}
		n, err := r.Read(u.hdr[u.hdrN:])
		u.hdrN += n
		if err != nil {
			return 0, eofInside(err, u.hdrN > 0)
		}
		if u.hdrN < uvFrameHeaderLen {
			continue
		}
		u.hdrN = 0
		flags := binary.LittleEndian.Uint32(u.hdr[0:])
		size := binary.LittleEndian.Uint32(u.hdr[8:])
		if flags&^uvFrameValidFlags != 0 || (flags&uvFrameHasData == 0 && size != 0) {
			return 0, fmt.Errorf("%w (flags %#x, %d bytes)", errBadFrame, flags, size)
		}
		if flags&uvFrameHasSocketXfer != 0 {
			// A handle we did not ask for: Windows already duplicated it
			// into this process, and it stays unused.
			u.skip = uvSocketXferLen
		}
		u.data = size
	}
}

// eofInside turns the peer's end inside a frame into io.ErrUnexpectedEOF.
func eofInside(err error, inside bool) error {
	if err == io.EOF && inside {
		return io.ErrUnexpectedEOF
	}
	return err
}

// write writes b to w as one frame.
func (u *uvFramer) write(w io.Writer, b []byte) (int, error) {
	if uint64(len(b)) > 1<<31 {
		return 0, fmt.Errorf("tether: IPC write of %d bytes: over a frame's size", len(b))
	}
	buf := append(u.wbuf[:0], make([]byte, uvFrameHeaderLen)...)
	if len(b) > 0 {
		binary.LittleEndian.PutUint32(buf[0:], uvFrameHasData)
		binary.LittleEndian.PutUint32(buf[8:], uint32(len(b)))
	}
	buf = append(buf, b...)
	n, err := w.Write(buf)
	if cap(buf) <= 4*maxPending {
		u.wbuf = buf[:0]
	}
	return max(0, n-uvFrameHeaderLen), err
}
