package main

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tetherproc/tether/internal/oci"
)

// tether run as PID 1 of a runc container whose root filesystem holds no
// libc: only tether built with CGO_ENABLED=0 (as `make release` builds it)
// and a static stage program (internal/oci/stage). The exit status passes
// through, runc kill's SIGTERM reaches the program and the container ends
// with its status, and orphans left in the container are reaped.
//
// Needs root and runc (.ci/run installs Debian's). The containers' cgroups
// are made under this test run's own cgroup (TestMain), never elsewhere.
func TestContainerPID1(t *testing.T) {
	t.Parallel()
	ctr := newContainers(t)
	dir := t.TempDir()
	tetherBin := goBuildStatic(t, dir, "tether", ".")
	stage := goBuildStatic(t, dir, "stage", "github.com/tetherproc/tether/internal/oci/stage")
	files := map[string]string{"/tether": tetherBin, "/stage": stage}
	for _, bin := range files {
		if err := oci.Static(bin); err != nil {
			t.Fatalf("CGO_ENABLED=0 gave a binary that needs libc: %v", err)
		}
	}
	run := func(stageArgs ...string) []string {
		return append([]string{"/tether", "run", "--", "/stage"}, stageArgs...)
	}

	t.Run("rootfs-without-libc", func(t *testing.T) {
		t.Parallel()
		c := ctr.start(t, files, run("exit", "0"))
		if code := c.wait(t); code != 0 {
			t.Fatalf("exit status %d, want 0", code)
		}
		// What runc saw as / had the two static binaries and the mount
		// points runc made, nothing else: no loader, no libc.
		var found []string
		_ = filepath.WalkDir(c.rootfs, func(path string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				found = append(found, strings.TrimPrefix(path, c.rootfs))
			}
			return nil
		})
		if strings.Join(found, " ") != "/stage /tether" {
			t.Fatalf("root filesystem holds %v, want only /stage and /tether", found)
		}
	})

	for _, code := range []int{0, 1, 7, 255} {
		t.Run("exit-"+strconv.Itoa(code), func(t *testing.T) {
			t.Parallel()
			c := ctr.start(t, files, run("exit", strconv.Itoa(code)))
			if got := c.wait(t); got != code {
				t.Fatalf("the program exited %d; the container %d", code, got)
			}
		})
	}

	t.Run("killed-by-SIGKILL", func(t *testing.T) {
		t.Parallel()
		c := ctr.start(t, files, run("kill"))
		if got := c.wait(t); got != 128+9 {
			t.Fatalf("a program killed by SIGKILL: container exited %d, want 137", got)
		}
	})

	// docker stop's first step: runc kill sends SIGTERM to PID 1.
	t.Run("SIGTERM-handled", func(t *testing.T) {
		t.Parallel()
		c := ctr.start(t, files, run("term", "42"))
		c.expect(t, "ready")
		c.runc(t, "kill", c.id, "TERM")
		if got := c.wait(t); got != 42 {
			t.Fatalf("the program exits 42 on SIGTERM; the container exited %d", got)
		}
	})
	t.Run("SIGTERM-default", func(t *testing.T) {
		t.Parallel()
		c := ctr.start(t, files, run("wait"))
		c.expect(t, "ready")
		c.runc(t, "kill", c.id, "TERM")
		if got := c.wait(t); got != 128+15 {
			t.Fatalf("a program killed by SIGTERM: container exited %d, want 143", got)
		}
	})

	// Orphans of the program are reaped: the program sees each one's /proc
	// entry go, and no process in the container is a zombie.
	t.Run("orphans-reaped", func(t *testing.T) {
		t.Parallel()
		c := ctr.start(t, files, run("orphans", "5", "10s"))
		c.expect(t, "orphans 5 reaped 5")
		c.expect(t, "ready")
		ps := c.ps(t)
		t.Logf("container %s: %v", c.id, ps)
		if ps[0].Comm != "tether" {
			t.Errorf("PID 1 is %q, not tether", ps[0].Comm)
		}
		// As PID 1 tether runs alone, without a keeper: the kernel kills
		// the namespace if it dies (DESIGN.md).
		if len(ps) != 2 || ps[1].Comm != "stage" {
			t.Errorf("container holds %v, want tether and the program alone", ps)
		}
		if z := c.zombies(t, 0); len(z) > 0 {
			t.Errorf("zombies in the container: %v", z)
		}
		c.runc(t, "kill", c.id, "TERM")
		if got := c.wait(t); got != 0 {
			t.Fatalf("container exited %d, want 0", got)
		}
	})

	// The control for the one above: with the stage itself as PID 1 (a Go
	// program that reaps only its own children) the same orphans stay
	// zombies, and both checks see them.
	t.Run("control-no-init-leaves-zombies", func(t *testing.T) {
		t.Parallel()
		c := ctr.start(t, map[string]string{"/stage": stage}, []string{"/stage", "orphans", "3", "300ms"})
		c.expect(t, "orphans 3 reaped 0")
		c.expect(t, "ready")
		if z := c.zombies(t, 3); len(z) != 3 {
			t.Errorf("zombies in the container: %v, want 3", z)
		}
		c.runc(t, "kill", c.id, "TERM")
		if got := c.wait(t); got != 0 {
			t.Fatalf("container exited %d, want 0", got)
		}
	})
}

// containers starts this test's runc containers.
type containers struct {
	runc *oci.Runc
	base string // prefix of container ids: unique to this test
	n    atomic.Int32
}

// newContainers skips the test, saying why, where runc cannot be run here
// as the test needs: not installed, not root, or no cgroup of the test run's
// own to make the containers' cgroups in.
func newContainers(t *testing.T) *containers {
	t.Helper()
	path, err := exec.LookPath("runc")
	if err != nil {
		t.Skip("runc is not installed (apt-get install runc): ", err)
	}
	if os.Geteuid() != 0 {
		t.Skip("runc needs root to make containers")
	}
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("go is not in PATH: the test builds static binaries with it")
	}
	cg, err := oci.OwnCgroup()
	if err != nil {
		t.Skip("no cgroup v2 here: ", err)
	}
	// TestMain moved the run into a cgroup of its own (testcgroup); if it
	// could not, the containers' cgroups would be made beside other
	// programs': don't.
	if !strings.HasPrefix(filepath.Base(cg), "tether-cli-test-") {
		t.Skipf("this run is not in a cgroup of its own (it is in %s): containers would be made outside it", cg)
	}
	var rnd [4]byte
	_, _ = rand.Read(rnd[:]) // never fails (crypto/rand)
	return &containers{
		runc: &oci.Runc{Path: path, Root: t.TempDir(), CgroupDir: cg},
		base: fmt.Sprintf("tether-test-%d-%s", os.Getpid(), hex.EncodeToString(rnd[:])),
	}
}

// goBuildStatic builds pkg into dir/name as `make release` does.
func goBuildStatic(t *testing.T, dir, name, pkg string) string {
	t.Helper()
	bin := filepath.Join(dir, name)
	b := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", bin, pkg)
	b.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := b.CombinedOutput(); err != nil {
		t.Fatalf("CGO_ENABLED=0 go build %s: %v\n%s", pkg, err, out)
	}
	return bin
}

// container is one `runc run`, in the foreground, with its output read line
// by line.
type container struct {
	ctrs   *containers
	id     string
	rootfs string
	cmd    *exec.Cmd
	lines  chan string   // the container's stdout and stderr; closed at EOF
	done   chan struct{} // closed when runc run has been reaped
	err    error         // runc run's Wait; set before done is closed
}

const containerBound = 30 * time.Second

func (cs *containers) start(t *testing.T, files map[string]string, args []string) *container {
	t.Helper()
	id := fmt.Sprintf("%s-%d", cs.base, cs.n.Add(1))
	bundle := t.TempDir()
	err := oci.WriteBundle(bundle, oci.Bundle{Files: files, Args: args, CgroupsPath: "/runc-" + id})
	if err != nil {
		t.Fatal(err)
	}
	c := &container{ctrs: cs, id: id, rootfs: filepath.Join(bundle, "rootfs"),
		lines: make(chan string, 64), done: make(chan struct{})}
	c.cmd = cs.runc.Command("run", "--bundle", bundle, id)
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	c.cmd.Stdout, c.cmd.Stderr = pw, pw
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	_ = pw.Close() // runc and the container hold their copies
	// Owner: this container; ends at EOF, once runc and everything in the
	// container have exited (or been killed by the cleanup below).
	go func() {
		defer close(c.lines)
		defer pr.Close()
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			c.lines <- sc.Text()
		}
	}()
	// Owner: this container; ends when runc run is reaped.
	go func() {
		c.err = c.cmd.Wait()
		close(c.done)
	}()
	t.Cleanup(func() {
		// Whatever the test did: the container is removed (a no-op once
		// runc run has returned: it deletes its container itself), and
		// runc run does not outlive the test.
		_ = cs.runc.Command("delete", "-f", id).Run() // best effort: usually gone already
		select {
		case <-c.done:
		case <-time.After(10 * time.Second):
			_ = c.cmd.Process.Kill()
			t.Errorf("runc run %s still running after delete -f", id)
		}
	})
	return c
}

// expect waits for the next output line and fails unless it is want.
func (c *container) expect(t *testing.T, want string) {
	t.Helper()
	select {
	case line, ok := <-c.lines:
		if !ok {
			t.Fatalf("container %s: output ended before %q", c.id, want)
		}
		if line != want {
			t.Fatalf("container %s printed %q, want %q", c.id, line, want)
		}
	case <-time.After(containerBound):
		t.Fatalf("container %s: no %q after %v", c.id, want, containerBound)
	}
}

// wait waits for runc run, which exits with the container's PID 1's status,
// and returns it; anything else the container printed is logged.
func (c *container) wait(t *testing.T) int {
	t.Helper()
	select {
	case <-c.done:
	case <-time.After(containerBound):
		t.Fatalf("container %s still running after %v", c.id, containerBound)
	}
	c.logRest(t)
	var ee *exec.ExitError
	if errors.As(c.err, &ee) && ee.Exited() {
		return ee.ExitCode()
	}
	if c.err != nil {
		t.Fatalf("runc run %s: %v", c.id, c.err)
	}
	return 0
}

// logRest logs what the container printed that no expect read, up to EOF
// (runc run has exited, and with it everything in the container).
func (c *container) logRest(t *testing.T) {
	t.Helper()
	timeout := time.After(containerBound)
	for {
		select {
		case line, ok := <-c.lines:
			if !ok {
				return
			}
			t.Logf("container %s: %s", c.id, line)
		case <-timeout:
			t.Fatalf("container %s: output still open %v after runc run returned", c.id, containerBound)
		}
	}
}

// runc runs a runc command on this test's containers, bounded.
func (c *container) runc(t *testing.T, args ...string) {
	t.Helper()
	cmd := c.ctrs.runc.Command(args...)
	if _, err := oci.Output(cmd, containerBound); err != nil {
		t.Fatal(err)
	}
}

// ps lists the container's processes seen from the host: PID 1 first, then
// its descendants.
func (c *container) ps(t *testing.T) []oci.Proc {
	t.Helper()
	pid, err := c.ctrs.runc.InitPID(c.id)
	if err != nil {
		t.Fatal(err)
	}
	var ps []oci.Proc
	for _, p := range oci.Tree(pid) {
		if st, err := oci.ReadProc(p); err == nil { // gone since: nothing to list
			ps = append(ps, st)
		}
	}
	if len(ps) == 0 {
		t.Fatalf("container %s: PID 1 (host pid %d) is gone", c.id, pid)
	}
	return ps
}

// zombies lists the container's processes that are zombies, once there are
// want of them or after a bound: a zombie nobody reaps stays one, and one
// that is reaped late is not counted against the init.
func (c *container) zombies(t *testing.T, want int) []oci.Proc {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		var z []oci.Proc
		for _, p := range c.ps(t) {
			if p.State == 'Z' {
				z = append(z, p)
			}
		}
		if len(z) == want || time.Now().After(deadline) {
			return z
		}
		time.Sleep(10 * time.Millisecond) // another process's reaping: no event to wait on
	}
}
