//go:build darwin || freebsd

package main

import (
	"net"

	"golang.org/x/sys/unix"
)

// peerCredsSupported: LOCAL_PEERCRED (getpeereid) says who is at the other
// end.
func peerCredsSupported() error { return nil }

// peerCred is the user at the other end of c, as the kernel recorded it
// when the connection was made (LOCAL_PEERCRED); the pid is not known here
// (0).
func peerCred(c *net.UnixConn) (uid, pid int, err error) {
	var cred *unix.Xucred
	err = sockopt(c, func(fd int) (err error) {
		cred, err = unix.GetsockoptXucred(fd, unix.SOL_LOCAL, unix.LOCAL_PEERCRED)
		return err
	})
	if err != nil {
		return -1, 0, err
	}
	return int(cred.Uid), 0, nil
}
