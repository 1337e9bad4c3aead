package gitstore

import (
	"container/list"
	"fmt"
	"io"
	"sync"

	"github.com/go-git/go-billy/v5/osfs"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/cache"
	"github.com/go-git/go-git/v5/storage/filesystem"
)

// objectReader reads objects of the repository through go-git's storage,
// which is not safe for concurrent use, so calls are serialised. Packs
// written since the last lookup (by the committer or by a push) are found by
// re-reading the pack indexes after a miss.
type objectReader struct {
	mu sync.Mutex
	st *filesystem.Storage
}

func newObjectReader(gitDir string) *objectReader {
	st := filesystem.NewStorageWithOptions(osfs.New(gitDir), cache.NewObjectLRU(32*cache.MiByte), filesystem.Options{})
	return &objectReader{st: st}
}

// read returns the content of the object h, which must be of type t.
func (r *objectReader) read(t plumbing.ObjectType, h plumbing.Hash) ([]byte, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	obj, err := r.st.EncodedObject(t, h)
	for try := 0; err != nil && try < 3; try++ {
		// A pack written since the pack list was read, or one a repack by
		// git replaced meanwhile: read the pack indexes again.
		r.st.Reindex()
		obj, err = r.st.EncodedObject(t, h)
	}
	if err != nil {
		return nil, fmt.Errorf("read %s %s: %w", t, h, err)
	}
	rd, err := obj.Reader()
	if err != nil {
		return nil, fmt.Errorf("read %s %s: %w", t, h, err)
	}
	defer rd.Close()
	data, err := io.ReadAll(rd)
	if err != nil {
		return nil, fmt.Errorf("read %s %s: %w", t, h, err)
	}
	return data, nil
}

// locked runs fn while no lookup is in progress, then makes the reader
// read the pack list again (fn changed it).
func (r *objectReader) locked(fn func()) {
	r.mu.Lock()
	defer r.mu.Unlock()
	fn()
	r.st.Reindex()
}

func (r *objectReader) close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.st.Close()
}

// treeCache keeps recently used decoded trees, so that the committer edits
// the trees along hot paths (the root, clusters/, busy cluster folders)
// without reading back what it just wrote. It is safe for concurrent use.
type treeCache struct {
	src *objectReader
	max int

	mu    sync.Mutex
	order *list.List // of plumbing.Hash, most recent first
	items map[plumbing.Hash]*cachedTree
}

type cachedTree struct {
	t    tree
	elem *list.Element
}

func newTreeCache(src *objectReader, max int) *treeCache {
	return &treeCache{src: src, max: max, order: list.New(), items: map[plumbing.Hash]*cachedTree{}}
}

// tree returns the decoded tree h. Callers must not modify it.
func (c *treeCache) tree(h plumbing.Hash) (tree, error) {
	c.mu.Lock()
	if it, ok := c.items[h]; ok {
		c.order.MoveToFront(it.elem)
		c.mu.Unlock()
		return it.t, nil
	}
	c.mu.Unlock()
	data, err := c.src.read(plumbing.TreeObject, h)
	if err != nil {
		return nil, err
	}
	t, err := decodeTree(data)
	if err != nil {
		return nil, fmt.Errorf("tree %s: %w", h, err)
	}
	c.put(h, t)
	return t, nil
}

func (c *treeCache) put(h plumbing.Hash, t tree) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if it, ok := c.items[h]; ok {
		c.order.MoveToFront(it.elem)
		return
	}
	c.items[h] = &cachedTree{t: t, elem: c.order.PushFront(h)}
	for c.order.Len() > c.max {
		last := c.order.Back()
		c.order.Remove(last)
		delete(c.items, last.Value.(plumbing.Hash))
	}
}
