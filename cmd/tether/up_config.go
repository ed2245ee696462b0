package main

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/tetherproc/tether/procfile"
	"github.com/tetherproc/tether/supervise"
)

// tether.toml, beside the Procfile: per process type settings that a
// Procfile line has no room for, named as in docker compose's services where
// compose has them. A TOML table per Procfile type:
//
//	[db]
//	ready = "tcp"                 # ready once something accepts on its $PORT
//	ready_timeout = "60s"         # else it failed to start (default 30s)
//
//	[web]
//	depends_on = ["db"]           # start once every db instance is ready
//	ready = "notify"              # READY=1 on $NOTIFY_SOCKET (sd_notify)
//	stop_signal = "SIGINT"        # instead of -stop-signal
//	stop_grace_period = "10s"     # instead of -grace
//	restart = "on-failure"        # no, on-failure or always (compose's words)
//	can_die = true                # as -can-die: its end does not stop the others
//	tty = true                    # a terminal of its own, as -tty (tether connect)
//
// TOML is parsed by github.com/BurntSushi/toml; an unknown table or key is
// an error, so that a typo is not a setting silently ignored.

// upConfigName is the settings file's name beside the Procfile.
const upConfigName = "tether.toml"

// upTypeConfig is one Procfile type's table.
type upTypeConfig struct {
	Ready           string   `toml:"ready"`
	ReadyTimeout    string   `toml:"ready_timeout"`
	DependsOn       []string `toml:"depends_on"`
	StopSignal      string   `toml:"stop_signal"`
	StopGracePeriod string   `toml:"stop_grace_period"`
	Restart         string   `toml:"restart"`
	CanDie          *bool    `toml:"can_die"`
	TTY             *bool    `toml:"tty"`
}

var upConfigKeys = []string{"ready", "ready_timeout", "depends_on", "stop_signal", "stop_grace_period", "restart", "can_die", "tty"}

// upTypeSettings is a type's table, read and checked.
type upTypeSettings struct {
	ready        string // the readiness as written: tcp, tcp:PORT, tcp:HOST:PORT, notify, fd, ipc; "" none
	readyTimeout time.Duration
	dependsOn    []string
	stopSignal   syscall.Signal // 0: -stop-signal's
	grace        time.Duration  // 0: -grace's
	restart      *supervise.Policy
	canDie       *bool
	tty          *bool
}

// upLoadConfig reads the settings file at path. A missing file is no
// error unless required (given with -config); types must be the
// Procfile's.
func upLoadConfig(path string, required bool, entries []procfile.Entry) (map[string]*upTypeSettings, error) {
	out := map[string]*upTypeSettings{}
	var raw map[string]upTypeConfig
	md, err := toml.DecodeFile(path, &raw)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) && !required {
			return out, nil
		}
		var pe *fs.PathError
		if errors.As(err, &pe) {
			return nil, fmt.Errorf("%s: %w (-config names the settings file)", path, pe.Err)
		}
		var te toml.ParseError
		if errors.As(err, &te) {
			return nil, fmt.Errorf("%s:%d: %s", path, te.Position.Line, te.Message)
		}
		return nil, fmt.Errorf("%s: %w", path, err) // a type mismatch: "toml: line 3 (last key ...): incompatible types ..."
	}
	if und := md.Undecoded(); len(und) > 0 {
		k := und[0]
		if len(k) == 1 {
			return nil, fmt.Errorf("%s: [%s] is not a table of settings", path, k[0])
		}
		return nil, fmt.Errorf("%s: [%s] has no setting %q (there are %s)", path, k[0], strings.Join(k[1:], "."), strings.Join(upConfigKeys, ", "))
	}
	types := make([]string, len(entries))
	for i, e := range entries {
		types[i] = e.Name
	}
	names := make([]string, 0, len(raw))
	for n := range raw {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, typ := range names {
		c := raw[typ]
		where := fmt.Sprintf("%s: [%s]", path, typ)
		if !slices.Contains(types, typ) {
			return nil, fmt.Errorf("%s: the Procfile has no process type %q (it has %s)", where, typ, strings.Join(types, ", "))
		}
		s := &upTypeSettings{dependsOn: c.DependsOn, canDie: c.CanDie, tty: c.TTY}
		if c.Ready != "" {
			if err := upCheckReady(c.Ready); err != nil {
				return nil, fmt.Errorf("%s: ready: %w", where, err)
			}
			s.ready = c.Ready
		}
		if c.ReadyTimeout != "" {
			if s.readyTimeout, err = parseGrace(c.ReadyTimeout); err != nil {
				return nil, fmt.Errorf("%s: ready_timeout: %w", where, err)
			}
		}
		for _, d := range c.DependsOn {
			switch {
			case d == typ:
				return nil, fmt.Errorf("%s: depends_on: %q is itself", where, d)
			case !slices.Contains(types, d):
				return nil, fmt.Errorf("%s: depends_on: the Procfile has no process type %q (it has %s)", where, d, strings.Join(types, ", "))
			}
		}
		if c.StopSignal != "" {
			if s.stopSignal, err = readSignal(c.StopSignal); err != nil {
				return nil, fmt.Errorf("%s: stop_signal: %w", where, err)
			}
		}
		if c.StopGracePeriod != "" {
			if s.grace, err = parseGrace(c.StopGracePeriod); err != nil {
				return nil, fmt.Errorf("%s: stop_grace_period: %w", where, err)
			}
		}
		if c.Restart != "" {
			if c.Restart == "unless-stopped" {
				return nil, fmt.Errorf("%s: restart: %q: tether has no daemon to come back with; use always", where, c.Restart)
			}
			p, err := parsePolicy(c.Restart)
			if err != nil {
				return nil, fmt.Errorf("%s: restart: %s (compose's no works too)", where, strings.TrimSuffix(err.Error(), " or always")+" or always")
			}
			s.restart = &p
		}
		out[typ] = s
	}
	return out, nil
}

// upCheckReady checks a readiness as written in tether.toml or -ready.
func upCheckReady(s string) error {
	kind, arg, hasArg := strings.Cut(s, ":")
	switch kind {
	case "notify", "fd", "ipc":
		if hasArg {
			return fmt.Errorf("%q: %s takes no argument", s, kind)
		}
		return nil
	case "tcp":
		if !hasArg {
			return nil
		}
		addr := upTCPAddr(arg, 0)
		_, port, err := net.SplitHostPort(addr)
		if n, perr := strconv.Atoi(port); err != nil || perr != nil || n < 1 || n > 65535 {
			return fmt.Errorf("%q: want tcp, tcp:PORT or tcp:HOST:PORT", s)
		}
		return nil
	}
	return fmt.Errorf("%q is not a readiness: want tcp (its $PORT accepts), tcp:PORT, tcp:HOST:PORT, notify (READY=1 on $NOTIFY_SOCKET), fd (a newline on $NOTIFY_FD) or ipc (the message \"ready\" on the Node IPC channel)", s)
}

// upTCPAddr is the address a tcp readiness dials: arg "" is localhost:port
// (the instance's $PORT), "5432" is localhost:5432, "HOST:PORT" itself.
func upTCPAddr(arg string, port int) string {
	switch {
	case arg == "":
		return net.JoinHostPort("localhost", strconv.Itoa(port))
	case !strings.Contains(arg, ":"):
		return net.JoinHostPort("localhost", arg)
	}
	return arg
}

// upReadiness is the supervise readiness for s (checked) of an instance
// whose $PORT is port.
func upReadiness(s string, port int) supervise.Readiness {
	kind, arg, _ := strings.Cut(s, ":")
	switch kind {
	case "notify":
		return supervise.ReadyNotify()
	case "fd":
		return supervise.ReadyFD()
	case "ipc":
		return supervise.ReadyIPC()
	}
	return supervise.ReadyTCP(upTCPAddr(arg, port))
}

// upConfigPath is the settings file: -config, else $TETHER_CONFIG, else
// tether.toml beside the Procfile; required when named.
func upConfigPath(flagValue, procfile string) (string, bool) {
	if flagValue != "" {
		return flagValue, true
	}
	if v := os.Getenv("TETHER_CONFIG"); v != "" {
		return v, true
	}
	return filepath.Join(filepath.Dir(procfile), upConfigName), false
}

// upApplyFlags adds -ready TYPE=READINESS and -after TYPE=TYPE to the
// file's settings; the flags win.
func upApplyFlags(cfg map[string]*upTypeSettings, ready, after []string, entries []procfile.Entry) error {
	get := func(flag, kv string) (*upTypeSettings, string, error) {
		typ, v, ok := strings.Cut(kv, "=")
		if !ok || typ == "" || v == "" {
			return nil, "", upUsageErr("%s %q: want TYPE=VALUE", flag, kv)
		}
		if !slices.ContainsFunc(entries, func(e procfile.Entry) bool { return e.Name == typ }) {
			return nil, "", upUsageErr("%s %s: %s", flag, kv, upUnknown(typ, entries, nil))
		}
		if cfg[typ] == nil {
			cfg[typ] = &upTypeSettings{}
		}
		return cfg[typ], v, nil
	}
	for _, kv := range ready {
		s, v, err := get("-ready", kv)
		if err != nil {
			return err
		}
		if err := upCheckReady(v); err != nil {
			return upUsageErr("-ready %s: %v", kv, err)
		}
		s.ready = v
	}
	for _, kv := range after {
		s, v, err := get("-after", kv)
		if err != nil {
			return err
		}
		typ, _, _ := strings.Cut(kv, "=")
		for d := range strings.SplitSeq(v, "+") {
			if d == typ || !slices.ContainsFunc(entries, func(e procfile.Entry) bool { return e.Name == d }) {
				return upUsageErr("-after %s: %q is not another process type of the Procfile", kv, d)
			}
			if !slices.Contains(s.dependsOn, d) {
				s.dependsOn = append(s.dependsOn, d)
			}
		}
	}
	return nil
}
