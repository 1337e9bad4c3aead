package cluster

import (
	"context"
	"sync"

	"golang.org/x/sync/semaphore"
)

// exclusiveWeight is the weight of an exclusive hold: more than any number of
// concurrent shared holders.
const exclusiveWeight = 1 << 30

// keyedLocks are shared/exclusive locks by name, taken with a context.
// A Conn has two sets:
//
//   - releases ("namespace/name"): one operation at a time per release in
//     this process, so a pending Helm revision seen by Apply can only have
//     been left by a crashed process, never by a concurrent call;
//   - namespaces: Apply holds its namespace shared from creating it until
//     its release record is stored, Uninstall holds it exclusively while it
//     checks that the namespace is empty of releases and deletes it.
//
// Entries are removed when unused, so the map does not grow with every name
// ever seen.
type keyedLocks struct {
	mu    sync.Mutex
	locks map[string]*keyedLock
}

type keyedLock struct {
	sem   *semaphore.Weighted // FIFO: a waiting exclusive holder blocks new shared ones
	users int                 // holders and waiters, guarded by keyedLocks.mu
}

// acquire takes key's lock, shared or exclusive, and returns its
// release function. It gives up, returning ctx's error, when ctx ends first.
func (l *keyedLocks) acquire(ctx context.Context, key string, exclusive bool) (func(), error) {
	l.mu.Lock()
	if l.locks == nil {
		l.locks = map[string]*keyedLock{}
	}
	nl := l.locks[key]
	if nl == nil {
		nl = &keyedLock{sem: semaphore.NewWeighted(exclusiveWeight)}
		l.locks[key] = nl
	}
	nl.users++
	l.mu.Unlock()

	leave := func() {
		l.mu.Lock()
		nl.users--
		if nl.users == 0 {
			delete(l.locks, key)
		}
		l.mu.Unlock()
	}
	weight := int64(1)
	if exclusive {
		weight = exclusiveWeight
	}
	if err := nl.sem.Acquire(ctx, weight); err != nil {
		leave()
		return nil, err
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			nl.sem.Release(weight)
			leave()
		})
	}, nil
}
