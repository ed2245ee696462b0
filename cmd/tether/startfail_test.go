//go:build linux

package main

import (
	"bytes"
	"debug/elf"
	"os"
	"path/filepath"
	"testing"
)

// A start that fails names the real cause and the fix: a missing #!
// interpreter was "not found", a directory "permission denied".
func TestRunStartFailures(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, content string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	py := write("py.sh", "#!/usr/bin/tether-no-python9\nprint(1)\n", 0o755)
	nested := write("nested.sh", "#!"+py+"\n", 0o755)
	crlf := write("crlf.sh", "#!/bin/sh\r\necho hi\r\n", 0o755)
	noShebang := write("no-shebang", "exit 3\n", 0o755)
	noX := write("no-x.sh", "#!/bin/sh\n", 0o644)
	sub := filepath.Join(dir, "subdir")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	dirInterp := write("dir-interp.sh", "#!"+sub+"\n", 0o755)
	cases := []struct {
		name string
		argv []string
		code int
		msg  string
	}{
		{"interpreter-missing", []string{py}, 126, py + ": cannot execute: its interpreter /usr/bin/tether-no-python9 (named by its #! line) is not installed: install it, or change the #! line"},
		{"interpreter-is-a-script-whose-interpreter-is-missing", []string{nested}, 126, nested + ": cannot execute: its interpreter " + py + " (named by its #! line) cannot run: its interpreter /usr/bin/tether-no-python9 (named by its #! line) is not installed: install it, or change the #! line"},
		{"windows-line-endings", []string{crlf}, 126, crlf + `: cannot execute: its #! line ends in a carriage return, so its interpreter "/bin/sh\r" does not exist: the file has Windows line endings (convert them, e.g. with dos2unix)`},
		// As execvp(3), so as tini and dumb-init: /bin/sh runs it.
		{"no-shebang-runs-with-sh", []string{noShebang}, 3, ""},
		{"no-execute-permission", []string{noX}, 126, noX + ": cannot execute: it has no execute permission (chmod +x " + noX + ")"},
		{"directory", []string{sub}, 126, sub + ": cannot execute: it is a directory, not a program"},
		{"interpreter-is-a-directory", []string{dirInterp}, 126, dirInterp + ": cannot execute: its interpreter " + sub + " (named by its #! line): it is a directory, not a program"},
		{"not-in-PATH", []string{"tether-no-such-program"}, 127, "tether-no-such-program: not found in $PATH"},
		{"no-such-file", []string{filepath.Join(dir, "nope")}, 127, filepath.Join(dir, "nope") + ": not found (no such file)"},
	}
	// A dynamically linked program whose loader is missing: /bin/true with
	// its PT_INTERP path changed to one that does not exist.
	if loader, prog := withoutLoader(t, dir); prog != "" {
		cases = append(cases, struct {
			name string
			argv []string
			code int
			msg  string
		}{"dynamic-loader-missing", []string{prog}, 126, prog + ": cannot execute: its dynamic loader " + loader + " is missing: it was built for another system or C library (a static build, or one for this system, would run)"})
	}
	for _, level := range []string{"group", "auto"} { // the exec in tether, and in the keeper
		for _, tc := range cases {
			t.Run(level+"/"+tc.name, func(t *testing.T) {
				t.Parallel()
				code, stderr := runTether(t, nil, append([]string{"run", "-containment", level, "--"}, tc.argv...)...)
				want := ""
				if tc.msg != "" {
					want = "tether: " + tc.msg + "\n"
				}
				if code != tc.code || stderr != want {
					t.Errorf("status %d, stderr %q;\nwant %d, %q", code, stderr, tc.code, want)
				}
			})
		}
	}
}

// withoutLoader copies /bin/true to dir with its dynamic loader's path made
// one that does not exist, and returns that path and the copy ("" if
// /bin/true is static).
func withoutLoader(t *testing.T, dir string) (string, string) {
	t.Helper()
	f, err := elf.Open("/bin/true")
	if err != nil {
		t.Logf("no ELF /bin/true (%v): the missing-loader case is not run", err)
		return "", ""
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type != elf.PT_INTERP {
			continue
		}
		b, err := os.ReadFile("/bin/true")
		if err != nil {
			t.Fatal(err)
		}
		old := string(bytes.TrimRight(b[p.Off:p.Off+p.Filesz], "\x00"))
		loader := old[:len(old)-1] + "Q" // same length, so nothing moves
		copy(b[p.Off:], loader)
		prog := filepath.Join(dir, "no-loader")
		if err := os.WriteFile(prog, b, 0o755); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(loader); err == nil {
			t.Fatalf("%s exists", loader)
		}
		return loader, prog
	}
	t.Log("/bin/true is static: the missing-loader case is not run")
	return "", ""
}
