package supervise

import (
	"errors"
	"testing"
	"time"

	"github.com/tetherproc/tether"
)

const ms = time.Millisecond

func TestBackoffDelay(t *testing.T) {
	t.Parallel()
	noJitter := Backoff{Jitter: -1}
	tests := []struct {
		name string
		b    Backoff
		n    int
		u    float64
		want time.Duration
	}{
		{"defaults-first", noJitter, 0, 0, 100 * ms},
		{"defaults-second", noJitter, 1, 0, 200 * ms},
		{"defaults-grow", noJitter, 5, 0, 3200 * ms},
		{"defaults-cap", noJitter, 9, 0, 30 * time.Second},
		{"no-overflow", noJitter, 10000, 0, 30 * time.Second},
		{"zero-jitter-is-20%-low", Backoff{}, 0, 0, 80 * ms},
		{"zero-jitter-is-20%-middle", Backoff{}, 0, 0.5, 100 * ms},
		{"zero-jitter-is-20%-high", Backoff{}, 0, 0.75, 110 * ms},
		{"jitter-capped-at-max", Backoff{}, 20, 0.99, 30 * time.Second},
		{"jitter-below-max", Backoff{}, 20, 0, 24 * time.Second},
		{"custom", Backoff{Initial: 10 * ms, Max: 50 * ms, Multiplier: 3, Jitter: -1}, 2, 0, 50 * ms},
		{"custom-below-cap", Backoff{Initial: 10 * ms, Max: 50 * ms, Multiplier: 3, Jitter: -1}, 1, 0, 30 * ms},
		{"multiplier-below-1-is-constant", Backoff{Initial: 10 * ms, Multiplier: 0.5, Jitter: -1}, 7, 0, 10 * ms},
		{"negative-initial-no-delay", Backoff{Initial: -1}, 3, 0.9, 0},
		{"jitter-over-1-is-1", Backoff{Initial: 10 * ms, Jitter: 5}, 0, 0, 0},
		{"max-below-initial", Backoff{Initial: time.Second, Max: 10 * ms, Jitter: -1}, 0, 0, 10 * ms},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.b.delay(tt.n, tt.u); got != tt.want {
				t.Errorf("%+v.delay(%d, %v) = %v, want %v", tt.b, tt.n, tt.u, got, tt.want)
			}
		})
	}
}

// Every draw stays within ±Jitter of the capped delay, and under Max.
func TestBackoffJitterBounds(t *testing.T) {
	t.Parallel()
	b := Backoff{Initial: 100 * ms, Max: time.Second, Jitter: 0.2}
	for n := range 6 {
		base := min(100*ms<<n, time.Second)
		lo, hi := time.Duration(float64(base)*0.8), min(time.Duration(float64(base)*1.2), time.Second)
		for i := range 100 {
			u := float64(i) / 100
			if d := b.delay(n, u); d < lo || d > hi {
				t.Fatalf("delay(%d, %v) = %v, want within [%v, %v]", n, u, d, lo, hi)
			}
		}
	}
}

func TestTracker(t *testing.T) {
	t.Parallel()
	t0 := time.Unix(1000, 0)
	noJitter := Backoff{Initial: 10 * ms, Max: 80 * ms, Jitter: -1}

	// step is one exit: its uptime, when it ended, and what next should say.
	type step struct {
		uptime time.Duration
		at     time.Duration // after t0
		delay  time.Duration
		ok     bool
	}
	tests := []struct {
		name  string
		tr    tracker
		steps []step
	}{
		{"grows-then-caps", tracker{backoff: noJitter, limit: Limit{Burst: -1}}, []step{
			{0, 0, 10 * ms, true},
			{0, 1, 20 * ms, true},
			{0, 2, 40 * ms, true},
			{0, 3, 80 * ms, true},
			{0, 4, 80 * ms, true},
		}},
		{"resets-after-uptime", tracker{backoff: noJitter, resetAfter: time.Second, limit: Limit{Burst: -1}}, []step{
			{0, 0, 10 * ms, true},
			{0, 1, 20 * ms, true},
			{999 * ms, 2, 40 * ms, true}, // just short of ResetAfter
			{time.Second, 3, 10 * ms, true},
			{0, 4, 20 * ms, true},
		}},
		{"default-reset-is-10s", tracker{backoff: noJitter, limit: Limit{Burst: -1}}, []step{
			{0, 0, 10 * ms, true},
			{9 * time.Second, 1, 20 * ms, true},
			{10 * time.Second, 2, 10 * ms, true},
		}},
		{"negative-reset-never", tracker{backoff: noJitter, resetAfter: -1, limit: Limit{Burst: -1}}, []step{
			{0, 0, 10 * ms, true},
			{time.Hour, 1, 20 * ms, true},
		}},
		{"limit-burst-in-interval", tracker{backoff: noJitter, limit: Limit{Burst: 3, Interval: time.Second}}, []step{
			{0, 0, 10 * ms, true},
			{0, 100 * ms, 20 * ms, true},
			{0, 200 * ms, 40 * ms, true},
			{0, 300 * ms, 0, false},
		}},
		{"limit-window-slides", tracker{backoff: noJitter, limit: Limit{Burst: 2, Interval: time.Second}}, []step{
			{0, 0, 10 * ms, true},
			{0, 500 * ms, 20 * ms, true},
			{0, 1000 * ms, 40 * ms, true}, // the first has left the window
			{0, 1400 * ms, 0, false},      // 500 ms and 1000 ms are in it
		}},
		{"limit-counts-across-resets", tracker{backoff: noJitter, resetAfter: 10 * ms, limit: Limit{Burst: 2, Interval: time.Minute}}, []step{
			{time.Second, 0, 10 * ms, true},
			{time.Second, 2 * time.Second, 10 * ms, true},
			{time.Second, 4 * time.Second, 0, false},
		}},
		{"default-limit-5-in-10s", tracker{backoff: noJitter}, []step{
			{0, 0, 10 * ms, true},
			{0, 1 * time.Second, 20 * ms, true},
			{0, 2 * time.Second, 40 * ms, true},
			{0, 3 * time.Second, 80 * ms, true},
			{0, 4 * time.Second, 80 * ms, true},
			{0, 5 * time.Second, 0, false},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := tt.tr
			for i, s := range tt.steps {
				d, ok := tr.next(s.uptime, t0.Add(s.at), 0.5)
				if d != s.delay || ok != s.ok {
					t.Fatalf("step %d: next(%v, +%v) = %v, %v; want %v, %v", i, s.uptime, s.at, d, ok, s.delay, s.ok)
				}
			}
		})
	}
}

func TestPolicyText(t *testing.T) {
	t.Parallel()
	for _, p := range []Policy{Never, OnFailure, Always} {
		b, err := p.MarshalText()
		if err != nil {
			t.Fatal(err)
		}
		var q Policy
		if err := q.UnmarshalText(b); err != nil || q != p {
			t.Errorf("%v: round trip gave %v, %v", p, q, err)
		}
	}
	var q Policy = Always
	if err := q.UnmarshalText([]byte("no")); err != nil || q != Never {
		t.Errorf(`"no" = %v, %v; want never`, q, err)
	}
	if err := q.UnmarshalText([]byte("sometimes")); err == nil {
		t.Error(`"sometimes" accepted`)
	}
	if _, err := Policy(9).MarshalText(); err == nil {
		t.Error("Policy(9) marshalled")
	}
	if got := Policy(9).String(); got != "Policy(9)" {
		t.Errorf("String = %q", got)
	}
}

func TestPolicyRestarts(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		p            Policy
		failed, want bool
	}{
		{Never, false, false}, {Never, true, false},
		{OnFailure, false, false}, {OnFailure, true, true},
		{Always, false, true}, {Always, true, true},
	} {
		if got := tt.p.restarts(tt.failed); got != tt.want {
			t.Errorf("%v.restarts(failed=%v) = %v", tt.p, tt.failed, got)
		}
	}
}

func TestRestarts(t *testing.T) {
	r := NewRestarts(Spec{Restart: OnFailure, Backoff: Backoff{Initial: time.Millisecond, Jitter: -1}, Limit: Limit{Burst: 2, Interval: time.Hour}, SuccessCodes: []int{3}})
	if _, again, err := r.Next(&tether.Exit{Code: 3}, 0); again || err != nil {
		t.Fatalf("a success code restarted: %v, %v", again, err)
	}
	for i, want := range []time.Duration{time.Millisecond, 2 * time.Millisecond} {
		d, again, err := r.Next(&tether.Exit{Code: 1}, 0)
		if !again || err != nil || d != want {
			t.Fatalf("restart %d: %v, %v, %v; want %v", i, d, again, err, want)
		}
	}
	if _, again, err := r.Next(&tether.Exit{Code: 1}, 0); again || !errors.Is(err, ErrRestartLimit) {
		t.Fatalf("beyond the limit: %v, %v", again, err)
	}
	var never *Restarts
	if _, again, _ := never.Next(nil, 0); again {
		t.Fatal("a nil Restarts restarted")
	}
}
