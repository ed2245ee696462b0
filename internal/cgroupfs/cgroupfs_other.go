//go:build !linux

package cgroupfs

import "errors"

var errNone = errors.New("no cgroups off Linux")

// Mount fails off Linux: there is no cgroup v2.
func Mount() (string, error) { return "", errNone }

// Own fails off Linux.
func Own() (string, error) { return "", errNone }

// Destroy does nothing off Linux: there are no cgroups to destroy.
func Destroy(string) {}
