//go:build linux

package main

import (
	"context"
	"io"
	"os"
	"regexp"
	"strings"
	"testing"
)

// The README's comparison table claimed readiness checks for tether without
// saying where they live: the supervise package, not the commands. The
// tether cell must name supervise, and say the commands lack it for as long
// as their help shows no readiness flag.
func TestUpREADMEReadiness(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	row := regexp.MustCompile(`(?m)^\| readiness \| ([^|]*) \|`).FindSubmatch(readme)
	if row == nil {
		t.Fatal("no readiness row in README.md's comparison table")
	}
	cell := string(row[1])
	if !strings.Contains(cell, "supervise") {
		t.Errorf("the tether cell %q does not say where readiness lives (supervise)", cell)
	}
	for _, command := range []string{"run", "up"} {
		var help strings.Builder
		if err := run(context.Background(), []string{command, "-h"}, &help, io.Discard); err != nil {
			t.Fatal(err)
		}
		hasFlag := regexp.MustCompile(`(?m)^  -ready`).MatchString(help.String())
		if saysNot := strings.Contains(cell, "not in `tether run`/`up`"); hasFlag == saysNot {
			t.Errorf("tether %s has a readiness flag: %v; the README says the commands have none: %v", command, hasFlag, saysNot)
		}
	}
}
