//go:build unix

// The examples run sh, and Example_readiness uses ReadyFD: Unix only.

package supervise_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tetherproc/tether"
	"github.com/tetherproc/tether/supervise"
)

// A job that keeps failing is restarted with a growing delay, then given up
// on.
func Example() {
	var s supervise.Supervisor
	s.Observer = func(e supervise.Event) {
		switch e.Kind {
		case supervise.EventExited:
			fmt.Println(e.Name, "attempt", e.Attempt, e.Exit)
		case supervise.EventBackoff:
			fmt.Println(e.Name, "restarts in", e.Delay)
		}
	}
	err := s.Run(context.Background(), supervise.Spec{
		Name:    "job",
		Cmd:     tether.Command("sh", "-c", "exit 3"),
		Restart: supervise.OnFailure,
		Backoff: supervise.Backoff{Initial: 10 * time.Millisecond, Jitter: -1},
		Limit:   supervise.Limit{Burst: 2},
	})
	fmt.Println(err)
	fmt.Println(errors.Is(err, supervise.ErrRestartLimit))
	// Output:
	// job attempt 1 exit status 3
	// job restarts in 10ms
	// job attempt 2 exit status 3
	// job restarts in 20ms
	// job attempt 3 exit status 3
	// tether: job: too many restarts (more than 2 in 10s); last: exit status 3
	// true
}

// The web server starts once the database says it is ready; at the end
// (here: as soon as web is up) they stop in reverse order.
func Example_readiness() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var s supervise.Supervisor
	s.Observer = func(e supervise.Event) {
		switch e.Kind {
		case supervise.EventReady:
			fmt.Println(e.Name, "ready")
			if e.Name == "web" {
				cancel() // Ctrl-C, as far as Run can tell
			}
		case supervise.EventStopped:
			fmt.Println(e.Name, "stopped:", e.Exit)
		}
	}
	err := s.Run(ctx,
		supervise.Spec{
			Name:  "db",
			Cmd:   tether.Command("sh", "-c", "echo >&$NOTIFY_FD; exec sleep 60"),
			Ready: supervise.ReadyFD(),
		},
		supervise.Spec{Name: "web", Cmd: tether.Command("sleep", "60")},
	)
	fmt.Println(err)
	// Output:
	// db ready
	// web ready
	// web stopped: signal: terminated
	// db stopped: signal: terminated
	// context canceled
}
