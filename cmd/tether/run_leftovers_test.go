//go:build linux

package main

import (
	"bytes"
	"errors"
	"fmt"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// A double-forked daemon's middle process exits while tether reads the
// children lists: the daemon moves to tether's list, read already, from its
// parent's, not read yet. The walk is driven by a fake /proc that makes that
// move at the worst moment, every time.
func TestLeftoverWalkFindsDaemonReparentedMidWalk(t *testing.T) {
	const root, plain, middle, daemon = 1, 10, 20, 21
	tree := map[int][]int{root: {plain, middle}, middle: {daemon}}
	rootRead := false
	children := func(pid int) []int {
		if pid == middle && rootRead && slices.Contains(tree[middle], daemon) {
			// The middle process exits now: the daemon goes to its
			// subreaper, whose list was read a moment ago.
			tree[middle] = nil
			tree[root] = append(tree[root], daemon)
		}
		if pid == root {
			rootRead = true
		}
		return slices.Clone(tree[pid])
	}
	if got := below(root, children, maxWalks); !slices.Equal(got, []int{plain, middle, daemon}) {
		t.Errorf("below = %v, want %v: the daemon slipped through", got, []int{plain, middle, daemon})
	}

	// A tree that forks without end: the walks stop at the bound.
	next, walks := 100, 0
	forking := func(pid int) []int {
		if pid != root {
			return nil
		}
		walks++
		next++
		return []int{next}
	}
	if got := below(root, forking, maxWalks); len(got) != maxWalks || walks != maxWalks {
		t.Errorf("a tree that forks for ever: %d walks, %v", walks, got)
	}
}

// The notes of `tether run` name the same processes: the first names every
// process PROGRAM left, and a later one names no process of those that the
// first did not. The tree: a background child and a setsid child, and
// double-forked daemons whose middle processes exit one after the other
// just as PROGRAM does (they wait for its end on a FIFO, then count to
// stagger their exits): each then moves to tether, its subreaper, maybe
// while tether reads the tree. Every leftover ignores SIGTERM, so all of
// them are still there for the note before the SIGKILL. Repeated, as the
// race is one of timing.
func TestRunFirstNoteNamesEveryLeftover(t *testing.T) {
	t.Parallel()
	// At most ten processes at the first note (two leftovers, and four
	// daemons with their middle processes), so that it names them all.
	const daemons = 4
	script := `dir=$1; n=$2; step=$3
mkfifo "$dir/fifo"; exec 3<>"$dir/fifo"
T='trap "" TERM; : > "$0/ready.$$"; exec sleep 100'
sh -c "$T" "$dir" 3>&- >/dev/null &
echo "pid $!"
setsid sh -c "$T" "$dir" 3>&- >/dev/null &
echo "pid $!"
i=0
while [ $i -lt $n ]; do
  sh -c 'exec 4<"$0/fifo"; sh -c "$2" "$0" 4<&- >/dev/null & echo "pid $!"
    read x <&4; j=0; while [ $j -lt $1 ]; do j=$((j+1)); done' "$dir" $((i * step)) "$T" 3>&- &
  i=$((i+1))
done
while [ $(ls "$dir" | grep -c '^ready\.') -lt $((n + 2)) ]; do sleep 0.01; done
exit 0`
	first := regexp.MustCompile(`(?m)^tether: sh exited; stopping (\d+) process(?:es)? it left \(SIGTERM, SIGKILL after 300ms\): (.*)$`)
	later := regexp.MustCompile(`(?m)^tether: \d+ process(?:es)? still running after 200ms, SIGKILL at 300ms: (.*)$`)
	item := regexp.MustCompile(`(\d+) \(([^()]*)\)`)
	const runs, together = 60, 4
	var wg sync.WaitGroup
	sem := make(chan struct{}, together)
	for r := range runs {
		wg.Add(1)
		sem <- struct{}{}
		// Owner: the test, which waits for it below. Ends when its tether
		// run does (bounded by waitBounded).
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			dir := t.TempDir()
			// Middle processes 0-3 counts of 20 apart (about 25 µs each):
			// in practice across the moment tether reads the tree.
			c := tetherCmd("run", "-grace", "300ms", "--", "sh", "-c", script, "sh", dir, strconv.Itoa(daemons), strconv.Itoa(20*(r%4)))
			var stdout, stderr bytes.Buffer
			c.Stdout, c.Stderr = &stdout, &stderr
			if err := c.Start(); err != nil {
				t.Error(err)
				return
			}
			if err := waitOrKill(c, 30*time.Second); err != nil {
				t.Errorf("run %d: %v\n%s", r, err, stderr.String())
				return
			}
			var left []string // every leftover, by the script
			for _, f := range strings.Split(strings.TrimSpace(stdout.String()), "\n") {
				if pid, ok := strings.CutPrefix(f, "pid "); ok {
					left = append(left, pid)
				}
			}
			if len(left) != daemons+2 {
				t.Errorf("run %d: the script said %q", r, stdout.String())
				return
			}
			m := first.FindStringSubmatch(stderr.String())
			if m == nil {
				t.Errorf("run %d: no first note:\n%s", r, stderr.String())
				return
			}
			named := map[string]bool{}
			for _, it := range item.FindAllStringSubmatch(m[2], -1) {
				named[it[1]] = true
			}
			for _, pid := range left {
				if !named[pid] {
					t.Errorf("run %d: the first note does not name leftover %s (%v):\n%s", r, pid, left, stderr.String())
				}
			}
			ml := later.FindStringSubmatch(stderr.String())
			if ml == nil {
				t.Errorf("run %d: no note before the SIGKILL:\n%s", r, stderr.String())
				return
			}
			for _, it := range item.FindAllStringSubmatch(ml[1], -1) {
				if slices.Contains(left, it[1]) && (!named[it[1]] || strings.Contains(it[2], "started during the grace")) {
					t.Errorf("run %d: the note before the SIGKILL names %s (%s), which the first did not:\n%s", r, it[1], it[2], stderr.String())
				}
			}
		}()
	}
	wg.Wait()
}

// waitOrKill waits for c, killing it after d: waitBounded for a goroutine
// other than the test's, which may not call t.Fatal.
func waitOrKill(c *exec.Cmd, d time.Duration) error {
	done := make(chan error, 1)
	go func() { done <- c.Wait() }() // ends when c is reaped
	select {
	case err := <-done:
		return err
	case <-time.After(d):
		_ = c.Process.Kill()
		<-done
		return fmt.Errorf("tether %v %w after %v", c.Args[1:], errStillRunning, d)
	}
}

var errStillRunning = errors.New("still running")

// A process that starts during the grace (a leftover's trap runs a
// clean-up command) is named as such by the note before the SIGKILL, not as
// one tether has been waiting for since PROGRAM exited.
func TestRunLaterNoteMarksProcessStartedDuringGrace(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	// The leftover's trap starts a "clean-up" that outlives the grace; the
	// leftover itself waits for it, ignoring further SIGTERMs.
	script := `sh -c 'trap "trap \"\" TERM; sleep 100 & echo \"cleanup \$!\"; wait" TERM; : > "$0/ready"; while :; do sleep 0.05; done' "$0" &
echo "left $!"
while [ ! -e "$0/ready" ]; do sleep 0.01; done`
	c := tetherCmd("run", "-grace", "1s", "--", "sh", "-c", script, dir)
	var stdout, stderr bytes.Buffer
	c.Stdout, c.Stderr = &stdout, &stderr
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	if err := waitBounded(t, c, 30*time.Second); err != nil {
		t.Fatalf("%v\n%s", err, stderr.String())
	}
	var leftPID, cleanupPID string
	for _, f := range strings.Split(stdout.String(), "\n") {
		if v, ok := strings.CutPrefix(f, "left "); ok {
			leftPID = v
		}
		if v, ok := strings.CutPrefix(f, "cleanup "); ok {
			cleanupPID = v
		}
	}
	if leftPID == "" || cleanupPID == "" {
		t.Fatalf("stdout %q; stderr:\n%s", stdout.String(), stderr.String())
	}
	note := regexp.MustCompile(`(?m)^tether: \d+ process(?:es)? still running after 900ms, SIGKILL at 1s: (.*)$`).FindStringSubmatch(stderr.String())
	if note == nil {
		t.Fatalf("no note before the SIGKILL:\n%s", stderr.String())
	}
	if want := cleanupPID + " (sleep 100; started during the grace)"; !strings.Contains(note[1], want) {
		t.Errorf("the note lacks %q:\n%s", want, stderr.String())
	}
	if want := fmt.Sprintf("%s (sh -c ", leftPID); !strings.Contains(note[1], want) || strings.Index(note[1], want) > strings.Index(note[1], cleanupPID+" (") {
		t.Errorf("the note does not name the leftover %s first, unmarked:\n%s", leftPID, stderr.String())
	}
}
