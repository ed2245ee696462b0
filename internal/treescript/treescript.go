// Package treescript holds the process tree the guarantee matrix is measured
// on, as a /bin/sh script shared by the tests and the peer comparison in
// bench/: a plain grandchild, a shell that ignores TERM, INT and HUP with its
// child, a setsid child, a double-forked daemon, and a polite shell that on
// SIGTERM creates "$0/cleaned-PID" (so run it as: sh -c Script DIR).
package treescript

import (
	"bufio"
	"fmt"
	"io"
)

// Script prints "pid N" for each process it keeps, the polite one as
// "pid N polite". The polite shell runs its trap between foreground commands:
// dash can lose a trap that arrives while it is in "wait" as a background
// child exits.
const Script = `echo pid $$
sleep 600 & echo pid $!
sh -c 'trap "" TERM INT HUP; sleep 600 & echo pid $!; echo pid $$; wait' &
setsid sleep 600 & echo pid $!
sh -c 'setsid sleep 600 & echo pid $!'
sh -c 'trap "touch \"$0\"/cleaned-$$; exit 0" TERM; echo pid $$ polite; while :; do sleep 1; done' "$0" &
wait`

// Size is how many "pid" lines Script prints.
const Size = 7

// Relay copies the first n lines of r to w: how a parent program hands its
// tree's "pid" lines on to whoever watches it.
func Relay(r *bufio.Reader, n int, w io.Writer) error {
	for i := 0; i < n; i++ {
		line, err := r.ReadString('\n')
		if err != nil {
			return fmt.Errorf("line %d of %d: %w", i+1, n, err)
		}
		if _, err := io.WriteString(w, line); err != nil {
			return err
		}
	}
	return nil
}
