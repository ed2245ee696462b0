//go:build !linux

package tether

import (
	"errors"
	"os"
	"syscall"

	"github.com/tetherproc/tether/internal/keeper"
)

// startCgroupLevel: cgroups are Linux's.
func startCgroupLevel(keeper.Spawn, []*os.File, func(bool, syscall.Signal)) (handle, int, error) {
	return nil, 0, &stepError{step: "cgroup", err: errors.New("no cgroup v2: cgroups are Linux only")}
}
