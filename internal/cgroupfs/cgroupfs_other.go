//go:build !linux

package cgroupfs

import "errors"

var errNone = errors.New("no cgroups off Linux")

// Mount fails off Linux: there is no cgroup v2.
func Mount() (string, error) { return "", errNone }

// Own fails off Linux.
func Own() (string, error) { return "", errNone }
