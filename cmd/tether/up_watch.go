package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/tetherproc/tether/supervise"
)

// -watch: restart processes when files change. The kernel tells (inotify,
// kqueue, ReadDirectoryChangesW, through github.com/fsnotify/fsnotify): no
// polling. Changes are gathered until none came for upWatchQuiet, then the
// processes restart as tether restart restarts them: each whole old tree is
// gone before the new process starts, so nothing of it still holds the
// port.

// upWatchQuiet is how long the files must stay unchanged before a restart:
// an editor's save or a build writes several files in a burst.
const upWatchQuiet = 300 * time.Millisecond

// upWatchIgnored are names never watched: version control, dependencies,
// caches, editors' temporary files, and tether's own socket.
var upWatchIgnored = []string{".git", ".hg", ".svn", ".jj", "node_modules", "__pycache__", ".cache", ".idea", ".vscode",
	"*.swp", "*.swx", "*~", ".#*", "#*#", "4913", ".DS_Store", upSocketName}

// upWatchPlan is what -watch and its flags asked for.
type upWatchPlan struct {
	paths, patterns, ignore []string
	procs                   []string // the instances to restart
}

// upWatcher watches the paths of -watch and restarts the processes of
// -watch-restart when a file whose name matches -watch-pattern changes.
type upWatcher struct {
	w        *fsnotify.Watcher
	patterns []string // file name globs that count; none: every file
	ignore   []string // names (globs) skipped, directories and files
	procs    []string // the instances to restart
	sup      *supervise.Supervisor
	say      func(format string, args ...any)

	done chan struct{} // closed when run returns
}

// upWatch starts watching paths (directories are watched with everything
// under them). It returns an error naming a path it cannot watch.
func upWatch(paths, patterns, ignore, procs []string, sup *supervise.Supervisor, say func(string, ...any)) (*upWatcher, error) {
	for _, p := range append(slices.Clone(patterns), ignore...) {
		if _, err := filepath.Match(p, ""); err != nil {
			return nil, fmt.Errorf("up: -watch pattern %q: %w", p, err)
		}
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, fmt.Errorf("up: -watch: %w", err)
	}
	u := &upWatcher{w: w, patterns: patterns, ignore: append(slices.Clone(upWatchIgnored), ignore...), procs: procs,
		sup: sup, say: say, done: make(chan struct{})}
	for _, p := range paths {
		if err := u.add(p, nil); err != nil {
			_ = w.Close() // best effort: nothing watched yet is needed
			return nil, fmt.Errorf("up: -watch %s: %w", p, err)
		}
	}
	return u, nil
}

// add watches path, and every directory under it that is not ignored;
// found, if not nil, gets the files under it (of a directory just created,
// made before its watch was in place).
func (u *upWatcher) add(path string, found func(string)) error {
	return filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p != path && errors.Is(err, fs.ErrNotExist) {
				return nil // gone meanwhile
			}
			return err
		}
		if p != path && u.ignored(d.Name()) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.IsDir() || p == path {
			return u.w.Add(p)
		}
		if found != nil {
			found(p)
		}
		return nil
	})
}

func (u *upWatcher) ignored(name string) bool {
	return slices.ContainsFunc(u.ignore, func(g string) bool {
		ok, _ := filepath.Match(g, name)
		return ok
	})
}

// counts reports whether a change of path may restart the processes.
func (u *upWatcher) counts(path string) bool {
	for dir := path; ; {
		if u.ignored(filepath.Base(dir)) {
			return false
		}
		parent := filepath.Dir(dir)
		if parent == dir || parent == "." {
			break
		}
		dir = parent
	}
	if len(u.patterns) == 0 {
		return true
	}
	return slices.ContainsFunc(u.patterns, func(g string) bool {
		ok, _ := filepath.Match(g, filepath.Base(path))
		return ok
	})
}

// run watches until ctx ends or stop is closed, then closes the watcher.
func (u *upWatcher) run(ctx context.Context, stop <-chan struct{}) {
	defer close(u.done)
	defer func() { _ = u.w.Close() }() // best effort: nothing more to read
	quiet := time.NewTimer(time.Hour)
	quiet.Stop()
	defer quiet.Stop()
	changed := map[string]bool{}
	for {
		select {
		case <-ctx.Done():
			return
		case <-stop:
			return
		case err, ok := <-u.w.Errors:
			if !ok {
				return
			}
			u.say("-watch: %v", err) // an overflow, say: changes may be missed
		case e, ok := <-u.w.Events:
			if !ok {
				return
			}
			if e.Has(fsnotify.Create) {
				if st, err := os.Lstat(e.Name); err == nil && st.IsDir() && !u.ignored(filepath.Base(e.Name)) {
					_ = u.add(e.Name, func(f string) { // best effort: a directory removed at once is not watched
						if u.counts(f) {
							changed[f] = true
							quiet.Reset(upWatchQuiet)
						}
					})
				}
			}
			if e.Op == fsnotify.Chmod || !u.counts(e.Name) {
				continue // a touch of the mode alone is no change of content
			}
			changed[e.Name] = true
			quiet.Reset(upWatchQuiet)
		case <-quiet.C:
			files := make([]string, 0, len(changed))
			for f := range changed {
				files = append(files, f)
			}
			sort.Strings(files)
			clear(changed)
			u.restart(ctx, files)
		}
	}
}

// restart restarts the processes, all at once, and waits until each is
// ready or has failed; changes meanwhile gather for the next restart.
func (u *upWatcher) restart(ctx context.Context, files []string) {
	what := files[0]
	if len(files) > 1 {
		what = fmt.Sprintf("%s and %d more", files[0], len(files)-1)
	}
	u.say("%s changed: restarting %s (-watch)", what, strings.Join(u.procs, ", "))
	var wg sync.WaitGroup
	for _, name := range u.procs {
		wg.Add(1)
		// Owner: restart, which waits for it. Ends when the supervisor has
		// restarted the process, or has stopped.
		go func() {
			defer wg.Done()
			if err := u.sup.Restart(ctx, name); err != nil && ctx.Err() == nil && !errors.Is(err, supervise.ErrNotRunning) {
				u.say("-watch: %s", upTrim(err))
			}
		}()
	}
	wg.Wait()
}
