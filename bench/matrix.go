//go:build linux

package main

import (
	"bufio"
	"context"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/tetherproc/tether"
	"github.com/tetherproc/tether/internal/testproc"
	"github.com/tetherproc/tether/internal/treescript"
)

// The guarantee matrix against peers: each contender is a parent (or a
// wrapper) of the tree in internal/treescript, ended in each way that
// applies to it; we count the tree's processes alive 3 s after the parent is
// gone (zombies count as dead: they hold no resources but a pid) and whether
// the polite one cleaned up. Not part of make test: `go run ./bench -only matrix`.

const envMatrixParent = "TETHER_BENCH_MATRIX_PARENT"

var goEndings = []string{"return", "os.Exit", "log.Fatal", "panic", "SIGINT", "SIGTERM", "SIGHUP", "SIGKILL"}
var signalEndings = []string{"SIGINT", "SIGTERM", "SIGHUP", "SIGKILL"}

// matrixParent is the bench binary re-executed as a Go parent: "tether
// LEVEL" starts the tree with tether at that level, "os/exec" with a careful
// os/exec (Setpgid, Pdeathsig=SIGKILL).
func matrixParent(spec string) {
	f := strings.SplitN(spec, " ", 4) // mode level ending dir
	mode, level, ending, dir := f[0], f[1], f[2], f[3]
	var out *bufio.Reader
	switch mode {
	case "tether":
		c := &tether.Cmd{Path: "/bin/sh", Args: []string{"sh", "-c", treescript.Script, dir},
			Stdout: tether.Pipe(), StopTimeout: time.Second}
		for _, l := range []tether.Containment{tether.ContainGroup, tether.ContainKeeper, tether.ContainCgroup} {
			if l.String() == level {
				c.Containment = l
			}
		}
		p, err := c.Start(context.Background())
		if err != nil {
			fmt.Println("start:", err)
			os.Exit(2)
		}
		out = bufio.NewReader(p.Stdout())
	case "os/exec":
		c := exec.Command("/bin/sh", "-c", treescript.Script, dir)
		c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
		r, err := c.StdoutPipe()
		if err != nil {
			os.Exit(2)
		}
		if err := c.Start(); err != nil {
			fmt.Println("start:", err)
			os.Exit(2)
		}
		out = bufio.NewReader(r)
	}
	if err := treescript.Relay(out, treescript.Size, os.Stdout); err != nil {
		os.Exit(2)
	}
	fmt.Println("ready")
	switch ending {
	case "return":
		return
	case "os.Exit":
		os.Exit(3)
	case "log.Fatal":
		log.Fatal("parent: fatal")
	case "panic":
		panic("parent: panic")
	}
	select {}
}

type matrixResult struct {
	survivors, total int
	cleaned          bool
}

// matrixRun starts argv as the parent, reads the tree's pids, ends it and
// counts.
func matrixRun(argv []string, env []string, ending string, wrapped bool) (matrixResult, error) {
	dir, err := os.MkdirTemp("", "tether-matrix-")
	if err != nil {
		return matrixResult{}, err
	}
	defer os.RemoveAll(dir)
	args := append([]string(nil), argv[1:]...)
	if wrapped {
		args = append(args, "sh", "-c", treescript.Script, dir)
	}
	c := exec.Command(argv[0], args...)
	c.Env = env
	if !wrapped {
		c.Env = append(c.Env, envMatrixParent+"="+strings.Join([]string{argv[1], argv[2], ending, dir}, " "))
		c.Args = argv[:1]
	}
	stdout, err := c.StdoutPipe()
	if err != nil {
		return matrixResult{}, err
	}
	if err := c.Start(); err != nil {
		return matrixResult{}, err
	}
	sc := bufio.NewScanner(stdout)
	var pids []int
	polite := 0
	for len(pids) < treescript.Size && sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 || f[0] != "pid" {
			_ = c.Process.Kill()
			_ = c.Wait()
			return matrixResult{}, fmt.Errorf("parent said %q", sc.Text())
		}
		pid, _ := strconv.Atoi(f[1])
		if len(f) == 3 {
			polite = pid
		}
		pids = append(pids, pid)
	}
	if len(pids) < treescript.Size {
		_ = c.Process.Kill()
		_ = c.Wait()
		return matrixResult{}, fmt.Errorf("tree reported %d pids", len(pids))
	}
	if !wrapped {
		sc.Scan() // "ready"
	}
	if sig, ok := map[string]syscall.Signal{"SIGINT": syscall.SIGINT, "SIGTERM": syscall.SIGTERM,
		"SIGHUP": syscall.SIGHUP, "SIGKILL": syscall.SIGKILL}[ending]; ok {
		_ = c.Process.Signal(sig)
	}
	go func() { // ends at EOF, when nothing holds the pipe
		for sc.Scan() {
		}
	}()
	done := make(chan struct{})
	go func() { _ = c.Wait(); close(done) }() // ends when the parent is reaped
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		_ = c.Process.Kill()
		<-done
	}
	// The grace is 1 s where there is one; 3 s covers it on a busy machine.
	deadline := time.Now().Add(3 * time.Second)
	var alive []int
	for {
		alive = alive[:0]
		for _, pid := range pids {
			if testproc.Alive(pid) {
				alive = append(alive, pid)
			}
		}
		if len(alive) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, pid := range alive {
		_ = syscall.Kill(pid, syscall.SIGKILL) // leave nothing for the next run
	}
	_, err = os.Stat(filepath.Join(dir, "cleaned-"+strconv.Itoa(polite)))
	return matrixResult{survivors: len(alive), total: len(pids), cleaned: err == nil}, nil
}

func benchMatrix() {
	exe, err := os.Executable()
	if err != nil {
		fatal(err)
	}
	type contender struct {
		name    string
		argv    []string
		wrapped bool
		endings []string
	}
	cs := []contender{
		{"tether, cgroup level", []string{exe, "tether", "cgroup"}, false, goEndings},
		{"tether, keeper level", []string{exe, "tether", "keeper"}, false, goEndings},
		{"tether, process-group level", []string{exe, "tether", "group"}, false, goEndings},
		{"careful os/exec (Setpgid + Pdeathsig)", []string{exe, "os/exec", "-"}, false, goEndings},
	}
	tetherBin := buildTether()
	for _, w := range []struct {
		name string
		argv []string
	}{
		{"tether run (wrapper)", []string{tetherBin, "run", "-grace", "1s", "--"}},
		{"tini -s -g", []string{"tini", "-s", "-g", "--"}},
		{"dumb-init", []string{"dumb-init"}},
		// Without --unshare-pid: the tree must report host pids.
		{"bwrap --die-with-parent", []string{"bwrap", "--dev-bind", "/", "/", "--die-with-parent", "--"}},
	} {
		if _, err := exec.LookPath(w.argv[0]); err != nil {
			fmt.Printf("(%s not installed: apt-get install tini dumb-init bubblewrap)\n", w.argv[0])
			continue
		}
		cs = append(cs, contender{w.name, w.argv, true, signalEndings})
	}
	fmt.Printf("\nGuarantee matrix: survivors of %d (3 s after the parent is gone) / polite child cleaned up\n\n", treescript.Size)
	fmt.Print("| parent | " + strings.Join(goEndings, " | ") + " |\n|---|" + strings.Repeat("---|", len(goEndings)) + "\n")
	for _, c := range cs {
		row := "| " + c.name + " |"
		for _, e := range goEndings {
			if !contains(c.endings, e) {
				row += " n/a |"
				continue
			}
			r, err := matrixRun(c.argv, os.Environ(), e, c.wrapped)
			if err != nil {
				row += " error: " + err.Error() + " |"
				continue
			}
			clean := "no cleanup"
			if r.cleaned {
				clean = "cleaned"
			}
			row += fmt.Sprintf(" %d, %s |", r.survivors, clean)
		}
		fmt.Println(row)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
