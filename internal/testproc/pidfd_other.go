//go:build unix && !linux

package testproc

import "errors"

func pidfdOpen(int) (int, error) { return -1, errors.New("no pidfds here") }

func pidfdKill(int) error { return nil }
