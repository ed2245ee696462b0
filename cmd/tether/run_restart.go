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
}

func (r *restartFlags) register(fs *flag.FlagSet) {
	fs.Var(newSetting(&r.policy, "TETHER_RESTART", supervise.Never, parsePolicy, supervise.Policy.String), "restart", "when to restart the program (the `policy`): never, on-failure or always ($TETHER_RESTART)")
	fs.Var(delaySetting(&r.backoff, "TETHER_BACKOFF", 100*time.Millisecond), "backoff", "the first restart's `delay`; it doubles up to -backoff-max ($TETHER_BACKOFF)")
	fs.Var(delaySetting(&r.backoffMax, "TETHER_BACKOFF_MAX", 30*time.Second), "backoff-max", "the longest `delay` before a restart ($TETHER_BACKOFF_MAX)")
	fs.Var(stringSetting(&r.limit, "TETHER_RESTART_LIMIT", "5/10s", checkLimit), "restart-limit", "give up after more than N restarts within DURATION, as `N/DURATION` ($TETHER_RESTART_LIMIT)")
}

// check is left for tether run, which calls it after parsing: every value
// was checked as it was read (a setting), so nothing is left to refuse.
func (r *restartFlags) check() error {
	return nil
}

// parsePolicy reads never (or no), on-failure or always.
func parsePolicy(s string) (supervise.Policy, error) {
	var p supervise.Policy
	err := p.UnmarshalText([]byte(strings.TrimSpace(s)))
	if err != nil {
		err = fmt.Errorf("%q is not never, on-failure or always", s)
	}
	return p, err
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

func checkLimit(s string) error {
	_, _, err := parseLimit(s)
	return err
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
