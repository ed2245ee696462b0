package tether

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// eventID names one event of the delivery tests: its goroutine and its
// number there (g -1: posted by the Observer itself).
type eventID struct{ g, n int }

func (id eventID) Error() string { return fmt.Sprintf("%d/%d", id.g, id.n) }

// Events emitted and posted from many goroutines at once, and posted by
// the Observer itself, are each delivered once, one at a time, in the order
// each goroutine gave them; emit returns only once its event is delivered;
// nothing is left queued. (Without the hand-off's Broadcast an emitter
// waits for its turn for ever: this test then fails at its bound.)
func TestDeliveryUnderContention(t *testing.T) {
	t.Parallel()
	const goroutines, each = 8, 400
	var (
		mu     sync.Mutex
		times  = map[eventID]int{}
		last   = map[int]int{}
		inside atomic.Int32
		bad    []string
	)
	p := &Process{path: "stress"}
	reposted := 0
	p.observer = func(e Event) {
		if inside.Add(1) != 1 {
			mu.Lock()
			bad = append(bad, "two Observer calls at once")
			mu.Unlock()
		}
		var id eventID
		errors.As(e.Err, &id)
		mu.Lock()
		times[id]++
		if id.g >= 0 {
			if id.n <= last[id.g] && last[id.g] != 0 {
				bad = append(bad, fmt.Sprintf("goroutine %d: %d after %d", id.g, id.n, last[id.g]))
			}
			last[id.g] = id.n
		}
		repost := id.g >= 0 && id.n%7 == 0
		if repost {
			reposted++
		}
		n := reposted
		mu.Unlock()
		inside.Add(-1)
		if repost { // an Observer signalling its own process
			p.post(Event{Kind: EventSignal, Err: eventID{-1, n}})
		}
	}
	done := make(chan struct{})
	go func() { // ends when every goroutine has emitted and posted all
		defer close(done)
		var wg sync.WaitGroup
		for g := range goroutines {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for n := 1; n <= each; n++ {
					id := eventID{g, n}
					if n%3 == 0 {
						p.post(Event{Kind: EventSignal, Err: id})
						continue
					}
					p.emit(Event{Kind: EventExit, Err: id})
					mu.Lock()
					got := times[id]
					mu.Unlock()
					if got != 1 {
						mu.Lock()
						bad = append(bad, fmt.Sprintf("emit of %v returned with it delivered %d times", id, got))
						mu.Unlock()
					}
				}
			}()
		}
		wg.Wait()
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("delivery still going after 30 s: an emitter waits for a turn that never comes")
	}
	mu.Lock()
	defer mu.Unlock()
	for _, b := range bad {
		t.Error(b)
	}
	for id, n := range times {
		if n != 1 {
			t.Errorf("%v delivered %d times", id, n)
		}
	}
	if want := goroutines*each + reposted; len(times) != want {
		t.Errorf("%d events delivered, want %d", len(times), want)
	}
	p.emitMu.Lock()
	defer p.emitMu.Unlock()
	if p.delivering || len(p.emitQueue) > 0 {
		t.Errorf("after all: delivering %v, %d queued", p.delivering, len(p.emitQueue))
	}
}

// Close is the last event: a Signal that races the close posts nothing
// after it (its event used to come after EventClose, even after Wait
// returned).
func TestDeliveryEndsAtClose(t *testing.T) {
	t.Parallel()
	var kinds []EventKind
	p := &Process{path: "close"}
	p.observer = func(e Event) { kinds = append(kinds, e.Kind) }
	p.emit(Event{Kind: EventSpawn})
	p.post(Event{Kind: EventSignal})
	p.emit(Event{Kind: EventExit})
	p.emit(Event{Kind: EventClose})
	p.post(Event{Kind: EventSignal})
	want := []EventKind{EventSpawn, EventSignal, EventExit, EventClose}
	if fmt.Sprint(kinds) != fmt.Sprint(want) {
		t.Errorf("events %v, want %v", kinds, want)
	}
}
