//go:build !unix

package testproc

import "os"

func kill(pid int) {
	if p, err := os.FindProcess(pid); err == nil {
		_ = p.Kill() // best effort: it may be exiting
	}
}
