//go:build unix

package main

import (
	"io/fs"
	"net"
	"syscall"
)

// fileIno is the file's inode number.
func fileIno(st fs.FileInfo) uint64 {
	if s, ok := st.Sys().(*syscall.Stat_t); ok {
		return uint64(s.Ino) // a uint32 on some systems
	}
	return 0
}

// sockopt runs get on c's descriptor, for a getsockopt.
func sockopt(c *net.UnixConn, get func(fd int) error) error {
	raw, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var gerr error
	if err := raw.Control(func(fd uintptr) { gerr = get(int(fd)) }); err != nil {
		return err
	}
	return gerr
}
