//go:build !unix

package supervise

import (
	"errors"
	"fmt"
	"runtime"
)

// unixOnly reports whether ReadyFD and ReadyNotify work here. They need a
// descriptor passed in Cmd.ExtraFiles and a unixgram socket, which tether
// does not offer on this system.
func unixOnly() error {
	return fmt.Errorf("not supported on %s: %w", runtime.GOOS, errors.ErrUnsupported)
}
