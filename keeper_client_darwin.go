package tether

import (
	"os"
	"syscall"
)

// selfExe is what startKeeper re-executes: this binary, by its path (macOS
// has no /proc/self/exe).
func selfExe() (string, error) { return os.Executable() }

// The cgroup level is Linux's (level_cgroup_linux.go): the client's
// share of it does nothing here.
type cgPool struct{}

type cgroupTree struct{ handle }

func (k *keeperClient) armIdleLocked()    {}
func (k *keeperClient) retireLocked()     { k.forget() }
func (k *keeperClient) keeperGoneLocked() {}

// startInPIDNamespace: PID namespaces are Linux's.
func startInPIDNamespace(*[]string, *[]*os.File, func(*syscall.SysProcAttr) (int, error)) (int, bool, error) {
	return 0, false, ErrUnsupported
}
