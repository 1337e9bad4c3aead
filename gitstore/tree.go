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

// treeEntry is one entry of a Git tree.
type treeEntry struct {
	name string
	mode uint32
	hash plumbing.Hash
}

func (e treeEntry) isTree() bool { return e.mode == modeTree }

// tree is a decoded Git tree; entries are kept in Git's order.
type tree []treeEntry

// sortKey is the name Git sorts an entry by: a directory sorts as "name/".
func (e treeEntry) sortKey() string {
	if e.isTree() {
		return e.name + "/"
	}
	return e.name
}

func decodeTree(data []byte) (tree, error) {
	var t tree
	for len(data) > 0 {
		sp := bytes.IndexByte(data, ' ')
		if sp < 0 {
			return nil, fmt.Errorf("decode tree: no mode")
		}
		mode, err := strconv.ParseUint(string(data[:sp]), 8, 32)
		if err != nil {
			return nil, fmt.Errorf("decode tree: mode %q: %w", data[:sp], err)
		}
		data = data[sp+1:]
		nul := bytes.IndexByte(data, 0)
		if nul < 0 || len(data) < nul+1+20 {
			return nil, fmt.Errorf("decode tree: truncated entry")
		}
		var h plumbing.Hash
		copy(h[:], data[nul+1:nul+21])
		t = append(t, treeEntry{name: string(data[:nul]), mode: uint32(mode), hash: h})
		data = data[nul+21:]
	}
	return t, nil
}

func (t tree) encode() []byte {
	n := 0
	for _, e := range t {
		n += len(e.name) + 28
	}
	b := make([]byte, 0, n)
	for _, e := range t {
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
		b = append(b, e.hash[:]...)
	}
	return b
}

// find returns the index of the entry named name, or where it would go.
func (t tree) find(name string, isTree bool) (int, bool) {
	key := name
	if isTree {
		key += "/"
	}
	i, ok := slices.BinarySearchFunc(t, key, func(e treeEntry, k string) int { return strings.Compare(e.sortKey(), k) })
	return i, ok && t[i].name == name
}

// lookup finds the entry called name, file or directory.
func (t tree) lookup(name string) (treeEntry, bool) {
	if i, ok := t.find(name, false); ok {
		return t[i], true
	}
	if i, ok := t.find(name, true); ok {
		return t[i], true
	}
	return treeEntry{}, false
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
		base, err := src.tree(root)
		if err != nil {
			return plumbing.ZeroHash, err
		}
		t = slices.Clone(base)
	}
	for name, h := range files {
		t = setEntry(t, treeEntry{name: name, mode: modeBlob, hash: h})
	}
	for name, sub := range groups {
		var old plumbing.Hash
		if i, ok := t.find(name, true); ok {
			old = t[i].hash
		}
		nh, err := editTree(src, dir+name+"/", old, sub, out)
		if err != nil {
			return plumbing.ZeroHash, fmt.Errorf("%s/: %w", name, err)
		}
		t = setEntry(t, treeEntry{name: name, mode: modeTree, hash: nh})
	}
	if len(t) == 0 {
		return plumbing.ZeroHash, nil
	}
	o := newObject(plumbing.TreeObject, t.encode())
	out.addTree(dir, o)
	if c, ok := src.(*treeCache); ok {
		c.pin(dir, o.hash, t)
	}
	return o.hash, nil
}

// setEntry puts e into t (replacing an entry of the same name and kind), or
// removes it when its hash is zero.
func setEntry(t tree, e treeEntry) tree {
	i, found := t.find(e.name, e.isTree())
	switch {
	case e.hash.IsZero() && found:
		return slices.Delete(t, i, i+1)
	case e.hash.IsZero():
		return t
	case found:
		t[i] = e
		return t
	default:
		return slices.Insert(t, i, e)
	}
}

// truncate drops the objects from index n on (a write that changed
// nothing), and forgets them as delta bases.
func (b *batchObjects) truncate(n int) {
	for dir, i := range b.latest {
		if i >= n {
			delete(b.latest, dir)
		}
	}
	b.objs = b.objs[:n]
}
