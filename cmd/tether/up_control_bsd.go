//go:build darwin || freebsd

package main

import (
	"io/fs"
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// peerCredsSupported: LOCAL_PEERCRED (getpeereid) says who is at the other
// end.
func peerCredsSupported() error { return nil }

// peerCred is the user at the other end of c, as the kernel recorded it
// when the connection was made (LOCAL_PEERCRED); the pid is not known here
// (0).
func peerCred(c *net.UnixConn) (uid, pid int, err error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return -1, 0, err
	}
	var cred *unix.Xucred
	cerr := raw.Control(func(fd uintptr) {
		cred, err = unix.GetsockoptXucred(int(fd), unix.SOL_LOCAL, unix.LOCAL_PEERCRED)
	})
	if cerr != nil {
		return -1, 0, cerr
	}
	if err != nil {
		return -1, 0, err
	}
	return int(cred.Uid), 0, nil
}

// fileIno is the file's inode number.
func fileIno(st fs.FileInfo) uint64 {
	if s, ok := st.Sys().(*syscall.Stat_t); ok {
		return uint64(s.Ino)
	}
	return 0
}
