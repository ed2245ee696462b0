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

// testEnv is the outside environment the .env tests expand from.
func testEnv(name string) (string, bool) {
	v, ok := map[string]string{
		"HOME": "/home/ada",
		"USER": "ada",
		"PORT": "6000",
		"A":    "outside",
	}[name]
	return v, ok
}

func TestParseEnv(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		want []EnvVar
	}{
		{"plain", "A=1\nB=two words\n", []EnvVar{{"A", "1", 1}, {"B", "two words", 2}}},
		{"no-final-newline", "A=1", []EnvVar{{"A", "1", 1}}},
		{"empty", "A=\nB=''\nC=\"\"\n", []EnvVar{{"A", "", 1}, {"B", "", 2}, {"C", "", 3}}},
		{"blanks-around", "  A = 1 \t\n", []EnvVar{{"A", "1", 1}}},
		{"export", "export A=1\nexport\tB=2\n", []EnvVar{{"A", "1", 1}, {"B", "2", 2}}},
		{"key-named-export", "export=1\nexport.x=2\n", []EnvVar{{"export", "1", 1}, {"export.x", "2", 2}}},
		{"export-only", "A=1\nexport A\nexport B # later\nB=2\n", []EnvVar{{"A", "1", 1}, {"B", "2", 4}}},
		{"key-chars", "a.b_C9=1\n9=2\n", []EnvVar{{"a.b_C9", "1", 1}, {"9", "2", 2}}},
		{"comments", "# c\n  # c\nA=1 # c\nB=1#2\nC= #c\nD=#c\nE='x' # c\nF=\"y\"#c\n",
			[]EnvVar{{"A", "1", 3}, {"B", "1#2", 4}, {"C", "", 5}, {"D", "", 6}, {"E", "x", 7}, {"F", "y", 8}}},
		{"single-no-escapes", `A='a\' # the quote ended the value`, []EnvVar{{"A", `a\`, 1}}},
		{"single-literal-ok", `A='$HOME \n "x" # y'`, []EnvVar{{"A", `$HOME \n "x" # y`, 1}}},
		{"double-escapes", `A="a\nb\tc\rd\"e\\f\$HOME\x"`, []EnvVar{{"A", "a\nb\tc\rd\"e\\f$HOME\\x", 1}}},
		{"double-comment-char", `A="x # y"`, []EnvVar{{"A", "x # y", 1}}},
		{"unquoted-backslashes", `A=C:\Users\$HOME\n`, []EnvVar{{"A", `C:\Users$HOME\n`, 1}}},
		{"multiline-double", "A=\"one\ntwo\"\nB=3\n", []EnvVar{{"A", "one\ntwo", 1}, {"B", "3", 3}}},
		{"multiline-single", "A='one\r\ntwo'\n", []EnvVar{{"A", "one\ntwo", 1}}},
		{"crlf", "A=1\r\nB=\"2\"\r\n", []EnvVar{{"A", "1", 1}, {"B", "2", 2}}},
		{"expand-outside", "A=$HOME/x\nB=${USER}s\nC=\"$HOME-${USER}\"\n",
			[]EnvVar{{"A", "/home/ada/x", 1}, {"B", "adas", 2}, {"C", "/home/ada-ada", 3}}},
		{"expand-earlier-key-wins", "A=file\nB=$A\n", []EnvVar{{"A", "file", 1}, {"B", "file", 2}}},
		{"expand-before-set", "B=$A\nA=file\n", []EnvVar{{"B", "outside", 1}, {"A", "file", 2}}},
		{"expand-self", "PATH=/bin\nPATH=$PATH:/usr/bin\n", []EnvVar{{"PATH", "/bin:/usr/bin", 2}}},
		{"expand-undefined", "A=[$NOPE][${NOPE}]\n", []EnvVar{{"A", "[][]", 1}}},
		{"expand-not-in-single", "A='$HOME'\n", []EnvVar{{"A", "$HOME", 1}}},
		{"dollar-kept", "A=$ $1 a$ $-x\nB=\"$\"\n", []EnvVar{{"A", "$ $1 a$ $-x", 1}, {"B", "$", 2}}},
		{"no-command-substitution", "A=$(whoami)\nB=\"$(id -u)\"\n", []EnvVar{{"A", "$(whoami)", 1}, {"B", "$(id -u)", 2}}},
		{"name-stops", "A=$HOME.x$USER-y\n", []EnvVar{{"A", "/home/ada.xada-y", 1}}},
		{"dotted-key-not-expandable", "a.b=1\nC=$a.b\n", []EnvVar{{"a.b", "1", 1}, {"C", ".b", 2}}},
		{"duplicate-key", "A=1\nB=2\nA=3\n", []EnvVar{{"A", "3", 3}, {"B", "2", 2}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseEnv(strings.NewReader(tt.in), testEnv)
			if err != nil {
				t.Fatalf("ParseEnv(%q): %v", tt.in, err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ParseEnv(%q)\n got %#v\nwant %#v", tt.in, got, tt.want)
			}
		})
	}
}

func TestParseEnvNilLookup(t *testing.T) {
	t.Parallel()
	got, err := ParseEnv(strings.NewReader("A=$HOME\nB=x\nC=$B\n"), nil)
	want := []EnvVar{{"A", "", 1}, {"B", "x", 2}, {"C", "x", 3}}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("ParseEnv = %#v, %v; want %#v", got, err, want)
	}
}

func TestParseEnvErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		want string
	}{
		{"bad-key-start", "A=1\n-A=1\n", `procfile: .env:2:1: invalid character '-' at start of variable name`},
		{"bad-key-char", "MY-KEY=1\n", `procfile: .env:1:3: invalid character '-' in variable name (want letters, digits, '_' or '.')`},
		{"yaml-style", "A: 1\n", `procfile: .env:1:2: invalid character ':' in variable name (want letters, digits, '_' or '.')`},
		{"missing-equals", "A\n", `procfile: .env:1:2: missing '=' after A`},
		{"missing-equals-comment", "  A # x\n", `procfile: .env:1:4: missing '=' after A`},
		{"two-words", "A B=1\n", `procfile: .env:1:2: missing '=' after A`},
		{"export-nothing", "export  \n", `procfile: .env:1:9: missing variable name after export`},
		{"export-unset", "export A\nB=1\n", `procfile: .env:1:8: export of A, which this file does not set`},
		{"export-bad-key", "export -A=1\n", `procfile: .env:1:8: invalid character '-' at start of variable name`},
		{"unterminated-single", "A=1\nB= 'abc\nC=2\n", `procfile: .env:2:4: unterminated single-quoted value`},
		{"unterminated-double", "A=\"abc\\\"\n", `procfile: .env:1:3: unterminated double-quoted value`},
		{"unterminated-double-backslash", "A=\"abc\\", `procfile: .env:1:3: unterminated double-quoted value`},
		{"escaped-single-quote", `A='it\'s'`, `procfile: .env:1:8: unexpected 's' after closing quote`},
		{"after-closing-quote", "A=\"x\"y\n", `procfile: .env:1:6: unexpected 'y' after closing quote`},
		{"after-closing-quote-multiline", "A=\"x\ny\" z\n", `procfile: .env:2:4: unexpected 'z' after closing quote`},
		{"unterminated-brace", "A=${HOME\n", `procfile: .env:1:3: unterminated ${`},
		{"unterminated-brace-comment", "A=${HOME #x}\n", `procfile: .env:1:3: unterminated ${`},
		{"unterminated-brace-double", "A=\"${HOME\n\"", `procfile: .env:1:4: unterminated ${`},
		{"bad-brace-name", "A=${HO-ME}\n", `procfile: .env:1:7: invalid character '-' in ${...} (want a name: letters, digits, '_')`},
		{"default-syntax", "A=\"${HOME:-x}\"\n", `procfile: .env:1:10: invalid character ':' in ${...} (want a name: letters, digits, '_')`},
		{"empty-brace", "A=${}\n", `procfile: .env:1:3: empty name in ${}`},
		{"brace-digit-first", "A=${1}\n", `procfile: .env:1:5: invalid character '1' in ${...} (want a name: letters, digits, '_')`},
		{"error-line-after-multiline", "A='1\n2\n3'\nB\n", `procfile: .env:4:2: missing '=' after B`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseEnv(strings.NewReader(tt.in), testEnv)
			if err == nil {
				t.Fatalf("ParseEnv(%q) = %#v, want error %s", tt.in, got, tt.want)
			}
			if err.Error() != tt.want {
				t.Errorf("ParseEnv(%q) error\n got %s\nwant %s", tt.in, err, tt.want)
			}
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Errorf("ParseEnv(%q) error %T is not a *SyntaxError", tt.in, err)
			}
		})
	}
}

func TestParseEnvReadError(t *testing.T) {
	t.Parallel()
	boom := errors.New("boom")
	if _, err := ParseEnv(iotest.ErrReader(boom), nil); !errors.Is(err, boom) {
		t.Fatalf("ParseEnv(failing reader) = %v, want it to wrap %v", err, boom)
	}
}

func TestParseEnvFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	t.Run("error-names-path", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(dir, ".env.test")
		if err := os.WriteFile(path, []byte("A=1\nB='x\n"), 0o666); err != nil {
			t.Fatal(err)
		}
		_, err := ParseEnvFile(path, nil)
		want := "procfile: " + path + ":2:3: unterminated single-quoted value"
		if err == nil || err.Error() != want {
			t.Fatalf("ParseEnvFile error = %v, want %s", err, want)
		}
	})
	t.Run("missing", func(t *testing.T) {
		t.Parallel()
		_, err := ParseEnvFile(filepath.Join(dir, "nope"), nil)
		if !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("ParseEnvFile(missing) = %v, want fs.ErrNotExist", err)
		}
	})
}

func TestFormatEnv(t *testing.T) {
	t.Parallel()
	vars := []EnvVar{{"A", "plain", 0}, {"B", "$HOME \"q\" \\ \n\t\r #", 0}, {"C", "", 0}}
	var b bytes.Buffer
	if err := FormatEnv(&b, vars); err != nil {
		t.Fatal(err)
	}
	const want = "A=\"plain\"\nB=\"\\$HOME \\\"q\\\" \\\\ \\n\\t\\r #\"\nC=\"\"\n"
	if b.String() != want {
		t.Errorf("FormatEnv wrote\n%s\nwant\n%s", b.String(), want)
	}
	got, err := ParseEnv(&b, testEnv)
	if err != nil {
		t.Fatal(err)
	}
	for i := range got {
		got[i].Line = 0
	}
	if !reflect.DeepEqual(got, vars) {
		t.Errorf("ParseEnv(FormatEnv(vars)) = %#v, want %#v", got, vars)
	}
}

func TestFormatEnvBadKey(t *testing.T) {
	t.Parallel()
	for _, key := range []string{"", "A-B", "A B", "A=B", "é"} {
		var b bytes.Buffer
		if err := FormatEnv(&b, []EnvVar{{"OK", "1", 0}, {key, "x", 0}}); err == nil || b.Len() != 0 {
			t.Errorf("FormatEnv(key %q) = %v, wrote %q; want an error and nothing written", key, err, b.String())
		}
	}
}
