package githttp

import (
	"context"
	"sync"
	"time"
)

// Push turns. Under a full API write load the branch moves every few
// milliseconds, so the engineer's usual `git pull --rebase && git push`
// finds the branch moved again by the time the push arrives, and git
// refuses it ("fetch first") however often it is tried. The endpoint gives
// such an engineer a turn: a push that was advertised the branch but sent
// nothing (git found itself behind) marks its user as waiting; that user's
// next fetch asks the store to yield (Yielder), so the branch stands still
// from the fetch until their push is over: PushTurn after the fetch's last
// request at most, and MaxTurn in all (a fetch of minutes of writes takes
// seconds). The store spaces yields out (at most half of the branch's time
// goes to pushes).

// PushTurn bounds how long the branch stands still for one engineer after
// their fetch: the time to rebase and push.
const PushTurn = 5 * time.Second

// MaxTurn bounds a whole turn, the fetch included.
const MaxTurn = 30 * time.Second

// turnMemory is how long a refused push keeps its user waiting for a turn.
const turnMemory = 10 * time.Minute

// Yielder holds back the writes to the branch while a push lands;
// *gitstore.Store is one.
type Yielder interface {
	// Yield returns once writes are held back, for at most hold, and
	// the function that ends the hold early.
	Yield(ctx context.Context, hold time.Duration) (release func(), err error)
}

// turns tracks, per user, a push waiting for its turn and the turn held.
type turns struct {
	yielder Yielder
	mu      sync.Mutex
	waiting map[string]time.Time // user → when their push was advertised
	held    map[string]*turn
}

type turn struct {
	release func()
	until   time.Time   // MaxTurn after it began
	timer   *time.Timer // releases PushTurn after the fetch's last request
}

func newTurns(y Yielder) *turns {
	return &turns{yielder: y, waiting: map[string]time.Time{}, held: map[string]*turn{}}
}

// advertised notes that user was shown the branch for a push: unless a
// push follows (pushed), they are waiting for a turn.
func (t *turns) advertised(user string, now time.Time) {
	if t == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.waiting[user] = now
	for u, at := range t.waiting { // forget the ones that never came back
		if now.Sub(at) > turnMemory {
			delete(t.waiting, u)
		}
	}
}

// fetching gives user their turn when they are waiting for one: it
// returns once the store holds its writes back (or ctx ends; the fetch
// then goes on without a turn).
func (t *turns) fetching(ctx context.Context, user string, now time.Time) (took bool, err error) {
	if t == nil {
		return false, nil
	}
	t.mu.Lock()
	at, ok := t.waiting[user]
	if !ok || now.Sub(at) > turnMemory {
		t.mu.Unlock()
		return false, nil
	}
	if h := t.held[user]; h != nil && now.Before(h.until) {
		t.mu.Unlock()
		return false, nil // their turn is on: a second fetch changes nothing
	}
	delete(t.waiting, user)
	t.mu.Unlock()
	release, err := t.yielder.Yield(ctx, MaxTurn)
	if err != nil {
		return false, err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if old := t.held[user]; old != nil {
		old.end()
	}
	t.held[user] = &turn{release: release, until: time.Now().Add(MaxTurn), timer: time.AfterFunc(MaxTurn, release)}
	return true, nil
}

// fetched notes that one of user's fetch requests is over: if they hold a
// turn, it ends PushTurn from now unless they push before.
func (t *turns) fetched(user string) {
	if t == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if h := t.held[user]; h != nil {
		h.timer.Reset(min(PushTurn, time.Until(h.until)))
	}
}

// end releases the turn and stops its timer. The caller holds t.mu.
func (h *turn) end() {
	h.timer.Stop()
	h.release()
}

// pushed ends user's turn, if they held one, and their wait: their push
// is over, landed or refused for what it holds.
func (t *turns) pushed(user string) {
	if t == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.waiting, user)
	if h := t.held[user]; h != nil {
		h.end()
		delete(t.held, user)
	}
}
