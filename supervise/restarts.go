package supervise

import (
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/tetherproc/tether"
)

// Restarts applies a Spec's restart rules — Restart, SuccessCodes, Backoff,
// ResetAfter and Limit — for a caller that runs the process itself rather
// than through Run: `tether run`, an init that must forward signals to one
// child and own its terminal. The zero value never restarts.
type Restarts struct {
	spec Spec
	t    tracker
}

// NewRestarts returns the restart rules of spec (its Cmd and Name are not
// used).
func NewRestarts(spec Spec) *Restarts {
	return &Restarts{spec: spec, t: tracker{backoff: spec.Backoff, resetAfter: spec.ResetAfter, limit: spec.Limit}}
}

// Next decides after a run that ended with exit (nil if it did not start)
// having lasted uptime: restart after delay, or not. Giving up at the limit
// is an error wrapping ErrRestartLimit; a run the policy does not restart is
// (0, false, nil).
func (r *Restarts) Next(exit *tether.Exit, uptime time.Duration) (time.Duration, bool, error) {
	if r == nil || !r.spec.Restart.restarts(!r.spec.success(exit)) {
		return 0, false, nil
	}
	delay, ok := r.t.next(uptime, time.Now(), rand.Float64())
	if !ok {
		burst, interval := r.spec.Limit.values()
		return 0, false, fmt.Errorf("%w (more than %d in %v)", ErrRestartLimit, burst, interval)
	}
	return delay, true, nil
}
