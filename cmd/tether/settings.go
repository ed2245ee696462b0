package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// The commands' settings: each kind of value has one parser, used for the
// flag and for its TETHER_* variable alike, so that what the flag refuses
// the variable cannot slip in (a bad variable used to be ignored, and the
// default used, without a word).

// setting is a flag whose default may come from an environment variable,
// read by the flag's own parser. The flag wins: a bad variable is reported
// (by settingError) only when the flag is not given.
type setting struct {
	set    func(string) error // parses a value and stores it
	get    func() string      // the value, as -h shows it
	isBool bool

	envErr  error // the variable's value, refused; names the variable
	flagErr error // the value Set last refused
}

func (s *setting) Set(v string) error {
	s.flagErr = s.set(v)
	return s.flagErr
}

// String is the value as -h shows it; "" for the zero setting that flag's
// PrintDefaults makes to find out whether a default is worth printing.
func (s *setting) String() string {
	if s == nil || s.get == nil {
		return ""
	}
	return s.get()
}

// IsBoolFlag lets a boolean setting be given as a bare -v.
func (s *setting) IsBoolFlag() bool { return s != nil && s.isBool }

// newSetting stores def in *p, then the value of the variable env when it is
// set and not empty, parsed by parse; the returned setting is the flag's
// flag.Value. show formats a value for -h.
func newSetting[T any](p *T, env string, def T, parse func(string) (T, error), show func(T) string) *setting {
	*p = def
	s := &setting{
		set: func(v string) error {
			x, err := parse(v)
			if err != nil {
				return err
			}
			*p = x
			return nil
		},
		get: func() string { return show(*p) },
	}
	if v := os.Getenv(env); env != "" && v != "" {
		if err := s.set(v); err != nil {
			s.envErr = fmt.Errorf("$%s: %w", env, err)
		}
	}
	return s
}

// settingError turns what went wrong with fs's settings into one message
// naming the flag or the variable: parseErr, fs.Parse's error, said as
// "-grace: why" when a setting refused the value; else the first variable
// refused whose flag was not given; nil when all is well.
func settingError(fs *flag.FlagSet, parseErr error) error {
	if parseErr != nil {
		err := parseErr // "flag provided but not defined", "flag needs an argument"
		fs.VisitAll(func(f *flag.Flag) {
			if s, ok := f.Value.(*setting); ok && s.flagErr != nil {
				err = fmt.Errorf("-%s: %w", f.Name, s.flagErr)
			}
		})
		return err
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if s, ok := f.Value.(*setting); ok && s.envErr != nil && !given[f.Name] && err == nil {
			err = s.envErr
		}
	})
	return err
}

// graceSetting is -grace: how long a tree has to stop, more than 0 (0 used
// to mean SIGKILL at once in tether run, the library's default in the Cmd,
// and a negative one ended tether run with "context deadline exceeded").
func graceSetting(p *time.Duration, env string, def time.Duration) *setting {
	return newSetting(p, env, def, parseGrace, time.Duration.String)
}

func parseGrace(s string) (time.Duration, error) {
	d, err := parseDuration(s)
	if err == nil && d <= 0 {
		err = fmt.Errorf("%q: the grace must be more than 0, as 10s", s)
	}
	return d, err
}

// delaySetting is a delay that may be 0 but not negative (-backoff,
// -backoff-max).
func delaySetting(p *time.Duration, env string, def time.Duration) *setting {
	return newSetting(p, env, def, parseDelay, time.Duration.String)
}

func parseDelay(s string) (time.Duration, error) {
	d, err := parseDuration(s)
	if err == nil && d < 0 {
		err = fmt.Errorf("%q: must not be negative", s)
	}
	return d, err
}

// parseDuration is time.ParseDuration, with errors that say what to write:
// a bare number, which other tools read as seconds, is refused with the
// unit it lacks.
func parseDuration(s string) (time.Duration, error) {
	d, err := time.ParseDuration(strings.TrimSpace(s))
	if err == nil {
		return d, nil
	}
	if _, nerr := strconv.ParseFloat(strings.TrimSpace(s), 64); nerr == nil {
		return 0, fmt.Errorf("%q has no unit: durations need one, as in %ss", s, strings.TrimSpace(s))
	}
	return 0, fmt.Errorf("%q is not a duration such as 10s, 1m30s or 500ms", s)
}

// boolSetting is a switch such as -v: given bare, it is on; from the
// environment, 1, true, yes or on, and 0, false, no or off.
func boolSetting(p *bool, env string) *setting {
	s := newSetting(p, env, false, parseBool, func(on bool) string {
		if on {
			return "true"
		}
		return "" // as a bool flag's zero value, so -h shows no default
	})
	s.isBool = true
	return s
}

func parseBool(s string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "1", "true", "yes", "on":
		return true, nil
	case "0", "false", "no", "off":
		return false, nil
	}
	return false, fmt.Errorf("%q is neither on (1, true, yes, on) nor off (0, false, no, off)", s)
}

// signalSetting is -stop-signal. It stores the signal's canonical name
// ("SIGTERM", or its number when it has none), which every command's
// signal reading accepts, so that "term", "TERM", "SIGTERM" and "15" are one
// signal everywhere.
func signalSetting(p *string, env, def string) *setting {
	return newSetting(p, env, def, func(s string) (string, error) {
		sig, err := readSignal(s)
		if err != nil {
			return "", err
		}
		return signalName(sig), nil
	}, func(s string) string { return s })
}

// stringSetting is a text setting checked by check (nil: any text).
func stringSetting(p *string, env, def string, check func(string) error) *setting {
	return newSetting(p, env, def, func(s string) (string, error) {
		if check != nil {
			if err := check(s); err != nil {
				return "", err
			}
		}
		return s, nil
	}, func(s string) string { return s })
}

// readSignal reads a signal the one way every command and platform does: a
// name with or without SIG, in any case (SIGTERM, TERM, term), or a number.
// (tether run took "term" and tether up refused it; off Linux, tether run
// took only SIGTERM and SIGINT.)
func readSignal(s string) (syscall.Signal, error) {
	t := strings.TrimSpace(s)
	if n, err := strconv.Atoi(t); err == nil {
		if sig := syscall.Signal(n); n > 0 && signalExists(sig) {
			return sig, nil
		}
		return 0, fmt.Errorf("%q is not a signal number on %s", s, runtime.GOOS)
	}
	name := strings.ToUpper(t)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	if sig, ok := signalNamed(name); ok {
		return sig, nil
	}
	return 0, fmt.Errorf("%q is not a signal (want a name such as SIGTERM, TERM or term, or a number)", s)
}

// checkForward accepts where tether run's -forward sends signals.
func checkForward(s string) error {
	switch s {
	case "program", "group", "tree":
		return nil
	}
	return fmt.Errorf("%q is not program, group or tree", s)
}

// sigName is an os.Signal's name for messages: "SIGTERM" (os.Signal's String
// says "terminated").
func sigName(s os.Signal) string {
	if n, ok := s.(syscall.Signal); ok {
		return signalName(n)
	}
	return s.String()
}
