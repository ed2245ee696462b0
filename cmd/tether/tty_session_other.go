//go:build !unix

package main

import (
	"fmt"
	"os"
)

// ttySessionEnv: see tty_session_unix.go. tether up offers no terminals
// here.
const ttySessionEnv = "TETHER_TTY_SESSION"

func ttySession([]string) {
	fmt.Fprintln(os.Stderr, "tether: terminals per process are not supported here")
	os.Exit(126)
}
