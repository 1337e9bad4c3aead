package gitstore

import (
	"container/list"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-git/go-billy/v5"
	"github.com/go-git/go-billy/v5/osfs"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/cache"
	"github.com/go-git/go-git/v5/storage/filesystem"
	"github.com/go-git/go-git/v5/storage/filesystem/dotgit"
)

// objectReader reads objects of the repository through go-git's storage,
// which is not safe for concurrent use, so calls are serialised.
//
// go-git re-reads every pack index when told the packs changed, which with
// a large pack and dozens of small ones costs about 17 ms and 2.5 MB at
// 50,000 deployments. So the reader keeps two storages over the same
// repository: main, which knows the packs listed at its last full re-read,
// and fresh, which lists only the packs main does not know. A miss in main
// re-reads fresh's few indexes; main is re-read in full only after
// maxFreshPacks new packs, when a pack it knew was removed (a merge, here
// or in another process, or git gc), or when told to (reindex).
type objectReader struct {
	mu    sync.Mutex
	st    *filesystem.Storage // main
	fresh *filesystem.Storage
	known *packNames // what main listed
	seen  *packNames // what fresh listed
	lru   *cache.ObjectLRU
}

// maxFreshPacks is how many packs fresh may hold before a miss re-reads
// main in full.
const maxFreshPacks = 32

// Sizes of go-git's cache of decoded objects: large while the index is
// loaded (a pack written by git stores most blobs as deltas, whose bases
// are then found in the cache), small after (the store keeps its own
// decoded trees, and the index its records).
const (
	loadCacheSize = 16 * cache.MiByte
	runCacheSize  = 4 * cache.MiByte
)

func newObjectReader(gitDir string) *objectReader {
	lru := cache.NewObjectLRU(loadCacheSize) // shared: both storages are used under mu
	known, seen := &packNames{}, &packNames{}
	base := osfs.New(gitDir)
	return &objectReader{
		st:    filesystem.NewStorageWithOptions(listingFS{Filesystem: base, record: known}, lru, filesystem.Options{}),
		fresh: filesystem.NewStorageWithOptions(listingFS{Filesystem: base, record: seen, skip: known}, lru, filesystem.Options{}),
		known: known, seen: seen, lru: lru,
	}
}

// listingFS is the repository's file system as go-git reads it, except
// that a directory listing skips the entries that disappear while it is
// read. billy's osfs fails the whole listing then, and go-git finds no
// pack at all: a pack removed at the wrong moment by a merge (this store's,
// another store's) or by git gc made lookups miss objects that were there.
// A listing of the pack folder leaves out the packs in skip, and is kept in
// record.
type listingFS struct {
	billy.Filesystem
	record, skip *packNames
}

// ReadDir lists path, leaving out entries removed meanwhile.
func (f listingFS) ReadDir(path string) ([]os.FileInfo, error) {
	entries, err := os.ReadDir(filepath.Join(f.Root(), path))
	if err != nil {
		return nil, err
	}
	packDir := filepath.Clean(path) == filepath.Join("objects", "pack")
	if packDir && f.skip != nil {
		// Before the stat of each entry: fresh lists every miss.
		entries = slices.DeleteFunc(entries, func(e fs.DirEntry) bool { return f.skip.has(e.Name()) })
	}
	infos, err := entryInfos(entries)
	if err == nil && packDir && f.record != nil {
		f.record.set(infos)
	}
	return infos, err
}

// packNames is the set of file names a listing of the pack folder gave.
type packNames struct {
	mu    sync.Mutex
	names map[string]bool
	packs int // .idx files among them
}

func (n *packNames) set(infos []os.FileInfo) {
	names := make(map[string]bool, len(infos))
	packs := 0
	for _, fi := range infos {
		names[fi.Name()] = true
		if strings.HasSuffix(fi.Name(), ".idx") {
			packs++
		}
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.names, n.packs = names, packs
}

func (n *packNames) has(name string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.names[name]
}

func (n *packNames) count() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.packs
}

// entryInfos returns the infos of entries that still exist.
func entryInfos(entries []fs.DirEntry) ([]os.FileInfo, error) {
	infos := make([]os.FileInfo, 0, len(entries))
	for _, e := range entries {
		fi, err := e.Info()
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		infos = append(infos, fi)
	}
	return infos, nil
}

// shrinkCache empties go-git's object cache and bounds it to size.
func (r *objectReader) shrinkCache(size cache.FileSize) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lru.Clear()
	r.lru.MaxSize = size
}

// read returns the content of the object h, which must be of type t.
func (r *objectReader) read(t plumbing.ObjectType, h plumbing.Hash) ([]byte, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	obj, err := r.st.EncodedObject(t, h)
	if errors.Is(err, plumbing.ErrObjectNotFound) {
		// Most likely in a pack written since main's list: look in those
		// fresh knows, then in those written since fresh's list.
		obj, err = r.fresh.EncodedObject(t, h)
		if errors.Is(err, plumbing.ErrObjectNotFound) && r.seen.count() < maxFreshPacks {
			r.fresh.Reindex()
			obj, err = r.fresh.EncodedObject(t, h)
		}
	}
	start := time.Now()
	for try := 0; err != nil && (try < 4 || vanished(err) && time.Since(start) < vanishedWait); try++ {
		// A pack written since the pack list was read, or one a repack by
		// git or a merge replaced meanwhile (git publishes a pack and then
		// its index: wait a moment before looking again): read all the pack
		// indexes again. While packs vanish under the lookup, a removal is
		// in progress and the objects are in the pack that replaces them.
		if try > 0 {
			time.Sleep(time.Duration(min(try, 5)*10) * time.Millisecond)
		}
		r.reindexLocked()
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

// vanishedWait bounds how long a lookup keeps looking while the packs it
// finds the object in are removed under it.
const vanishedWait = 2 * time.Second

// vanished reports whether err says a listed pack was gone when opened.
func vanished(err error) bool {
	return errors.Is(err, dotgit.ErrPackfileNotFound) || errors.Is(err, fs.ErrNotExist)
}

// locked runs fn while no lookup is in progress.
func (r *objectReader) locked(fn func()) {
	r.mu.Lock()
	defer r.mu.Unlock()
	fn()
}

// reindex makes the reader read the pack list again. go-git then reloads
// every pack index on the next lookup.
func (r *objectReader) reindex() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.reindexLocked()
}

func (r *objectReader) reindexLocked() {
	r.st.Reindex()
	r.fresh.Reindex()
	r.seen.set(nil)
}

func (r *objectReader) close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return errors.Join(r.st.Close(), r.fresh.Close())
}

// treeCache keeps recently used decoded trees, so that the committer edits
// the trees along hot paths (the root, clusters/, busy cluster folders)
// without reading back what it just wrote. It is safe for concurrent use.
//
// Besides the LRU it pins the newest version the committer wrote of each
// folder: those are the trees the next writes edit, and with hundreds of
// folders and several new trees per write, an LRU alone would evict some
// of them before their next edit.
type treeCache struct {
	src *objectReader
	max int

	mu     sync.Mutex
	order  *list.List // of plumbing.Hash, most recent first
	items  map[plumbing.Hash]*cachedTree
	pinned map[plumbing.Hash]tree   // newest version of each folder
	pinOf  map[string]plumbing.Hash // folder → its pinned version
}

type cachedTree struct {
	t    tree
	elem *list.Element
}

func newTreeCache(src *objectReader, max int) *treeCache {
	return &treeCache{src: src, max: max, order: list.New(), items: map[plumbing.Hash]*cachedTree{},
		pinned: map[plumbing.Hash]tree{}, pinOf: map[string]plumbing.Hash{}}
}

// tree returns the decoded tree h. Callers must not modify it.
func (c *treeCache) tree(h plumbing.Hash) (tree, error) {
	c.mu.Lock()
	if t, ok := c.pinned[h]; ok {
		c.mu.Unlock()
		return t, nil
	}
	if it, ok := c.items[h]; ok {
		c.order.MoveToFront(it.elem)
		c.mu.Unlock()
		return it.t, nil
	}
	c.mu.Unlock()
	data, err := c.src.read(plumbing.TreeObject, h)
	if err != nil {
		return tree{}, err
	}
	t, err := decodeTree(data)
	if err != nil {
		return tree{}, fmt.Errorf("tree %s: %w", h, err)
	}
	c.put(h, t)
	return t, nil
}

func (c *treeCache) put(h plumbing.Hash, t tree) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.putLocked(h, t)
}

func (c *treeCache) putLocked(h plumbing.Hash, t tree) {
	if t.n == 0 {
		return
	}
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

// pin records t as the newest version of folder dir, replacing the one
// pinned before (which stays in the LRU part).
func (c *treeCache) pin(dir string, h plumbing.Hash, t tree) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.pinOf[dir]; ok && old != h {
		t0 := c.pinned[old]
		delete(c.pinned, old)
		c.putLocked(old, t0)
	}
	c.pinOf[dir] = h
	c.pinned[h] = t
}
