package gitstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
)

// Remote is the repository a store mirrors (Options.Remote), typically on
// a forge. A batch lands there first: its commits are pushed in one push,
// and only once the remote accepted them does the local branch move and
// are its writers answered. The local repository is the process's private
// working copy; what the remote acknowledged is what is durable.
type Remote interface {
	// Push moves the remote branch from old to new, a fast-forward, never
	// forced. An error wrapping ErrRemoteMoved means the remote branch is
	// no longer at old (someone merged a pull request, another replica
	// wrote); one wrapping ErrRemoteUnavailable means the remote could not
	// be reached or refused the push, after a bounded wait.
	Push(ctx context.Context, old, new plumbing.Hash) error
	// Fetch brings the remote branch's commits into the local repository
	// and returns the commit the remote branch is at (zero when the remote
	// has no such branch yet). Errors wrap ErrRemoteUnavailable.
	Fetch(ctx context.Context) (plumbing.Hash, error)
}

var (
	// ErrRemoteMoved means a push was rejected because the remote branch
	// moved; the store fetches and runs the batch again on the new head.
	ErrRemoteMoved = errors.New("the remote branch moved")
	// ErrRemoteUnavailable means the remote could not take a push or
	// answer a fetch; nothing of the failed writes was acknowledged.
	ErrRemoteUnavailable = errors.New("the Git remote is unavailable")
)

// ownHeadsKept is how many of its own recent heads a store remembers, so a
// fetch that started before its last push landed does not move the branch
// back.
const ownHeadsKept = 64

// syncRemote brings the local branch and the remote's together when a
// store opens: the local branch follows the remote when it is behind (or
// empty), the remote gets the local commits it lacks (a repository moved
// onto a forge), and histories that diverged are an error, since only a
// force push could join them.
func (s *Store) syncRemote(ctx context.Context) error {
	remote, err := s.opts.Remote.Fetch(ctx)
	if err != nil {
		return fmt.Errorf("fetch from the remote: %w", err)
	}
	local, err := s.ref.read()
	if err != nil {
		return err
	}
	switch {
	case remote == local:
		return nil
	case remote.IsZero():
		s.log.Info("remote branch is empty: pushing the local one", "head", short(local))
		return s.opts.Remote.Push(ctx, remote, local)
	case local.IsZero() || s.isAncestor(local, remote, -1):
		return s.moveRef(local, remote)
	case s.isAncestor(remote, local, -1):
		s.log.Info("pushing local commits the remote lacks", "remote", short(remote), "local", short(local))
		return s.opts.Remote.Push(ctx, remote, local)
	}
	return fmt.Errorf("the local repository %s (at %s) and the remote (at %s) have diverged: "+
		"start from an empty --repo directory to follow the remote", s.dir, short(local), short(remote))
}

// startOffline tells whether the store may open although the remote could
// not be brought level (err): only when the remote could not be reached
// and the mirror holds a branch, every commit of which the remote took
// before (the mirror's branch only moves after a push). The store then
// serves what it has, writes fail with ErrRemoteUnavailable until the
// remote answers, and the first fetch brings it level. An empty mirror
// never starts this way: its agent would see no deployments at all.
func (s *Store) startOffline(err error) bool {
	if !errors.Is(err, ErrRemoteUnavailable) {
		return false
	}
	local, rerr := s.ref.read()
	if rerr != nil || local.IsZero() {
		return false
	}
	s.log.Warn("the remote cannot be reached: serving the mirror as it is until it answers", "head", short(local), "err", err)
	return true
}

// isAncestor reports whether commit a is reachable from b, looking at no
// more than limit commits (negative: no bound).
func (s *Store) isAncestor(a, b plumbing.Hash, limit int) bool {
	seen := map[plumbing.Hash]bool{}
	queue := []plumbing.Hash{b}
	for len(queue) > 0 && limit != 0 {
		h := queue[0]
		queue = queue[1:]
		if h == a {
			return true
		}
		if seen[h] {
			continue
		}
		seen[h] = true
		limit--
		c, err := s.readCommit(h)
		if err != nil {
			return false
		}
		queue = append(queue, c.parents...)
	}
	return false
}

// moveRef moves the local branch from old to new under git's lock.
func (s *Store) moveRef(old, new plumbing.Hash) error {
	v, err := s.ref.prepare(new)
	if err != nil {
		return err
	}
	return v.swap(old)
}

// pushBatch pushes a batch's head to the remote, when there is one, before
// the local branch moves.
func (s *Store) pushBatch(old, new plumbing.Hash) error {
	if s.opts.Remote == nil {
		return nil
	}
	return s.opts.Remote.Push(context.Background(), old, new)
}

// followRemote moves the local branch forward to the remote's head and
// takes the change in. It only ever fast-forwards: a head the branch
// already holds (a fetch that started before this store's last push
// landed) is left alone, and so is one that does not descend from the
// branch (a remote rewound by hand), which is reported. Only the
// committer calls it, with no batch in flight.
func (s *Store) followRemote(remote plumbing.Hash) error {
	if remote.IsZero() || remote == s.head || s.ownHeads.has(remote) || s.isAncestor(remote, s.head, followLookBack) {
		return nil
	}
	if !s.head.IsZero() && !s.isAncestor(s.head, remote, -1) {
		if !s.isAncestor(remote, s.head, -1) {
			s.log.Error("the remote's branch does not descend from this mirror's: not followed (was it rewound or force-pushed?)",
				"remote", short(remote), "local", short(s.head))
		}
		return nil
	}
	local, err := s.ref.read()
	if err != nil {
		return err
	}
	if local != remote {
		if err := s.moveRef(local, remote); err != nil {
			return err
		}
	}
	return s.refresh()
}

// followLookBack bounds the walk that tells a stale fetch result (a
// commit the branch already holds) from a new one.
const followLookBack = 1024

// pullRemote fetches the remote's head and follows it: the path taken when
// a push was rejected because the remote branch moved.
func (s *Store) pullRemote() error {
	ctx, cancel := context.WithTimeout(context.Background(), s.opts.RemoteTimeout)
	defer cancel()
	head, err := s.opts.Remote.Fetch(ctx)
	if err != nil {
		return err
	}
	return s.followRemote(head)
}

// forceLocal moves the private mirror's branch to head, which the remote
// accepted, after the usual swap failed with swapErr (something else
// moved the mirror's branch). The batch landed either way.
func (s *Store) forceLocal(head plumbing.Hash, swapErr error) error {
	cur, err := s.ref.read()
	if err == nil {
		err = s.moveRef(cur, head)
	}
	if err != nil {
		s.log.Error("the remote took the batch, but the local branch could not follow", "swap", swapErr, "err", err)
	}
	return nil
}

// Sync asks the store to fetch from its remote now (a push webhook
// arrived), without waiting for the next poll. It returns at once; the
// fetch happens in the background and Changed announces what it brought.
// Without a remote it checks the local branch for others' commits.
func (s *Store) Sync() {
	wake := s.syncNow
	if s.opts.Remote == nil {
		wake = s.refEvents
	}
	select {
	case wake <- struct{}{}:
	default: // one is pending already
	}
}

// follow fetches from the remote at every RemotePoll and every Sync, and
// hands a head that moved to the committer. It runs until ctx ends.
func (s *Store) follow(ctx context.Context) {
	poll := time.NewTicker(s.opts.RemotePoll)
	defer poll.Stop()
	var last plumbing.Hash
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-poll.C:
		case <-s.syncNow:
		}
		fctx, cancel := context.WithTimeout(ctx, s.opts.RemoteTimeout)
		head, err := s.opts.Remote.Fetch(fctx)
		cancel()
		if err != nil {
			if !failing && ctx.Err() == nil {
				s.log.Warn("fetching from the remote failed; retrying at the next poll", "err", err)
			}
			failing = true
			continue
		}
		if failing {
			s.log.Info("the remote answers again")
			failing = false
		}
		if head == last {
			continue
		}
		last = head
		select {
		case s.remoteHeads <- head:
		case <-ctx.Done():
			return
		}
	}
}

// ownHeads remembers the last heads this store pushed (committer only).
type ownHeads struct {
	heads [ownHeadsKept]plumbing.Hash
	next  int
}

func (o *ownHeads) add(h plumbing.Hash) {
	o.heads[o.next%ownHeadsKept] = h
	o.next++
}

func (o *ownHeads) has(h plumbing.Hash) bool {
	for _, x := range o.heads {
		if x == h {
			return true
		}
	}
	return false
}
