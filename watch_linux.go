package tether

import (
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// exits is the program's exit watcher: one goroutine, blocked in
// epoll_wait on the pidfds of the children that were started and that no
// Wait is blocked on. At a child's exit it starts the Process's monitor in a
// goroutine of the Process's own. A Wait that comes before the exit takes
// the pidfd back (EPOLL_CTL_DEL) and waits in the kernel itself, as
// os/exec's Wait does, so that the exit wakes the thread that goes on with
// the caller's work, and no other.
//
// Why not Go's netpoller: a pidfd there needs a goroutine parked on it per
// child, started at every Start (which wakes an idle P), and a Wait cannot
// take the pidfd back without waking that goroutine (a deadline or a close
// readies it). In this KVM guest that path made the nodejs/node#4049 cycle
// 0.81–0.93× os/exec's (docs/benchmarks.md).
var exits exitWatcher

type exitWatcher struct {
	// unpollable: an epoll refused a pidfd (Linux 5.2 cannot poll them);
	// nothing is watched from then on.
	unpollable atomic.Bool

	mu    sync.Mutex
	epfd  int                 // the watcher's epoll while procs is not nil
	seq   uint32              // the last key's sequence number
	procs map[uint64]*Process // by key: the pidfd's number and a sequence number
}

// watcherIdle is how long the watcher outlives the last pidfd it watched.
const watcherIdle = time.Second

// maxKernelWaits bounds the Waits blocked in the kernel at once, each a
// thread: beyond it a Wait waits for the watcher, so that 5,000 Waits in
// flight cost goroutines, not threads (os/exec's would cost threads).
const maxKernelWaits = 32

var kernelWaits atomic.Int32

// pidfdHandle is a handle with a pidfd the watcher can watch.
type pidfdHandle interface{ pidfd() int }

// watch hands p's exit to the exit watcher. It reports false where it
// cannot — no pidfd (before Linux 5.2), one epoll cannot poll (5.2), no
// descriptor left for the epoll — and then the caller starts the monitor in
// a goroutine, which blocks a thread until the exit.
func (p *Process) watch() bool {
	h, ok := p.h.(pidfdHandle)
	if !ok || h.pidfd() < 0 || exits.unpollable.Load() {
		return false
	}
	return exits.add(p, h.pidfd())
}

// unwatch claims p's close for the calling Wait if the watcher has not
// claimed it yet, taking its pidfd out of the watcher's set; the caller
// then waits for the exit (and calls doneKernelWait) and runs the rest of
// the monitor. It reports false when the watcher claimed it, p is not
// watched, or maxKernelWaits Waits are blocked in the kernel already.
func (p *Process) unwatch() bool {
	if p.watchKey == 0 || p.claimed.Load() {
		return false
	}
	if kernelWaits.Add(1) > maxKernelWaits {
		kernelWaits.Add(-1)
		return false
	}
	if !p.claimed.CompareAndSwap(false, true) {
		kernelWaits.Add(-1)
		return false
	}
	exits.remove(p.watchKey, p.h.(pidfdHandle).pidfd())
	return true
}

// doneKernelWait ends what unwatch began.
func doneKernelWait() { kernelWaits.Add(-1) }

func (w *exitWatcher) add(p *Process, fd int) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.procs == nil {
		epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
		if err != nil {
			return false // EMFILE, say: the next Start tries again
		}
		w.epfd, w.procs = epfd, make(map[uint64]*Process)
		// Owner: the package. One thread blocked in epoll_wait, like
		// Go's own netpoller; it ends when it has watched nothing for
		// watcherIdle, and closes the epoll.
		go w.run(epfd)
	}
	w.seq++
	if w.seq == 0 {
		w.seq = 1 // a key is never 0: 0 is "not watched"
	}
	key := uint64(uint32(fd)) | uint64(w.seq)<<32
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLONESHOT, Fd: int32(fd), Pad: int32(w.seq)}
	p.watchKey = key
	w.procs[key] = p
	if err := unix.EpollCtl(w.epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
		delete(w.procs, key)
		p.watchKey = 0
		if err == unix.EPERM {
			w.unpollable.Store(true)
		}
		return false
	}
	return true
}

func (w *exitWatcher) remove(key uint64, fd int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, ok := w.procs[key]; !ok {
		return // reported already: the one-shot event is spent
	}
	delete(w.procs, key)
	// Best effort: until release closes it, fd is the pidfd that was
	// added, and w.epfd the epoll it was added to (the watcher closes it
	// only with procs empty, under w.mu).
	_ = unix.EpollCtl(w.epfd, unix.EPOLL_CTL_DEL, fd, nil)
}

func (w *exitWatcher) run(epfd int) {
	events := make([]unix.EpollEvent, 128)
	last := time.Now() // of the last exit seen
	for {
		// Not blocked for good: a Wait's remove leaves the set empty
		// without a word to the watcher, which must still end. (One
		// wake-up a second, while children run: an epoll_wait.)
		n, err := unix.EpollWait(epfd, events, int(watcherIdle/time.Millisecond))
		if n <= 0 {
			// A timeout, or EINTR (nothing else can fail on a valid
			// epoll): signals landing on this thread must not keep it
			// from ending.
			if err != nil && time.Since(last) < watcherIdle {
				continue
			}
			w.mu.Lock()
			if len(w.procs) == 0 {
				_ = unix.Close(epfd) // the next add makes another
				w.procs = nil
				w.mu.Unlock()
				return
			}
			w.mu.Unlock()
			continue
		}
		last = time.Now()
		for _, ev := range events[:n] {
			key := uint64(uint32(ev.Fd)) | uint64(uint32(ev.Pad))<<32
			w.mu.Lock()
			p := w.procs[key]
			delete(w.procs, key)
			w.mu.Unlock()
			if p != nil && p.claimed.CompareAndSwap(false, true) {
				// Owner: the Process. Ends at close (or ends the program:
				// runMonitor).
				go runMonitor(p, p.monitor)
			}
		}
	}
}
