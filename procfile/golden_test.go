package procfile

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/*/*.golden from the parsers' output")

// TestGolden parses every testdata/procfile/*.Procfile and testdata/env/*.env
// and compares a readable dump of the result, or the error, with the .golden
// file next to it. Run with -update after a deliberate change and review the
// diff.
func TestGolden(t *testing.T) {
	t.Parallel()
	run := func(t *testing.T, pattern string, dump func(input []byte) string) {
		inputs, err := filepath.Glob(pattern)
		if err != nil {
			t.Fatal(err)
		}
		if len(inputs) == 0 {
			t.Fatalf("no inputs match %s", pattern)
		}
		for _, in := range inputs {
			t.Run(filepath.Base(in), func(t *testing.T) {
				t.Parallel()
				src, err := os.ReadFile(in)
				if err != nil {
					t.Fatal(err)
				}
				got := dump(src)
				golden := strings.TrimSuffix(in, filepath.Ext(in)) + ".golden"
				if *update {
					if err := os.WriteFile(golden, []byte(got), 0o666); err != nil {
						t.Fatal(err)
					}
					return
				}
				want, err := os.ReadFile(golden)
				if err != nil {
					t.Fatalf("%v (run go test -update to create it)", err)
				}
				if got != string(want) {
					t.Errorf("%s: output differs from %s\n--- got\n%s--- want\n%s", in, golden, got, want)
				}
			})
		}
	}
	t.Run("procfile", func(t *testing.T) {
		t.Parallel()
		run(t, filepath.Join("testdata", "procfile", "*.Procfile"), dumpProcfile)
	})
	t.Run("env", func(t *testing.T) {
		t.Parallel()
		run(t, filepath.Join("testdata", "env", "*.env"), dumpEnv)
	})
}

// dumpProcfile is what a Procfile golden file holds: each entry, its ports
// and instance names under the default formation, or the error.
func dumpProcfile(src []byte) string {
	entries, err := Parse(bytes.NewReader(src))
	if err != nil {
		return "error: " + err.Error() + "\n"
	}
	var b strings.Builder
	for _, e := range entries {
		fmt.Fprintf(&b, "line %d: %s: %q\n", e.Line, e.Name, e.Command)
	}
	counts, err := ParseFormation("", entries)
	if err != nil {
		return b.String() + "formation error: " + err.Error() + "\n"
	}
	insts, err := Instances(entries, counts, DefaultPort)
	if err != nil {
		return b.String() + "instances error: " + err.Error() + "\n"
	}
	for _, in := range insts {
		fmt.Fprintf(&b, "%s PORT=%d\n", in.Name, in.Port)
	}
	return b.String()
}

// dumpEnv is what a .env golden file holds: each variable, expanded against
// testEnv, or the error.
func dumpEnv(src []byte) string {
	vars, err := ParseEnv(bytes.NewReader(src), testEnv)
	if err != nil {
		return "error: " + err.Error() + "\n"
	}
	var b strings.Builder
	for _, v := range vars {
		fmt.Fprintf(&b, "line %d: %s=%q\n", v.Line, v.Key, v.Value)
	}
	return b.String()
}
