package testproc

import (
	"errors"
	"strconv"

	"golang.org/x/sys/windows"
)

// hasProc is false: under Wine a Windows program can read the host's /proc
// through drive Z:, whose pids are not Windows'.
const hasProc = false

// alive opens the process and asks whether its handle is signalled: a
// process that has exited is signalled for good, though its object lives
// on while anyone holds a handle (Windows' zombie). A pid that cannot be
// opened because no process has it is dead; one that cannot be opened for
// another reason (access) is taken as alive, so the check fails rather than
// passes blind.
func alive(pid int) bool {
	h, err := windows.OpenProcess(windows.SYNCHRONIZE|windows.PROCESS_QUERY_LIMITED_INFORMATION, false, uint32(pid))
	if err != nil {
		return !errors.Is(err, windows.ERROR_INVALID_PARAMETER)
	}
	defer func() { _ = windows.CloseHandle(h) }() // best effort: a query handle
	ev, err := windows.WaitForSingleObject(h, 0)
	return err != nil || ev == uint32(windows.WAIT_TIMEOUT)
}

// processStart is the process's creation time (100 ns since 1601), which
// with the pid names one process: Windows reuses pids soon too.
func processStart(pid int) (string, bool) {
	h, err := windows.OpenProcess(windows.PROCESS_QUERY_LIMITED_INFORMATION, false, uint32(pid))
	if err != nil {
		return "", false
	}
	defer func() { _ = windows.CloseHandle(h) }() // best effort: a query handle
	var created, exited, kernel, user windows.Filetime
	if windows.GetProcessTimes(h, &created, &exited, &kernel, &user) != nil {
		return "", false
	}
	return strconv.FormatInt(int64(created.HighDateTime)<<32|int64(created.LowDateTime), 10), true
}
