//go:build !unix && !windows

package testproc

import "os"

func kill(pid int) {
	if p, err := os.FindProcess(pid); err == nil {
		_ = p.Kill() // best effort: it may be exiting
	}
}

// Pinned: see kill_unix.go; nothing is pinned here.
type Pinned struct{}

// Pin does nothing here.
func Pin(int) *Pinned { return &Pinned{} }

// Kill does nothing here.
func (*Pinned) Kill() {}
