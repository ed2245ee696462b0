package tether

import (
	"cmp"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/windows"
)

// groupProc is a started child on Windows: its process handle, and a Job Object
// that holds its whole tree.
//
// The job has JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE and no breakaway permission,
// and the child is assigned to it while still suspended, before it runs an
// instruction. So every descendant is in the job and none can leave it, and
// the kernel kills them all when the last handle to the job is closed: by
// release, or by the kernel itself when this process ends, however it ends
// (a dead process's handles are closed for it). That is the Windows
// counterpart of the keeper's guarantee, with no extra process. The job
// handle is never inheritable, so no child can keep the job open.
//
// While process is open the pid cannot be reused, so the console control
// events that signal sends by pid cannot reach a stranger; release closes it
// (the zombie's role on Linux).
type groupProc struct {
	pid     int
	process windows.Handle
	job     windows.Handle
	killed  atomic.Bool // we terminated the job; read by wait, set by signal
}

// killExitCode is the exit code TerminateJobObject gives every process of
// the tree: 1, like os.Process.Kill's TerminateProcess on Windows.
const killExitCode = 1

// waitResult is what Windows told us about an exit.
type waitResult struct {
	code   int
	killed bool // ended by our TerminateJobObject: reported as SIGKILL
	utime  time.Duration
	stime  time.Duration
	maxRSS int64
}

func (w waitResult) fill(e *Exit) {
	e.Code = w.code
	if w.killed {
		e.Code, e.Signal = -1, syscall.SIGKILL
	}
	e.UserTime, e.SystemTime, e.MaxRSS = w.utime, w.stime, w.maxRSS
}

var sigKill os.Signal = syscall.SIGKILL
var sigTerm os.Signal = syscall.SIGTERM

// sigCont is nil: Windows has no SIGSTOP, so a stop has no stopped process
// to continue.
var sigCont os.Signal

// toSyscallSignal accepts the signals Windows has a counterpart for (see
// groupProc.signal), so that Start rejects a StopSignal it could never deliver.
func toSyscallSignal(sig os.Signal) (syscall.Signal, error) {
	s, ok := sig.(syscall.Signal)
	if !ok {
		return 0, fmt.Errorf("tether: signal %v is not a syscall.Signal", sig)
	}
	switch s {
	case syscall.SIGKILL, syscall.SIGTERM, syscall.SIGINT:
		return s, nil
	}
	return 0, unsupportedSignal(s)
}

func unsupportedSignal(s syscall.Signal) error {
	return fmt.Errorf("tether: signal %v has no counterpart on Windows (SIGTERM and SIGINT are CTRL_BREAK_EVENT, SIGKILL is TerminateJobObject): %w",
		s, errors.ErrUnsupported)
}

func signalNumber(s os.Signal) int {
	n, _ := s.(syscall.Signal)
	return int(n)
}

// startOS creates the child suspended, in a new console process group
// (CREATE_NEW_PROCESS_GROUP: the terminal's Ctrl-C reaches the parent, which
// decides, and the child can be sent CTRL_BREAK_EVENT on its own), puts it in
// a new kill-on-close job, and only then lets its main thread run. os/exec
// cannot do this: it gives no handle to the main thread to resume.
//
// files are the child's stdin, stdout and stderr, then its descriptors 3
// and up (ExtraFiles, the IPC channel); a nil or missing one leaves the
// child without that handle. Windows has no inherited descriptor numbers:
// those past the third reach the child as the C runtime's descriptor table
// (crtfd.go), as libuv passes them, where a C runtime (Node's, a C
// program's) finds them by number; a Go child has no C runtime, and only
// tether.ParentChannel reads the table. A relative path is taken relative
// to dir, as on Unix.
func startOS(path string, argv, env []string, dir string, files []*os.File, _ bool) (*groupProc, error) {
	if dir != "" {
		abs, err := filepath.Abs(dir) // CreateProcess wants a full path
		if err != nil {
			return nil, err
		}
		dir = abs
		if path != "" && filepath.VolumeName(path) == "" && !os.IsPathSeparator(path[0]) {
			// CreateProcess would look for it in our own directory.
			path = filepath.Join(dir, path)
		}
	}
	app, err := windows.UTF16PtrFromString(path)
	if err != nil {
		return nil, err
	}
	// ComposeCommandLine quotes argv for CommandLineToArgvW and the C
	// runtime; argv[0] by the looser rules those apply to a program name.
	// A .bat or .cmd file is run by cmd.exe, which parses the line by its
	// own rules: do not pass it untrusted arguments.
	cmdLine, err := windows.UTF16PtrFromString(windows.ComposeCommandLine(argv))
	if err != nil {
		return nil, err
	}
	var dirp *uint16
	if dir != "" {
		if dirp, err = windows.UTF16PtrFromString(dir); err != nil {
			return nil, err
		}
	}
	envb, err := envBlock(env)
	if err != nil {
		return nil, err
	}

	std, err := inheritStdio(files)
	if err != nil {
		return nil, err
	}
	defer std.close()
	attrs, err := windows.NewProcThreadAttributeList(1)
	if err != nil {
		return nil, fmt.Errorf("proc thread attribute list: %w", err)
	}
	defer attrs.Delete()
	si := &windows.StartupInfoEx{ProcThreadAttributeList: attrs.List()}
	si.Cb = uint32(unsafe.Sizeof(*si))
	si.Flags = windows.STARTF_USESTDHANDLES
	si.StdInput, si.StdOutput, si.StdErr = std.std[0], std.std[1], std.std[2]
	crt, err := std.crtTable()
	if err != nil {
		return nil, err
	}
	if crt != nil {
		sr := (*startupInfoW)(unsafe.Pointer(&si.StartupInfo))
		sr.CbReserved2, sr.LpReserved2 = uint16(len(crt)), &crt[0]
	}
	inherit := len(std.list) > 0
	if inherit {
		// The child inherits exactly these, whatever else in this process
		// is inheritable (os.Pipe's ends are: without the list, a child
		// started at the same moment by another Start would get our pipes
		// and hold them open past our child's exit).
		err := attrs.Update(windows.PROC_THREAD_ATTRIBUTE_HANDLE_LIST,
			unsafe.Pointer(&std.list[0]), uintptr(len(std.list))*unsafe.Sizeof(std.list[0]))
		if err != nil {
			return nil, fmt.Errorf("inherited handle list: %w", err)
		}
	}

	job, err := newTreeJob()
	if err != nil {
		return nil, fmt.Errorf("job object: %w", err)
	}
	const flags = windows.CREATE_SUSPENDED | windows.CREATE_NEW_PROCESS_GROUP |
		windows.CREATE_UNICODE_ENVIRONMENT | windows.EXTENDED_STARTUPINFO_PRESENT
	var pi windows.ProcessInformation
	for try := 1; ; try++ {
		// Wine 8, under load: now and then the new process dies in Wine's
		// own start-up ("wine client error: sendmsg: Bad file
		// descriptor"), before any of its code ran: CreateProcess says
		// ERROR_INTERNAL_ERROR, or it succeeds and the process handle is
		// already invalid when it is assigned to the job. Trying again is
		// safe for that reason (the child was suspended). About one run in
		// three of the Windows suite met one or the other.
		again := try < 3 && underWine()
		err = windows.CreateProcess(app, cmdLine, nil, nil, inherit, flags, &envb[0], dirp, &si.StartupInfo, &pi)
		if err != nil {
			if again && errors.Is(err, windows.ERROR_INTERNAL_ERROR) {
				continue
			}
			break
		}
		if aerr := windows.AssignProcessToJobObject(job, pi.Process); aerr != nil {
			if again && errors.Is(aerr, windows.ERROR_INVALID_HANDLE) {
				discardProcess(&pi)
				continue
			}
			runtime.KeepAlive(std)
			runtime.KeepAlive(crt)
			discard(&pi, job)
			return nil, fmt.Errorf("assign to job object: %w", aerr)
		}
		break
	}
	runtime.KeepAlive(std) // the attribute list points into std.list
	runtime.KeepAlive(crt) // and si into crt
	if err != nil {
		_ = windows.CloseHandle(job) // best effort: the job is empty
		// A missing program is ERROR_FILE_NOT_FOUND or
		// ERROR_PATH_NOT_FOUND, which match fs.ErrNotExist; a forbidden
		// one ERROR_ACCESS_DENIED, which matches fs.ErrPermission.
		return nil, err
	}
	if _, err := windows.ResumeThread(pi.Thread); err != nil {
		discard(&pi, job)
		return nil, fmt.Errorf("resume main thread: %w", err)
	}
	_ = windows.CloseHandle(pi.Thread) // best effort: the thread is running and we never touch it again
	return &groupProc{pid: int(pi.ProcessId), process: pi.Process, job: job}, nil
}

// discard undoes a CreateProcess whose child never ran (it is suspended, so
// none of its code runs), closing every handle startOS holds for it.
func discard(pi *windows.ProcessInformation, job windows.Handle) {
	discardProcess(pi)
	_ = windows.CloseHandle(job) // best effort: as in discardProcess
}

// discardProcess is discard without the job: the process and its thread.
func discardProcess(pi *windows.ProcessInformation) {
	_ = windows.TerminateProcess(pi.Process, killExitCode) // best effort: closing the job kills it too if it was assigned
	// TerminateProcess only starts the termination: wait, boundedly, so
	// that a failed Start leaves no process behind.
	_, _ = windows.WaitForSingleObject(pi.Process, 5000) // best effort: bounded
	_ = windows.CloseHandle(pi.Thread)                   // best effort: as above
	_ = windows.CloseHandle(pi.Process)                  // best effort: as above
}

// underWine says whether this is Wine rather than Windows: Wine's ntdll
// exports wine_get_version. Only a workaround of a Wine fault asks.
var underWine = sync.OnceValue(func() bool {
	return windows.NewLazySystemDLL("ntdll.dll").NewProc("wine_get_version").Find() == nil
})

// kernel32 procedures called through LazyProc.Call, which is
// //go:uintptrescapes: the buffers passed as uintptr stay alive and in place
// during the call. x/sys's SetInformationJobObject takes its buffer as a
// plain uintptr, which promises neither.
var (
	kernel32                    = windows.NewLazySystemDLL("kernel32.dll")
	procSetInformationJobObject = kernel32.NewProc("SetInformationJobObject")
	procGetProcessMemoryInfo    = kernel32.NewProc("K32GetProcessMemoryInfo")
)

// newTreeJob creates an unnamed, non-inheritable Job Object whose processes
// are all killed when its last handle is closed. It sets no
// JOB_OBJECT_LIMIT_BREAKAWAY_OK or SILENT_BREAKAWAY_OK: a descendant asking
// for CREATE_BREAKAWAY_FROM_JOB fails to start rather than escape.
func newTreeJob() (windows.Handle, error) {
	job, err := windows.CreateJobObject(nil, nil)
	if err != nil {
		return 0, err
	}
	info := new(windows.JOBOBJECT_EXTENDED_LIMIT_INFORMATION)
	info.BasicLimitInformation.LimitFlags = windows.JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE
	r, _, e := procSetInformationJobObject.Call(uintptr(job), windows.JobObjectExtendedLimitInformation,
		uintptr(unsafe.Pointer(info)), unsafe.Sizeof(*info))
	if r == 0 {
		_ = windows.CloseHandle(job) // best effort: nothing is in it
		return 0, fmt.Errorf("set JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE: %w", e)
	}
	return job, nil
}

// childStdio holds inheritable duplicates of the child's standard handles.
// startOS owns them until CreateProcess has copied them into the child, and
// closes them then, as it does on every error path.
type childStdio struct {
	std  []windows.Handle // by descriptor, at least 3; 0 where the child gets none
	list []windows.Handle // each distinct handle once: the inherit list
}

// inheritStdio duplicates each file's handle as inheritable; a file without
// a handle (nil, or a GUI program's os.Stdin) gives the child none. It goes
// through
// SyscallConn rather than Fd, which would take a caller's File (File(),
// Inherit()) off Go's I/O completion port, and keeps each file from being
// closed while it is duplicated.
func inheritStdio(files []*os.File) (*childStdio, error) {
	s := &childStdio{std: make([]windows.Handle, max(3, len(files)))}
	for i, f := range files {
		if f == nil {
			continue
		}
		if j := slices.Index(files[:i], f); j >= 0 {
			s.std[i] = s.std[j] // stdout and stderr sharing one pipe
			continue
		}
		var h windows.Handle
		var err error
		if raw, ok := takeChildEnd(f); ok { // an IPC channel's pipe
			h, err = dupHandleInheritable(raw)
			_ = windows.CloseHandle(raw) // best effort: the child gets the duplicate
		} else {
			h, err = dupInheritable(f)
		}
		if err != nil {
			s.close()
			return nil, fmt.Errorf("%s: %w", descriptorName(i), err)
		}
		if h != 0 {
			s.std[i] = h
			s.list = append(s.list, h)
		}
	}
	return s, nil
}

func descriptorName(i int) string {
	if i < len(stdioNames) {
		return stdioNames[i]
	}
	return fmt.Sprintf("descriptor %d", i)
}

// crtTable is the C runtime descriptor table for descriptors 3 and up, nil
// if there are none. Descriptors 0 to 2 are left out of it (no handle): the
// child's runtime then takes STARTUPINFO's standard handles for them.
func (s *childStdio) crtTable() ([]byte, error) {
	if len(s.std) <= 3 {
		return nil, nil
	}
	handles := make([]uint64, len(s.std))
	flags := make([]byte, len(s.std))
	for i, h := range s.std {
		handles[i] = crtNoHandle
		if i < 3 || h == 0 {
			continue
		}
		handles[i], flags[i] = uint64(h), crtFOPEN
		if t, _ := windows.GetFileType(h); t == windows.FILE_TYPE_PIPE {
			flags[i] |= crtFPIPE
		} else if t == windows.FILE_TYPE_CHAR {
			flags[i] |= crtFDEV
		}
	}
	return crtTable(handles, flags)
}

func dupHandleInheritable(h windows.Handle) (windows.Handle, error) {
	self := windows.CurrentProcess()
	var dup windows.Handle
	if err := windows.DuplicateHandle(self, h, self, &dup, 0, true, windows.DUPLICATE_SAME_ACCESS); err != nil {
		return 0, fmt.Errorf("duplicate handle: %w", err)
	}
	return dup, nil
}

func dupInheritable(f *os.File) (windows.Handle, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return 0, err
	}
	var dup windows.Handle
	var derr error
	err = rc.Control(func(fd uintptr) {
		if h := windows.Handle(fd); h == 0 || h == windows.InvalidHandle {
			return // a GUI program's os.Stdin: the child gets no handle either
		}
		self := windows.CurrentProcess()
		derr = windows.DuplicateHandle(self, windows.Handle(fd), self, &dup, 0, true, windows.DUPLICATE_SAME_ACCESS)
	})
	if err == nil {
		err = derr
	}
	if err != nil {
		if dup != 0 {
			_ = windows.CloseHandle(dup) // best effort: never handed out
		}
		return 0, fmt.Errorf("duplicate handle: %w", err)
	}
	return dup, nil
}

func (s *childStdio) close() {
	for _, h := range s.list {
		_ = windows.CloseHandle(h) // best effort: the child has its own copy, or never started
	}
	s.list = nil
}

// envBlock builds CreateProcess's environment: each "KEY=value" and a NUL,
// sorted by name without regard to case as Windows documents it wants, then
// one more NUL. An entry holding a NUL is an error (EINVAL).
func envBlock(env []string) ([]uint16, error) {
	env = slices.Clone(withSystemRoot(env))
	// Stable, so of duplicate names the first given stays first: Windows
	// lookups scan the block in order, and on Unix getenv takes the first
	// match too.
	slices.SortStableFunc(env, func(a, b string) int {
		return cmp.Compare(strings.ToUpper(envName(a)), strings.ToUpper(envName(b)))
	})
	var b []uint16
	for _, kv := range env {
		if kv == "" {
			continue // its lone NUL would end the block here
		}
		u, err := windows.UTF16FromString(kv) // NUL-terminated
		if err != nil {
			return nil, fmt.Errorf("environment entry %q: %w", kv, err)
		}
		b = append(b, u...)
	}
	if len(b) == 0 {
		b = append(b, 0) // an empty block is two NULs
	}
	return append(b, 0), nil
}

// envName is the name in "KEY=value". Windows keeps per-drive directories in
// hidden entries like "=C:=C:\dir", whose name starts with '='.
func envName(kv string) string {
	if len(kv) > 0 {
		if i := strings.IndexByte(kv[1:], '='); i >= 0 {
			return kv[:i+1]
		}
	}
	return kv
}

// withSystemRoot adds the parent's SYSTEMROOT to an environment that lacks
// it, as os/exec does: without it Windows cannot find system DLLs, and a
// child's networking and crypto fail (golang/go#25210, golang/go#25513).
func withSystemRoot(env []string) []string {
	for _, kv := range env {
		if k, _, ok := strings.Cut(kv, "="); ok && strings.EqualFold(k, "SYSTEMROOT") {
			return env
		}
	}
	if v, ok := os.LookupEnv("SYSTEMROOT"); ok {
		return append(env[:len(env):len(env)], "SYSTEMROOT="+v)
	}
	return env
}

// wait blocks until the process exits and reports how. It parks the calling
// goroutine's OS thread in WaitForSingleObject, so each waiting child costs a
// thread (Go's os.Process.Wait does the same). One thread could serve every
// child through a completion port associated with the jobs
// (JOB_OBJECT_MSG_EXIT_PROCESS); not done yet.
func (h *groupProc) wait() (waitResult, error) {
	if _, err := windows.WaitForSingleObject(h.process, windows.INFINITE); err != nil {
		return waitResult{}, fmt.Errorf("tether: wait for pid %d: %w", h.pid, err)
	}
	var code uint32
	if err := windows.GetExitCodeProcess(h.process, &code); err != nil {
		return waitResult{}, fmt.Errorf("tether: exit code of pid %d: %w", h.pid, err)
	}
	// An exit with killExitCode after we terminated the job is our kill. A
	// process that exited with 1 by itself just as it was killed is
	// misreported as killed; exit codes cannot tell the two apart.
	w := waitResult{code: int(code), killed: code == killExitCode && h.killed.Load()}
	var created, exited, kernel, user windows.Filetime
	if windows.GetProcessTimes(h.process, &created, &exited, &kernel, &user) == nil {
		w.utime, w.stime = filetimeDuration(user), filetimeDuration(kernel)
	}
	w.maxRSS = peakWorkingSet(h.process)
	return w, nil
}

// filetimeDuration converts a FILETIME that holds a duration (100 ns units),
// not an instant: Filetime.Nanoseconds would subtract the 1601 epoch.
func filetimeDuration(ft windows.Filetime) time.Duration {
	return time.Duration(int64(ft.HighDateTime)<<32|int64(ft.LowDateTime)) * 100
}

// processMemoryCounters is PROCESS_MEMORY_COUNTERS (psapi.h).
type processMemoryCounters struct {
	cb                         uint32
	pageFaultCount             uint32
	peakWorkingSetSize         uintptr
	workingSetSize             uintptr
	quotaPeakPagedPoolUsage    uintptr
	quotaPagedPoolUsage        uintptr
	quotaPeakNonPagedPoolUsage uintptr
	quotaNonPagedPoolUsage     uintptr
	pagefileUsage              uintptr
	peakPagefileUsage          uintptr
}

// peakWorkingSet is the process's peak working set in bytes, Windows' nearest
// to a peak RSS; 0 if Windows will not say.
func peakWorkingSet(process windows.Handle) int64 {
	if procGetProcessMemoryInfo.Find() != nil {
		return 0
	}
	c := new(processMemoryCounters)
	c.cb = uint32(unsafe.Sizeof(*c))
	r, _, _ := procGetProcessMemoryInfo.Call(uintptr(process), uintptr(unsafe.Pointer(c)), uintptr(c.cb))
	if r == 0 {
		return 0
	}
	return int64(c.peakWorkingSetSize)
}

// signal acts on the tree. SIGKILL terminates the job: every process in it,
// at once. SIGTERM and SIGINT are a CTRL_BREAK_EVENT to the child's console
// process group, which its descendants join unless they ask for a group of
// their own; Go programs see it as os.Interrupt, Node as SIGBREAK, and a
// program that does not handle it exits with STATUS_CONTROL_C_EXIT
// (0xC000013A), which Exit reports as that code. Only console programs
// attached to this process's console receive it: a GUI program ignores it
// (Stop then escalates after StopTimeout), and when this process has no
// console (a service, a GUI program) Windows refuses to send it. In that
// case the tree is terminated at once instead: a stop signal that does
// nothing would leave the tree running until close.
func (h *groupProc) signal(sig syscall.Signal) error {
	switch sig {
	case syscall.SIGKILL:
		return h.terminate()
	case syscall.SIGTERM, syscall.SIGINT:
		err := windows.GenerateConsoleCtrlEvent(windows.CTRL_BREAK_EVENT, uint32(h.pid))
		if err == nil {
			return nil
		}
		if terr := h.terminate(); terr != nil {
			return fmt.Errorf("GenerateConsoleCtrlEvent: %w; then %w", err, terr)
		}
		return nil
	}
	return unsupportedSignal(sig)
}

func (h *groupProc) terminate() error {
	h.killed.Store(true)
	if err := windows.TerminateJobObject(h.job, killExitCode); err != nil {
		return fmt.Errorf("TerminateJobObject: %w", err)
	}
	return nil
}

// sweep kills whatever of the tree is still in the job.
func (h *groupProc) sweep() {
	_ = windows.TerminateJobObject(h.job, killExitCode) // best effort: release's close kills them too
}

// release closes the job, which kills any member still in it (the tree does
// not outlive its Process's close on Windows, stopped or not), and the
// process handle, which frees the pid. Called once, by the monitor, after
// wait.
func (h *groupProc) release() {
	_ = windows.CloseHandle(h.job)     // best effort: nothing else uses it
	_ = windows.CloseHandle(h.process) // best effort: as above
}
