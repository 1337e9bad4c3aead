package gitstore

import (
	"context"
	"sync"
	"time"
)

// Yielding the branch to a push. Under a full API write load the committer
// moves the branch every few milliseconds, so an engineer who fetches,
// rebases and pushes is always behind by the time the push arrives, and
// git refuses it ("fetch first") however often it is retried. Yield lets
// the push win: the committer lands the batches in flight, then writes
// nothing until the push is over (release) or MaxYield passed, and takes
// the pushed commits in at once. Writes that come in meanwhile wait in the
// queue and go out as one batch afterwards.
//
// Fairness runs both ways: after yielding for d, the committer grants the
// next yield no sooner than d later, so pushes get at most half of the
// branch's time however many engineers push.

// MaxYield bounds how long the committer holds back for one yield.
const MaxYield = 30 * time.Second

// yieldRequest asks the committer to hold back.
type yieldRequest struct {
	hold    time.Duration
	granted chan struct{} // closed by the committer when it holds back
	release chan struct{} // closed by the caller when its push is over
}

// Yield waits until the committer holds back from writing the branch, for
// at most hold (capped at MaxYield), and returns the function that ends
// the hold early; call it once the push is over (calling it again, or
// after the hold expired, does nothing; it is safe from any goroutine). It fails when ctx ends first or
// the store closes.
func (s *Store) Yield(ctx context.Context, hold time.Duration) (release func(), err error) {
	y := &yieldRequest{hold: min(hold, MaxYield), granted: make(chan struct{}), release: make(chan struct{})}
	var once sync.Once
	release = func() { once.Do(func() { close(y.release) }) }
	select {
	case s.yields <- y:
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-s.stopped:
		return nil, ErrClosed
	}
	select {
	case <-y.granted:
		return release, nil
	case <-ctx.Done():
		release() // the committer, once it grants, goes on at once
		return nil, ctx.Err()
	case <-s.stopped:
		return nil, ErrClosed
	}
}

// yieldTo lands the batches in flight, holds back until y is released or
// its time is up (or the store closes), then takes in what was pushed. It
// returns how long to wait before the next yield. It runs on the committer.
func (s *Store) yieldTo(y *yieldRequest, inflight []*batch) time.Duration {
	for len(inflight) > 0 {
		inflight = s.landFirst(inflight, <-inflight[0].done)
	}
	start := time.Now()
	close(y.granted)
	timer := time.NewTimer(y.hold)
	defer timer.Stop()
	select {
	case <-y.release:
	case <-timer.C:
		s.log.Info("a push held the branch for its longest; writing again", "held", y.hold)
	case <-s.quit:
	}
	s.checkExternal()
	return time.Since(start)
}
