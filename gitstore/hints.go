package gitstore

import (
	"sync"

	"github.com/go-git/go-git/v5/plumbing"
)

// A batch pack must hold every delta base it uses, so the first version of
// each folder a batch changes is stored whole (tens of kilobytes for a
// folder of hundreds of files), and merges used to read every such tree
// back, inflate it and compare it with an earlier version to store it as
// a delta. The committer knows that earlier version when it writes the
// tree (it is the one it edited), so it makes the delta right away, at
// the cost of one comparison, and leaves it as a hint: the merge then
// stores the tree as that delta without reading it, when the earlier
// version is already in the merged pack.

// treeHint is a delta that turns the tree base into the tree it is kept
// for.
type treeHint struct {
	tree, base plumbing.Hash
	delta      []byte
}

// deltaHints holds the hints of trees in packs not merged yet. It is safe
// for concurrent use: the committer adds, the housekeeper takes.
type deltaHints struct {
	mu    sync.Mutex
	hints map[plumbing.Hash]treeHint
}

func newDeltaHints() *deltaHints { return &deltaHints{hints: map[plumbing.Hash]treeHint{}} }

// maxHints bounds the hints held (about 100 bytes each) should merges
// fall far behind.
const maxHints = 1 << 16

// add records the hints of a pack about to be published.
func (h *deltaHints) add(hints []treeHint) {
	if h == nil || len(hints) == 0 {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, t := range hints {
		if len(h.hints) >= maxHints {
			return // those trees are merged the slow way
		}
		h.hints[t.tree] = t
	}
}

// take returns the hint for tree and forgets it (a tree is merged out of
// a batch pack once; later merges copy what the first one wrote).
func (h *deltaHints) take(tree plumbing.Hash) (treeHint, bool) {
	if h == nil {
		return treeHint{}, false
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	t, ok := h.hints[tree]
	delete(h.hints, tree)
	return t, ok
}

// forget drops the hints of the objects of a merged pack, so hints never
// outlive the packs they were made for by more than one merge.
func (h *deltaHints) forget(entries []packEntry) {
	if h == nil || len(entries) == 0 {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, e := range entries {
		delete(h.hints, e.hash)
	}
}

// len is the number of hints held.
func (h *deltaHints) len() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.hints)
}
