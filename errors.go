package tether

import (
	"errors"
	"fmt"
	"io/fs"
	"os/exec"
	"runtime"
	"strings"
)

// ErrDrainTimeout is returned by reads of a pipe that was still open when the
// process's DrainTimeout ran out after it exited: typically because a
// descendant that outlived the process still holds the write end. Bytes that
// were drained before the bound are still delivered first. Wait reports it too,
// wrapped; test with errors.Is(err, tether.ErrDrainTimeout). Recv returns it,
// wrapped, from a Channel first asked for after its process closed whose
// peer's end was still open then (not on Linux, where close shuts it).
var ErrDrainTimeout = errors.New("tether: pipe still open when the drain timeout ran out (a descendant may hold it)")

// ErrNotStarted is returned by Wait, Signal, Stop and Kill of a Process that
// Cmd.Start did not return: a zero Process (a struct field never filled in)
// or a nil *Process. Test with errors.Is(err, tether.ErrNotStarted).
var ErrNotStarted = errors.New("tether: process not started (a zero or nil Process: use the one Cmd.Start returns)")

// ErrUnsupported is returned by Start on platforms tether does not run on yet.
// It wraps errors.ErrUnsupported.
var ErrUnsupported = fmt.Errorf("tether: not supported on %s yet: %w", runtime.GOOS, errors.ErrUnsupported)

// ErrCgroupRemoved is returned by Start, wrapped in a *StartError with Op
// "cgroup", at the cgroup level when the keeper finds that its own cgroup
// was removed by another program (tether never removes a live keeper's).
// The trees that were in it had been killed by then, as cgroup v2 removes
// only empty cgroups; the keeper makes a new cgroup, so later starts work.
// Test with errors.Is(err, tether.ErrCgroupRemoved).
var ErrCgroupRemoved = errors.New("tether: the keeper's cgroup was removed by another program")

// ErrLineTooLong is yielded by Lines with the first pieces of a line that is
// longer than the limit; the line's remainder follows as further items.
var ErrLineTooLong = errors.New("tether: line longer than the limit, split")

// StartError is returned by Start when the process could not be started.
// Op says which step failed ("lookup", "dir", "stdout pipe", "exec", ...).
// It unwraps to the cause, so errors.Is(err, fs.ErrNotExist) holds for a
// missing program or directory and errors.Is(err, fs.ErrPermission) for a
// program that may not be executed; errors.Is(err, syscall.EMFILE) when the
// process ran out of file descriptors.
//
// Where execve's error misleads, the message says what it means: a script
// whose #! interpreter is missing fails with ENOENT ("no such file or
// directory", though the script is there), and the message names the
// interpreter; so for a missing dynamic loader, Windows line endings on
// the #! line, a directory, a file without execute permission or on a
// noexec mount, a binary for another machine, a script without a #! line.
type StartError struct {
	Path string // the program, as resolved (or as given when it could not be)
	Op   string
	Err  error

	why string // what execve's Err means here, if it misleads (execwhy)
}

func (e *StartError) Error() string {
	if e.why != "" {
		return fmt.Sprintf("tether: start %s: %s: %v: %s", e.Path, e.Op, e.Err, e.why)
	}
	return fmt.Sprintf("tether: start %s: %s: %v", e.Path, e.Op, e.Err)
}

func (e *StartError) Unwrap() error { return e.Err }

// stepError is a start that failed at step (a StartError's Op) other than
// the exec, as the keeper reports it.
type stepError struct {
	step string
	err  error
}

func (e *stepError) Error() string { return e.step + ": " + e.err.Error() }
func (e *stepError) Unwrap() error { return e.err }

// notFoundError is the cause when a program name is not found in $PATH. It
// matches both exec.ErrNotFound and fs.ErrNotExist, so callers can use the
// error they already know.
type notFoundError struct{ err error }

func (e notFoundError) Error() string { return e.err.Error() }
func (e notFoundError) Unwrap() []error {
	return []error{e.err, fs.ErrNotExist}
}

func wrapLookErr(err error) error {
	if errors.Is(err, exec.ErrNotFound) {
		return notFoundError{err}
	}
	return err
}

// ExitError is returned by Run, Output and CombinedOutput when the process
// did not exit with status 0. Use errors.As to get it.
type ExitError struct {
	*Exit
	// Stderr holds the last bytes (up to 32 KiB) of standard error when
	// Output captured it because Cmd.Stderr was left unset.
	Stderr []byte
}

func (e *ExitError) Error() string {
	if e.Exit == nil {
		return "tether: process failed (no Exit recorded)"
	}
	return "tether: " + e.Exit.String()
}

// joinLine is errors.Join on one line: the errors' texts joined by "; ",
// each of them still found by errors.Is and errors.As. Wait's and Run's
// errors go to one-line logs.
func joinLine(errs ...error) error {
	var nonNil []error
	for _, err := range errs {
		if err != nil {
			nonNil = append(nonNil, err)
		}
	}
	switch len(nonNil) {
	case 0:
		return nil
	case 1:
		return nonNil[0]
	}
	return lineErrors(nonNil)
}

type lineErrors []error

func (e lineErrors) Error() string {
	texts := make([]string, len(e))
	for i, err := range e {
		texts[i] = err.Error()
	}
	return strings.Join(texts, "; ")
}

func (e lineErrors) Unwrap() []error { return e }
