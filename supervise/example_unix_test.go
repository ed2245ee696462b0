//go:build unix

package supervise_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/tetherproc/tether"
	"github.com/tetherproc/tether/supervise"
)

// What `tether run` does: supervise one command, forward the signals it
// gets, stop on SIGINT or SIGTERM, and exit with the command's status.
func ExampleSupervisor_Signal() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var s supervise.Supervisor
	forward := make(chan os.Signal, 1)
	signal.Notify(forward, syscall.SIGHUP, syscall.SIGUSR1, syscall.SIGUSR2)
	defer signal.Stop(forward)
	done := make(chan struct{})
	defer close(done)
	// Owner: this function. Ends when it returns (done).
	go func() {
		for {
			select {
			case sig := <-forward:
				_ = s.Signal("main", sig) // ErrNotRunning between restarts: dropped
			case <-done:
				return
			}
		}
	}()
	err := s.Run(ctx, supervise.Spec{
		Name:    "main",
		Cmd:     tether.Command("my-server"),
		Restart: supervise.OnFailure,
	})
	var ee *supervise.ExitError
	if errors.As(err, &ee) && ee.Exit != nil {
		fmt.Println("exit status", ee.Exit.Code)
	}
}
