//go:build unix

package testproc

import "syscall"

func kill(pid int) { _ = syscall.Kill(pid, syscall.SIGKILL) } // best effort: it may be exiting

// Pinned is a process a test learned the pid of, held by a pidfd (Linux):
// Kill never reaches another process that got the pid after it died and
// was reaped (pids wrap; a cleanup that kills "what is normally gone
// already" by pid could hit anyone's process). Elsewhere, or if the
// process was gone when pinned, Kill does nothing.
type Pinned struct{ fd int }

// Pin takes hold of pid now, while the caller knows it is the process it
// means.
func Pin(pid int) *Pinned {
	fd, err := pidfdOpen(pid)
	if err != nil {
		return &Pinned{fd: -1}
	}
	return &Pinned{fd: fd}
}

// Kill sends SIGKILL to the pinned process if it still runs, and lets go.
func (p *Pinned) Kill() {
	if p == nil || p.fd < 0 {
		return
	}
	_ = pidfdKill(p.fd) // best effort: it may have exited
	_ = syscall.Close(p.fd)
	p.fd = -1
}
