package gitstore

import (
	"context"
	"path/filepath"

	"github.com/fsnotify/fsnotify"
)

// Changed returns a channel that is closed the next time the head moves
// (a commit of this store or one taken in from others). Call it again
// after each close for the next change.
func (s *Store) Changed() <-chan struct{} {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.changed
}

// announce wakes the waiters of Changed. The caller holds s.mu.
func (s *Store) announce() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// watchRefs tells the committer at once when git writes the branch (a push
// to this repository renames a lock file over the ref, or rewrites
// packed-refs), so external commits are taken in without waiting for the
// poll, which stays as the safety net. It runs until ctx ends.
func (s *Store) watchRefs(ctx context.Context) {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		s.log.Warn("watching refs failed; polling only", "err", err)
		return
	}
	defer w.Close()
	for _, dir := range []string{filepath.Dir(s.ref.path()), s.dir} {
		if err := w.Add(dir); err != nil {
			s.log.Warn("watching refs failed; polling only", "dir", dir, "err", err)
			return
		}
	}
	ref, packed := s.ref.path(), filepath.Join(s.dir, "packed-refs")
	for {
		select {
		case <-ctx.Done():
			return
		case ev := <-w.Events:
			if ev.Name != ref && ev.Name != packed {
				continue
			}
			select {
			case s.refEvents <- struct{}{}:
			default: // one is pending already
			}
		case err := <-w.Errors:
			s.log.Warn("watching refs", "err", err)
		}
	}
}
