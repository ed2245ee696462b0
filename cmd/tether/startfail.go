package main

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/tetherproc/tether"
	"github.com/tetherproc/tether/internal/execwhy"
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
		return fmt.Sprintf("%s: cannot execute: %s", name, execwhy.MissingPart(path)), 126
	case errors.Is(err, fs.ErrPermission):
		return fmt.Sprintf("%s: cannot execute: %s", name, execwhy.NotPermitted(path)), 126
	case errors.Is(err, syscall.ENOEXEC):
		return fmt.Sprintf("%s: cannot execute: %s", name, execwhy.BadFormat(path)), 126
	}
	return strings.TrimPrefix(err.Error(), "tether: "), 1
}

// shellFallback does what execvp(3) does for a file the kernel will not
// execute (ENOEXEC) that has no #! line and is text: runs it with /bin/sh,
// as tini and dumb-init (through execvp) and every shell do. It reports
// whether cmd now does so.
func shellFallback(cmd *tether.Cmd, err error) bool {
	if !errors.Is(err, syscall.ENOEXEC) || cmd.Path == "/bin/sh" {
		return false
	}
	head := execwhy.ReadHead(cmd.Path)
	if len(head) == 0 || bytes.HasPrefix(head, []byte("#!")) || !execwhy.IsText(head) {
		return false
	}
	args := []string{"sh", cmd.Path}
	if len(cmd.Args) > 1 {
		args = append(args, cmd.Args[1:]...)
	}
	cmd.Path, cmd.Args = "/bin/sh", args
	return true
}
