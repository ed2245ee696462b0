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
	containment tether.Containment
	memoryMax   int64 // 0: no cap
	pidsMax     int64 // 0: no cap
}

// register adds the flags; what names the tree ("the tree", "each
// process's tree").
func (t *treeFlags) register(fs *flag.FlagSet, what string) {
	fs.Var(newSetting(&t.containment, "TETHER_CONTAINMENT", tether.ContainAuto, parseContainment, tether.Containment.String),
		"containment", "the `level`: "+containmentNames()+"; see tether doctor ($TETHER_CONTAINMENT)")
	fs.Var(newSetting(&t.memoryMax, "TETHER_MEMORY_MAX", 0, parseSize, showCap), "memory-max",
		"cap the memory of "+what+", as `bytes` or with K, M, G, T (powers of 1024): past it the kernel's OOM killer acts within the tree; needs the cgroup level and its memory controller ($TETHER_MEMORY_MAX)")
	fs.Var(newSetting(&t.pidsMax, "TETHER_PIDS_MAX", 0, parseCount, showCap), "pids-max",
		"cap the `count` of processes and threads "+what+" may have at once; needs the cgroup level and its pids controller ($TETHER_PIDS_MAX)")
}

// parse returns the level and the limits. The values were checked as they
// were read; the error is for the callers' sake.
func (t *treeFlags) parse() (tether.Containment, tether.Limits, error) {
	return t.containment, tether.Limits{MemoryMax: t.memoryMax, PidsMax: t.pidsMax}, nil
}

// showCap shows an unset cap as nothing, so -h prints no default.
func showCap(n int64) string {
	if n == 0 {
		return ""
	}
	return strconv.FormatInt(n, 10)
}

// parseCount reads a count of processes, 1 or more.
func parseCount(s string) (int64, error) {
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil || n < 1 {
		return 0, fmt.Errorf("%q is not a count of processes", s)
	}
	return n, nil
}

// parseContainment reads a level by the name tether doctor shows (auto,
// group, keeper, cgroup, pidns), in any case: every level there is.
func parseContainment(s string) (tether.Containment, error) {
	for _, l := range containmentLevels() {
		if strings.EqualFold(l.String(), strings.TrimSpace(s)) {
			return l, nil
		}
	}
	return 0, fmt.Errorf("%q is not %s", s, containmentNames())
}

// containmentLevels lists every level the library names, from ContainAuto
// on: a level added there is accepted here without a change.
func containmentLevels() []tether.Containment {
	var ls []tether.Containment
	for l := tether.ContainAuto; !strings.HasPrefix(l.String(), "Containment("); l++ {
		ls = append(ls, l)
	}
	return ls
}

// containmentNames is "auto, group, keeper, cgroup or pidns".
func containmentNames() string {
	var names []string
	for _, l := range containmentLevels() {
		names = append(names, l.String())
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
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
