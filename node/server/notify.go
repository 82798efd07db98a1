package server

import (
	"sync"
)

// indexWaiter lets goroutines wait until the applied index reaches a value.
type indexWaiter struct {
	mu      sync.Mutex
	applied uint64
	waiters []indexWait
}

type indexWait struct {
	index uint64
	ch    chan struct{}
}

// wait returns a channel closed once the applied index is at least index.
func (w *indexWaiter) wait(index uint64) <-chan struct{} {
	ch := make(chan struct{})
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.applied >= index {
		close(ch)
		return ch
	}
	w.waiters = append(w.waiters, indexWait{index: index, ch: ch})
	return ch
}

// advance records that index has been applied and wakes its waiters.
func (w *indexWaiter) advance(index uint64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if index <= w.applied {
		return
	}
	w.applied = index
	kept := w.waiters[:0]
	for _, x := range w.waiters {
		if x.index <= index {
			close(x.ch)
		} else {
			kept = append(kept, x)
		}
	}
	// Drop references held past the kept length.
	for i := len(kept); i < len(w.waiters); i++ {
		w.waiters[i] = indexWait{}
	}
	w.waiters = kept
}

// notifier is a one-shot broadcast carrying an error.
type notifier struct {
	c   chan struct{}
	err error
}

func newNotifier() *notifier { return &notifier{c: make(chan struct{})} }

func (n *notifier) notify(err error) {
	n.err = err
	close(n.c)
}
