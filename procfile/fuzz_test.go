package procfile

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// addSeeds adds the golden inputs matching pattern to f's corpus.
func addSeeds(f *testing.F, pattern string) {
	inputs, err := filepath.Glob(pattern)
	if err != nil {
		f.Fatal(err)
	}
	for _, in := range inputs {
		src, err := os.ReadFile(in)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(src))
	}
}

// checkSyntaxError checks that err is a *SyntaxError pointing inside src.
func checkSyntaxError(t *testing.T, src string, err error, wholeFileOK bool) {
	t.Helper()
	var se *SyntaxError
	if !errors.As(err, &se) {
		t.Fatalf("error %T %v is not a *SyntaxError", err, err)
	}
	if !strings.HasPrefix(err.Error(), "procfile: ") {
		t.Fatalf("error %q does not start with \"procfile: \"", err)
	}
	if se.Line == 0 && wholeFileOK {
		return
	}
	lines := strings.Split(strings.ReplaceAll(src, "\r\n", "\n"), "\n")
	if se.Line < 1 || se.Line > len(lines) {
		t.Fatalf("error %v: line %d outside 1..%d", err, se.Line, len(lines))
	}
	if se.Col < 1 || se.Col > len(lines[se.Line-1])+1 {
		t.Fatalf("error %v: column %d outside 1..%d", err, se.Col, len(lines[se.Line-1])+1)
	}
}

// FuzzParse checks that Parse never panics, that its errors point inside the
// input, and that Format writes what Parse reads back unchanged.
func FuzzParse(f *testing.F) {
	addSeeds(f, filepath.Join("testdata", "procfile", "*.Procfile"))
	f.Add("web: a\r\nweb2:b\n\n# c\n")
	f.Add("web:\t \r\n")
	f.Fuzz(func(t *testing.T, src string) {
		entries, err := Parse(strings.NewReader(src))
		if err != nil {
			checkSyntaxError(t, src, err, true)
			return
		}
		var b bytes.Buffer
		if err := Format(&b, entries); err != nil {
			t.Fatalf("Format(Parse(%q)): %v", src, err)
		}
		again, err := Parse(&b)
		if err != nil {
			t.Fatalf("Parse(Format(Parse(%q))): %v\nformatted: %q", src, err, b.String())
		}
		if len(again) != len(entries) {
			t.Fatalf("round trip of %q: %d entries, then %d", src, len(entries), len(again))
		}
		for i := range entries {
			if again[i].Name != entries[i].Name || again[i].Command != entries[i].Command {
				t.Fatalf("round trip of %q: entry %d %+v became %+v", src, i, entries[i], again[i])
			}
		}
	})
}

// FuzzParseEnv checks that ParseEnv never panics, that its errors point
// inside the input, and that FormatEnv writes what ParseEnv reads back
// unchanged, whatever the environment.
func FuzzParseEnv(f *testing.F) {
	addSeeds(f, filepath.Join("testdata", "env", "*.env"))
	f.Add("A=\"${HOME}\\$x\"\nexport B='c\nd' # e\n")
	f.Add("A=${")
	f.Fuzz(func(t *testing.T, src string) {
		vars, err := ParseEnv(strings.NewReader(src), testEnv)
		if err != nil {
			checkSyntaxError(t, src, err, false)
			return
		}
		var b bytes.Buffer
		if err := FormatEnv(&b, vars); err != nil {
			t.Fatalf("FormatEnv(ParseEnv(%q)): %v", src, err)
		}
		formatted := b.String()
		again, err := ParseEnv(&b, func(string) (string, bool) { return "changed", true })
		if err != nil {
			t.Fatalf("ParseEnv(FormatEnv(ParseEnv(%q))): %v\nformatted: %q", src, err, formatted)
		}
		if len(again) != len(vars) {
			t.Fatalf("round trip of %q: %d variables, then %d", src, len(vars), len(again))
		}
		for i := range vars {
			if again[i].Key != vars[i].Key || again[i].Value != vars[i].Value {
				t.Fatalf("round trip of %q: %#v became %#v\nformatted: %q", src, vars[i], again[i], formatted)
			}
		}
	})
}
