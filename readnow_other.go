//go:build !unix && !windows

package tether

import "os"

// readNow cannot tell here whether a read would wait: the monitor arms the
// drain bound, as it always did.
func readNow(*os.File, []byte, *int8) (int, error) { return 0, errWouldBlock }
