package tether

import (
	"context"
	"sync"
)

// live is every Process between Start and close, for Shutdown.
var (
	liveMu sync.Mutex
	live   = map[*Process]struct{}{}
)

func addLive(p *Process) {
	liveMu.Lock()
	live[p] = struct{}{}
	liveMu.Unlock()
}

func removeLive(p *Process) {
	liveMu.Lock()
	delete(live, p)
	liveMu.Unlock()
}

// Shutdown stops every process tree this program started with tether, and
// whatever their members left behind, as the program's own death would: at
// the keeper levels the keeper sends each tree its StopSignal (SIGTERM to
// leftovers of trees that already closed), waits up to the largest
// StopTimeout, SIGKILLs what remains and exits; at the group level each live
// Process is stopped (Stop). It returns when all of it is gone, or with
// ctx's error when ctx ends first (the stops go on to their SIGKILL).
//
// It is for a program about to exit that wants its descendants gone first —
// an init such as `tether run` when its main child exits. Start may be called
// again afterwards (a new keeper is started).
func Shutdown(ctx context.Context) error {
	liveMu.Lock()
	procs := make([]*Process, 0, len(live))
	for p := range live {
		procs = append(procs, p)
	}
	liveMu.Unlock()

	var wg sync.WaitGroup
	for _, p := range procs {
		wg.Add(1)
		// Owner: Shutdown, or the background after ctx ends. Ends at the
		// process's close, which Stop (or the keeper's teardown) bounds.
		go func() {
			defer wg.Done()
			if p.level == ContainGroup {
				_ = p.Stop() // errors surface in the process's Wait
			}
			<-p.Done()
		}()
	}
	keepersGone := shutdownKeepers()
	done := make(chan struct{})
	// Owner: Shutdown. Ends when every process closed and the keeper is gone.
	go func() {
		wg.Wait()
		for _, gone := range keepersGone {
			<-gone
		}
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
