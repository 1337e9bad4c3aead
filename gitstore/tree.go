package gitstore

import (
	"bytes"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"
)

// File modes gitstore writes.
const (
	modeTree = 0o040000
	modeBlob = 0o100644
)

// treeEntry is one entry of a Git tree, decoded.
type treeEntry struct {
	name string
	mode uint32
	hash plumbing.Hash
}

func (e treeEntry) isTree() bool { return e.mode == modeTree }

// tree is a Git tree kept in its encoded form (the object's content), cut
// into chunks of whole entries, each with the offset of its entries. A
// tree is never changed once made: set returns a new one that shares
// every chunk but the one it edits, so changing one entry of a folder of
// hundreds of files copies a chunk of a few kilobytes, not the folder's
// whole tree. Trees hold no pointers for the garbage collector to follow
// besides one slice per chunk. Entries are in Git's order.
type tree struct {
	chunks []treeChunk
	n      int // entries
	size   int // encoded bytes
}

// treeChunk is a run of whole entries of a tree.
type treeChunk struct {
	data  []byte   // the entries' encoding; never appended to
	offs  []uint32 // start of each entry in data
	first int      // index in the tree of the chunk's first entry
}

// Chunk sizes: decodeTree cuts a tree into chunks of about chunkTarget
// bytes, and set splits a chunk that grows beyond chunkMax in two.
const (
	chunkTarget = 2048
	chunkMax    = 4096
)

// len is the number of entries.
func (t tree) len() int { return t.n }

// locate returns the chunk holding entry i and i's index in that chunk.
func (t tree) locate(i int) (int, int) {
	lo, hi := 0, len(t.chunks)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if t.chunks[m].first <= i {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo - 1, i - t.chunks[lo-1].first
}

// raw returns the i-th entry's mode, name and hash without copying.
func (t tree) raw(i int) (mode uint32, name []byte, hash plumbing.Hash) {
	c, j := t.locate(i)
	return t.chunks[c].raw(j)
}

// entry returns the i-th entry.
func (t tree) entry(i int) treeEntry {
	mode, name, hash := t.raw(i)
	return treeEntry{name: string(name), mode: mode, hash: hash}
}

// raw returns the chunk's j-th entry's mode, name and hash without copying.
func (c *treeChunk) raw(j int) (mode uint32, name []byte, hash plumbing.Hash) {
	e := c.data[c.offs[j]:]
	sp := bytes.IndexByte(e, ' ')
	for _, ch := range e[:sp] {
		mode = mode<<3 | uint32(ch-'0')
	}
	e = e[sp+1:]
	nul := bytes.IndexByte(e, 0)
	copy(hash[:], e[nul+1:nul+21])
	return mode, e[:nul], hash
}

// end returns where the chunk's j-th entry ends.
func (c *treeChunk) end(j int) int {
	if j+1 < len(c.offs) {
		return int(c.offs[j+1])
	}
	return len(c.data)
}

// parts returns the tree's encoding as the list of its chunks' bytes.
func (t tree) parts() [][]byte {
	out := make([][]byte, len(t.chunks))
	for i := range t.chunks {
		out[i] = t.chunks[i].data
	}
	return out
}

// bytes returns the tree's encoding in one piece (a copy).
func (t tree) bytes() []byte {
	b := make([]byte, 0, t.size)
	for _, c := range t.chunks {
		b = append(b, c.data...)
	}
	return b
}

// decodeTree checks a tree object's content and indexes its entries. The
// tree's chunks share data's memory, which must not change afterwards.
func decodeTree(data []byte) (tree, error) {
	t := tree{size: len(data)}
	offs := make([]uint32, 0, len(data)/48+1)
	start, startEntry := 0, 0 // of the chunk being cut
	cut := func(at int) {
		o := offs[startEntry:len(offs):len(offs)]
		for k := range o {
			o[k] -= uint32(start)
		}
		t.chunks = append(t.chunks, treeChunk{data: data[start:at:at], offs: o, first: startEntry})
		start, startEntry = at, len(offs)
	}
	for at := 0; at < len(data); {
		if at-start >= chunkTarget {
			cut(at)
		}
		e := data[at:]
		sp := bytes.IndexByte(e, ' ')
		if sp <= 0 || sp > 7 {
			return tree{}, fmt.Errorf("decode tree: no mode")
		}
		for _, c := range e[:sp] {
			if c < '0' || c > '7' {
				return tree{}, fmt.Errorf("decode tree: mode %q", e[:sp])
			}
		}
		nul := bytes.IndexByte(e[sp+1:], 0)
		if nul < 0 || len(e) < sp+1+nul+1+20 {
			return tree{}, fmt.Errorf("decode tree: truncated entry")
		}
		offs = append(offs, uint32(at))
		at += sp + 1 + nul + 1 + 20
	}
	if len(offs) > startEntry {
		cut(len(data))
	}
	t.n = len(offs)
	return t, nil
}

// appendEntry appends the encoding of one entry to b.
func appendEntry(b []byte, e treeEntry) []byte {
	switch e.mode {
	case modeBlob:
		b = append(b, "100644 "...)
	case modeTree:
		b = append(b, "40000 "...)
	default:
		b = strconv.AppendUint(b, uint64(e.mode), 8)
		b = append(b, ' ')
	}
	b = append(b, e.name...)
	b = append(b, 0)
	return append(b, e.hash[:]...)
}

// compareKey orders a name the way Git sorts tree entries, a directory as
// if its name ended in "/", without building that string.
func compareKey(a []byte, aDir bool, b []byte, bDir bool) int {
	n := min(len(a), len(b))
	if c := bytes.Compare(a[:n], b[:n]); c != 0 {
		return c
	}
	// One name is a prefix of the other: compare what comes next, the
	// virtual "/" of a directory or the end of the name.
	next := func(name int, at int, dir bool) int {
		switch {
		case at < name:
			return -2 // a real byte follows; decided below
		case dir && at == name:
			return '/'
		}
		return -1
	}
	ca, cb := next(len(a), n, aDir), next(len(b), n, bDir)
	if ca == -2 {
		ca = int(a[n])
	}
	if cb == -2 {
		cb = int(b[n])
	}
	switch {
	case ca < cb:
		return -1
	case ca > cb:
		return 1
	}
	return 0
}

// find returns the index of the entry named name of this kind, or where
// it would go.
func (t tree) find(name string, isTree bool) (int, bool) {
	if t.n == 0 {
		return 0, false
	}
	key := []byte(name)
	// The chunk: the last one whose first entry sorts before key (or the
	// first chunk).
	lo, hi := 1, len(t.chunks)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		mode, n, _ := t.chunks[m].raw(0)
		if compareKey(n, mode == modeTree, key, isTree) <= 0 {
			lo = m + 1
		} else {
			hi = m
		}
	}
	c := &t.chunks[lo-1]
	lo, hi = 0, len(c.offs)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		mode, n, _ := c.raw(m)
		if compareKey(n, mode == modeTree, key, isTree) < 0 {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo < len(c.offs) {
		mode, n, _ := c.raw(lo)
		return c.first + lo, string(n) == name && (mode == modeTree) == isTree
	}
	return c.first + lo, false
}

// set returns t with e in it (replacing the entry of the same name and
// kind), or without that entry when e's hash is zero. t is not changed:
// the new tree shares all of t's chunks but the one holding e.
func (t tree) set(e treeEntry) tree {
	i, found := t.find(e.name, e.isTree())
	switch {
	case e.hash.IsZero() && !found:
		return t
	case e.hash.IsZero():
		ci, j := t.locate(i)
		c := &t.chunks[ci]
		start, end := int(c.offs[j]), c.end(j)
		chunks := slices.Clone(t.chunks)
		if len(c.offs) == 1 {
			chunks = slices.Delete(chunks, ci, ci+1)
		} else {
			data := make([]byte, 0, len(c.data)-(end-start))
			data = append(append(data, c.data[:start]...), c.data[end:]...)
			offs := make([]uint32, 0, len(c.offs)-1)
			offs = append(offs, c.offs[:j]...)
			for _, o := range c.offs[j+1:] {
				offs = append(offs, o-uint32(end-start))
			}
			chunks[ci] = treeChunk{data: data, offs: offs, first: c.first}
			ci++
		}
		for k := ci; k < len(chunks); k++ {
			chunks[k].first--
		}
		return tree{chunks: chunks, n: t.n - 1, size: t.size - (end - start)}
	case found:
		// Same name and kind: only the hash differs, at the entry's end.
		ci, j := t.locate(i)
		c := t.chunks[ci]
		if _, _, h := c.raw(j); h == e.hash {
			return t
		}
		data := slices.Clone(c.data)
		copy(data[c.end(j)-20:], e.hash[:])
		chunks := slices.Clone(t.chunks)
		chunks[ci].data = data // offsets unchanged: shared
		return tree{chunks: chunks, n: t.n, size: t.size}
	default:
		enc := appendEntry(nil, e)
		if t.n == 0 {
			return tree{chunks: []treeChunk{{data: enc, offs: []uint32{0}}}, n: 1, size: len(enc)}
		}
		var ci, j int
		if i == t.n {
			ci = len(t.chunks) - 1
			j = len(t.chunks[ci].offs)
		} else {
			ci, j = t.locate(i)
		}
		c := &t.chunks[ci]
		start := len(c.data)
		if j < len(c.offs) {
			start = int(c.offs[j])
		}
		data := make([]byte, 0, len(c.data)+len(enc))
		data = append(append(append(data, c.data[:start]...), enc...), c.data[start:]...)
		offs := make([]uint32, 0, len(c.offs)+1)
		offs = append(append(offs, c.offs[:j]...), uint32(start))
		for _, o := range c.offs[j:] {
			offs = append(offs, o+uint32(len(enc)))
		}
		edited := []treeChunk{{data: data, offs: offs, first: c.first}}
		if len(data) > chunkMax && len(offs) > 1 {
			edited = splitChunk(edited[0])
		}
		chunks := make([]treeChunk, 0, len(t.chunks)+len(edited)-1)
		chunks = append(append(append(chunks, t.chunks[:ci]...), edited...), t.chunks[ci+1:]...)
		for k := ci + len(edited); k < len(chunks); k++ {
			chunks[k].first++
		}
		return tree{chunks: chunks, n: t.n + 1, size: t.size + len(enc)}
	}
}

// splitChunk cuts a chunk in two halves of whole entries; both keep
// sharing its memory.
func splitChunk(c treeChunk) []treeChunk {
	k := len(c.offs) / 2
	at := c.offs[k]
	second := make([]uint32, len(c.offs)-k)
	for i, o := range c.offs[k:] {
		second[i] = o - at
	}
	return []treeChunk{
		{data: c.data[:at:at], offs: c.offs[:k:k], first: c.first},
		{data: c.data[at:], offs: second, first: c.first + k},
	}
}

// treeSource gives decoded trees by hash.
type treeSource interface {
	tree(h plumbing.Hash) (tree, error)
}

// batchObjects collects the objects of a batch in order. For every
// directory it remembers the newest version written in the batch, so the
// next version of that directory can be stored as a delta against it.
type batchObjects struct {
	objs   []object
	latest map[string]int // directory path → index in objs
	hints  []treeHint     // deltas of the trees stored whole against their previous version
}

func newBatchObjects() *batchObjects {
	return &batchObjects{latest: map[string]int{}}
}

// reset empties b for another batch, keeping its memory but nothing the
// objects referred to.
func (b *batchObjects) reset() {
	clear(b.objs)
	b.objs = b.objs[:0]
	clear(b.latest)
	b.hints = nil
}

func (b *batchObjects) add(o object) { b.objs = append(b.objs, o) }

// addTree adds the new version of the directory dir, linked to the
// previous version of dir in the batch as its delta base.
func (b *batchObjects) addTree(dir string, o object) {
	if i, ok := b.latest[dir]; ok && b.objs[i].depth < maxDeltaDepth {
		o.base, o.depth = i, b.objs[i].depth+1
	}
	b.latest[dir] = len(b.objs)
	b.objs = append(b.objs, o)
}

// editTree returns the hash of root, the tree of directory dir ("" for
// the top), with the blob at each path of changes set (a zero hash
// deletes it), adding every new tree object to out. Only the trees along
// changed paths are read and rewritten; a directory left empty
// disappears, as in Git.
func editTree(src treeSource, dir string, root plumbing.Hash, changes map[string]plumbing.Hash, out *batchObjects) (plumbing.Hash, error) {
	groups := map[string]map[string]plumbing.Hash{}
	files := map[string]plumbing.Hash{}
	for p, h := range changes {
		name, rest, nested := strings.Cut(p, "/")
		if !nested {
			files[name] = h
			continue
		}
		if groups[name] == nil {
			groups[name] = map[string]plumbing.Hash{}
		}
		groups[name][rest] = h
	}
	var t tree
	if !root.IsZero() {
		var err error
		if t, err = src.tree(root); err != nil {
			return plumbing.ZeroHash, err
		}
	}
	before := t
	for name, h := range files {
		t = t.set(treeEntry{name: name, mode: modeBlob, hash: h})
	}
	for name, sub := range groups {
		var old plumbing.Hash
		if i, ok := t.find(name, true); ok {
			_, _, old = t.raw(i)
		}
		nh, err := editTree(src, dir+name+"/", old, sub, out)
		if err != nil {
			return plumbing.ZeroHash, fmt.Errorf("%s/: %w", name, err)
		}
		t = t.set(treeEntry{name: name, mode: modeTree, hash: nh})
	}
	if t.len() == 0 {
		return plumbing.ZeroHash, nil
	}
	o := newTreeObject(t)
	if _, inBatch := out.latest[dir]; !inBatch && !root.IsZero() && o.hash != root {
		// Stored whole in this pack: leave the merge its delta against the
		// version it replaces (see hints.go).
		if d := deltaOfTrees(before, t); d != nil {
			out.hints = append(out.hints, treeHint{tree: o.hash, base: root, delta: d})
		}
	}
	out.addTree(dir, o)
	if c, ok := src.(*treeCache); ok {
		c.pin(dir, o.hash, t)
	}
	return o.hash, nil
}

// truncate drops the objects from index n on (a write that changed
// nothing), and forgets them as delta bases.
func (b *batchObjects) truncate(n int) {
	for dir, i := range b.latest {
		if i >= n {
			delete(b.latest, dir)
		}
	}
	b.hints = slices.DeleteFunc(b.hints, func(h treeHint) bool {
		return !slices.ContainsFunc(b.objs[:n], func(o object) bool { return o.hash == h.tree })
	})
	b.objs = b.objs[:n]
}
