//go:build unix

package supervise

// unixOnly reports whether ReadyFD and ReadyNotify work here: a descriptor
// passed in Cmd.ExtraFiles and a unixgram socket. They do.
func unixOnly() error { return nil }
