package gitstore

import (
	"container/list"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
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
//
// Every object read is hashed and must be the object asked for: go-git
// hashes none, and a pack changed on disk can inflate to other content
// (see verify.go). Packs left out (damaged ones, and a .pack without its
// index, as git leaves it out) are hidden from both storages.
type objectReader struct {
	dir   string
	log   *slog.Logger
	mu    sync.Mutex
	st    *filesystem.Storage // main
	fresh *filesystem.Storage
	known *packNames // what main listed
	seen  *packNames // what fresh listed
	lru   *cache.ObjectLRU
	left  *leftOut // damaged packs left out
	// idxChecked lists the packs whose index is known to be intact (used
	// under mu).
	idxChecked map[string]bool
	// checks caches what checking a pack found, for the errors of reads
	// that fail (used under mu).
	checks map[string]cachedCheck
}

type cachedCheck struct {
	size int64
	mod  time.Time
	c    packCheck
}

// leftOut is the set of damaged packs (pack-<sum>) the reader leaves out,
// with what is wrong with each. A pack stays left out until the store is
// opened again.
type leftOut struct {
	mu    sync.Mutex
	packs map[string]string
}

func (l *leftOut) add(name, problem string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.packs == nil {
		l.packs = map[string]string{}
	}
	l.packs[name] = problem
}

// why returns what is wrong with pack name, and whether it is left out.
func (l *leftOut) why(name string) (string, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	p, ok := l.packs[name]
	return p, ok
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

// newObjectReader reads the repository at gitDir, leaving out the packs
// in left (pack-<sum> → what is wrong with it; checked is every pack whose
// index was found intact).
func newObjectReader(gitDir string, left map[string]string, checked []string, log *slog.Logger) *objectReader {
	lru := cache.NewObjectLRU(loadCacheSize) // shared: both storages are used under mu
	known, seen := &packNames{}, &packNames{}
	lo := &leftOut{}
	for n, why := range left {
		lo.add(n, why)
	}
	base := osfs.New(gitDir)
	r := &objectReader{
		dir: gitDir, log: log,
		st:    filesystem.NewStorageWithOptions(listingFS{Filesystem: base, record: known, left: lo}, lru, filesystem.Options{}),
		fresh: filesystem.NewStorageWithOptions(listingFS{Filesystem: base, record: seen, skip: known, left: lo}, lru, filesystem.Options{}),
		known: known, seen: seen, lru: lru, left: lo,
		idxChecked: map[string]bool{}, checks: map[string]cachedCheck{},
	}
	for _, n := range checked {
		r.idxChecked[n] = true
	}
	return r
}

// listingFS is the repository's file system as go-git reads it, except
// that a directory listing skips the entries that disappear while it is
// read. billy's osfs fails the whole listing then, and go-git finds no
// pack at all: a pack removed at the wrong moment by a merge (this store's,
// another store's) or by git gc made lookups miss objects that were there.
// A listing of the pack folder leaves out the packs in skip and in left,
// and a .pack without its index (as git does: go-git would fail every
// lookup), and is kept in record.
type listingFS struct {
	billy.Filesystem
	record, skip *packNames
	left         *leftOut
}

// ReadDir lists path, leaving out entries removed meanwhile.
func (f listingFS) ReadDir(path string) ([]os.FileInfo, error) {
	entries, err := os.ReadDir(filepath.Join(f.Root(), path))
	if err != nil {
		return nil, err
	}
	packDir := filepath.Clean(path) == filepath.Join("objects", "pack")
	if packDir {
		entries = readablePacks(entries, f.left)
	}
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

// readablePacks leaves out of a listing of the pack folder the packs in
// left and every .pack file without its index.
func readablePacks(entries []fs.DirEntry, left *leftOut) []fs.DirEntry {
	names := make(map[string]bool, len(entries))
	for _, e := range entries {
		names[e.Name()] = true
	}
	return slices.DeleteFunc(entries, func(e fs.DirEntry) bool {
		n := e.Name()
		if !strings.HasPrefix(n, "pack-") {
			return false
		}
		stem := strings.TrimSuffix(n, filepath.Ext(n))
		if _, out := left.why(stem); out {
			return true
		}
		return strings.HasSuffix(n, ".pack") && !names[stem+".idx"]
	})
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

// read returns the content of the object h, which must be of type t. An
// object whose content does not hash to h is an error, never its content.
func (r *objectReader) read(t plumbing.ObjectType, h plumbing.Hash) ([]byte, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	data, err := r.lookup(t, h)
	if err != nil && !errors.Is(err, plumbing.ErrObjectNotFound) && r.leaveOutDamagedIndexes() {
		data, err = r.lookup(t, h)
	}
	if err == nil && hashObject(t, data) != h {
		err = errMismatch
	}
	if err != nil && r.leaveOutDamagedHolders(h) {
		// The object is intact elsewhere: read it there.
		if data, err = r.lookup(t, h); err == nil && hashObject(t, data) != h {
			err = errMismatch
		}
	}
	switch {
	case err == nil:
		return data, nil
	case err == errMismatch:
		cause := fmt.Sprintf("its content hashes to %s", hashObject(t, data))
		return nil, r.explain(t, h, cause, fmt.Errorf("read %s %s: %s", t, h, cause))
	default:
		return nil, r.explain(t, h, err.Error(), fmt.Errorf("read %s %s: %w", t, h, err))
	}
}

// errMismatch is a read whose content is not the object's.
var errMismatch = errors.New("content does not hash to the object's id")

// leaveOutDamagedHolders leaves out the damaged packs listing h whose
// objects are all intact elsewhere (as Open does), and reports whether it
// left one out.
func (r *objectReader) leaveOutDamagedHolders(h plumbing.Hash) bool {
	pairs, _, _ := listPacks(r.dir)
	var holders []string
	var others []idxView
	for _, name := range pairs {
		if _, out := r.left.why(name); out {
			continue
		}
		v, err := readIdx(r.dir, name)
		if err != nil {
			continue
		}
		if v.has(h) {
			holders = append(holders, name)
		}
		others = append(others, v)
	}
	damaged := map[string]packCheck{}
	for _, name := range holders {
		if c := r.check(name); c.name != "" && !c.intact() {
			damaged[c.name] = c
		}
	}
	// Elsewhere: any pack but the damaged ones.
	rest := slices.DeleteFunc(others, func(v idxView) bool {
		_, bad := damaged["pack-"+hex.EncodeToString(v.packSum())]
		return bad
	})
	left := false
	for name, c := range damaged {
		if missingElsewhere(r.dir, name, rest) != 0 {
			continue
		}
		r.left.add(name, c.file+" "+c.problem)
		r.log.Warn("damaged pack left out: every object it holds is intact elsewhere; check the repository with git fsck and remove it",
			"file", c.file, "problem", c.problem)
		left = true
	}
	if left {
		r.reindexLocked()
	}
	return left
}

// lookup reads the content of h through go-git.
func (r *objectReader) lookup(t plumbing.ObjectType, h plumbing.Hash) ([]byte, error) {
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
	// (Only a miss is looked up again: a pack is never changed once it has
	// its name, so content that does not inflate stays so.)
	for try := 0; (errors.Is(err, plumbing.ErrObjectNotFound) || vanished(err)) && (try < 4 || vanished(err) && time.Since(start) < vanishedWait); try++ {
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
		return nil, err
	}
	rd, err := obj.Reader()
	if err != nil {
		return nil, err
	}
	defer rd.Close()
	return io.ReadAll(rd)
}

// leaveOutDamagedIndexes checks the indexes of the packs not checked yet
// and leaves out those damaged (go-git fails every lookup while one index
// it lists is damaged: one copied in while the store runs stopped every
// read). It reports whether it left one out.
func (r *objectReader) leaveOutDamagedIndexes() bool {
	pairs, _, _ := listPacks(r.dir)
	found := false
	for _, name := range pairs {
		if _, out := r.left.why(name); out || r.idxChecked[name] {
			continue
		}
		v, err := readIdx(r.dir, name)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err == nil && hex.EncodeToString(v.packSum()) != strings.TrimPrefix(name, "pack-") {
			err = fmt.Errorf("belongs to another pack (it names pack-%x)", v.packSum())
		}
		if err != nil {
			problem := "its index " + err.Error()
			r.left.add(name, problem)
			r.log.Error("damaged pack index left out: the objects of its pack cannot be read; check the repository with git fsck, restore the pack, and open the store again",
				"file", "objects/pack/"+name+".idx", "problem", err.Error())
			found = true
			continue
		}
		r.idxChecked[name] = true
	}
	if found {
		r.reindexLocked()
	}
	return found
}

// explain turns a failed read of h into a *DamagedError that names the
// file holding h and what is wrong with it, when a pack (or loose object)
// holds h; otherwise it returns err. cause says how the read failed.
func (r *objectReader) explain(t plumbing.ObjectType, h plumbing.Hash, cause string, err error) error {
	mismatch := strings.HasPrefix(cause, "its content hashes to")
	e := &DamagedError{Dir: r.dir, Object: h, Type: t, Cause: cause}
	pairs, noIndex, noPack := listPacks(r.dir)
	for _, name := range append(noPack, pairs...) {
		v, verr := readIdx(r.dir, name)
		if verr != nil || !v.has(h) {
			continue
		}
		e.File = "objects/pack/" + name + ".pack"
		if slices.Contains(noPack, name) {
			e.Problem = "is missing (its index objects/pack/" + name + ".idx lists the object)"
			return e
		}
		if why, out := r.left.why(name); out {
			e.Problem = "was left out as damaged: " + why
			return e
		}
		c := r.check(name)
		if c.name == "" {
			continue // removed meanwhile
		}
		if !c.intact() {
			e.File, e.Problem = c.file, c.problem
			return e
		}
		if mismatch {
			e.Problem = "passes its checksum: it was written with wrong content"
			return e
		}
	}
	if s := h.String(); mismatch {
		if _, serr := os.Stat(filepath.Join(r.dir, "objects", s[:2], s[2:])); serr == nil {
			e.File, e.Problem = "objects/"+s[:2]+"/"+s[2:], "is damaged (a loose object)"
		}
		return e
	}
	if len(noIndex) > 0 && errors.Is(err, plumbing.ErrObjectNotFound) {
		// Perhaps in a pack whose index is lost.
		e.pack, e.noIndex = noIndex[0], true
		e.File = "objects/pack/" + noIndex[0] + ".pack"
		e.Problem = "has no index, so its objects cannot be read: it may hold this one"
		if n := len(noIndex); n > 1 {
			e.Problem += fmt.Sprintf(" (as may %d other packs without an index)", n-1)
		}
		return e
	}
	return err
}

// check checks pack name, or returns what checking it found before when
// the file is unchanged since.
func (r *objectReader) check(name string) packCheck {
	fi, err := os.Stat(filepath.Join(packDir(r.dir), name+".pack"))
	if err != nil {
		return packCheck{}
	}
	if c, ok := r.checks[name]; ok && c.size == fi.Size() && c.mod.Equal(fi.ModTime()) {
		return c.c
	}
	c := checkPack(r.dir, name, make([]byte, 256<<10))
	if len(r.checks) > 64 {
		clear(r.checks)
	}
	r.checks[name] = cachedCheck{size: fi.Size(), mod: fi.ModTime(), c: c}
	return c
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
