package tether

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/windows"
)

// IPC on Windows, the way Node does it (libuv's src/win/pipe.c and
// process-stdio.c): the channel is a duplex named pipe, both ends opened for
// overlapped I/O; the child's end reaches it as a C runtime descriptor
// (lpReserved2, see crtfd.go) that NODE_CHANNEL_FD names; and on an IPC pipe
// libuv wraps every write in a frame, so the JSON lines travel inside
// frames. tether speaks the same on both ends, so a Go parent can fork a
// Node child and Node's child_process.fork can run a Go child.

// pipeConn is a Channel's connection on Windows: the pipe, the stream in
// libuv's frames (uvframe.go). Read is called by one reader at a time (the
// Channel's rsem), Write by one writer at a time (the Channel's writing
// flag).
type pipeConn struct {
	f        *os.File
	childEnd *os.File // the parent's: what stands for the child's end (see childEnds)
	frames   uvFramer
}

func (c *pipeConn) Read(p []byte) (int, error)  { return c.frames.read(c.f, p) }
func (c *pipeConn) Write(b []byte) (int, error) { return c.frames.write(c.f, b) }

// Close closes the pipe, and in a parent the child's end if Start never
// passed it on.
func (c *pipeConn) Close() error {
	if h, ok := takeChildEnd(c.childEnd); ok {
		_ = windows.CloseHandle(h) // best effort: never passed, ours alone
	}
	return c.f.Close()
}

func (c *pipeConn) SetReadDeadline(t time.Time) error  { return c.f.SetReadDeadline(t) }
func (c *pipeConn) SetWriteDeadline(t time.Time) error { return c.f.SetWriteDeadline(t) }

// writeNow hands every write to the Channel's writer goroutine: an
// overlapped pipe write has no "as much as fits now" (the Unix socket's
// non-blocking write), so writing in Send's goroutine could block Send on
// a peer that does not read.
func (c *pipeConn) writeNow([]byte) (int, error) { return 0, nil }

// shutdown does nothing on Windows: a pipe has no half-close that leaves
// what was written readable (DisconnectNamedPipe discards it). Nothing is
// lost for it: children inherit only the handles tether lists, so no
// descendant holds the child's end unless the child passed it on.
func (c *pipeConn) shutdown() {}

// pipeSeq names each channel pipe of this process apart.
var pipeSeq atomic.Uint64

// channelPair makes the named pipe of an IPC channel: the parent's Channel
// and the child's end, to be passed to it (as a C runtime descriptor) and
// then closed. The pipe admits one client and refuses remote ones; our own
// CreateFile is that client, so nobody else can connect.
func channelPair() (*Channel, *os.File, error) {
	name, err := windows.UTF16PtrFromString(fmt.Sprintf(`\\.\pipe\tether-ipc-%d-%d`, os.Getpid(), pipeSeq.Add(1)))
	if err != nil {
		return nil, nil, err
	}
	server, err := windows.CreateNamedPipe(name,
		windows.PIPE_ACCESS_DUPLEX|windows.FILE_FLAG_OVERLAPPED|windows.FILE_FLAG_FIRST_PIPE_INSTANCE,
		windows.PIPE_TYPE_BYTE|windows.PIPE_READMODE_BYTE|windows.PIPE_WAIT|windows.PIPE_REJECT_REMOTE_CLIENTS,
		1, 64<<10, 64<<10, 0, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("CreateNamedPipe: %w", err)
	}
	client, err := windows.CreateFile(name, windows.GENERIC_READ|windows.GENERIC_WRITE, 0, nil,
		windows.OPEN_EXISTING, windows.FILE_FLAG_OVERLAPPED, 0)
	if err != nil {
		_ = windows.CloseHandle(server) // best effort: never used
		return nil, nil, fmt.Errorf("open the pipe's client end: %w", err)
	}
	if err := connected(server); err != nil {
		_ = windows.CloseHandle(server) // best effort: never used
		_ = windows.CloseHandle(client) // likewise
		return nil, nil, err
	}
	// Overlapped, so os.NewFile puts it in Go's poller: reads and writes
	// with deadlines, as on a socket.
	parent := os.NewFile(uintptr(server), "ipc")
	// The child's end must stay out of our completion port: a port holds the
	// pipe itself, for every process with a handle to it, so the child's
	// runtime could not put it in its own, and the child would read without
	// deadlines (its Close then hangs on a pending read). os.NewFile would
	// put it in ours, and (*os.File).Fd's way out does not work under Wine.
	// So Start's file list gets a stand-in, an event's handle, and startOS
	// passes the pipe in its place (takeChildEnd).
	ev, err := windows.CreateEvent(nil, 0, 0, nil)
	if err != nil {
		_ = parent.Close()              // best effort: never used
		_ = windows.CloseHandle(client) // likewise
		return nil, nil, fmt.Errorf("CreateEvent: %w", err)
	}
	standIn := os.NewFile(uintptr(ev), "ipc-child")
	childEnds.Store(standIn, client)
	return newChannel(&pipeConn{f: parent, childEnd: standIn}), standIn, nil
}

// childEnds maps each stand-in channelPair returned to the pipe handle it
// stands for, until startOS takes the handle to pass it to the child (and
// closes it then), or the parent's Channel closes without a child having
// taken it (Start failed).
var childEnds sync.Map // *os.File -> windows.Handle

// takeChildEnd returns the pipe handle f stands for, if it does and nobody
// took it yet; the caller then owns it.
func takeChildEnd(f *os.File) (windows.Handle, bool) {
	if f == nil {
		return 0, false
	}
	v, ok := childEnds.LoadAndDelete(f)
	if !ok {
		return 0, false
	}
	return v.(windows.Handle), true
}

// connected completes the server's connection to the client that already
// opened it: ConnectNamedPipe says ERROR_PIPE_CONNECTED at once.
func connected(server windows.Handle) error {
	ev, err := windows.CreateEvent(nil, 1, 0, nil)
	if err != nil {
		return fmt.Errorf("CreateEvent: %w", err)
	}
	defer func() { _ = windows.CloseHandle(ev) }() // best effort: ours alone
	ov := &windows.Overlapped{HEvent: ev}
	err = windows.ConnectNamedPipe(server, ov)
	switch {
	case err == nil, errors.Is(err, windows.ERROR_PIPE_CONNECTED):
		return nil
	case errors.Is(err, windows.ERROR_IO_PENDING):
		// Not seen: the client is already there. Bounded all the same.
		if ev, werr := windows.WaitForSingleObject(ev, 5000); werr != nil || ev != windows.WAIT_OBJECT_0 {
			_ = windows.CancelIoEx(server, ov) // best effort: the handle is closed next
			return fmt.Errorf("ConnectNamedPipe: the client end did not connect")
		}
		var n uint32
		return windows.GetOverlappedResult(server, ov, &n, false)
	}
	return fmt.Errorf("ConnectNamedPipe: %w", err)
}

// startupInfoW is STARTUPINFOW with the fields x/sys leaves unnamed, among
// them cbReserved2 and lpReserved2, where the C runtime's descriptor table
// goes.
type startupInfoW struct {
	Cb            uint32
	Reserved      *uint16
	Desktop       *uint16
	Title         *uint16
	X             uint32
	Y             uint32
	XSize         uint32
	YSize         uint32
	XCountChars   uint32
	YCountChars   uint32
	FillAttribute uint32
	Flags         uint32
	ShowWindow    uint16
	CbReserved2   uint16
	LpReserved2   *byte
	StdInput      windows.Handle
	StdOutput     windows.Handle
	StdErr        windows.Handle
}

// The two must agree to the byte: startupInfoW is read and written through
// a *windows.StartupInfo.
var _ [unsafe.Sizeof(startupInfoW{}) - unsafe.Sizeof(windows.StartupInfo{})]struct{}
var _ [unsafe.Sizeof(windows.StartupInfo{}) - unsafe.Sizeof(startupInfoW{})]struct{}

// channelFromFD adopts C runtime descriptor fd, which the parent passed in
// this process's STARTUPINFO, as a Channel.
func channelFromFD(fd int) (*Channel, error) {
	f, err := crtPipe(fd)
	if err != nil {
		return nil, err
	}
	return newChannel(&pipeConn{f: f}), nil
}

// crtPipe returns the pipe that is C runtime descriptor fd, made
// non-inheritable.
func crtPipe(fd int) (*os.File, error) {
	var si startupInfoW
	si.Cb = uint32(unsafe.Sizeof(si))
	if err := windows.GetStartupInfo((*windows.StartupInfo)(unsafe.Pointer(&si))); err != nil {
		return nil, fmt.Errorf("tether: %s=%d: GetStartupInfo: %w", nodeChannelFD, fd, err)
	}
	var table []byte
	if si.LpReserved2 != nil {
		table = unsafe.Slice(si.LpReserved2, si.CbReserved2)
	}
	h64, err := parseCRTFD(table, fd)
	if err != nil {
		return nil, fmt.Errorf("tether: %s=%d: %w", nodeChannelFD, fd, err)
	}
	h := windows.Handle(h64)
	if t, err := windows.GetFileType(h); err != nil || t != windows.FILE_TYPE_PIPE {
		return nil, fmt.Errorf("tether: %s=%d is not a pipe", nodeChannelFD, fd)
	}
	// Our own children must not inherit the channel: a grandchild holding
	// it would keep the parent from seeing this process's end.
	if err := windows.SetHandleInformation(h, windows.HANDLE_FLAG_INHERIT, 0); err != nil {
		return nil, fmt.Errorf("tether: %s=%d: %w", nodeChannelFD, fd, err)
	}
	return os.NewFile(uintptr(h), "ipc"), nil
}
