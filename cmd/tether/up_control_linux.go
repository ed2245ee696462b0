package main

import (
	"net"

	"golang.org/x/sys/unix"
)

// peerCredsSupported: SO_PEERCRED says who is at the other end.
func peerCredsSupported() error { return nil }

// peerCred is the user and process at the other end of c, as the kernel
// recorded them when the connection was made (SO_PEERCRED).
func peerCred(c *net.UnixConn) (uid, pid int, err error) {
	var cred *unix.Ucred
	err = sockopt(c, func(fd int) (err error) {
		cred, err = unix.GetsockoptUcred(fd, unix.SOL_SOCKET, unix.SO_PEERCRED)
		return err
	})
	if err != nil {
		return -1, 0, err
	}
	return int(cred.Uid), int(cred.Pid), nil
}
