package main

import (
	"flag"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/tetherproc/tether"
)

// treeFlags are how each tree is held and capped, shared by tether run and
// up: -containment, -memory-max and -pids-max.
type treeFlags struct {
	containment string
	memoryMax   string
	pidsMax     string
}

// register adds the flags; what names the tree ("the tree", "each
// process's tree").
func (t *treeFlags) register(fs *flag.FlagSet, what string) {
	fs.StringVar(&t.containment, "containment", envOr("TETHER_CONTAINMENT", "auto"), "auto, cgroup, keeper or group; see tether doctor ($TETHER_CONTAINMENT)")
	fs.StringVar(&t.memoryMax, "memory-max", envOr("TETHER_MEMORY_MAX", ""), "cap the memory of "+what+", as bytes or with K, M, G, T (powers of 1024): past it the kernel's OOM killer acts within the tree; needs the cgroup level and its memory controller ($TETHER_MEMORY_MAX)")
	fs.StringVar(&t.pidsMax, "pids-max", envOr("TETHER_PIDS_MAX", ""), "cap how many processes and threads "+what+" may have at once; needs the cgroup level and its pids controller ($TETHER_PIDS_MAX)")
}

// parse returns the level and the limits, or an error naming the flag.
func (t *treeFlags) parse() (tether.Containment, tether.Limits, error) {
	var limits tether.Limits
	level, err := parseContainment(t.containment)
	if err != nil {
		return 0, limits, fmt.Errorf("-containment: %v", err)
	}
	if t.memoryMax != "" {
		if limits.MemoryMax, err = parseSize(t.memoryMax); err != nil {
			return 0, limits, fmt.Errorf("-memory-max: %v", err)
		}
	}
	if t.pidsMax != "" {
		n, err := strconv.ParseInt(t.pidsMax, 10, 64)
		if err != nil || n < 1 {
			return 0, limits, fmt.Errorf("-pids-max: %q is not a count of processes", t.pidsMax)
		}
		limits.PidsMax = n
	}
	return level, limits, nil
}

func parseContainment(s string) (tether.Containment, error) {
	for _, l := range []tether.Containment{tether.ContainAuto, tether.ContainCgroup, tether.ContainKeeper, tether.ContainGroup} {
		if l.String() == s {
			return l, nil
		}
	}
	return 0, fmt.Errorf("%q is not auto, cgroup, keeper or group", s)
}

// parseSize reads a byte count: digits, optionally a fraction, then
// optionally K, M, G or T (powers of 1024, as docker reads them), with an
// optional "i" and "B": "512M", "1.5GiB", "1048576".
func parseSize(s string) (int64, error) {
	m := sizeRE.FindStringSubmatch(strings.ToUpper(strings.TrimSpace(s)))
	if m == nil || (m[2] == "" && m[3] == "IB") {
		return 0, fmt.Errorf("%q is not a size such as 512M or 2G", s)
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if m[2] != "" {
		v *= float64(int64(1) << (10 * (strings.Index("KMGT", m[2]) + 1)))
	}
	if err != nil || v < 1 || v >= 1<<62 {
		return 0, fmt.Errorf("%q is not a size between 1 byte and 4 EiB", s)
	}
	return int64(v), nil
}

var sizeRE = regexp.MustCompile(`^([0-9]+(?:\.[0-9]+)?) ?([KMGT]?)(I?B)?$`)
