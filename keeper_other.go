//go:build !linux && !darwin

package tether

import (
	"os"
	"syscall"

	"github.com/tetherproc/tether/internal/keeper"
)

func startKept(keeper.Spawn, []*os.File, bool, func(bool, syscall.Signal)) (handle, int, error) {
	return nil, 0, ErrUnsupported
}

func levelOf(handle) Containment { return ContainGroup }

func shutdownKeepers() []<-chan struct{} { return nil }
