package supervise

import (
	"fmt"
	"math"
	"slices"
	"time"
)

// Policy says whether a process that ended is started again.
type Policy uint8

const (
	// Never, the zero value: a process that ends stays ended.
	Never Policy = iota
	// OnFailure restarts a process that failed: it could not be started,
	// did not become ready, was killed by a signal, or exited with a status
	// other than 0 and Spec.SuccessCodes.
	OnFailure
	// Always restarts a process however it ended.
	Always
)

var policyNames = [...]string{"never", "on-failure", "always"}

// String returns "never", "on-failure" or "always".
func (p Policy) String() string {
	if int(p) < len(policyNames) {
		return policyNames[p]
	}
	return fmt.Sprintf("Policy(%d)", uint8(p))
}

// MarshalText returns the policy's name, as String.
func (p Policy) MarshalText() ([]byte, error) {
	if int(p) >= len(policyNames) {
		return nil, fmt.Errorf("tether: unknown restart policy %d", uint8(p))
	}
	return []byte(p.String()), nil
}

// UnmarshalText reads "never" (or Docker's "no"), "on-failure" or "always",
// so a Policy can be a command-line flag (flag.TextVar).
func (p *Policy) UnmarshalText(b []byte) error {
	s := string(b)
	if s == "no" {
		s = "never"
	}
	i := slices.Index(policyNames[:], s)
	if i < 0 {
		return fmt.Errorf("tether: unknown restart policy %q (want never, on-failure or always)", b)
	}
	*p = Policy(i)
	return nil
}

// restarts reports whether the policy restarts a run that failed or not.
func (p Policy) restarts(failed bool) bool {
	return p == Always || (p == OnFailure && failed)
}

// Defaults for the zero values of Backoff, Limit and Spec.
const (
	defaultInitial      = 100 * time.Millisecond
	defaultMax          = 30 * time.Second
	defaultMultiplier   = 2
	defaultJitter       = 0.2
	defaultResetAfter   = 10 * time.Second
	defaultBurst        = 5
	defaultInterval     = 10 * time.Second
	defaultReadyTimeout = 30 * time.Second
)

// Backoff says how long to wait before a restart. The n-th restart in a row
// waits Initial×Multiplier^(n-1), capped at Max and then varied at random by
// up to ±Jitter of itself, so that processes that fail together do not
// restart together; Max caps the varied delay too. A run that lasted at least
// Spec.ResetAfter brings the next delay back to Initial. The zero value is
// 100 ms, ×2, 30 s, ±20%.
type Backoff struct {
	// Initial is the first delay. If zero, it is 100 ms; if negative,
	// restarts are not delayed at all.
	Initial time.Duration
	// Max caps every delay. If zero, it is 30 s.
	Max time.Duration
	// Multiplier is the growth from one delay to the next. If zero, it is
	// 2; values below 1 are taken as 1, a constant delay.
	Multiplier float64
	// Jitter is the fraction of a delay by which it varies either way. If
	// zero, it is 0.2; if negative, delays do not vary. At most 1.
	Jitter float64
}

// delay is the wait before restart number n+1 of a streak (n = 0 for the
// first restart after a reset), given a uniform random draw u in [0, 1).
func (b Backoff) delay(n int, u float64) time.Duration {
	initial, limit, mult, jitter := b.Initial, b.Max, b.Multiplier, b.Jitter
	if initial < 0 {
		return 0
	}
	if initial == 0 {
		initial = defaultInitial
	}
	if limit <= 0 {
		limit = defaultMax
	}
	if mult == 0 {
		mult = defaultMultiplier
	}
	mult = max(mult, 1)
	switch {
	case jitter == 0:
		jitter = defaultJitter
	case jitter < 0:
		jitter = 0
	}
	jitter = min(jitter, 1)
	// In float64: Initial×Multiplier^n overflows a Duration long before n
	// gets large, and +Inf compares fine with the cap.
	d := min(float64(initial)*math.Pow(mult, float64(n)), float64(limit))
	d *= 1 + jitter*(2*u-1)
	return time.Duration(min(max(d, 0), float64(limit)))
}

// Limit bounds how often a process is restarted: more than Burst restarts
// within Interval and the supervisor gives up on it (EventFatal, and
// ErrRestartLimit), like systemd's StartLimitBurst and StartLimitIntervalSec
// or an Erlang supervisor's intensity. The zero value allows 5 restarts in
// 10 s.
type Limit struct {
	// Burst is how many restarts Interval may hold. If zero, it is 5; if
	// negative, there is no limit.
	Burst int
	// Interval is the sliding window Burst counts in. If zero, it is 10 s.
	Interval time.Duration
}

func (l Limit) values() (burst int, interval time.Duration) {
	burst, interval = l.Burst, l.Interval
	if burst == 0 {
		burst = defaultBurst
	}
	if interval <= 0 {
		interval = defaultInterval
	}
	return burst, interval
}

// tracker decides the restarts of one process: the backoff streak and the
// restarts inside the limit's window. It is pure (times and the random draw
// come from the caller) and owned by the process's runner.
type tracker struct {
	backoff    Backoff
	resetAfter time.Duration
	limit      Limit

	streak int         // restarts since the backoff was last reset
	recent []time.Time // restarts within the last limit interval, oldest first
}

// next decides on a restart after a run that lasted uptime (zero for a run
// that failed to start or to become ready) and ended at now: the delay, or
// false when the restart would exceed the limit.
func (t *tracker) next(uptime time.Duration, now time.Time, u float64) (time.Duration, bool) {
	reset := t.resetAfter
	if reset == 0 {
		reset = defaultResetAfter
	}
	if reset > 0 && uptime >= reset {
		t.streak = 0
	}
	if burst, interval := t.limit.values(); burst > 0 {
		cut := 0
		for cut < len(t.recent) && now.Sub(t.recent[cut]) >= interval {
			cut++
		}
		t.recent = append(t.recent[:0], t.recent[cut:]...)
		if len(t.recent) >= burst {
			return 0, false
		}
		t.recent = append(t.recent, now)
	}
	d := t.backoff.delay(t.streak, u)
	t.streak++
	return d, true
}
