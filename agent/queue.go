package agent

import (
	"context"
	"sync"
	"time"
)

// queue hands out keys (deployment file paths) to workers so that a key is
// never worked on by two workers at once: a key added while it is being
// worked on is remembered and handed out again when that work is done.
type queue struct {
	mu      sync.Mutex
	pending []string
	queued  map[string]bool
	running map[string]bool
	dirty   map[string]bool
	force   map[string]bool
	timers  map[string]*time.Timer
	wake    chan struct{}
	closed  bool
}

func newQueue() *queue {
	return &queue{
		queued: map[string]bool{}, running: map[string]bool{}, dirty: map[string]bool{},
		force: map[string]bool{}, timers: map[string]*time.Timer{}, wake: make(chan struct{}, 1),
	}
}

// add queues key. force asks for a re-apply even when the status says the
// current spec is applied (drift, a retry).
func (q *queue) add(key string, force bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return
	}
	if force {
		q.force[key] = true
	}
	switch {
	case q.running[key]:
		q.dirty[key] = true
	case !q.queued[key]:
		q.queued[key] = true
		q.pending = append(q.pending, key)
		select {
		case q.wake <- struct{}{}:
		default:
		}
	}
}

// addAfter queues key after d (a retry with backoff). A later addAfter of
// the same key replaces the earlier one.
func (q *queue) addAfter(key string, d time.Duration, force bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return
	}
	if t := q.timers[key]; t != nil {
		t.Stop()
	}
	q.timers[key] = time.AfterFunc(d, func() {
		q.mu.Lock()
		delete(q.timers, key)
		q.mu.Unlock()
		q.add(key, force)
	})
}

// get waits for a key and marks it running; ok is false when ctx ended.
func (q *queue) get(ctx context.Context) (key string, force, ok bool) {
	for {
		q.mu.Lock()
		if len(q.pending) > 0 {
			key = q.pending[0]
			q.pending = q.pending[1:]
			delete(q.queued, key)
			q.running[key] = true
			force = q.force[key]
			delete(q.force, key)
			more := len(q.pending) > 0
			q.mu.Unlock()
			if more {
				select {
				case q.wake <- struct{}{}:
				default:
				}
			}
			return key, force, true
		}
		q.mu.Unlock()
		select {
		case <-ctx.Done():
			return "", false, false
		case <-q.wake:
		}
	}
}

// done finishes the work on key, queueing it again if it was added meanwhile.
func (q *queue) done(key string) {
	q.mu.Lock()
	delete(q.running, key)
	again := q.dirty[key]
	delete(q.dirty, key)
	q.mu.Unlock()
	if again {
		q.add(key, false)
	}
}

// idle reports whether nothing is queued, running or waiting for a retry.
func (q *queue) idle() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.pending) == 0 && len(q.running) == 0 && len(q.timers) == 0
}

// close stops the retry timers; later adds are ignored.
func (q *queue) close() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.closed = true
	for _, t := range q.timers {
		t.Stop()
	}
}
