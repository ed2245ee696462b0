package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// ipcCeiling is the most any Go parent could get from a Node child: no
// Channel, just the socket and Node's framing. One way, every message is
// encoded before the clock starts and written with blocking writes, so the
// sender costs nothing and the Node child's receiving is all that is
// timed; round trips, one write(2), poll(2) and read(2) per message. Timed
// as ipcRun times tether: from after the start (the Node child's boot
// included, as in node↔node) to the last message.
func ipcCeiling(oneway bool, n int) (float64, string, error) {
	node, err := exec.LookPath("node")
	if err != nil {
		return 0, "", err
	}
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return 0, "", os.NewSyscallError("socketpair", err)
	}
	fd := fds[0]
	childEnd := os.NewFile(uintptr(fds[1]), "ipc-child")
	mode := map[bool]string{true: "sink", false: "echo"}[oneway]
	c := exec.Command(node, filepath.Join(srcDir, "node", "ipc_child.js"), mode, strconv.Itoa(n))
	c.Env = append(os.Environ(), "NODE_CHANNEL_FD=3", "NODE_CHANNEL_SERIALIZATION_MODE=json")
	c.ExtraFiles = []*os.File{childEnd}
	c.Stderr = os.Stderr
	msg := func(i int) []byte { return []byte(`{"seq":` + strconv.Itoa(i) + `,"msg":"hello"}` + "\n") }
	var all []byte
	if oneway {
		all = make([]byte, 0, 30*n)
		for i := range n {
			all = append(all, msg(i)...)
		}
	}
	err = c.Start()
	childEnd.Close()
	if err != nil {
		syscall.Close(fd)
		return 0, "", err
	}
	defer func() {
		syscall.Close(fd) // the child ends at its channel's end
		_ = c.Wait()      // its exit status does not count
	}()
	buf := make([]byte, 64<<10)
	read := func() (int, error) {
		pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		for {
			if _, err := unix.Poll(pfd, -1); err != nil && err != unix.EINTR {
				return 0, os.NewSyscallError("poll", err)
			}
			n, err := syscall.Read(fd, buf)
			switch {
			case err == syscall.EINTR:
				continue
			case err != nil:
				return 0, os.NewSyscallError("read", err)
			case n == 0:
				return 0, errors.New("the Node child ended")
			}
			return n, nil
		}
	}
	write := func(b []byte) error {
		for len(b) > 0 {
			k, err := syscall.Write(fd, b)
			if err == syscall.EINTR {
				continue
			}
			if err != nil {
				return os.NewSyscallError("write", err)
			}
			b = b[k:]
		}
		return nil
	}
	t0 := time.Now()
	if oneway {
		if err := write(all); err != nil {
			return 0, "", err
		}
		k, err := read()
		if err != nil || !bytes.Equal(buf[:k], []byte("\"done\"\n")) {
			return 0, "", fmt.Errorf("node child: %q, %v", buf[:k], err)
		}
	} else {
		for i := range n {
			if err := write(msg(i)); err != nil {
				return 0, "", err
			}
			// The echo is one 27-byte line, which Node writes at once and
			// a stream socket does not split; a split line would pair the
			// reads off wrongly, but still count n round trips.
			if _, err := read(); err != nil {
				return 0, "", err
			}
		}
	}
	return time.Since(t0).Seconds(), "", nil
}
