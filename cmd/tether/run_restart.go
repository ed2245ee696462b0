package main

import (
	"flag"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/tetherproc/tether/supervise"
)

// restartFlags are the restart policy flags shared by tether run and up.
type restartFlags struct {
	policy     supervise.Policy
	backoff    time.Duration
	backoffMax time.Duration
	limit      string
	envErr     error // a bad $TETHER_RESTART
}

func (r *restartFlags) register(fs *flag.FlagSet) {
	if err := r.policy.UnmarshalText([]byte(envOr("TETHER_RESTART", "never"))); err != nil {
		r.envErr = fmt.Errorf("$TETHER_RESTART: %v", err)
	}
	fs.TextVar(&r.policy, "restart", r.policy, "restart the program: never, on-failure or always ($TETHER_RESTART)")
	fs.DurationVar(&r.backoff, "backoff", envDuration("TETHER_BACKOFF", 100*time.Millisecond), "the first restart's delay; it doubles up to -backoff-max ($TETHER_BACKOFF)")
	fs.DurationVar(&r.backoffMax, "backoff-max", envDuration("TETHER_BACKOFF_MAX", 30*time.Second), "the longest delay before a restart ($TETHER_BACKOFF_MAX)")
	fs.StringVar(&r.limit, "restart-limit", envOr("TETHER_RESTART_LIMIT", "5/10s"), "give up after more than N restarts within DURATION, as N/DURATION ($TETHER_RESTART_LIMIT)")
}

func (r *restartFlags) check() error {
	if r.envErr != nil {
		return r.envErr
	}
	if _, _, err := parseLimit(r.limit); err != nil {
		return fmt.Errorf("-restart-limit: %v", err)
	}
	if r.backoff < 0 || r.backoffMax < 0 {
		return fmt.Errorf("-backoff and -backoff-max must not be negative")
	}
	return nil
}

// spec is the restart part of a supervise.Spec.
func (r *restartFlags) spec() supervise.Spec {
	burst, window, _ := parseLimit(r.limit)
	initial := r.backoff
	if initial == 0 {
		initial = -1 // supervise: no delay
	}
	return supervise.Spec{Restart: r.policy, Backoff: supervise.Backoff{Initial: initial, Max: r.backoffMax},
		Limit: supervise.Limit{Burst: burst, Interval: window}}
}

// parseLimit reads N/DURATION ("5/10s"); N 0 means no limit.
func parseLimit(s string) (int, time.Duration, error) {
	n, d, ok := strings.Cut(s, "/")
	burst, err := strconv.Atoi(n)
	if !ok || err != nil || burst < 0 {
		return 0, 0, fmt.Errorf("%q: want N/DURATION, as 5/10s", s)
	}
	window, err := time.ParseDuration(d)
	if err != nil || window <= 0 {
		return 0, 0, fmt.Errorf("%q: want N/DURATION, as 5/10s", s)
	}
	if burst == 0 {
		burst = -1 // supervise: no limit
	}
	return burst, window, nil
}
