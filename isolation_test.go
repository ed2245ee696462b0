//go:build linux

package tether_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tetherproc/tether"
	"github.com/tetherproc/tether/internal/testproc"
)

// Isolation between keepers: two programs that use tether at the cgroup
// level, in the same parent cgroup, one on the host and one in a PID
// namespace of its own (or each in its own), never touch each other's
// trees, whatever either does: start, stop, exit, its keeper SIGKILLed.
// Each program is a peer (helperPeer), driven line by line over its stdin.
// The run's cgroup is the tests' own (testproc), so nothing here can reach
// another program's cgroups.

func init() {
	testproc.Register("peer", helperPeer)
	testproc.Register("peer-member", helperPeerMember)
}

// helperPeer is a program using tether at the cgroup level. It reads
// commands from stdin and answers each with one line on stdout, "ok ..." or
// "err ...":
//
//	start NAME [child]  start a tree of peer-member (with a grandchild that
//	                    outlives it); "ok PID CGROUP-DIR" (this namespace's pid)
//	check NAME          "ok running", or "ok exited EXIT" if the tree ended
//	stop NAME           Stop; "ok EXIT"
//	killkeeper          SIGKILLs this program's keeper; "ok PID"
//	exit                stops every tree (Shutdown) and exits 0
//
// A failed start answers "err removed MSG" when the error is ErrCgroupRemoved.
func helperPeer(args []string) {
	dir := args[0]
	procs := map[string]*tether.Process{}
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		f := strings.Fields(in.Text())
		if len(f) == 0 {
			continue
		}
		switch f[0] {
		case "start":
			c := helperCmd("peer-member", append([]string{dir}, f[1:]...)...)
			c.Containment = tether.ContainCgroup
			c.StopTimeout = 20 * time.Second
			c.Stdout = tether.Pipe()
			p, err := c.Start(context.Background())
			if errors.Is(err, tether.ErrCgroupRemoved) {
				fmt.Println("err removed", err)
				continue
			} else if err != nil {
				fmt.Println("err", err)
				continue
			}
			// The member says it is ready (its TERM handler is set) on its stdout.
			if l, err := bufio.NewReader(p.Stdout()).ReadString('\n'); err != nil || l != "ready\n" {
				_, werr := p.Wait()
				fmt.Println("err member not ready:", l, err, p.Exit(), werr)
				continue
			}
			procs[f[1]] = p
			cg, _ := os.ReadFile("/proc/" + strconv.Itoa(p.PID()) + "/cgroup")
			_, v2, _ := strings.Cut(string(cg), "0::")
			fmt.Println("ok", p.PID(), strings.TrimSpace(v2))
		case "check":
			if e := procs[f[1]].Exit(); e != nil {
				fmt.Println("ok exited", e)
			} else {
				fmt.Println("ok running")
			}
		case "stop":
			p := procs[f[1]]
			if err := p.Stop(); err != nil {
				fmt.Println("err", err)
				continue
			}
			fmt.Println("ok", p.Exit())
		case "killkeeper":
			k := testproc.KeeperOf(os.Getpid())
			if k == 0 {
				fmt.Println("err no keeper")
				continue
			}
			_ = syscall.Kill(k, syscall.SIGKILL) // ours: our child
			// Once tether has reaped it (it does once the keeper's
			// socket closed, when its last thread exited; a zombie
			// leader thread comes first): a start that races the
			// keeper's death loses its tree with it (the cgroup level's
			// trees die with their watchdog), which is not what this
			// tests.
			deadline := time.Now().Add(5 * time.Second)
			for {
				if _, err := os.Stat("/proc/" + strconv.Itoa(k)); errors.Is(err, os.ErrNotExist) {
					break
				}
				if time.Now().After(deadline) {
					break
				}
				time.Sleep(time.Millisecond)
			}
			fmt.Println("ok", k)
		case "exit":
			peerExit()
		default:
			fmt.Println("err unknown command", f[0])
		}
	}
	peerExit() // stdin closed: the test is over
}

// peerExit stops every tree and exits: as PID 1 of a namespace, the peer's
// exit would SIGKILL the namespace, so it stops its trees first, as tether
// run does.
func peerExit() {
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Second)
	err := tether.Shutdown(ctx)
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "peer: shutdown:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// helperPeerMember is a tree's leader: on SIGTERM it writes DIR/NAME.cleaned
// and exits 0. With "child" it first starts a grandchild (the sleep program)
// in a session of its own and writes its pid to DIR/NAME.grandchild.
func helperPeerMember(args []string) {
	dir, name := args[0], args[1]
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM)
	if len(args) > 2 && args[2] == "child" {
		path, argv, env := testproc.Command("sleep")
		c := exec.Command(path, argv[1:]...)
		c.Args[0], c.Env = argv[0], env
		c.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
		if err := c.Start(); err != nil {
			os.Exit(2)
		}
		_ = os.WriteFile(filepath.Join(dir, name+".grandchild"), []byte(strconv.Itoa(c.Process.Pid)), 0o644)
	}
	fmt.Println("ready")
	<-term
	_ = os.WriteFile(filepath.Join(dir, name+".cleaned"), nil, 0o644)
	os.Exit(0)
}

// peer is a running helperPeer, seen from the test.
type peer struct {
	t    *testing.T
	name string
	cmd  *exec.Cmd
	in   io.WriteCloser
	out  *bufio.Reader

	waitOnce sync.Once
	waited   chan struct{} // closed when Wait returned; waitErr is set before
	waitErr  error
}

// startPeer starts a peer on the host, or with pidns in a new PID namespace
// (unshare --pid --fork --mount-proc, as a sandbox would), where it is PID 1.
func startPeer(t *testing.T, name, dir string, pidns bool, extraEnv ...string) *peer {
	t.Helper()
	path, argv, env := testproc.Command("peer", dir)
	env = append(env, extraEnv...)
	var c *exec.Cmd
	if pidns {
		c = exec.Command("unshare", append([]string{"--pid", "--fork", "--mount-proc", "--kill-child", path}, argv[1:]...)...)
	} else {
		c = exec.Command(path, argv[1:]...)
		c.Args[0] = argv[0]
	}
	c.Env = env
	c.Stderr = os.Stderr
	in, err := c.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := c.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	p := &peer{t: t, name: name, cmd: c, in: in, out: bufio.NewReader(out)}
	t.Cleanup(func() {
		// Closing stdin makes it stop its trees and exit; a peer that
		// does not within the bound is killed (and the test fails on
		// what it leaves).
		_ = p.in.Close() // best effort: closed already by exit
		if p.waitFor(30*time.Second) != nil {
			_ = p.cmd.Process.Kill() // ours; unshare --kill-child takes its namespace with it
			_ = p.waitFor(10 * time.Second)
		}
	})
	return p
}

// do sends one command and returns the answer; it fails the test on "err".
func (p *peer) do(cmd string) string {
	p.t.Helper()
	l := p.ask(cmd)
	if !strings.HasPrefix(l, "ok") {
		p.t.Fatalf("peer %s: %s: %s", p.name, cmd, l)
	}
	return strings.TrimSpace(strings.TrimPrefix(l, "ok"))
}

// ask sends one command and returns the answer as it is.
func (p *peer) ask(cmd string) string {
	p.t.Helper()
	if _, err := fmt.Fprintln(p.in, cmd); err != nil {
		p.t.Fatalf("peer %s: %s: %v", p.name, cmd, err)
	}
	return readLine(p.t, p.out, 30*time.Second)
}

// exit asks the peer to exit and waits for it.
func (p *peer) exit() {
	p.t.Helper()
	if _, err := fmt.Fprintln(p.in, "exit"); err != nil {
		p.t.Fatal(err)
	}
	if err := p.waitFor(30 * time.Second); err != nil {
		p.t.Errorf("peer %s exit: %v", p.name, err)
	}
}

// waitFor waits up to d for the peer to end, once: later calls return what
// the first saw.
func (p *peer) waitFor(d time.Duration) error {
	p.waitOnce.Do(func() {
		p.waited = make(chan struct{})
		// Owner: the peer. Ends when the peer ends: killed at the latest
		// by its test's cleanup.
		go func() { p.waitErr = p.cmd.Wait(); close(p.waited) }()
	})
	select {
	case <-p.waited:
		return p.waitErr
	case <-time.After(d):
		return fmt.Errorf("peer %s still running after %v", p.name, d)
	}
}

func cleaned(dir, name string) bool {
	_, err := os.Stat(filepath.Join(dir, name+".cleaned"))
	return err == nil
}

func needCgroupAndPIDNamespaces(t *testing.T) {
	t.Helper()
	if ok, why := cgroupLevel(); !ok {
		t.Skip("no cgroup level here:", why)
	}
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Skip("no unshare:", err)
	}
	if out, err := exec.Command("unshare", "--pid", "--fork", "--mount-proc", "true").CombinedOutput(); err != nil {
		t.Skipf("no PID namespaces here: %v %s", err, out)
	}
}

// TestKeepersIsolatedAcrossPIDNamespaces is the isolation issue's scenario in
// every arrangement: the victim's tree runs while the other program starts,
// stops, has its keeper SIGKILLed, starts again and exits. The victim's tree
// must still run, its cleanup unrun, and its later starts must work.
func TestKeepersIsolatedAcrossPIDNamespaces(t *testing.T) {
	t.Parallel()
	needCgroupAndPIDNamespaces(t)
	for _, tc := range []struct {
		name              string
		victimNS, otherNS bool
	}{
		{"victim on the host, other in a PID namespace", false, true},
		{"victim in a PID namespace, other on the host", true, false},
		{"two sandboxes side by side", true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			victim := startPeer(t, "victim", dir, tc.victimNS)
			victim.do("start v1")

			other := startPeer(t, "other", dir, tc.otherNS)
			other.do("start o1")
			if got := other.do("stop o1"); got != "exit status 0" || !cleaned(dir, "o1") {
				t.Errorf("the other's own stop: %q, cleaned %v", got, cleaned(dir, "o1"))
			}
			other.do("start o2")
			other.do("killkeeper")
			// The other's next start makes a new keeper, which collects
			// stale keeper cgroups under the same parent.
			other.do("start o3")
			other.exit()
			// A third program in the other's place starts and exits.
			third := startPeer(t, "third", dir, tc.otherNS)
			third.do("start t1")
			third.exit()
			if !cleaned(dir, "o3") || !cleaned(dir, "t1") {
				t.Errorf("an exit stops its own trees gracefully: o3 cleaned %v, t1 cleaned %v", cleaned(dir, "o3"), cleaned(dir, "t1"))
			}

			if got := victim.do("check v1"); got != "running" {
				t.Fatalf("the victim's tree: %s", got)
			}
			if cleaned(dir, "v1") {
				t.Fatalf("the victim's tree was asked to stop by another program")
			}
			victim.do("start v2")
			if got := victim.do("stop v1"); got != "exit status 0" || !cleaned(dir, "v1") {
				t.Errorf("the victim's own stop: %q, cleaned %v", got, cleaned(dir, "v1"))
			}
			// And the other way round: the victim's keeper SIGKILLed, and
			// its exit, leave a new program's tree alone.
			fourth := startPeer(t, "fourth", dir, tc.otherNS)
			fourth.do("start f1")
			victim.do("killkeeper")
			victim.do("start v3")
			victim.exit()
			if got := fourth.do("check f1"); got != "running" || cleaned(dir, "f1") {
				t.Errorf("after the victim's keeper was SIGKILLed and it exited, the fourth's tree: %s, cleaned %v", got, cleaned(dir, "f1"))
			}
			fourth.exit()
		})
	}
}

// TestStaleKeeperCgroupCollected: a keeper SIGKILLed together with its
// parent leaves its cgroup, with a grandchild still in it. The next keeper
// to start under the same parent cgroup — here in another PID namespace —
// removes it and kills what is in it; a live program's beside it is not
// touched.
func TestStaleKeeperCgroupCollected(t *testing.T) {
	t.Parallel()
	needCgroupAndPIDNamespaces(t)
	mnt, err := cgroup2MountForTest()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	// The peers' keepers make their cgroups under a parent of this test's
	// own: the keepers of the tests running beside it would collect the
	// stale cgroup too (rightly), before this test looked.
	base := filepath.Join(mnt, ownCgroupForTest(), "stale-test-"+strconv.Itoa(os.Getpid()))
	if err := os.Mkdir(base, 0o755); err != nil {
		t.Skip("cannot make a cgroup under the tests' own:", err)
	}
	t.Cleanup(func() { _ = os.Remove(base) }) // best effort: after the peers, empty
	parent := "TETHER_CGROUP_PARENT=" + base
	live := startPeer(t, "live", dir, false, parent)
	live.do("start l1")

	doomed := startPeer(t, "doomed", dir, false, parent)
	f := strings.Fields(doomed.do("start d1 child"))
	treeCg := filepath.Join(mnt, f[1])
	keeperCg := filepath.Dir(treeCg)
	keeper := testproc.KeeperOf(doomed.cmd.Process.Pid)
	b, _ := os.ReadFile(filepath.Join(dir, "d1.grandchild"))
	grandchild, _ := strconv.Atoi(string(b))
	if keeper == 0 || grandchild == 0 {
		t.Fatalf("keeper %d, grandchild %d", keeper, grandchild)
	}
	// Both die at once: the parent, stopped first, cannot clean up after
	// its keeper.
	_ = syscall.Kill(doomed.cmd.Process.Pid, syscall.SIGSTOP) // ours: our child
	_ = syscall.Kill(keeper, syscall.SIGKILL)                 // the stopped peer's child: ours to end
	_ = syscall.Kill(doomed.cmd.Process.Pid, syscall.SIGKILL)
	_ = doomed.cmd.Wait()
	if _, err := os.Stat(keeperCg); err != nil {
		t.Fatalf("the dead keeper's cgroup should be left for a collector: %v", err)
	}
	if !testproc.Alive(grandchild) {
		t.Fatalf("the grandchild should outlive its keeper (it is in the stale cgroup)")
	}

	collector := startPeer(t, "collector", dir, true, parent)
	collector.do("start c1") // its keeper collects before it answers
	if _, err := os.Stat(keeperCg); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the stale keeper cgroup %s is still there (%v)", keeperCg, err)
	}
	if left := testproc.WaitGone(5*time.Second, grandchild); len(left) > 0 {
		t.Errorf("the grandchild in the stale cgroup survived its collection")
	}
	if got := live.do("check l1"); got != "running" || cleaned(dir, "l1") {
		t.Errorf("the live program's tree: %s, cleaned %v", got, cleaned(dir, "l1"))
	}
	collector.exit()
	live.exit()
}

// TestKeeperCgroupRemovedByOthers: another program kills the trees in a
// keeper's cgroup and removes it (cgroup v2 lets only empty cgroups go). The
// next Start says so with ErrCgroupRemoved, and the one after works in a new
// cgroup.
func TestKeeperCgroupRemovedByOthers(t *testing.T) {
	t.Parallel()
	mnt := needCgroupLevel(t)
	dir := t.TempDir()
	p := startPeer(t, "p", dir, false)
	f := strings.Fields(p.do("start a"))
	keeperCg := filepath.Join(mnt, filepath.Dir(f[1]))
	if err := os.WriteFile(filepath.Join(keeperCg, "cgroup.kill"), []byte("1"), 0); err != nil {
		t.Fatal(err)
	}
	// The killed exit within milliseconds; then every cgroup can go,
	// deepest first.
	deadline := time.Now().Add(5 * time.Second)
	for {
		var dirs []string
		_ = filepath.WalkDir(keeperCg, func(path string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, path)
			}
			return nil
		})
		err := error(nil)
		for i := len(dirs) - 1; i >= 0; i-- {
			if e := syscall.Rmdir(dirs[i]); e != nil {
				err = e
			}
		}
		if len(dirs) == 0 || err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("rmdir %s: %v", keeperCg, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if l := p.ask("start b"); !strings.HasPrefix(l, "err removed") || !strings.Contains(l, keeperCg) {
		t.Errorf("Start after the keeper's cgroup was removed: %q; want ErrCgroupRemoved naming %s", l, keeperCg)
	}
	f = strings.Fields(p.do("start c"))
	if now := filepath.Join(mnt, filepath.Dir(f[1])); now == keeperCg {
		t.Errorf("the next start ran in the removed cgroup %s", now)
	}
	p.exit()
}
