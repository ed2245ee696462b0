//go:build linux

package cgroupfs

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The cgroup files Limits use, against a directory standing in for a
// cgroup (this machine's cgroup v2 has neither controller, so the kernel's
// side is tested by TestLimitsPids and TestLimitsMemory where it has them).
func TestCgroupLimitFiles(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "tether-keeper.1")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(name, s string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("cgroup.controllers", "cpu memory pids\n")
	write("cgroup.subtree_control", "")
	if got := EnableControllers(dir, LimitControllers); len(got) != 2 || got["memory"] != "" || got["pids"] != "" {
		t.Errorf("enable with both granted: %q", got)
	}

	write("cgroup.controllers", "pids\n")
	got := EnableControllers(dir, LimitControllers)
	if got["pids"] != "" || got["memory"] == "" {
		t.Errorf("enable with pids granted: %q", got)
	}

	bothOn := map[string]string{"memory": "", "pids": ""}
	write("memory.max", "max\n")
	write("pids.max", "max\n")
	if err := SetLimits(dir, Limits{MemoryMax: 64 << 20, PidsMax: 100}, Limits{}, bothOn); err != nil {
		t.Fatal(err)
	}
	for file, want := range map[string]string{"memory.max": "67108864", "pids.max": "100"} {
		if b, _ := os.ReadFile(filepath.Join(dir, file)); string(b) != want {
			t.Errorf("%s = %q, want %q", file, b, want)
		}
	}
	// A limit that does not change leaves its file alone; one that goes
	// is "max" again (a reused cgroup).
	write("pids.max", "100\n")
	if err := SetLimits(dir, Limits{MemoryMax: 64 << 20}, Limits{MemoryMax: 64 << 20, PidsMax: 100}, bothOn); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "pids.max")); string(b) != "max" {
		t.Errorf("pids.max with its limit gone = %q, want max", b)
	}
	write("memory.max", "kept\n")
	if err := SetLimits(dir, Limits{}, Limits{}, bothOn); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "memory.max")); string(b) != "kept\n" {
		t.Errorf("memory.max without a change = %q", b)
	}
	// A controller that is not there: the error says which and why.
	tree := filepath.Join(dir, "tree.1")
	if err := os.Mkdir(tree, 0o755); err != nil {
		t.Fatal(err)
	}
	// (A directory where the file would be: the write fails even for root.)
	if err := os.Mkdir(filepath.Join(tree, "memory.max"), 0o755); err != nil {
		t.Fatal(err)
	}
	err := SetLimits(tree, Limits{MemoryMax: 64 << 20}, Limits{}, map[string]string{"pids": "", "memory": "not delegated to /x by its parent"})
	if err == nil || !strings.Contains(err.Error(), "the memory controller is not available to tether's cgroups here: not delegated to /x by its parent") {
		t.Errorf("memory.max missing: %v", err)
	}

	write("memory.events", "low 0\nhigh 0\nmax 12\noom 2\noom_kill 3\noom_group_kill 0\n")
	if n := OOMKills(dir); n != 3 {
		t.Errorf("oom_kill = %d, want 3", n)
	}
	if n := OOMKills(tree); n != 0 {
		t.Errorf("oom_kill without memory.events = %d, want 0", n)
	}
}

// Which keeper cgroups a starting keeper collects: only unlocked ones of
// the current name form that have trees or are old. A live keeper's
// (locked), a young empty one (a keeper may be about to lock it) and an
// old-form name (no lock to tell by) are left alone.
func TestCollectStaleKeepersDecisions(t *testing.T) {
	mnt, err := Mount()
	if err != nil {
		t.Skip("no cgroup v2:", err)
	}
	own, _ := Own()
	base := filepath.Join(mnt, own, "collect-test-"+strconv.Itoa(os.Getpid()))
	if err := os.Mkdir(base, 0o755); err != nil {
		t.Skip("cannot make a cgroup here:", err)
	}
	defer func() {
		// Deepest first; those the collector removed are gone already.
		for _, d := range []string{"tether-keeper.4/tree.1", "tether-keeper.4", "tether-keeper-2-young", "tether-keeper-1-dead/tree.1", "tether-keeper-1-dead", "tether-keeper-3-old", ""} {
			_ = os.Remove(filepath.Join(base, d)) // best effort: see above
		}
	}()
	live, err := newKeeperDir(base)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = os.Remove(live.Dir); live.Close() }()
	mk := func(name string) string {
		t.Helper()
		d := filepath.Join(base, name)
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	dead := mk("tether-keeper-1-dead")
	mk("tether-keeper-1-dead/tree.1")
	young := mk("tether-keeper-2-young")
	old := mk("tether-keeper-3-old")
	long := time.Now().Add(-time.Hour)
	if err := os.Chtimes(old, long, long); err != nil {
		t.Fatal(err)
	}
	oldForm := mk("tether-keeper.4")
	mk("tether-keeper.4/tree.1")

	CollectStale(base)

	for _, c := range []struct {
		dir  string
		kept bool
		why  string
	}{
		{live.Dir, true, "a live keeper's (locked)"},
		{dead, false, "an unlocked one with trees"},
		{young, true, "a young empty one"},
		{old, false, "an old empty one"},
		{oldForm, true, "an old-form name"},
	} {
		_, err := os.Stat(c.dir)
		if kept := err == nil; kept != c.kept {
			t.Errorf("%s: kept %v, want %v", c.why, kept, c.kept)
		}
	}
}
