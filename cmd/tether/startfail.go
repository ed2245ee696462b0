package main

import (
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/tetherproc/tether"
)

// whyNotStarted says in one line why cmd could not start, naming the real
// cause and what to do, and gives the shell's status for it: 127 when the
// program is not there, 126 when it is but cannot be run, 1 otherwise.
//
// execve's errors alone mislead: ENOENT for a script whose #! interpreter
// is missing (or a binary whose dynamic loader is) reads as "script not
// found", EACCES for a directory as "permission denied".
func whyNotStarted(cmd *tether.Cmd, err error) (string, int) {
	name := cmd.Args[0]
	path := cmd.Path
	if cmd.Dir != "" && !filepath.IsAbs(path) {
		path = filepath.Join(cmd.Dir, path)
	}
	var se *tether.StartError
	if !errors.As(err, &se) || (se.Op != "exec" && se.Op != "lookup") {
		return strings.TrimPrefix(err.Error(), "tether: "), 1
	}
	switch {
	case errors.Is(err, exec.ErrNotFound):
		return fmt.Sprintf("%s: not found in $PATH", name), 127
	case errors.Is(err, fs.ErrNotExist):
		if _, serr := os.Stat(path); errors.Is(serr, fs.ErrNotExist) {
			return fmt.Sprintf("%s: not found (no such file)", name), 127
		}
		return fmt.Sprintf("%s: cannot execute: %s", name, missingPart(path, 0)), 126
	case errors.Is(err, fs.ErrPermission):
		return fmt.Sprintf("%s: cannot execute: %s", name, notPermitted(path, 0)), 126
	case errors.Is(err, syscall.ENOEXEC):
		return fmt.Sprintf("%s: cannot execute: %s", name, badFormat(path)), 126
	}
	return strings.TrimPrefix(err.Error(), "tether: "), 1
}

// maxInterpreters bounds how far missingPart and notPermitted follow #!
// lines: the kernel itself follows 4 (BINPRM_MAX_RECURSION).
const maxInterpreters = 4

// missingPart says what is missing when path exists but execve says ENOENT:
// its #! interpreter, or its ELF interpreter (the dynamic loader), or
// theirs in turn.
func missingPart(path string, depth int) string {
	if interp, ok := shebang(path); ok {
		if strings.HasSuffix(interp, "\r") {
			return fmt.Sprintf("its #! line ends in a carriage return, so its interpreter %q does not exist: the file has Windows line endings (convert them, e.g. with dos2unix)", interp)
		}
		if _, err := os.Stat(interp); errors.Is(err, fs.ErrNotExist) {
			return fmt.Sprintf("its interpreter %s (named by its #! line) is not installed: install it, or change the #! line", interp)
		}
		if depth < maxInterpreters {
			return fmt.Sprintf("its interpreter %s (named by its #! line) cannot run: %s", interp, missingPart(interp, depth+1))
		}
	}
	if loader, ok := elfInterpreter(path); ok {
		if _, err := os.Stat(loader); errors.Is(err, fs.ErrNotExist) {
			return fmt.Sprintf("its dynamic loader %s is missing: it was built for another system or C library (a static build, or one for this system, would run)", loader)
		}
	}
	return "a file it needs is missing (no such file or directory)"
}

// notPermitted says why execve refused path with EACCES.
func notPermitted(path string, depth int) string {
	st, err := os.Stat(path)
	switch {
	case err != nil:
		return "permission denied (a directory on its path may not be searched)"
	case st.IsDir():
		return "it is a directory, not a program"
	case !st.Mode().IsRegular():
		return "it is not a regular file"
	case st.Mode().Perm()&0o111 == 0:
		return fmt.Sprintf("it has no execute permission (chmod +x %s)", path)
	}
	if interp, ok := shebang(path); ok && depth < maxInterpreters {
		if why := notPermitted(interp, depth+1); !strings.HasPrefix(why, "permission denied") {
			return fmt.Sprintf("its interpreter %s (named by its #! line): %s", interp, why)
		}
	}
	return "permission denied, although it is executable: its file system may be mounted noexec"
}

// badFormat says why execve refused path with ENOEXEC.
func badFormat(path string) string {
	head := readHead(path)
	switch {
	case bytes.HasPrefix(head, []byte("\x7fELF")):
		if f, err := elf.Open(path); err == nil {
			defer f.Close() // read-only
			return fmt.Sprintf("it is a program for another machine (%v)", f.Machine)
		}
		return "it is a damaged or foreign ELF file (exec format error)"
	case len(head) > 0 && !bytes.HasPrefix(head, []byte("#!")) && isText(head):
		return "it has no #! line: a script needs one naming its interpreter, as #!/bin/sh"
	}
	return "exec format error: it is not a program this system can run"
}

// shebang returns the interpreter a script's #! line names, as the kernel
// reads it: the first word after #!, within the file's first 256 bytes.
func shebang(path string) (string, bool) {
	head := readHead(path)
	rest, ok := bytes.CutPrefix(head, []byte("#!"))
	if !ok {
		return "", false
	}
	line, _, _ := bytes.Cut(rest, []byte("\n"))
	// Words are split at spaces and tabs only: a CR is part of the name.
	line = bytes.TrimLeft(line, " \t")
	if i := bytes.IndexAny(line, " \t\x00"); i >= 0 {
		line = line[:i]
	}
	return string(line), len(line) > 0
}

// elfInterpreter returns the dynamic loader an ELF program asks for.
func elfInterpreter(path string) (string, bool) {
	f, err := elf.Open(path)
	if err != nil {
		return "", false
	}
	defer f.Close() // read-only
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			b, err := io.ReadAll(p.Open())
			if err != nil {
				return "", false
			}
			return string(bytes.TrimRight(b, "\x00")), true
		}
	}
	return "", false
}

// readHead returns up to the first 256 bytes of path (the kernel's
// BINPRM_BUF_SIZE), nil if it cannot be read.
func readHead(path string) []byte {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close() // read-only
	b := make([]byte, 256)
	n, _ := io.ReadFull(f, b) // a short file is no error here
	return b[:n]
}

// isText reports whether b looks like text: no NUL byte.
func isText(b []byte) bool {
	return bytes.IndexByte(b, 0) < 0
}

// shellFallback does what execvp(3) does for a file the kernel will not
// execute (ENOEXEC) that has no #! line and is text: runs it with /bin/sh,
// as tini and dumb-init (through execvp) and every shell do. It reports
// whether cmd now does so.
func shellFallback(cmd *tether.Cmd, err error) bool {
	if !errors.Is(err, syscall.ENOEXEC) || cmd.Path == "/bin/sh" {
		return false
	}
	head := readHead(cmd.Path)
	if len(head) == 0 || bytes.HasPrefix(head, []byte("#!")) || !isText(head) {
		return false
	}
	args := []string{"sh", cmd.Path}
	if len(cmd.Args) > 1 {
		args = append(args, cmd.Args[1:]...)
	}
	cmd.Path, cmd.Args = "/bin/sh", args
	return true
}
