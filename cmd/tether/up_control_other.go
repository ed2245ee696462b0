//go:build !linux && !darwin && !freebsd

package main

import (
	"errors"
	"fmt"
	"net"
	"runtime"
)

// peerCredsSupported: tether knows no way to learn who is at the other end
// of a unix socket here, so tether up offers no control socket.
func peerCredsSupported() error {
	return fmt.Errorf("control socket: no peer credentials on %s: %w", runtime.GOOS, errors.ErrUnsupported)
}

func peerCred(*net.UnixConn) (uid, pid int, err error) { return -1, 0, peerCredsSupported() }
