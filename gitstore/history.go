package gitstore

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
)

// HistoryEntry is one commit that touched a deployment's file.
type HistoryEntry struct {
	SHA         string    `json:"sha"`
	AuthorName  string    `json:"author_name"`
	AuthorEmail string    `json:"author_email"`
	Time        time.Time `json:"time"`
	Message     string    `json:"message"`
}

// history maps each deployment id to the commits that touched its file,
// oldest first. It is built once from the whole history in the background
// at start and extended by every commit after that, so a request never
// walks the history.
type history struct {
	mu      sync.Mutex
	ready   chan struct{}
	byID    map[string][]HistoryEntry // commits after the start head
	built   map[string][]HistoryEntry // commits up to the start head
	known   map[plumbing.Hash]bool
	buildEr error
}

func newHistory() *history {
	return &history{ready: make(chan struct{}), byID: map[string][]HistoryEntry{}, known: map[plumbing.Hash]bool{}}
}

func entryOf(c *commitInfo) HistoryEntry {
	return HistoryEntry{SHA: c.hash.String(), AuthorName: c.author.Name, AuthorEmail: c.author.Email, Time: c.when, Message: c.message}
}

// add records that commit c touched the deployments ids.
func (h *history) add(c *commitInfo, ids []string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.known[c.hash] = true
	e := entryOf(c)
	for _, id := range ids {
		h.byID[id] = append(h.byID[id], e)
	}
}

func (h *history) isKnown(c plumbing.Hash) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.known[c]
}

// get returns the commits of deployment id, oldest first, waiting for the
// initial build.
func (h *history) get(ctx context.Context, id string) ([]HistoryEntry, error) {
	select {
	case <-h.ready:
	case <-ctx.Done():
		return nil, fmt.Errorf("history of %s: %w", id, ctx.Err())
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.buildEr != nil {
		return nil, h.buildEr
	}
	out := slices.Clone(h.built[id])
	// A push taken in while the first build still ran may have added
	// commits the build also found.
	seen := make(map[string]bool, len(out))
	for _, e := range out {
		seen[e.SHA] = true
	}
	for _, e := range h.byID[id] {
		if !seen[e.SHA] {
			out = append(out, e)
		}
	}
	return out, nil
}

// build walks every commit reachable from head once, newest first, and
// records which deployments each one touched.
// known maps the blobs of the head's deployment files to their ids, so
// the files still as they are at the head are not read again.
func (h *history) build(ctx context.Context, s *Store, head plumbing.Hash, known map[plumbing.Hash]string) {
	defer close(h.ready)
	built := map[string][]HistoryEntry{}
	seen := map[plumbing.Hash]bool{}
	queue := []plumbing.Hash{head}
	var commits []*commitInfo
	for len(queue) > 0 && !head.IsZero() {
		if ctx.Err() != nil {
			h.finish(built, ctx.Err())
			return
		}
		c := queue[0]
		queue = queue[1:]
		if seen[c] {
			continue
		}
		seen[c] = true
		info, err := s.readCommit(c)
		if err != nil {
			h.finish(built, err)
			return
		}
		commits = append(commits, info)
		queue = append(queue, info.parents...)
	}
	// Oldest first; commits of the same second keep their parent order.
	slices.Reverse(commits)
	slices.SortStableFunc(commits, func(a, b *commitInfo) int { return a.when.Compare(b.when) })
	for _, c := range commits {
		ids, err := s.touchedDeployments(c, known)
		if err != nil {
			h.finish(built, err)
			return
		}
		e := entryOf(c)
		for _, id := range ids {
			built[id] = append(built[id], e)
		}
	}
	h.mu.Lock()
	for c := range seen {
		h.known[c] = true
	}
	h.mu.Unlock()
	h.finish(built, nil)
}

func (h *history) finish(built map[string][]HistoryEntry, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.built = built
	if err != nil {
		h.buildEr = fmt.Errorf("build history index: %w", err)
	}
}
