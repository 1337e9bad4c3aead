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

// tree is a Git tree kept in its encoded form (the object's content) with
// the offset of every entry: it holds no pointers for the garbage
// collector to follow however many entries it has, encoding it costs
// nothing, and an edit is one copy of the bytes. Entries are in Git's
// order. A tree is never changed once made; set returns a new one.
type tree struct {
	data []byte
	offs []uint32 // start of each entry in data
}

// len is the number of entries.
func (t tree) len() int { return len(t.offs) }

// raw returns the i-th entry's mode, name and hash without copying.
func (t tree) raw(i int) (mode uint32, name []byte, hash plumbing.Hash) {
	e := t.data[t.offs[i]:]
	sp := bytes.IndexByte(e, ' ')
	for _, c := range e[:sp] {
		mode = mode<<3 | uint32(c-'0')
	}
	e = e[sp+1:]
	nul := bytes.IndexByte(e, 0)
	copy(hash[:], e[nul+1:nul+21])
	return mode, e[:nul], hash
}

// entry returns the i-th entry.
func (t tree) entry(i int) treeEntry {
	mode, name, hash := t.raw(i)
	return treeEntry{name: string(name), mode: mode, hash: hash}
}

// end returns where the i-th entry ends.
func (t tree) end(i int) int {
	if i+1 < len(t.offs) {
		return int(t.offs[i+1])
	}
	return len(t.data)
}

// decodeTree checks a tree object's content and indexes its entries.
func decodeTree(data []byte) (tree, error) {
	t := tree{data: data, offs: make([]uint32, 0, len(data)/48+1)}
	for at := 0; at < len(data); {
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
		t.offs = append(t.offs, uint32(at))
		at += sp + 1 + nul + 1 + 20
	}
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
	key := []byte(name)
	lo, hi := 0, t.len()
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		mode, n, _ := t.raw(m)
		if compareKey(n, mode == modeTree, key, isTree) < 0 {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo < t.len() {
		mode, n, _ := t.raw(lo)
		return lo, string(n) == name && (mode == modeTree) == isTree
	}
	return lo, false
}

// set returns t with e in it (replacing the entry of the same name and
// kind), or without that entry when e's hash is zero. t is not changed.
func (t tree) set(e treeEntry) tree {
	i, found := t.find(e.name, e.isTree())
	switch {
	case e.hash.IsZero() && !found:
		return t
	case e.hash.IsZero():
		start, end := int(t.offs[i]), t.end(i)
		data := make([]byte, 0, len(t.data)-(end-start))
		data = append(append(data, t.data[:start]...), t.data[end:]...)
		offs := make([]uint32, 0, len(t.offs)-1)
		offs = append(offs, t.offs[:i]...)
		for _, o := range t.offs[i+1:] {
			offs = append(offs, o-uint32(end-start))
		}
		return tree{data: data, offs: offs}
	case found:
		// Same name and kind: only the hash differs, at the entry's end.
		if _, _, h := t.raw(i); h == e.hash {
			return t
		}
		data := slices.Clone(t.data)
		copy(data[t.end(i)-20:], e.hash[:])
		return tree{data: data, offs: t.offs}
	default:
		var start int
		if i < t.len() {
			start = int(t.offs[i])
		} else {
			start = len(t.data)
		}
		enc := appendEntry(nil, e)
		data := make([]byte, 0, len(t.data)+len(enc))
		data = append(append(append(data, t.data[:start]...), enc...), t.data[start:]...)
		offs := make([]uint32, 0, len(t.offs)+1)
		offs = append(append(offs, t.offs[:i]...), uint32(start))
		for _, o := range t.offs[i:] {
			offs = append(offs, o+uint32(len(enc)))
		}
		return tree{data: data, offs: offs}
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
	o := newObject(plumbing.TreeObject, t.data)
	if _, inBatch := out.latest[dir]; !inBatch && !root.IsZero() && o.hash != root {
		// Stored whole in this pack: leave the merge its delta against the
		// version it replaces (see hints.go).
		if d := deltaOf(before.data, t.data); d != nil {
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
