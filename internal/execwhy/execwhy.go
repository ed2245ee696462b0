// Package execwhy says why execve refused a program, naming the real cause
// and what to do: execve's errors alone mislead (ENOENT for a script whose
// #! interpreter is missing, or a binary whose dynamic loader is, reads as
// "script not found"; EACCES for a directory as "permission denied").
// Shared by the library's StartError and tether run's exit status line.
package execwhy

import (
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"runtime"
	"strings"
	"syscall"
)

// Why says why execve refused path with err, or "" when err is not one of
// its misleading errors (ENOENT although path exists, EACCES, ENOEXEC), or
// when there is nothing more definite to say than err: a start fails with
// other errors too (EPERM from giving the child the terminal, say), and on
// Windows none of this applies (no #! lines, no execute bits).
func Why(path string, err error) string {
	if runtime.GOOS == "windows" {
		return ""
	}
	var why, vague string
	switch {
	case errors.Is(err, syscall.ENOENT):
		if _, serr := os.Stat(path); serr != nil {
			return "" // path itself is missing: the error says so
		}
		why, vague = MissingPart(path), missingVague
	case errors.Is(err, syscall.EACCES):
		why, vague = NotPermitted(path), searchVague
	case errors.Is(err, syscall.ENOEXEC):
		why, vague = BadFormat(path), formatVague
	}
	if why == vague {
		return ""
	}
	return why
}

// What MissingPart, NotPermitted and BadFormat say when they found nothing
// more definite than execve's error.
const (
	missingVague = "a file it needs is missing (no such file or directory)"
	searchVague  = "permission denied (a directory on its path may not be searched)"
	formatVague  = "exec format error: it is not a program this system can run"
)

// MissingPart is what is missing when path exists but execve says ENOENT.
func MissingPart(path string) string { return missingPart(path, 0) }

// NotPermitted is why execve refused path with EACCES.
func NotPermitted(path string) string { return notPermitted(path, 0) }

// maxInterpreters bounds how far missingPart and notPermitted follow #!
// lines: the kernel itself follows 4 (BINPRM_MAX_RECURSION).
const maxInterpreters = 4

// missingPart says what is missing when path exists but execve says ENOENT:
// its #! interpreter, or its ELF interpreter (the dynamic loader), or
// theirs in turn.
func missingPart(path string, depth int) string {
	if interp, ok := Shebang(path); ok {
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
	return missingVague
}

// notPermitted says why execve refused path with EACCES.
func notPermitted(path string, depth int) string {
	st, err := os.Stat(path)
	switch {
	case err != nil:
		return searchVague
	case st.IsDir():
		return "it is a directory, not a program"
	case !st.Mode().IsRegular():
		return "it is not a regular file"
	case st.Mode().Perm()&0o111 == 0:
		return fmt.Sprintf("it has no execute permission (chmod +x %s)", path)
	}
	if interp, ok := Shebang(path); ok && depth < maxInterpreters {
		if why := notPermitted(interp, depth+1); !strings.HasPrefix(why, "permission denied") {
			return fmt.Sprintf("its interpreter %s (named by its #! line): %s", interp, why)
		}
	}
	return "permission denied, although it is executable: its file system may be mounted noexec"
}

// BadFormat says why execve refused path with ENOEXEC.
func BadFormat(path string) string {
	head := ReadHead(path)
	switch {
	case bytes.HasPrefix(head, []byte("\x7fELF")):
		if f, err := elf.Open(path); err == nil {
			defer f.Close() // read-only
			return fmt.Sprintf("it is a program for another machine (%v)", f.Machine)
		}
		return "it is a damaged or foreign ELF file (exec format error)"
	case len(head) > 0 && !bytes.HasPrefix(head, []byte("#!")) && IsText(head):
		return "it has no #! line: a script needs one naming its interpreter, as #!/bin/sh"
	}
	return formatVague
}

// Shebang returns the interpreter a script's #! line names, as the kernel
// reads it: the first word after #!, within the file's first 256 bytes.
func Shebang(path string) (string, bool) {
	head := ReadHead(path)
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

// ReadHead returns up to the first 256 bytes of path (the kernel's
// BINPRM_BUF_SIZE), nil if it cannot be read.
func ReadHead(path string) []byte {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close() // read-only
	b := make([]byte, 256)
	n, _ := io.ReadFull(f, b) // a short file is no error here
	return b[:n]
}

// IsText reports whether b looks like text: no NUL byte.
func IsText(b []byte) bool {
	return bytes.IndexByte(b, 0) < 0
}
