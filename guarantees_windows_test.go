package tether_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/windows"

	"github.com/tetherproc/tether"
	"github.com/tetherproc/tether/internal/testproc"
)

// The guarantee matrix on Windows: a parent (a program of the test binary)
// starts a tree through tether, whose Job Object is the whole of the
// guarantee there, then ends in each way a Windows process can end; every
// member of the tree must be gone soon after. The tree holds its leader (the
// child), a plain grandchild, one with DETACHED_PROCESS (no console), one in
// a new process group, and one started with CREATE_BREAKAWAY_FROM_JOB,
// which the job must refuse. See docs/guarantees.md for the figures.

func init() {
	testproc.Register("win-parent", helperWinParent)
	testproc.Register("win-tree", helperWinTree)
}

// winTreeKinds are the grandchildren helperWinTree starts, by creation flags.
var winTreeKinds = []struct {
	name  string
	flags uint32
}{
	{"grandchild", 0},
	{"detached", windows.DETACHED_PROCESS},
	{"new-group", windows.CREATE_NEW_PROCESS_GROUP},
	{"breakaway", windows.CREATE_BREAKAWAY_FROM_JOB},
}

// helperWinTree prints "member child PID", then starts one grandchild of
// each kind with os/exec, printing "member KIND PID" for each, or
// "refused KIND: ERROR" when Windows would not start it; then "tree ready",
// and waits to be killed.
func helperWinTree([]string) {
	fmt.Printf("member child %d\n", os.Getpid())
	for _, k := range winTreeKinds {
		path, argv, env := testproc.Command("member", "plain")
		c := exec.Command(path, argv[1:]...)
		c.Args[0], c.Env = argv[0], env // no stdout: only this program's lines reach the parent
		c.SysProcAttr = &syscall.SysProcAttr{CreationFlags: k.flags}
		if err := c.Start(); err != nil {
			fmt.Printf("refused %s: %v\n", k.name, err)
			continue
		}
		fmt.Printf("member %s %d\n", k.name, c.Process.Pid)
	}
	fmt.Println("tree ready")
	blockForever()
}

// helperWinParent starts a win-tree through tether, relays its lines, says
// "parent ready", and ends as args[0] says: return, exit, panic, or wait to
// be killed. args[1] is a token only its command line carries (see
// wineKill); args[2] is "tether", or "os/exec" for the control.
func helperWinParent(args []string) {
	path, argv, env := testproc.Command("win-tree")
	var out io.Reader
	if args[2] == "os/exec" { // the control: no Job Object
		c := exec.Command(path, argv[1:]...)
		c.Args[0], c.Env = argv[0], env
		r, err := c.StdoutPipe()
		if err == nil {
			err = c.Start()
		}
		if err != nil {
			fmt.Println("start:", err)
			os.Exit(2)
		}
		out = r
	} else {
		c := &tether.Cmd{Path: path, Args: argv, Env: env, Stdout: tether.Pipe()}
		p, err := c.Start(context.Background())
		if err != nil {
			fmt.Println("start:", err)
			os.Exit(2)
		}
		out = p.Stdout()
	}
	br := bufio.NewReader(out)
	var pids []int
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			fmt.Println("tree:", err)
			os.Exit(2)
		}
		fmt.Print(line)
		if f := strings.Fields(line); len(f) == 3 && f[0] == "member" {
			pid, _ := strconv.Atoi(f[2])
			pids = append(pids, pid)
		}
		if line == "tree ready\n" {
			break
		}
	}
	if args[0] == "Shutdown" {
		// Shutdown returns once every tree is gone: count, before this
		// process's own end could be what ended them.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := tether.Shutdown(ctx); err != nil {
			fmt.Println("shutdown:", err)
			os.Exit(2)
		}
		fmt.Println("alive-after-shutdown", len(testproc.Survivors(pids...)))
	}
	fmt.Println("parent ready")
	switch args[0] {
	case "return", "Shutdown":
		return
	case "exit":
		os.Exit(3)
	case "panic":
		panic("parent: panic")
	}
	blockForever() // the test ends it
}

func TestGuaranteesWindows(t *testing.T) {
	t.Parallel()
	for _, ending := range []string{"return", "exit", "panic", "TerminateProcess", "SIGKILL", "Shutdown"} {
		t.Run(ending, func(t *testing.T) {
			t.Parallel()
			if ending == "SIGKILL" && !underWine {
				t.Skip("a Windows process has no Unix process to SIGKILL; TerminateProcess is its hard end")
			}
			token := fmt.Sprintf("tether-matrix-%d-%s-%d", os.Getpid(), ending, time.Now().UnixNano())
			run := runWinParent(t, ending, token, "tether")
			if len(run.members) != len(winTreeKinds) { // the child and every kind but breakaway
				t.Fatalf("tree started %d members, want %d: %v", len(run.members), len(winTreeKinds), run.members)
			}
			if ending == "Shutdown" && run.afterShutdown != 0 {
				t.Errorf("%d members alive when Shutdown returned", run.afterShutdown)
			}
			if run.breakaway == "" {
				t.Errorf("CREATE_BREAKAWAY_FROM_JOB was not refused: the job lets a member leave")
			}
			for _, m := range run.survivors {
				t.Errorf("survivor: %s", m)
			}
			t.Logf("%s (parent's exit code %d): %d members, %d survivors, all gone %v after the parent ended; breakaway refused (%s)",
				ending, run.code, len(run.members), len(run.survivors), run.gone.Round(time.Millisecond), run.breakaway)
		})
	}
	// The control, so that the matrix can fail: the same tree started with
	// os/exec outlives its parent's os.Exit, every member of it.
	t.Run("control-os-exec", func(t *testing.T) {
		t.Parallel()
		run := runWinParent(t, "exit", "", "os/exec")
		if len(run.members) == 0 || len(run.survivors) != len(run.members) {
			t.Errorf("without tether %d of %d members survived; the control expects all", len(run.survivors), len(run.members))
		}
		// The cleanups kill the survivors, by the handles pinned.
	})
}

// winRun is what one parent's ending left: the tree's members ("KIND PID"),
// those still alive 10 s after the parent ended, how long the rest took to
// go, and why the breakaway member was refused.
type winRun struct {
	members, survivors []string
	gone               time.Duration
	breakaway          string
	code               int // the parent's exit code
	afterShutdown      int // members alive when the parent's Shutdown returned
}

func runWinParent(t *testing.T, ending, token, starter string) winRun {
	t.Helper()
	c, out := startHelper(t, "win-parent", ending, token, starter)
	parent := testproc.Pin(c.Process.Pid)
	t.Cleanup(parent.Kill)
	lines, stop := make(chan string), make(chan struct{})
	t.Cleanup(func() { close(stop) })
	go func() { // ends at EOF (the parent is gone), or when the test ends
		defer close(lines)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			case <-stop:
				return
			}
		}
	}()
	var run winRun
	pids := map[int]string{}
	timeout := time.After(30 * time.Second)
read:
	for {
		select {
		case line, ok := <-lines:
			if !ok {
				t.Fatal("parent's output ended before it was ready")
			}
			f := strings.Fields(line)
			switch {
			case line == "parent ready":
				break read
			case line == "tree ready":
			case len(f) == 3 && f[0] == "member":
				pid, err := strconv.Atoi(f[2])
				if err != nil {
					t.Fatalf("parent said %q", line)
				}
				pinned := testproc.Pin(pid) // now, while pid is surely that member
				t.Cleanup(pinned.Kill)      // normally gone already: then a no-op
				pids[pid] = f[1] + " " + f[2]
				run.members = append(run.members, pids[pid])
			case len(f) == 2 && f[0] == "alive-after-shutdown":
				run.afterShutdown, _ = strconv.Atoi(f[1])
			case strings.HasPrefix(line, "refused breakaway: "):
				run.breakaway = strings.TrimPrefix(line, "refused breakaway: ")
			default:
				t.Fatalf("parent said %q", line)
			}
		case <-timeout:
			t.Fatal("parent not ready after 30s")
		}
	}
	switch ending {
	case "TerminateProcess":
		parent.Kill()
	case "SIGKILL":
		wineKill(t, token)
	}
	bound := 10 * time.Second
	if starter == "os/exec" {
		bound = time.Second // the control's members survive: how long to look
	}
	waitErr := make(chan error, 1)
	go func() { waitErr <- c.Wait() }() // ends when the parent has exited
	select {
	case <-waitErr:
	case <-time.After(30 * time.Second):
		t.Fatal("parent did not end")
	}
	ended := time.Now()
	run.code = c.ProcessState.ExitCode()
	if ending == "SIGKILL" {
		// The shell marks the kill it did: the parent ended by it, not
		// by anything else.
		marker := `Z:\tmp\` + token + ".killed"
		deadline := time.Now().Add(5 * time.Second)
		for !exists(marker) && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond) // polled: the mark is a file another OS's process writes
		}
		if !exists(marker) {
			t.Fatal("the parent ended, but not by the shell's SIGKILL")
		}
		_ = os.Remove(marker) // best effort: a marker in /tmp
	}
	go func() { // drain what is left so nothing blocks writing; ends at EOF
		for range lines {
		}
	}()
	var all []int
	for pid := range pids {
		all = append(all, pid)
	}
	left := testproc.WaitGone(bound, all...)
	run.gone = time.Since(ended)
	for _, pid := range left {
		run.survivors = append(run.survivors, pids[pid])
	}
	return run
}

// wineKill SIGKILLs, from Linux, the Wine process whose command line holds
// token: the parent's, which Wine shows as the Windows command line. Wine
// starts a Linux program named by a Windows path as a Linux process of its
// own; the token reaches it in two halves, so that the shell's own command
// line does not match.
func wineKill(t *testing.T, token string) {
	t.Helper()
	const script = `exec 2>/dev/null; for d in /proc/[0-9]*; do p=${d#/proc/}; [ "$p" = "$$" ] && continue; ` +
		`case "$(tr '\0' ' ' <"$d/cmdline" 2>/dev/null)" in *"$1$2"*) kill -KILL "$p" && : >"/tmp/$1$2.killed";; esac; done`
	half := len(token) / 2
	app, err := windows.UTF16PtrFromString(`Z:\bin\sh`)
	if err != nil {
		t.Fatal(err)
	}
	line, err := windows.UTF16PtrFromString(windows.ComposeCommandLine([]string{"sh", "-c", script, "sh", token[:half], token[half:]}))
	if err != nil {
		t.Fatal(err)
	}
	si := &windows.StartupInfo{}
	si.Cb = uint32(unsafe.Sizeof(*si))
	var pi windows.ProcessInformation
	if err := windows.CreateProcess(app, line, nil, nil, false, 0, nil, nil, si, &pi); err != nil {
		t.Fatalf("start the Linux shell that SIGKILLs the parent: %v", err)
	}
	// Wine gives no handle to wait on for a Linux process: the test waits
	// for the parent's end instead.
	for _, h := range []windows.Handle{pi.Process, pi.Thread} {
		if h != 0 && h != windows.InvalidHandle {
			_ = windows.CloseHandle(h) // best effort: not used
		}
	}
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
