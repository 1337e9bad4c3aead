package githttp

import (
	"context"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// fakeYielder grants every yield at once and notes when it is released.
type fakeYielder struct {
	mu       sync.Mutex
	granted  int
	released []time.Duration // since the grant
}

func (f *fakeYielder) get() (int, []time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.granted, slices.Clone(f.released)
}

func (f *fakeYielder) Yield(ctx context.Context, hold time.Duration) (func(), error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.granted++
	start := time.Now()
	var once sync.Once
	return func() {
		once.Do(func() {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.released = append(f.released, time.Since(start))
		})
	}, nil
}

// TestTurns: only a user whose push was advertised and not sent gets a
// turn, at their next fetch; it ends at their push, or PushTurn after
// their fetch's last request, or MaxTurn after it began.
func TestTurns(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		y := &fakeYielder{}
		tr := newTurns(y)
		ctx := t.Context()
		if took, _ := tr.fetching(ctx, "ada", time.Now()); took {
			t.Fatal("a turn without a refused push")
		}
		// Refused push, fetch, push: the turn ends with the push.
		tr.advertised("ada", time.Now())
		if took, err := tr.fetching(ctx, "ada", time.Now()); !took || err != nil {
			t.Fatalf("no turn after a refused push: %v", err)
		}
		if took, _ := tr.fetching(ctx, "ada", time.Now()); took {
			t.Error("a second turn for a second fetch")
		}
		time.Sleep(2 * time.Second)
		tr.fetched("ada")
		time.Sleep(time.Second)
		tr.advertised("ada", time.Now())
		tr.pushed("ada")
		if _, rel := y.get(); len(rel) != 1 || rel[0] != 3*time.Second {
			t.Errorf("released after %v, want once, at the push (3s)", rel)
		}
		// A turn not used: it ends PushTurn after the fetch's last request.
		tr.advertised("bob", time.Now())
		tr.fetching(ctx, "bob", time.Now())
		time.Sleep(time.Second)
		tr.fetched("bob")
		time.Sleep(time.Minute)
		if _, rel := y.get(); len(rel) != 2 || rel[1] != time.Second+PushTurn {
			t.Errorf("unused turn released after %v, want %v", rel, time.Second+PushTurn)
		}
		// A fetch that goes on and on: the turn ends at MaxTurn.
		tr.advertised("eve", time.Now())
		tr.fetching(ctx, "eve", time.Now())
		for range 20 {
			time.Sleep(2 * time.Second)
			tr.fetched("eve")
		}
		time.Sleep(time.Minute)
		if _, rel := y.get(); len(rel) != 3 || rel[2] != MaxTurn {
			t.Errorf("long turn released after %v, want %v", rel, MaxTurn)
		}
		// A refused push long ago earns nothing.
		tr.advertised("ann", time.Now())
		time.Sleep(turnMemory + time.Second)
		if took, _ := tr.fetching(ctx, "ann", time.Now()); took {
			t.Error("a turn for a push refused too long ago")
		}
		if granted, _ := y.get(); granted != 3 {
			t.Errorf("%d yields asked, want 3", granted)
		}
	})
}
