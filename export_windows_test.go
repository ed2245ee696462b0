package tether

import (
	"fmt"
	"io"
)

// RawChannelForTest is this child's end of its IPC channel (C runtime
// descriptor fd) with no Channel over it: each Write goes out as one libuv
// frame, whatever it holds, so a test can send what no Channel would.
func RawChannelForTest(fd int) (io.Writer, error) {
	f, err := crtPipe(fd)
	if err != nil {
		return nil, fmt.Errorf("raw channel: %w", err)
	}
	return &pipeConn{f: f}, nil
}
