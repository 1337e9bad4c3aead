package gitstore

import (
	"context"
	"errors"
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
// oldest first. It holds commit ids only; a request reads its few commits
// from the object store. It is built once in the background at start,
// from the history file of the last run (see histfile.go) plus the commits
// made since, and extended by every commit after that, so a request never
// walks the history. Commits since the file are held in maps (live); a
// save writes the file again and folds them into the compact base.
type history struct {
	mu       sync.Mutex
	ready    chan struct{}
	base     *historyBase  // the history file's content, or the last save's
	saving   *historyDelta // being folded into a new base by a save, or nil
	live     *historyDelta // commits added since
	buildErr error
	saveMu   sync.Mutex // one save at a time
	lastSave time.Time  // when the last save ended (or the history was made)
}

// historyDelta is the history of commits not in a base yet.
type historyDelta struct {
	byID  map[string][]plumbing.Hash
	known map[plumbing.Hash]struct{}
}

func newHistoryDelta() *historyDelta {
	return &historyDelta{byID: map[string][]plumbing.Hash{}, known: map[plumbing.Hash]struct{}{}}
}

func newHistory() *history {
	return &history{ready: make(chan struct{}), base: emptyHistoryBase(), live: newHistoryDelta(), lastSave: time.Now()}
}

func entryOf(c *commitInfo) HistoryEntry {
	return HistoryEntry{SHA: c.hash.String(), AuthorName: c.author.Name, AuthorEmail: c.author.Email, Time: c.when, Message: c.message}
}

// add records that commit c touched the deployments ids.
func (h *history) add(c plumbing.Hash, ids []string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.live.known[c] = struct{}{}
	for _, id := range ids {
		h.live.byID[id] = append(h.live.byID[id], c)
	}
}

func (h *history) isKnown(c plumbing.Hash) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.live.known[c]; ok {
		return true
	}
	if h.saving != nil {
		if _, ok := h.saving.known[c]; ok {
			return true
		}
	}
	return h.base.has(c)
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
	commits := h.base.commitsOf(id)
	// A push taken in while the first build still ran may have added
	// commits the build also found.
	if h.saving != nil {
		commits = appendNew(commits, h.saving.byID[id])
	}
	commits = appendNew(commits, h.live.byID[id])
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
	start := time.Now()
	cached, err := loadHistoryFile(s.historyPath())
	switch {
	case errors.Is(err, errHistoryOutdated):
		s.log.Info("history file written by another version; rebuilding it from the commits", "err", err)
	case err != nil:
		s.log.Warn("history file unreadable; rebuilding it from the commits", "err", err)
	}
	if err != nil {
		cached = emptyHistoryBase()
	}
	fresh, err := h.walk(ctx, s, head, cached)
	if err == errHistoryRewritten {
		s.log.Info("branch rewritten since the history file was written; rebuilding it from the commits")
		cached = emptyHistoryBase()
		fresh, err = h.walk(ctx, s, head, cached)
	}
	if err != nil {
		h.finish(nil, nil, err)
		return
	}
	walked := newHistoryDelta()
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
			walked.byID[id] = append(walked.byID[id], c.hash)
		}
		walked.known[c.hash] = struct{}{}
	}
	s.log.Debug("history built", "commits", len(cached.commits)+len(fresh), "walked", len(fresh), "took", time.Since(start).Round(time.Millisecond))
	h.finish(cached, walked, nil)
	if len(fresh) >= historySaveAfter {
		s.saveHistory(head)
	}
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
// order). errHistoryRewritten when it never met the file's head (after a
// force push it may read every commit the file knows to find that out).
func (h *history) walk(ctx context.Context, s *Store, head plumbing.Hash, cached *historyBase) ([]*commitInfo, error) {
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
		if cached.has(c) {
			reached = reached || c == cached.head
			if !reached {
				// Known but not the file's head: a save that raced a
				// commit folded it in (it descends from the head). Look
				// through it for the head, without recording it again.
				info, err := s.readCommit(c)
				if err != nil {
					return nil, err
				}
				queue = append(queue, info.parents...)
			}
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

// finish ends the build, and lets lookups and saves in: base is the
// history file's, walked the commits made since, which come before any
// added meanwhile.
func (h *history) finish(base *historyBase, walked *historyDelta, err error) {
	defer close(h.ready)
	h.mu.Lock()
	defer h.mu.Unlock()
	if err != nil {
		h.buildErr = fmt.Errorf("build history index: %w", err)
		return
	}
	h.base = base
	for id, cs := range h.live.byID {
		walked.byID[id] = appendNew(walked.byID[id], cs)
	}
	for c := range h.live.known {
		walked.known[c] = struct{}{}
	}
	h.live = walked
}

// save writes the history file for head, when the initial build is done
// and the history knows every commit up to head (the caller makes sure:
// commits are added before the head moves past them). The commits added
// since the last save are folded into a new base, which replaces the old
// one (written or not: a failed write only makes the next start walk
// more commits); commits added meanwhile wait for the next save. It
// returns the error of writing the file.
func (h *history) save(path string, head plumbing.Hash) error {
	select {
	case <-h.ready:
	default:
		return nil
	}
	h.saveMu.Lock()
	defer h.saveMu.Unlock()
	h.mu.Lock()
	if h.buildErr != nil {
		h.mu.Unlock()
		return nil
	}
	base, delta := h.base, h.live
	h.saving, h.live = delta, newHistoryDelta()
	h.mu.Unlock()

	next := base.merge(head, delta.byID, delta.known)
	err := writeHistoryFile(path, next)

	h.mu.Lock()
	h.lastSave = time.Now()
	// The new base holds the history either way; when the file could not
	// be written, the next start walks more commits, and the next save
	// comes after historySaveAfter more.
	h.base, h.saving = next, nil
	h.mu.Unlock()
	return err
}

// dueForSave reports whether the housekeeper should save: historySaveAfter
// commits were added since the last save, and either historySaveInterval
// passed or they are 1/historyFoldShare of those in the base.
func (h *history) dueForSave() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := len(h.live.known)
	return n >= historySaveAfter && (time.Since(h.lastSave) >= historySaveInterval || n >= len(h.base.commits)/historyFoldShare)
}

// unsaved is how many commits were added since the history file was
// written.
func (h *history) unsaved() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.live.known)
}

// appendNew appends to list the commits of more it does not hold yet.
func appendNew(list, more []plumbing.Hash) []plumbing.Hash {
	if len(more) == 0 {
		return list
	}
	if len(list)+len(more) <= 64 {
		for _, c := range more {
			if !slices.Contains(list, c) {
				list = append(list, c)
			}
		}
		return list
	}
	seen := make(map[plumbing.Hash]struct{}, len(list)+len(more))
	for _, c := range list {
		seen[c] = struct{}{}
	}
	for _, c := range more {
		if _, dup := seen[c]; !dup {
			seen[c] = struct{}{}
			list = append(list, c)
		}
	}
	return list
}

// saveHistory writes the history file for head; a failure (a full disk)
// is logged once until a save succeeds again.
func (s *Store) saveHistory(head plumbing.Hash) {
	if err := s.hist.save(s.historyPath(), head); err != nil {
		s.faults.failed(faultHistorySave, "writing the history file failed; the next start walks more commits", err)
		return
	}
	s.faults.ok(faultHistorySave, "the history file is written again")
}
