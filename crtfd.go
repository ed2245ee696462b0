package tether

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// The C runtime's descriptor table, as a Windows parent hands it to a child
// in STARTUPINFO's lpReserved2 (cbReserved2 bytes). Windows has no inherited
// descriptor numbers: the Microsoft C runtime and libuv agree on this
// layout, and a child's C runtime rebuilds its descriptors from it at start.
// This is how Node on Windows gives a child its IPC channel
// (NODE_CHANNEL_FD names the descriptor), and how tether does: see libuv's
// src/win/process-stdio.c.
//
//	int32          count
//	uint8          flags[count]    // crtFOPEN, crtFPIPE, ...
//	uintptr        handle[count]   // unaligned; INVALID_HANDLE_VALUE: none
//
// Kept portable (no build tag) so its tests run everywhere.
const (
	crtFOPEN = 0x01 // the descriptor is open
	crtFPIPE = 0x08 // and is a pipe
	crtFDEV  = 0x40 // or a device (a console)

	crtHandleSize = 8 // uintptr on windows/amd64 and arm64; see crtTable
)

// crtNoHandle is INVALID_HANDLE_VALUE: an entry the child's runtime skips
// (for 0 to 2 it then takes the standard handles of STARTUPINFO).
const crtNoHandle = ^uint64(0)

// errNoCRTFD is what parseCRTFD says when the table has no such descriptor.
var errNoCRTFD = errors.New("not in the C runtime descriptor table the parent passed")

// crtTable builds the table for descriptors 0 to len(handles)-1: handles[i]
// with flags[i], crtNoHandle for none (flags 0). It fits cbReserved2, a
// 16-bit size, for up to 7281 descriptors.
func crtTable(handles []uint64, flags []byte) ([]byte, error) {
	n := len(handles)
	size := 4 + n + crtHandleSize*n
	if n != len(flags) || size > 0xffff {
		return nil, fmt.Errorf("a C runtime descriptor table of %d entries", n)
	}
	b := make([]byte, size)
	binary.LittleEndian.PutUint32(b, uint32(n))
	copy(b[4:], flags)
	for i, h := range handles {
		binary.LittleEndian.PutUint64(b[4+n+crtHandleSize*i:], h)
	}
	return b, nil
}

// parseCRTFD returns the handle of descriptor fd in table b, which must be
// open (crtFOPEN) and name a handle.
func parseCRTFD(b []byte, fd int) (uint64, error) {
	if len(b) < 4 {
		return 0, errNoCRTFD
	}
	n := int(int32(binary.LittleEndian.Uint32(b)))
	if n < 0 || len(b) < 4+n+crtHandleSize*n {
		return 0, fmt.Errorf("the C runtime descriptor table of %d bytes claims %d entries", len(b), n)
	}
	if fd < 0 || fd >= n {
		return 0, errNoCRTFD
	}
	h := binary.LittleEndian.Uint64(b[4+n+crtHandleSize*fd:])
	if b[4+fd]&crtFOPEN == 0 || h == 0 || h == crtNoHandle {
		return 0, errNoCRTFD
	}
	return h, nil
}
