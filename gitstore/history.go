package gitstore

import (
	"context"
	"fmt"
	"log/slog"
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
// oldest first. It holds commit ids only (no pointers for the garbage
// collector to follow); a request reads its few commits from the object
// store. It is built once in the background at start, from the history
// file of the last run (see histfile.go) plus the commits made since, and
// extended by every commit after that, so a request never walks the
// history.
type history struct {
	mu       sync.Mutex
	ready    chan struct{}
	live     map[string][]plumbing.Hash // commits added after the start head
	built    map[string][]plumbing.Hash // commits up to the start head
	known    map[plumbing.Hash]struct{} // every commit recorded
	buildErr error
	dirty    int // commits added since the history file was written
}

func newHistory() *history {
	return &history{ready: make(chan struct{}), live: map[string][]plumbing.Hash{}, known: map[plumbing.Hash]struct{}{}}
}

func entryOf(c *commitInfo) HistoryEntry {
	return HistoryEntry{SHA: c.hash.String(), AuthorName: c.author.Name, AuthorEmail: c.author.Email, Time: c.when, Message: c.message}
}

// add records that commit c touched the deployments ids.
func (h *history) add(c plumbing.Hash, ids []string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.known[c] = struct{}{}
	h.dirty++
	for _, id := range ids {
		h.live[id] = append(h.live[id], c)
	}
}

func (h *history) isKnown(c plumbing.Hash) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	_, ok := h.known[c]
	return ok
}

// get returns the commits of deployment id, oldest first, waiting for the
// initial build; read loads a commit.
func (h *history) get(ctx context.Context, id string, read func(plumbing.Hash) (*commitInfo, error)) ([]HistoryEntry, error) {
	select {
	case <-h.ready:
	case <-ctx.Done():
		return nil, fmt.Errorf("history of %s: %w", id, ctx.Err())
	}
	h.mu.Lock()
	if h.buildErr != nil {
		h.mu.Unlock()
		return nil, h.buildErr
	}
	commits := slices.Clone(h.built[id])
	// A push taken in while the first build still ran may have added
	// commits the build also found.
	for _, c := range h.live[id] {
		if !slices.Contains(commits, c) {
			commits = append(commits, c)
		}
	}
	h.mu.Unlock()
	out := make([]HistoryEntry, 0, len(commits))
	for _, c := range commits {
		info, err := read(c)
		if err != nil {
			return nil, fmt.Errorf("history of %s: %w", id, err)
		}
		out = append(out, entryOf(info))
	}
	return out, nil
}

// build completes the history up to head: it loads the history file of
// an earlier run when there is one whose head is an ancestor of head, then
// walks the commits the file does not know, newest first, and records
// which deployments each one touched, reading only the files whose blobs
// the index does not know. When the walk was long, the history file is
// written again.
func (h *history) build(ctx context.Context, s *Store, head plumbing.Hash) {
	defer close(h.ready)
	start := time.Now()
	file := s.historyFile()
	cached, err := file.load()
	if err != nil {
		s.log.Warn("history file unreadable; rebuilding it from the commits", "err", err)
		cached = emptyHistoryFile()
	}
	fresh, err := h.walk(ctx, s, head, cached)
	if err == errHistoryRewritten {
		s.log.Info("branch rewritten since the history file was written; rebuilding it from the commits")
		cached = emptyHistoryFile()
		fresh, err = h.walk(ctx, s, head, cached)
	}
	if err != nil {
		h.finish(nil, nil, err)
		return
	}
	built := cached.byID
	var known map[plumbing.Hash]string
	if len(fresh) > 0 {
		known = s.blobIDs() // only when there is something to walk
	}
	for _, c := range fresh {
		ids, err := s.touchedDeployments(c, known)
		if err != nil {
			h.finish(nil, nil, err)
			return
		}
		for _, id := range ids {
			built[id] = append(built[id], c.hash)
		}
		cached.known[c.hash] = struct{}{}
	}
	h.finish(built, cached.known, nil)
	s.log.Debug("history built", "commits", len(cached.known), "walked", len(fresh), "took", time.Since(start).Round(time.Millisecond))
	if len(fresh) >= historySaveAfter {
		h.save(s.log, file, head)
		return
	}
	h.mu.Lock()
	h.dirty += len(fresh)
	h.mu.Unlock()
}

// historySaveAfter is how many commits not in the history file make the
// store write the file again (at the end of the first build, from the
// housekeeper, and at Close).
const historySaveAfter = 1000

// errHistoryRewritten means the history file's head is not an ancestor of
// the branch head: the branch was rewritten (a force push).
var errHistoryRewritten = fmt.Errorf("history file's head not in the history")

// walk returns the commits reachable from head that the history file does
// not know, oldest first (commits of the same second keep their parent
// order). errHistoryRewritten when it never met the file's head.
func (h *history) walk(ctx context.Context, s *Store, head plumbing.Hash, cached *historyFile) ([]*commitInfo, error) {
	seen := map[plumbing.Hash]bool{}
	queue := []plumbing.Hash{head}
	reached := cached.head.IsZero() || cached.head == head
	var commits []*commitInfo
	for len(queue) > 0 && !head.IsZero() {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		c := queue[0]
		queue = queue[1:]
		if seen[c] {
			continue
		}
		seen[c] = true
		if _, ok := cached.known[c]; ok {
			reached = reached || c == cached.head
			continue
		}
		info, err := s.readCommit(c)
		if err != nil {
			return nil, err
		}
		commits = append(commits, info)
		queue = append(queue, info.parents...)
	}
	if !reached {
		return nil, errHistoryRewritten
	}
	slices.Reverse(commits)
	slices.SortStableFunc(commits, func(a, b *commitInfo) int { return a.when.Compare(b.when) })
	return commits, nil
}

func (h *history) finish(built map[string][]plumbing.Hash, known map[plumbing.Hash]struct{}, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if err != nil {
		h.buildErr = fmt.Errorf("build history index: %w", err)
		return
	}
	h.built = built
	for c := range h.known {
		known[c] = struct{}{}
	}
	h.known = known
}

// save writes the history file for head, when the initial build is done
// and the history knows every commit up to head (the caller makes sure:
// commits are added before the head moves past them).
func (h *history) save(log *slog.Logger, file historyFile, head plumbing.Hash) {
	select {
	case <-h.ready:
	default:
		return
	}
	h.mu.Lock()
	if h.buildErr != nil {
		h.mu.Unlock()
		return
	}
	snap := &historyFile{path: file.path, head: head, byID: make(map[string][]plumbing.Hash, len(h.built)), known: make(map[plumbing.Hash]struct{}, len(h.known))}
	for id, cs := range h.built {
		snap.byID[id] = slices.Clone(cs)
	}
	for id, cs := range h.live {
		for _, c := range cs {
			if !slices.Contains(snap.byID[id], c) {
				snap.byID[id] = append(snap.byID[id], c)
			}
		}
	}
	for c := range h.known {
		snap.known[c] = struct{}{}
	}
	h.dirty = 0
	h.mu.Unlock()
	if err := snap.write(); err != nil {
		log.Warn("writing the history file failed; the next start walks more commits", "err", err)
	}
}

// unsaved is how many commits were added since the history file was
// written.
func (h *history) unsaved() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.dirty
}
