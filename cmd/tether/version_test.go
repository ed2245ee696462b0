//go:build linux

package main

import (
	"regexp"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
)

// `tether version` and `-version`: tether's module version and the Go
// version it was built with.
func TestVersion(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"version"}, {"-version"}, {"--version"}} {
		c := tetherCmd(args...)
		var stdout, stderr strings.Builder
		c.Stdout, c.Stderr = &stdout, &stderr
		if err := c.Run(); err != nil {
			t.Fatalf("tether %v: %v, %s", args, err, stderr.String())
		}
		re := `^tether \S.*, ` + regexp.QuoteMeta(runtime.Version()) + ` linux/\w+(, revision [0-9a-f]+( \(modified\))?)?\n$`
		if !regexp.MustCompile(re).MatchString(stdout.String()) {
			t.Errorf("tether %v printed %q, want a match of %s", args, stdout.String(), re)
		}
	}
	if code, stderr := runTether(t, nil, "version", "extra"); code != 2 || !strings.Contains(stderr, `unexpected argument "extra"`) {
		t.Errorf("tether version extra: %d, %q", code, stderr)
	}
}

func TestVersionLine(t *testing.T) {
	setting := func(kv ...string) []debug.BuildSetting {
		var s []debug.BuildSetting
		for i := 0; i < len(kv); i += 2 {
			s = append(s, debug.BuildSetting{Key: kv[i], Value: kv[i+1]})
		}
		return s
	}
	for _, tc := range []struct {
		name string
		bi   *debug.BuildInfo
		want string
	}{
		{"release", &debug.BuildInfo{GoVersion: "go1.24.3", Main: debug.Module{Path: modulePath, Version: "v1.2.0"},
			Settings: setting("GOOS", "linux", "GOARCH", "arm64")},
			"tether v1.2.0, go1.24.3 linux/arm64"},
		{"checkout", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: modulePath, Version: "(devel)"},
			Settings: setting("GOOS", "darwin", "GOARCH", "amd64", "vcs.revision", "940505b", "vcs.modified", "true")},
			"tether (devel), go1.26.8 darwin/amd64, revision 940505b (modified)"},
		{"checkout-clean", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: modulePath, Version: "(devel)"},
			Settings: setting("GOOS", "linux", "GOARCH", "amd64", "vcs.revision", "940505b", "vcs.modified", "false")},
			"tether (devel), go1.26.8 linux/amd64, revision 940505b"},
		{"a-tool-of-another-module", &debug.BuildInfo{GoVersion: "go1.25.0", Main: debug.Module{Path: "example.com/app", Version: "(devel)"},
			Deps:     []*debug.Module{{Path: "golang.org/x/sys", Version: "v0.41.0"}, {Path: modulePath, Version: "v1.3.1"}},
			Settings: setting("GOOS", "linux", "GOARCH", "amd64")},
			"tether v1.3.1, go1.25.0 linux/amd64"},
	} {
		if got := versionLine(tc.bi); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}
