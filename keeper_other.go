//go:build !linux

package tether

import "os"

func startKept(keeperSpawn, []*os.File) (handle, int, error) {
	return nil, 0, ErrUnsupported
}

func levelOf(handle) Containment { return ContainGroup }

func shutdownKeeper() <-chan struct{} { return nil }
