package testproc

import "golang.org/x/sys/windows"

func kill(pid int) { Pin(pid).Kill() }

// Pinned is a process a test learned the pid of, held by a handle: while the
// handle is open Windows cannot give the pid to another process, so Kill
// never reaches a stranger. If the process was gone when pinned, Kill does
// nothing.
type Pinned struct{ h windows.Handle }

// Pin takes hold of pid now, while the caller knows it is the process it
// means.
func Pin(pid int) *Pinned {
	h, err := windows.OpenProcess(windows.PROCESS_TERMINATE|windows.SYNCHRONIZE, false, uint32(pid))
	if err != nil {
		return &Pinned{}
	}
	return &Pinned{h: h}
}

// Kill terminates the pinned process if it still runs, and lets go.
func (p *Pinned) Kill() {
	if p == nil || p.h == 0 {
		return
	}
	_ = windows.TerminateProcess(p.h, 1) // best effort: it may have exited
	_ = windows.CloseHandle(p.h)         // best effort: ours alone
	p.h = 0
}
