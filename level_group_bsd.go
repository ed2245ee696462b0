//go:build unix && !linux

package tether

import (
	"errors"
	"os"
	"runtime"
	"sync"
	"syscall"

	"github.com/tetherproc/tether/internal/fork"
)

// groupProc is a started child. Outside Linux there is no pidfd here yet: a
// goroutine waits in wait4, which reaps at once, so signals after the exit are
// refused rather than risk a recycled pid (a small window remains between the
// kernel's reap and our bookkeeping, as in os/exec).
type groupProc struct {
	pid    int
	mu     sync.Mutex
	reaped bool
}

func startOS(path string, argv, env []string, dir string, files []*os.File, fg bool) (*groupProc, error) {
	sys := &syscall.SysProcAttr{}
	if fg {
		sys.Foreground, sys.Ctty = true, int(files[0].Fd()) // see level_group_linux.go
	}
	pid, err := fork.Exec(path, argv, env, dir, files, sys)
	if err != nil {
		return nil, err
	}
	return &groupProc{pid: pid}, nil
}

func (h *groupProc) wait() (waitResult, error) {
	w, err := waitBlocking(h.pid)
	h.mu.Lock()
	h.reaped = true
	h.mu.Unlock()
	return w, err
}

func (h *groupProc) signal(sig syscall.Signal) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.reaped {
		return nil
	}
	err := syscall.Kill(h.pid, sig)
	if errors.Is(err, syscall.ESRCH) {
		err = nil
	}
	return errors.Join(err, signalGroup(h.pid, sig))
}

func (h *groupProc) sweep() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.reaped && groupAlive(h.pid) {
		_ = signalGroup(h.pid, syscall.SIGKILL) // best effort: they may be exiting
	}
}

func (h *groupProc) release() {}

// maxRSSBytes: BSD rusage reports ru_maxrss in KiB except on Darwin (bytes).
func maxRSSBytes(v int64) int64 {
	if runtime.GOOS == "darwin" || runtime.GOOS == "ios" {
		return v
	}
	return v * 1024
}
