package gitstore

import (
	"testing"
	"time"
)

// TestGatherWaitsForTheBatchInFlight checks how the committer forms a
// batch: at once with nothing in flight, up to MaxBatch at once, and
// otherwise until the batch in flight has its pack on disk, taking the
// writes that came meanwhile.
func TestGatherWaitsForTheBatchInFlight(t *testing.T) {
	newStore := func() *Store {
		return &Store{queue: make(chan *request, 16), opts: Options{MaxBatch: 4}}
	}
	req := func() *request { return &request{} }

	t.Run("nothing in flight", func(t *testing.T) {
		s := newStore()
		s.queue <- req()
		if got := s.gather(req(), nil); len(got) != 2 {
			t.Fatalf("batch of %d, want the first write and the one queued", len(got))
		}
	})

	t.Run("full batch", func(t *testing.T) {
		s := newStore()
		for range 6 {
			s.queue <- req()
		}
		inflight := []*batch{{staged: make(chan struct{})}} // never staged
		if got := s.gather(req(), inflight); len(got) != 4 {
			t.Fatalf("batch of %d, want MaxBatch (4)", len(got))
		}
		if len(s.queue) != 3 {
			t.Errorf("%d writes left queued, want 3", len(s.queue))
		}
	})

	t.Run("until staged", func(t *testing.T) {
		s := newStore()
		staged := make(chan struct{})
		inflight := []*batch{{staged: staged}}
		got := make(chan []*request, 1)
		start := time.Now()
		go func() { got <- s.gather(req(), inflight) }()
		s.queue <- req() // arrives while the batch in flight is written
		time.Sleep(gatherWait / 4)
		select {
		case b := <-got:
			if d := time.Since(start); d < gatherWait {
				t.Fatalf("gathered %d writes after %v, before the batch in flight was staged", len(b), d)
			}
			return // this machine was too slow to check it
		default:
		}
		close(staged)
		if b := <-got; len(b) != 2 {
			t.Fatalf("batch of %d, want 2", len(b))
		}
	})

	t.Run("bounded wait", func(t *testing.T) {
		s := newStore()
		inflight := []*batch{{staged: make(chan struct{})}} // never staged
		start := time.Now()
		if got := s.gather(req(), inflight); len(got) != 1 {
			t.Fatalf("batch of %d, want 1", len(got))
		}
		if d := time.Since(start); d < gatherWait {
			t.Errorf("returned after %v, before gatherWait", d)
		}
	})
}
