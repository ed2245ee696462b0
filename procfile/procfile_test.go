package procfile

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"
)

func TestParse(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		want []Entry
	}{
		{"one", "web: puma\n", []Entry{{"web", "puma", 1}}},
		{"no-final-newline", "web: puma", []Entry{{"web", "puma", 1}}},
		{"no-space-after-colon", "web:puma -p $PORT", []Entry{{"web", "puma -p $PORT", 1}}},
		{"blanks-around-command", "web:\t  puma  \t\n", []Entry{{"web", "puma", 1}}},
		{"order-kept", "b: 2\na: 1\nc: 3\n", []Entry{{"b", "2", 1}, {"a", "1", 2}, {"c", "3", 3}}},
		{"comments-and-blanks", "# top\n\n  \nweb: puma\n   # indented comment\nworker: sidekiq # not a comment\n",
			[]Entry{{"web", "puma", 4}, {"worker", "sidekiq # not a comment", 6}}},
		{"crlf", "web: puma\r\nworker: sidekiq\r\n", []Entry{{"web", "puma", 1}, {"worker", "sidekiq", 2}}},
		{"name-chars", "Web_2-x: a\n0: b\n", []Entry{{"Web_2-x", "a", 1}, {"0", "b", 2}}},
		{"colons-in-command", "web: a: b :c\n", []Entry{{"web", "a: b :c", 1}}},
		{"lone-cr-kept-inside", "web: a\rb\n", []Entry{{"web", "a\rb", 1}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := Parse(strings.NewReader(tt.in))
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.in, err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Parse(%q)\n got %+v\nwant %+v", tt.in, got, tt.want)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		want string // the whole Error()
	}{
		{"empty", "", "procfile: Procfile: no processes defined"},
		{"only-comments", "# web: puma\n\n", "procfile: Procfile: no processes defined"},
		{"missing-command", "web:\n", "procfile: Procfile:1:5: missing command after ':'"},
		{"blank-command", "web:   \t\n", "procfile: Procfile:1:5: missing command after ':'"},
		{"missing-colon", "# x\nweb\n", `procfile: Procfile:2:4: missing ':' after process name "web"`},
		{"space-in-name", "web server: puma\n", `procfile: Procfile:1:4: invalid character ' ' in process name (want letters, digits, '_' or '-', then ':')`},
		{"space-before-colon", "web : puma\n", `procfile: Procfile:1:4: invalid character ' ' in process name (want letters, digits, '_' or '-', then ':')`},
		{"dot-in-name", "web.1: puma\n", `procfile: Procfile:1:4: invalid character '.' in process name (want letters, digits, '_' or '-', then ':')`},
		{"bad-first-char", ": puma\n", `procfile: Procfile:1:1: invalid character ':' at start of process name`},
		{"non-utf8", "\xff: puma\n", `procfile: Procfile:1:1: invalid character "\xff" at start of process name`},
		{"unicode-name", "wéb: puma\n", `procfile: Procfile:1:2: invalid character 'é' in process name (want letters, digits, '_' or '-', then ':')`},
		{"indented", "web: a\n  worker: b\n", "procfile: Procfile:2:1: process name must start the line"},
		{"duplicate", "web: a\nworker: b\nweb: c\n", `procfile: Procfile:3:1: duplicate process name "web" (first on line 1)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := Parse(strings.NewReader(tt.in))
			if err == nil {
				t.Fatalf("Parse(%q) = %+v, want error %q", tt.in, got, tt.want)
			}
			if err.Error() != tt.want {
				t.Errorf("Parse(%q) error\n got %s\nwant %s", tt.in, err, tt.want)
			}
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Errorf("Parse(%q) error %T is not a *SyntaxError", tt.in, err)
			}
		})
	}
}

func TestParseReadError(t *testing.T) {
	t.Parallel()
	boom := errors.New("boom")
	_, err := Parse(iotest.ErrReader(boom))
	if !errors.Is(err, boom) {
		t.Fatalf("Parse(failing reader) = %v, want it to wrap %v", err, boom)
	}
	if !strings.HasPrefix(err.Error(), "procfile: ") {
		t.Errorf("error %q does not start with \"procfile: \"", err)
	}
}

func TestParseFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	t.Run("ok", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(dir, "Procfile")
		if err := os.WriteFile(path, []byte("web: puma\n"), 0o666); err != nil {
			t.Fatal(err)
		}
		got, err := ParseFile(path)
		if err != nil || !reflect.DeepEqual(got, []Entry{{"web", "puma", 1}}) {
			t.Fatalf("ParseFile = %+v, %v", got, err)
		}
	})
	t.Run("error-names-path", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(dir, "Procfile.dev")
		if err := os.WriteFile(path, []byte("web:\n"), 0o666); err != nil {
			t.Fatal(err)
		}
		_, err := ParseFile(path)
		var se *SyntaxError
		if !errors.As(err, &se) || se.File != path || se.Line != 1 || se.Col != 5 {
			t.Fatalf("ParseFile error = %#v, want a *SyntaxError at %s:1:5", err, path)
		}
	})
	t.Run("missing", func(t *testing.T) {
		t.Parallel()
		_, err := ParseFile(filepath.Join(dir, "nope"))
		if !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("ParseFile(missing) = %v, want fs.ErrNotExist", err)
		}
		if !strings.HasPrefix(err.Error(), "procfile: ") {
			t.Errorf("error %q does not start with \"procfile: \"", err)
		}
	})
}

func TestSyntaxErrorString(t *testing.T) {
	t.Parallel()
	tests := []struct {
		err  SyntaxError
		want string
	}{
		{SyntaxError{"Procfile", 3, 5, "m"}, "procfile: Procfile:3:5: m"},
		{SyntaxError{"Procfile", 0, 0, "m"}, "procfile: Procfile: m"},
		{SyntaxError{"", 3, 5, "m"}, "procfile: 3:5: m"},
		{SyntaxError{"", 0, 0, "m"}, "procfile: m"},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("%#v.Error() = %q, want %q", tt.err, got, tt.want)
		}
	}
}

func TestFormat(t *testing.T) {
	t.Parallel()
	entries := []Entry{{"web", "puma -p $PORT", 7}, {"worker", "sidekiq # not a comment", 9}}
	var b bytes.Buffer
	if err := Format(&b, entries); err != nil {
		t.Fatal(err)
	}
	const want = "web: puma -p $PORT\nworker: sidekiq # not a comment\n"
	if b.String() != want {
		t.Errorf("Format wrote %q, want %q", b.String(), want)
	}
}

func TestFormatErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		entries []Entry
	}{
		{"empty-name", []Entry{{"", "a", 0}}},
		{"bad-name", []Entry{{"web 1", "a", 0}}},
		{"duplicate", []Entry{{"web", "a", 0}, {"web", "b", 0}}},
		{"empty-command", []Entry{{"web", "", 0}}},
		{"leading-blank", []Entry{{"web", " a", 0}}},
		{"trailing-cr", []Entry{{"web", "a\r", 0}}},
		{"newline", []Entry{{"web", "a\nb", 0}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var b bytes.Buffer
			err := Format(&b, tt.entries)
			if err == nil {
				t.Fatalf("Format(%+v) wrote %q, want an error", tt.entries, b.String())
			}
			if b.Len() != 0 {
				t.Errorf("Format(%+v) wrote %q before failing", tt.entries, b.String())
			}
		})
	}
}
