package procfile

import (
	"fmt"
	"strconv"
	"strings"
)

// DefaultPort is the base port when neither the caller nor $PORT gives one,
// as in foreman.
const DefaultPort = 5000

// ParseFormation reads a foreman formation, "web=2,worker=1", into the number
// of instances to run of each entry; the result has a count for every entry.
// Blanks anywhere are ignored, as are empty items. "all=N" sets the count of
// every entry the formation does not name, which is otherwise 0 (so "web=2"
// runs web alone). An empty spec means "all=1", foreman's default.
//
// Unlike foreman, which ignores them, ParseFormation returns an error for a
// name that is not an entry, a name given twice, an item without '=', and a
// count that is not a decimal number.
func ParseFormation(spec string, entries []Entry) (map[string]int, error) {
	spec = strings.Join(strings.Fields(spec), "")
	if spec == "" {
		spec = "all=1"
	}
	known := make(map[string]bool, len(entries))
	for _, e := range entries {
		known[e.Name] = true
	}
	given := make(map[string]int)
	all := 0
	for item := range strings.SplitSeq(spec, ",") {
		if item == "" {
			continue
		}
		name, count, ok := strings.Cut(item, "=")
		if !ok {
			return nil, fmt.Errorf("procfile: formation %q: %q is not name=count", spec, item)
		}
		if name != "all" && !known[name] {
			return nil, fmt.Errorf("procfile: formation %q: no process named %q", spec, name)
		}
		if _, dup := given[name]; dup {
			return nil, fmt.Errorf("procfile: formation %q: %q given twice", spec, name)
		}
		n, err := parseCount(count)
		if err != nil {
			return nil, fmt.Errorf("procfile: formation %q: count for %s: %w", spec, name, err)
		}
		given[name] = n
		if name == "all" {
			all = n
		}
	}
	counts := make(map[string]int, len(entries))
	for _, e := range entries {
		if n, ok := given[e.Name]; ok {
			counts[e.Name] = n
		} else {
			counts[e.Name] = all
		}
	}
	return counts, nil
}

// parseCount accepts decimal digits only: no sign, no "0x".
func parseCount(s string) (int, error) {
	if s == "" || strings.TrimLeft(s, "0123456789") != "" {
		return 0, fmt.Errorf("%q is not a number", s)
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("%q is too large", s)
	}
	return n, nil
}

// BasePort returns the port foreman would start from: $PORT as lookup
// reports it, else DefaultPort. Foreman's order is its -p flag, then PORT
// from .env, then from the environment; a caller gets the same by checking
// its flag first and passing a lookup that tries the parsed .env before
// os.LookupEnv. A set PORT that is not a number from 1 to 65535 is an error
// (foreman would read it as 0). A nil lookup means PORT is not set.
func BasePort(lookup func(string) (string, bool)) (int, error) {
	if lookup == nil {
		return DefaultPort, nil
	}
	v, ok := lookup("PORT")
	if !ok {
		return DefaultPort, nil
	}
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n < 1 || n > 65535 {
		return 0, fmt.Errorf("procfile: PORT=%q is not a port number", v)
	}
	return n, nil
}

// Instance is one process to start: instance Num of an entry.
type Instance struct {
	Name    string // "web.1": the entry's name and Num, foreman's $PS
	Type    string // the entry's name, "web"
	Command string // the entry's command
	Num     int    // 1-based instance number within its type
	Port    int    // the $PORT to give it
}

// Instances lists the processes a formation starts, in foreman's order:
// entries in Procfile order, then by instance number. counts is
// ParseFormation's result; a missing name counts 0.
//
// Ports follow foreman's Engine#port_for: the i-th entry of the Procfile
// (from 0, counting entries that run no instance too) gets base + 100*i, and
// its instance n gets that plus n-1. So with base 5000, web.1 is 5000, web.2
// 5001, worker.1 5100. Types with more than 100 instances overlap the next
// type's ports, as in foreman. Instances returns an error if a port would
// pass 65535 or base is not a port number.
func Instances(entries []Entry, counts map[string]int, base int) ([]Instance, error) {
	if base < 1 || base > 65535 {
		return nil, fmt.Errorf("procfile: base port %d is not a port number", base)
	}
	var out []Instance
	for i, e := range entries {
		n := counts[e.Name]
		if n <= 0 {
			continue
		}
		first := base + 100*i
		if last := first + n - 1; first > 65535 || last > 65535 || last < first {
			return nil, fmt.Errorf("procfile: %s: %d instances from port %d go past 65535", e.Name, n, first)
		}
		for k := 1; k <= n; k++ {
			out = append(out, Instance{
				Name:    e.Name + "." + strconv.Itoa(k),
				Type:    e.Name,
				Command: e.Command,
				Num:     k,
				Port:    first + k - 1,
			})
		}
	}
	return out, nil
}
