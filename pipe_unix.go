//go:build !windows

package tether

import (
	"errors"
	"syscall"
)

// brokenPipe says whether err is a write to a pipe whose reader is gone,
// and returns it as the error to wrap: one that matches syscall.EPIPE.
func brokenPipe(err error) (error, bool) { return err, errors.Is(err, syscall.EPIPE) }
