package agent

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestQueueNeverRunsAKeyTwiceAtOnce hammers a queue with adds of few keys
// from many goroutines while workers take them, and checks that no key is
// ever worked on by two workers at once and that every add is followed by
// a run that started after it.
func TestQueueNeverRunsAKeyTwiceAtOnce(t *testing.T) {
	q := newQueue()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	keys := []string{"a", "b", "c"}
	var running [3]atomic.Int32
	var lastAdd, lastRunStart [3]atomic.Int64
	idx := map[string]int{"a": 0, "b": 1, "c": 2}
	var workers sync.WaitGroup
	for range 4 {
		workers.Add(1)
		go func() {
			defer workers.Done()
			for {
				k, _, ok := q.get(ctx)
				if !ok {
					return
				}
				i := idx[k]
				if running[i].Add(1) != 1 {
					t.Errorf("key %s runs twice at once", k)
				}
				lastRunStart[i].Store(time.Now().UnixNano())
				time.Sleep(100 * time.Microsecond)
				running[i].Add(-1)
				q.done(k)
			}
		}()
	}
	var adders sync.WaitGroup
	for g := range 8 {
		adders.Add(1)
		go func() {
			defer adders.Done()
			for n := range 200 {
				k := keys[(g+n)%3]
				lastAdd[idx[k]].Store(time.Now().UnixNano())
				q.add(k, n%7 == 0)
			}
		}()
	}
	adders.Wait()
	deadline := time.Now().Add(5 * time.Second)
	for !q.idle() && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if !q.idle() {
		t.Fatal("queue never drained")
	}
	for i, k := range keys {
		if lastRunStart[i].Load() < lastAdd[i].Load() {
			t.Errorf("key %s: its last add came after its last run started; the change was lost", k)
		}
	}
	cancel()
	workers.Wait()
}

func TestQueueForceAndRetry(t *testing.T) {
	q := newQueue()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	q.add("x", false)
	q.add("x", true) // still queued: the force sticks
	k, force, ok := q.get(ctx)
	if !ok || k != "x" || !force {
		t.Fatalf("get = %q %v %v", k, force, ok)
	}
	q.done("x")
	q.addAfter("y", 20*time.Millisecond, true)
	if q.idle() {
		t.Fatal("a pending retry counts as work")
	}
	start := time.Now()
	k, force, ok = q.get(ctx)
	if !ok || k != "y" || !force || time.Since(start) < 15*time.Millisecond {
		t.Fatalf("retry: %q %v %v after %v", k, force, ok, time.Since(start))
	}
	q.done("y")
	q.close()
	q.add("z", false)
	if !q.idle() {
		t.Fatal("adds after close must be ignored")
	}
}
