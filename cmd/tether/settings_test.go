package main

import (
	"flag"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tetherproc/tether"
)

// The parsers every command shares, on every platform (this file has no
// build tag: it runs wherever the tests run).

func TestParseDurationSettings(t *testing.T) {
	for _, tc := range []struct {
		parse func(string) (time.Duration, error)
		in    string
		want  time.Duration
		err   string // in the error; "" for none
	}{
		{parseGrace, "10s", 10 * time.Second, ""},
		{parseGrace, " 1m30s ", 90 * time.Second, ""},
		{parseGrace, "5", 0, `"5" has no unit: durations need one, as in 5s`},
		{parseGrace, "2.5", 0, `"2.5" has no unit: durations need one, as in 2.5s`},
		{parseGrace, "abc", 0, `"abc" is not a duration such as 10s`},
		{parseGrace, "-1s", 0, "must be more than 0"},
		{parseGrace, "0", 0, "must be more than 0"},
		{parseGrace, "0s", 0, "must be more than 0"},
		{parseDelay, "0", 0, ""},
		{parseDelay, "100ms", 100 * time.Millisecond, ""},
		{parseDelay, "-1ms", 0, "must not be negative"},
		{parseDelay, "x", 0, `"x" is not a duration`},
	} {
		got, err := tc.parse(tc.in)
		switch {
		case tc.err == "" && (err != nil || got != tc.want):
			t.Errorf("%q: %v, %v; want %v", tc.in, got, err, tc.want)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%q: %v, %v; want an error with %q", tc.in, got, err, tc.err)
		}
	}
}

func TestParseBool(t *testing.T) {
	for in, want := range map[string]bool{"1": true, "true": true, "YES": true, "on": true, "0": false, "false": false, "No": false, "off": false} {
		if got, err := parseBool(in); err != nil || got != want {
			t.Errorf("parseBool(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"maybe", "2", "enabled", "y"} {
		if _, err := parseBool(in); err == nil {
			t.Errorf("parseBool(%q): no error", in)
		}
	}
}

// Every level the library names is accepted: pidns was refused.
func TestParseContainmentEveryLevel(t *testing.T) {
	for _, l := range []tether.Containment{tether.ContainAuto, tether.ContainGroup, tether.ContainKeeper, tether.ContainCgroup, tether.ContainPIDNamespace} {
		for _, in := range []string{l.String(), strings.ToUpper(l.String())} {
			if got, err := parseContainment(in); err != nil || got != l {
				t.Errorf("parseContainment(%q) = %v, %v; want %v", in, got, err, l)
			}
		}
	}
	if _, err := parseContainment("jail"); err == nil || err.Error() != `"jail" is not auto, group, keeper, cgroup or pidns` {
		t.Errorf("jail: %v", err)
	}
}

// One signal parser, the same on every platform: names with or without
// SIG, in any case, and numbers.
func TestReadSignal(t *testing.T) {
	for _, in := range []string{"SIGTERM", "TERM", "term", "sigterm", "Term", " term ", "15"} {
		if got, err := readSignal(in); err != nil || got != syscall.SIGTERM {
			t.Errorf("readSignal(%q) = %v, %v; want SIGTERM", in, got, err)
		}
	}
	for _, in := range []string{"INT", "int", "SIGINT", "2"} {
		if got, err := readSignal(in); err != nil || got != syscall.SIGINT {
			t.Errorf("readSignal(%q) = %v, %v; want SIGINT", in, got, err)
		}
	}
	for _, in := range []string{"", "SIG", "NOPE", "0", "-15", "99", "SIGTERM2"} {
		if got, err := readSignal(in); err == nil {
			t.Errorf("readSignal(%q) = %v, want an error", in, got)
		}
	}
	// What the -stop-signal setting stores is read back as the same signal.
	var s string
	v := signalSetting(&s, "", "SIGTERM")
	for _, in := range []string{"int", "15", "hup"} {
		want, _ := readSignal(in)
		if err := v.Set(in); err != nil {
			t.Fatal(err)
		}
		if got, err := readSignal(s); err != nil || got != want {
			t.Errorf("-stop-signal %s stored %q, read back as %v, %v; want %v", in, s, got, err, want)
		}
	}
}

// A bad variable is reported, naming it, only when its flag is not given;
// a bad flag value is reported as "-name: why".
func TestSettingError(t *testing.T) {
	t.Setenv("TETHER_TEST_GRACE", "5")
	newFS := func() *flag.FlagSet {
		var d time.Duration
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		fs.SetOutput(new(strings.Builder))
		fs.Var(graceSetting(&d, "TETHER_TEST_GRACE", time.Second), "grace", "")
		return fs
	}
	fs := newFS()
	err := settingError(fs, fs.Parse(nil))
	if err == nil || err.Error() != `$TETHER_TEST_GRACE: "5" has no unit: durations need one, as in 5s` {
		t.Errorf("variable: %v", err)
	}
	fs = newFS()
	if err := settingError(fs, fs.Parse([]string{"-grace", "2s"})); err != nil {
		t.Errorf("the flag wins: %v", err)
	}
	fs = newFS()
	err = settingError(fs, fs.Parse([]string{"-grace", "-2s"}))
	if err == nil || err.Error() != `-grace: "-2s": the grace must be more than 0, as 10s` {
		t.Errorf("flag: %v", err)
	}
	if err := os.Unsetenv("TETHER_TEST_GRACE"); err != nil { // t.Setenv restores it
		t.Fatal(err)
	}
	fs = newFS()
	if err := settingError(fs, fs.Parse(nil)); err != nil {
		t.Errorf("nothing set: %v", err)
	}
}
